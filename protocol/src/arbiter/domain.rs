//! The configuration an operator can set, described once: each setting's range, the values that
//! mean "off", and the combinations refused. [`Config::validate`] enforces it, the `herd` command
//! line builds its value checks from it, and the checkers draw from it: the simulator puts a share
//! of its seeds at a [`Corner`], the explorer runs corner configurations in CI, the fuzz targets
//! stay inside the ranges. A setting added to [`Config`] that an operator can set belongs here,
//! with its corners.
//!
//! | setting | range | off | combines |
//! |---|---|---|---|
//! | `workers` | [`WORKERS`] | — | — |
//! | `cron_workers` | [`CRON_WORKERS`] | 0 | needs a timeout |
//! | `timeout` | [`TIMEOUT`] | `None` (`--timeout 0`) | — |
//! | `graceful_timeout` | [`GRACEFUL_TIMEOUT`] | — | — |
//! | `max_requests` | any `u32` | 0: never recycled | — |
//! | `max_requests_jitter` | any `u32` | 0 | ignored while `max_requests` is 0 |
//! | `listeners` | at least 1 in a mode that dispatches | — | — |
//! | `max_boot_failures` | any `u32` | 0: never halts | — |

use super::{Config, MAX_WORKERS};
use core::ops::RangeInclusive;
use core::time::Duration;

/// `--workers`.
pub const WORKERS: RangeInclusive<u32> = 1..=MAX_WORKERS;
/// `--cron-workers`; 0: none.
pub const CRON_WORKERS: RangeInclusive<u32> = 0..=MAX_WORKERS;
/// Longest duration any setting takes (about 31 years).
pub const LONGEST: Duration = Duration::from_secs(1_000_000_000);
/// `--timeout` when there is one (`--timeout 0` is `None`): from a tenth of a second, so that a
/// heartbeat every half of it stays a cheap thing.
pub const TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=LONGEST;
/// `--graceful-timeout`.
pub const GRACEFUL_TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(100)..=LONGEST;

/// A corner of the configuration space: one setting at an edge of its range, at its "off" value,
/// or in a combination where one setting makes another moot. The checkers draw these on purpose,
/// since a uniform draw rarely lands on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Corner {
    /// A single worker.
    OneWorker,
    /// [`MAX_WORKERS`] workers.
    MostWorkers,
    /// No timeout (`--timeout 0`): nobody is killed for silence (no cron workers: they need one).
    NoTimeout,
    /// The smallest timeout.
    SmallestTimeout,
    /// The smallest graceful timeout.
    SmallestGracefulTimeout,
    /// Every worker recycled after one request (no jitter).
    OneRequest,
    /// A jitter without its base (`--max-requests-jitter` without `--max-requests`): never
    /// recycled.
    JitterWithoutBase,
    /// The first worker that dies before booting halts the server (`--max-boot-failures 1`).
    OneBootFailure,
    /// Workers that die before booting are respawned forever (`--max-boot-failures 0`).
    EndlessBootFailures,
}

impl Corner {
    /// Every corner.
    pub const ALL: [Corner; 9] = [
        Corner::OneWorker,
        Corner::MostWorkers,
        Corner::NoTimeout,
        Corner::SmallestTimeout,
        Corner::SmallestGracefulTimeout,
        Corner::OneRequest,
        Corner::JitterWithoutBase,
        Corner::OneBootFailure,
        Corner::EndlessBootFailures,
    ];

    /// Its name (kebab-case).
    pub fn name(self) -> &'static str {
        match self {
            Corner::OneWorker => "one-worker",
            Corner::MostWorkers => "most-workers",
            Corner::NoTimeout => "no-timeout",
            Corner::SmallestTimeout => "smallest-timeout",
            Corner::SmallestGracefulTimeout => "smallest-graceful-timeout",
            Corner::OneRequest => "one-request",
            Corner::JitterWithoutBase => "jitter-without-base",
            Corner::OneBootFailure => "one-boot-failure",
            Corner::EndlessBootFailures => "endless-boot-failures",
        }
    }

    /// Whether this corner is one of `max_boot_failures`.
    pub fn boot_failures(self) -> bool {
        matches!(self, Corner::OneBootFailure | Corner::EndlessBootFailures)
    }

    /// Puts `c` at this corner; `jitter` is the jitter a [`Corner::JitterWithoutBase`] gets
    /// (clamped to at least 1). The result stays valid if `c` was.
    pub fn apply(self, c: &mut Config, jitter: u32) {
        match self {
            Corner::OneWorker => c.workers = *WORKERS.start(),
            Corner::MostWorkers => c.workers = *WORKERS.end(),
            Corner::NoTimeout => {
                c.timeout = None;
                c.cron_workers = 0;
            }
            Corner::SmallestTimeout => c.timeout = Some(*TIMEOUT.start()),
            Corner::SmallestGracefulTimeout => c.graceful_timeout = *GRACEFUL_TIMEOUT.start(),
            Corner::OneRequest => {
                c.max_requests = 1;
                c.max_requests_jitter = 0;
            }
            Corner::JitterWithoutBase => {
                c.max_requests = 0;
                c.max_requests_jitter = jitter.max(1);
            }
            Corner::OneBootFailure => c.max_boot_failures = 1,
            Corner::EndlessBootFailures => c.max_boot_failures = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are what `herd-explore --corner` takes: one each, kebab-case.
    #[test]
    fn every_corner_has_a_name_of_its_own() {
        let names: std::collections::BTreeSet<&str> = Corner::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Corner::ALL.len(), "{names:?}");
        for n in names {
            assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{n:?}");
        }
    }

    #[test]
    fn every_corner_of_a_valid_config_is_valid_and_the_ranges_edges_are_the_limits() {
        let base = Config { workers: 4, cron_workers: 2, max_requests: 50, ..Config::default() };
        for corner in Corner::ALL {
            let mut c = base.clone();
            corner.apply(&mut c, 0);
            assert_eq!(c.validate(), Ok(()), "{}", corner.name());
            assert_ne!(c, base, "{} changes something", corner.name());
        }
        let just_below = |d: Duration| d - Duration::from_nanos(1);
        let just_above = |d: Duration| d + Duration::from_nanos(1);
        for (t, ok) in [
            (*TIMEOUT.start(), true),
            (just_below(*TIMEOUT.start()), false),
            (*TIMEOUT.end(), true),
            (just_above(*TIMEOUT.end()), false),
        ] {
            assert_eq!(Config { timeout: Some(t), ..base.clone() }.validate().is_ok(), ok, "timeout {t:?}");
        }
        for (t, ok) in [(*GRACEFUL_TIMEOUT.start(), true), (just_below(*GRACEFUL_TIMEOUT.start()), false)] {
            assert_eq!(
                Config { graceful_timeout: t, ..base.clone() }.validate().is_ok(),
                ok,
                "graceful {t:?}"
            );
        }
        for (w, ok) in [(0, false), (1, true), (MAX_WORKERS, true), (MAX_WORKERS + 1, false)] {
            assert_eq!(Config { workers: w, ..base.clone() }.validate().is_ok(), ok, "workers {w}");
        }
    }
}
