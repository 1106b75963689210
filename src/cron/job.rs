//! Scheduled jobs as an operator defines them (`--cron-job NAME=SECONDS`) and as a runner sees
//! one run of them.

use std::time::Duration;

/// Environment variable naming the shared-memory job table a re-executed arbiter inherits.
pub const CRON_FD_ENV: &str = "HERD_CRON_FD";
/// Most jobs a server defines.
pub const MAX_JOBS: usize = 64;

/// A scheduled job: its name (unique; the key in a shared database) and how often it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronJob {
    /// The name.
    pub name: String,
    /// Time between runs.
    pub interval: Duration,
}

/// One run of a job, as the application's runner sees it.
#[derive(Clone, Copy, Debug)]
pub struct JobRun<'a> {
    /// The job's name.
    pub name: &'a str,
    /// The fencing token of this run: strictly greater than every earlier run's. Writes the job
    /// makes elsewhere can carry it, so that a run that lost its lease cannot overwrite a newer
    /// one's.
    pub token: u64,
    /// The scheduled time being run, on the store's clock (nanoseconds).
    pub slot: u64,
}

/// Why a job definition was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CronSpecError {
    /// Not `NAME=SECONDS`.
    #[error("bad cron job {0:?}: expected NAME=SECONDS, e.g. mail_queue=60")]
    Syntax(String),
    /// Two jobs with one name.
    #[error("cron job {0:?} is defined twice")]
    Duplicate(String),
    /// More than [`MAX_JOBS`].
    #[error("at most {MAX_JOBS} cron jobs")]
    TooMany,
    /// Cron workers but no job, or jobs of zero interval.
    #[error("{0}")]
    Invalid(String),
}

impl std::str::FromStr for CronJob {
    type Err = CronSpecError;
    fn from_str(s: &str) -> Result<Self, CronSpecError> {
        let bad = || CronSpecError::Syntax(s.to_owned());
        let (name, secs) = s.split_once('=').ok_or_else(bad)?;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        let secs: f64 = secs.parse().map_err(|_| bad())?;
        if !(valid_name && secs.is_finite() && (0.001..=1e9).contains(&secs)) {
            return Err(bad());
        }
        Ok(CronJob { name: name.to_owned(), interval: Duration::from_secs_f64(secs) })
    }
}

/// Checks a server's job list.
pub(crate) fn validate(jobs: &[CronJob], workers: u32) -> Result<(), CronSpecError> {
    if jobs.len() > MAX_JOBS {
        return Err(CronSpecError::TooMany);
    }
    for (i, j) in jobs.iter().enumerate() {
        if jobs[..i].iter().any(|k| k.name == j.name) {
            return Err(CronSpecError::Duplicate(j.name.clone()));
        }
        if j.interval.is_zero() {
            return Err(CronSpecError::Invalid(format!("cron job {:?} has a zero interval", j.name)));
        }
    }
    if workers > 0 && jobs.is_empty() {
        return Err(CronSpecError::Invalid("cron workers need at least one cron job (--cron-job)".into()));
    }
    if workers == 0 && !jobs.is_empty() {
        return Err(CronSpecError::Invalid(
            "cron jobs need cron workers to run them (--cron-workers N); without, they would never run"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_specs_parse_or_say_why_not() {
        let j: CronJob = "mail_queue=60".parse().unwrap();
        assert_eq!(j, CronJob { name: "mail_queue".into(), interval: Duration::from_secs(60) });
        assert_eq!("a=0.25".parse::<CronJob>().unwrap().interval, Duration::from_millis(250));
        for bad in ["", "x", "=5", "x=", "x=0", "x=-1", "x=abc", "x y=5", "x=inf"] {
            let e = bad.parse::<CronJob>().unwrap_err();
            assert!(e.to_string().contains("NAME=SECONDS"), "{bad}: {e}");
        }
        let a: CronJob = "a=1".parse().unwrap();
        assert!(matches!(validate(&[a.clone(), a.clone()], 1), Err(CronSpecError::Duplicate(_))));
        assert!(validate(&[], 1).unwrap_err().to_string().contains("--cron-job"));
        validate(&[a], 2).unwrap();
        validate(&[], 0).unwrap();
    }
}
