//! Where the dyno manager gets the time: one seam, so the executor reads the clock in one
//! place and tests hand it whatever moment they need.

#[cfg(test)]
use std::sync::Mutex;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use chrono::Utc;

use super::plan::Now;

/// The time, on both clocks.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> Now;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now {
            instant: Instant::now(),
            wall: Utc::now(),
        }
    }
}

/// A clock that moves only when told to, for tests.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ManualClock {
    now: Mutex<Now>,
}

#[cfg(test)]
impl ManualClock {
    pub(crate) fn new(start: Now) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves both clocks forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        now.instant += by;
        now.wall += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Now {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
