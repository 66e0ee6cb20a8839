//! Learning an occupant's preferences for one appliance from what they do:
//!
//! - **usual start time**: the circular mean of the starts they chose themselves (times of day
//!   are angles, so 23:30 and 00:30 average to midnight), with the mean resultant length `R̄`
//!   as the spread (Mardia & Jupp, *Directional Statistics*, 2000, §2.3); only the last
//!   [`HISTORY`] starts are kept;
//! - **accepted window**: an override (the occupant started it themselves at another time than
//!   the agent planned) or a cancellation of a planned start narrows the window so that the
//!   rejected start is no longer offered: a rejected start in the later part of the window
//!   pulls the deadline in to it, in the earlier part pushes the earliest start past it; an
//!   override's own start is always kept inside the window;
//! - **confidence** in [0, 1): `R̄ · n/(n + k)` — high when the starts agree and there are
//!   many of them (k = [`PRIOR_WEIGHT`] pseudo-observations of no information).
//!
//! Deterministic, bounded memory, no clock: the caller says when things happened (hours).

use serde::{Deserialize, Serialize};

/// Starts kept for the circular mean.
pub const HISTORY: usize = 64;
/// Pseudo-observations in the confidence.
pub const PRIOR_WEIGHT: f64 = 5.0;

/// What the occupant did with a planned run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// They started it themselves at `start_h` (unmanaged use).
    Started {
        /// Start, hours after midnight.
        start_h: f64,
    },
    /// They accepted the agent's start.
    Accepted {
        /// The planned start, h.
        planned_h: f64,
    },
    /// They overrode the agent's planned start by starting at `start_h` instead.
    Override {
        /// The agent's planned start, h.
        planned_h: f64,
        /// When they started it, h.
        start_h: f64,
    },
    /// They cancelled the agent's planned start (and ran nothing then).
    Cancel {
        /// The agent's planned start, h.
        planned_h: f64,
    },
}

/// The learned preferences of one appliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    /// Earliest accepted start, h.
    pub earliest_start_h: f64,
    /// Latest accepted end, h (may exceed 24).
    pub deadline_h: f64,
    /// Run length, h (the window never narrows below it).
    pub run_hours: f64,
    starts: Vec<f64>,
    next: usize,
    seen: usize,
    accepted: usize,
    rejected: usize,
}

impl Preferences {
    /// Start from the configured window.
    pub fn new(earliest_start_h: f64, deadline_h: f64, run_hours: f64) -> Self {
        Self {
            earliest_start_h,
            deadline_h,
            run_hours,
            starts: Vec::new(),
            next: 0,
            seen: 0,
            accepted: 0,
            rejected: 0,
        }
    }

    /// Learn from one event.
    pub fn observe(&mut self, event: Event) {
        match event {
            Event::Started { start_h } => self.push_start(start_h),
            Event::Accepted { .. } => self.accepted += 1,
            Event::Override { planned_h, start_h } => {
                self.rejected += 1;
                self.push_start(start_h);
                self.reject(planned_h, Some(start_h));
            }
            Event::Cancel { planned_h } => {
                self.rejected += 1;
                self.reject(planned_h, None);
            }
        }
    }

    fn push_start(&mut self, start_h: f64) {
        if !start_h.is_finite() {
            return;
        }
        self.seen += 1;
        if self.starts.len() < HISTORY {
            self.starts.push(start_h.rem_euclid(24.0));
        } else {
            self.starts[self.next] = start_h.rem_euclid(24.0);
        }
        self.next = (self.next + 1) % HISTORY;
    }

    /// Narrow the window so that `planned_h` is not offered again, keeping `keep_h` (the
    /// occupant's own start) and at least one run length.
    fn reject(&mut self, planned_h: f64, keep_h: Option<f64>) {
        let planned = self.align(planned_h);
        let mid = 0.5 * (self.earliest_start_h + self.deadline_h - self.run_hours);
        if planned >= mid {
            // Too late: the run must end by the rejected start.
            let mut deadline = planned;
            if let Some(k) = keep_h {
                deadline = deadline.max(self.align(k) + self.run_hours);
            }
            self.deadline_h = deadline.max(self.earliest_start_h + self.run_hours);
        } else {
            // Too early: start after the rejected start.
            let mut earliest = planned + 0.25;
            if let Some(k) = keep_h {
                earliest = earliest.min(self.align(k));
            }
            self.earliest_start_h = earliest.min(self.deadline_h - self.run_hours);
        }
    }

    /// A time of day moved into the window's frame (the window may pass midnight).
    fn align(&self, h: f64) -> f64 {
        let h = h.rem_euclid(24.0);
        if h < self.earliest_start_h && h + 24.0 <= self.deadline_h {
            h + 24.0
        } else {
            h
        }
    }

    /// The usual start (circular mean), h; `None` before the first own start.
    pub fn usual_start_h(&self) -> Option<f64> {
        let (s, c, n) = self.resultant();
        (n > 0).then(|| s.atan2(c).rem_euclid(std::f64::consts::TAU) * 24.0 / std::f64::consts::TAU)
    }

    fn resultant(&self) -> (f64, f64, usize) {
        let (mut s, mut c) = (0.0, 0.0);
        for h in &self.starts {
            let ang = h / 24.0 * std::f64::consts::TAU;
            s += ang.sin();
            c += ang.cos();
        }
        (s, c, self.starts.len())
    }

    /// Confidence in the usual start, 0 (none) to 1.
    pub fn confidence(&self) -> f64 {
        let (s, c, n) = self.resultant();
        if n == 0 {
            return 0.0;
        }
        let r_bar = (s * s + c * c).sqrt() / n as f64;
        r_bar * n as f64 / (n as f64 + PRIOR_WEIGHT)
    }

    /// Share of the agent's plans the occupant accepted (1 before any plan was judged).
    pub fn acceptance(&self) -> f64 {
        let judged = self.accepted + self.rejected;
        if judged == 0 {
            1.0
        } else {
            self.accepted as f64 / judged as f64
        }
    }

    /// Own starts observed in total.
    pub fn starts_seen(&self) -> usize {
        self.seen
    }
}
