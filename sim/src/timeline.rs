//! A picture of one run: a lane per worker, its life from spawn to exit, its requests, the
//! signals it was sent. Written as a self-contained SVG.

use herd_protocol::arbiter::{ExitStatus, KillSignal, WorkerId};
use herd_protocol::time::Instant;
use std::fmt::Write as _;

#[derive(Debug, Clone)]
struct Lane {
    id: WorkerId,
    spawned: Instant,
    exited: Option<(Instant, ExitStatus)>,
    requests: Vec<(Instant, Option<Instant>, bool)>,
    kills: Vec<(Instant, KillSignal)>,
}

/// The recorded lanes.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    lanes: Vec<Lane>,
}

impl Timeline {
    pub(crate) fn spawn(&mut self, id: WorkerId, at: Instant) -> usize {
        self.lanes.push(Lane { id, spawned: at, exited: None, requests: Vec::new(), kills: Vec::new() });
        self.lanes.len() - 1
    }
    pub(crate) fn exit(&mut self, lane: usize, at: Instant, status: ExitStatus) {
        self.lanes[lane].exited = Some((at, status));
        if let Some(r) = self.lanes[lane].requests.last_mut()
            && r.1.is_none()
        {
            r.1 = Some(at);
        }
    }
    pub(crate) fn request_start(&mut self, lane: usize, at: Instant, hung: bool) {
        self.lanes[lane].requests.push((at, None, hung));
    }
    pub(crate) fn request_end(&mut self, lane: usize, at: Instant) {
        if let Some(r) = self.lanes[lane].requests.last_mut() {
            r.1 = Some(at);
        }
    }
    pub(crate) fn kill(&mut self, lane: usize, at: Instant, signal: KillSignal) {
        self.lanes[lane].kills.push((at, signal));
    }

    /// Places each worker life on a row: the lowest row free when it was spawned (a
    /// worker's replacement takes the row its predecessor left), so a run with N workers at
    /// once draws about N rows however many workers it spawned. Returns each lane's row and the
    /// number of rows.
    fn rows(&self, end: Instant) -> (Vec<usize>, usize) {
        // When each row becomes free again.
        let mut free_at: Vec<Instant> = Vec::new();
        let mut rows = Vec::with_capacity(self.lanes.len());
        for l in &self.lanes {
            let until = l.exited.map_or(end, |(t, _)| t);
            let row = match free_at.iter().position(|&f| f <= l.spawned) {
                Some(r) => r,
                None => {
                    free_at.push(l.spawned);
                    free_at.len() - 1
                }
            };
            free_at[row] = until;
            rows.push(row);
        }
        (rows, free_at.len())
    }

    /// Renders the timeline as SVG, `end` being the last instant of the run.
    pub fn svg(&self, end: Instant, title: &str) -> String {
        let (w, lane_h, left, top) = (1200.0f64, 18.0f64, 50.0f64, 56.0f64);
        let (rows, n_rows) = self.rows(end);
        let h = top + lane_h * n_rows as f64 + 24.0;
        let span = end.0.max(1) as f64;
        let x = |t: Instant| left + (t.0 as f64 / span) * (w - left - 10.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="monospace" font-size="10">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{left}" y="16" font-size="13">{}</text>"#, escape(title));
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="32">row = one worker slot, its workers one after another (id at the start of each life); blue = request; orange = hung request; purple = TERM/QUIT; red = ABRT/KILL; end label = how it exited</text>"##
        );
        for i in 0..=10 {
            let t = Instant((span as u64 / 10) * i);
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}">{3:.0}s</text>"##,
                x(t),
                h - 20.0,
                h - 8.0,
                t.0 as f64 / 1e9
            );
        }
        for r in 0..n_rows {
            let _ = writeln!(s, r#"<text x="4" y="{:.1}">{r}</text>"#, top + lane_h * r as f64 + 12.0);
        }
        for (l, &row) in self.lanes.iter().zip(&rows) {
            let y = top + lane_h * row as f64;
            let end_t = l.exited.map_or(end, |(t, _)| t);
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#dde8f5" stroke="#aabbd0" stroke-width="0.5"><title>{}</title></rect>"##,
                x(l.spawned),
                y + 3.0,
                (x(end_t) - x(l.spawned)).max(0.5),
                lane_h - 6.0,
                l.id
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#333" font-size="8">{}</text>"##,
                x(l.spawned) + 1.0,
                y + 2.5,
                l.id
            );
            for &(a, b, hung) in &l.requests {
                let b = b.unwrap_or(end_t);
                let color = if hung { "#e67e22" } else { "#2e86c1" };
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                    x(a),
                    y + 5.0,
                    (x(b) - x(a)).max(0.5),
                    lane_h - 10.0
                );
            }
            for &(t, sig) in &l.kills {
                let color = match sig {
                    KillSignal::Term | KillSignal::Quit => "#7d3c98",
                    KillSignal::Abrt | KillSignal::Kill => "#c0392b",
                };
                let _ = writeln!(
                    s,
                    r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{color}" stroke-width="2"><title>{sig:?}</title></line>"#,
                    x(t),
                    y + 1.0,
                    y + lane_h - 1.0
                );
            }
            if let Some((t, status)) = l.exited {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{:.1}" fill="#555">{}</text>"##,
                    x(t) + 2.0,
                    y + 12.0,
                    exit_words(status)
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

/// An exit as a label: `exit 0`, `SIGKILL`.
fn exit_words(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exit {c}"),
        ExitStatus::Signaled(n) => match n {
            6 => "SIGABRT".into(),
            9 => "SIGKILL".into(),
            15 => "SIGTERM".into(),
            3 => "SIGQUIT".into(),
            n => format!("signal {n}"),
        },
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows never hold two lives at once, every life is drawn, and a run that replaces its
    /// workers over and over needs no more rows than workers were alive at once.
    #[test]
    fn lives_share_rows_without_overlapping() {
        let mut t = Timeline::default();
        let at = |s: u64| Instant(s * 1_000_000_000);
        // Three workers at once, each replaced 50 times a second apart; one more added for a while.
        let mut lanes: Vec<usize> = (0..3).map(|i| t.spawn(WorkerId(i), at(0))).collect();
        let mut next = 3;
        for round in 1..=50u64 {
            for lane in lanes.iter_mut() {
                t.exit(*lane, at(round), ExitStatus::Signaled(9));
                *lane = t.spawn(WorkerId(next), at(round));
                next += 1;
            }
            if round == 10 {
                let extra = t.spawn(WorkerId(next), at(round));
                next += 1;
                t.exit(extra, at(20), ExitStatus::Code(0));
            }
        }
        let end = at(60);
        let (rows, n) = t.rows(end);
        assert_eq!(rows.len(), t.lanes.len());
        assert_eq!(n, 4, "three workers at once, four for a while");
        for (a, la) in t.lanes.iter().enumerate() {
            for (b, lb) in t.lanes.iter().enumerate().skip(a + 1) {
                if rows[a] != rows[b] {
                    continue;
                }
                let (ea, eb) = (la.exited.map_or(end, |e| e.0), lb.exited.map_or(end, |e| e.0));
                assert!(
                    ea <= lb.spawned || eb <= la.spawned,
                    "{} and {} overlap on row {}",
                    la.id,
                    lb.id,
                    rows[a]
                );
            }
        }
        let svg = t.svg(end, "test");
        assert_eq!(svg.matches("fill=\"#dde8f5\"").count(), t.lanes.len(), "one bar per life");
        assert!(svg.contains("SIGKILL") && svg.contains("exit 0") && !svg.contains("Code("));
    }
}
