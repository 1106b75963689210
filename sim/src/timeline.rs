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

    /// Renders the timeline as SVG, `end` being the last instant of the run.
    pub fn svg(&self, end: Instant, title: &str) -> String {
        let (w, lane_h, left, top) = (1200.0f64, 18.0f64, 70.0f64, 40.0f64);
        let h = top + lane_h * self.lanes.len() as f64 + 40.0;
        let span = end.0.max(1) as f64;
        let x = |t: Instant| left + (t.0 as f64 / span) * (w - left - 10.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="monospace" font-size="10">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{left}" y="16" font-size="13">{}</text>"#, escape(title));
        for i in 0..=10 {
            let t = Instant((span as u64 / 10) * i);
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}">{3:.0}s</text>"##,
                x(t),
                h - 30.0,
                h - 18.0,
                t.0 as f64 / 1e9
            );
        }
        for (i, l) in self.lanes.iter().enumerate() {
            let y = top + lane_h * i as f64;
            let end_t = l.exited.map_or(end, |(t, _)| t);
            let _ = writeln!(s, r#"<text x="4" y="{:.1}">{}</text>"#, y + 12.0, l.id);
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#dde8f5"/>"##,
                x(l.spawned),
                y + 3.0,
                (x(end_t) - x(l.spawned)).max(0.5),
                lane_h - 6.0
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
                    escape(&format!("{status:?}"))
                );
            }
        }
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="{:.1}">lane = worker life; blue = request; orange = hung request; purple = TERM/QUIT; red = ABRT/KILL</text>"##,
            h - 4.0
        );
        s.push_str("</svg>\n");
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
