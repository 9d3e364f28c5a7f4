//! Rate limits over a sliding window, kept as two counters in the cache.
//!
//! A fixed window forgets everything at its boundary: twenty failures in
//! its last second and twenty more in the next window's first second all
//! pass a limit of twenty. Here each hit is counted in the window it falls
//! in, and the count a limit is checked against is the current window's
//! plus the previous window's weighted by how much of it still lies within
//! one window of now (the estimate Cloudflare and others use; it assumes
//! the previous window's hits were spread evenly).

use std::time::Duration;

use crate::{Cache, CacheError, counter};

/// A sliding window of `length` over counters named `{name}:{index}`.
#[derive(Debug, Clone, Copy)]
pub struct SlidingWindow {
    length: Duration,
}

/// The counts of one key at one moment, as [`SlidingWindow::hit`] left them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hits {
    /// Hits in the previous window.
    pub previous: u64,
    /// Hits in the current window, this one included.
    pub current: u64,
    /// Seconds of the current window gone.
    pub elapsed: f64,
    /// Seconds in a window.
    pub length: f64,
}

impl SlidingWindow {
    pub const fn new(length: Duration) -> Self {
        Self { length }
    }

    /// Now, in seconds since the epoch, as [`SlidingWindow::hit`] takes it.
    pub fn now() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64())
    }

    fn seconds(self) -> u64 {
        self.length.as_secs().max(1)
    }

    /// The counter for `name` in the window holding `now` (seconds since the
    /// epoch), and the one before it.
    fn keys(self, name: &str, now: f64) -> (String, String) {
        let index = (now / self.seconds() as f64) as u64;
        (
            format!("{name}:{index}"),
            format!("{name}:{}", index.saturating_sub(1)),
        )
    }

    /// Counts one hit on `name` at `now` (seconds since the epoch) and
    /// returns the counts the limit is checked against. A counter lives two
    /// windows: its own and the next, where it is the previous one.
    pub async fn hit(&self, cache: &dyn Cache, name: &str, now: f64) -> Result<Hits, CacheError> {
        let (current_key, previous_key) = self.keys(name, now);
        let current = cache.incr(&current_key, self.length * 2).await?;
        let previous = cache
            .get(&previous_key)
            .await?
            .map_or(0, |value| counter(&value));
        let length = self.seconds() as f64;
        Ok(Hits {
            previous,
            current,
            elapsed: now - (now / length).floor() * length,
            length,
        })
    }

    /// Takes back a hit counted at `now` (a log-in that succeeded, say).
    pub async fn give_back(
        &self,
        cache: &dyn Cache,
        name: &str,
        now: f64,
    ) -> Result<(), CacheError> {
        let (current_key, _) = self.keys(name, now);
        cache.add(&current_key, -1, self.length * 2).await?;
        Ok(())
    }
}

impl Hits {
    /// The hits within one window of now: all of the current window's and
    /// the share of the previous window's that still lies within it.
    pub fn estimate(&self) -> f64 {
        self.previous as f64 * (1.0 - self.elapsed / self.length) + self.current as f64
    }

    /// Whether more than `limit` hits lie within the window.
    pub fn over(&self, limit: u64) -> bool {
        self.estimate() > limit as f64
    }

    /// Whole seconds (at least one) until a hit like this one would be
    /// within `limit`, if this one is given back and nothing more is
    /// counted: what a refused client should wait. Hits bunched early in the
    /// current window are taken as spread over it once it is the previous
    /// one, so the wait may reach past the window's end (at most two
    /// windows).
    pub fn retry_after(&self, limit: u64) -> u64 {
        // The room the next hit needs, and what counts against it.
        let room = limit.saturating_sub(1) as f64;
        let current = self.current.saturating_sub(1) as f64;
        let previous = self.previous as f64;
        let left = self.length - self.elapsed;
        let wait = if current <= room {
            // The previous window's share has to shrink to what is left.
            if self.previous == 0 {
                0.0
            } else {
                (left - (room - current) * self.length / previous).max(0.0)
            }
        } else {
            // The current window has to end, then become a small enough
            // share of the next one.
            left + self.length * (1.0 - room / current)
        };
        (wait.ceil() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::Hits;

    fn hits(previous: u64, current: u64, elapsed: f64) -> Hits {
        Hits {
            previous,
            current,
            elapsed,
            length: 900.0,
        }
    }

    #[test]
    fn a_window_boundary_does_not_reset_the_count() {
        // Twenty hits at the end of one window, one at the start of the next.
        let next = hits(20, 1, 1.0);
        assert!(next.over(20), "{}", next.estimate());
        // Once the previous window has slid away, hits pass again.
        assert!(!hits(20, 1, 60.0).over(20));
        assert!(!hits(20, 19, 899.9).over(20));
        assert!(hits(20, 20, 899.9).over(20));
    }

    #[test]
    fn retry_after_is_when_the_next_hit_fits() {
        // A 21st hit at 100 s with none before, given back: the other 20
        // fill the limit until this window ends and 1/20 of the next.
        let refused = hits(0, 21, 100.0);
        assert!(refused.over(20));
        let wait = refused.retry_after(20);
        assert_eq!(wait, 800 + 45);
        assert!(!hits(20, 1, (wait - 800) as f64).over(20));
        assert!(hits(20, 1, (wait - 800 - 2) as f64).over(20));
        // 20 before and a refused hit at 1 s: one of the previous 20 has
        // to slide out.
        let wait = hits(20, 1, 1.0).retry_after(20);
        assert_eq!(wait, 44);
        assert!(!hits(20, 1, 1.0 + wait as f64).over(20));
        assert!(hits(20, 1, wait as f64 - 1.0).over(20));
    }
}
