//! Rate-limited warnings: a flood of refused connections must not become a flood of log
//! lines (one line per refusal once grew the log by 49 MB in 6 s). Each key (a peer's UID, or
//! "the cap is reached") gets at most one line per window; the line carries how many events
//! happened since the key's last line, so nothing goes uncounted.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

pub struct LogLimit<K> {
    window: Duration,
    keys: HashMap<K, Entry>,
}

struct Entry {
    logged_at: Instant,
    /// Events since the last line.
    unlogged: u64,
}

impl<K: Hash + Eq + Clone> LogLimit<K> {
    pub fn new(window: Duration) -> Self {
        LogLimit { window, keys: HashMap::new() }
    }

    /// Counts one event. `Some(n)` when a line is due now: `n` events since the key's last
    /// line, this one included.
    pub fn hit(&mut self, key: K, now: Instant) -> Option<u64> {
        match self.keys.get_mut(&key) {
            None => {
                self.keys.insert(key, Entry { logged_at: now, unlogged: 0 });
                Some(1)
            }
            Some(e) if now.duration_since(e.logged_at) >= self.window => {
                let n = e.unlogged + 1;
                *e = Entry { logged_at: now, unlogged: 0 };
                Some(n)
            }
            Some(e) => {
                e.unlogged += 1;
                None
            }
        }
    }

    /// Counts whose window is over, to log now: a burst that then stops is still reported.
    /// Keys quiet for a whole window are forgotten, so the map holds only active keys.
    pub fn due(&mut self, now: Instant) -> Vec<(K, u64)> {
        let mut out = Vec::new();
        self.keys.retain(|key, e| {
            if now.duration_since(e.logged_at) < self.window {
                return true;
            }
            if e.unlogged == 0 {
                return false;
            }
            out.push((key.clone(), e.unlogged));
            *e = Entry { logged_at: now, unlogged: 0 };
            true
        });
        out
    }

    /// When [`due`](Self::due) next has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        self.keys.values().map(|e| e.logged_at + self.window).min()
    }

    /// Every count not yet logged, whatever its window: for the last lines at shutdown.
    pub fn drain(&mut self) -> Vec<(K, u64)> {
        self.keys.drain().filter(|(_, e)| e.unlogged > 0).map(|(k, e)| (k, e.unlogged)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn one_line_per_key_per_window_with_the_count_since_the_last() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut limit = LogLimit::new(MINUTE);
        assert_eq!(limit.hit(1000, at(0)), Some(1), "the first refusal is logged at once");
        for s in 1..=30 {
            assert_eq!(limit.hit(1000, at(s)), None);
        }
        assert_eq!(limit.hit(1001, at(30)), Some(1), "another key has its own window");
        assert_eq!(limit.hit(1000, at(60)), Some(31), "a minute on: 30 suppressed and this one");
        assert_eq!(limit.hit(1000, at(61)), None);
        assert_eq!(limit.next_due(), Some(at(90)));
    }

    #[test]
    fn a_burst_that_stops_is_reported_when_its_window_ends_and_then_forgotten() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut limit = LogLimit::new(MINUTE);
        assert_eq!(limit.hit("full", at(0)), Some(1));
        for _ in 0..500 {
            limit.hit("full", at(5));
        }
        assert_eq!(limit.due(at(59)), vec![], "not before the window ends");
        assert_eq!(limit.next_due(), Some(at(60)));
        assert_eq!(limit.due(at(60)), vec![("full", 500)]);
        assert_eq!(limit.hit("full", at(61)), None, "the report started a new window");
        assert_eq!(limit.due(at(120)), vec![("full", 1)]);
        assert_eq!(limit.due(at(180)), vec![], "nothing new");
        assert_eq!(limit.next_due(), None, "a quiet key is forgotten");
        assert_eq!(limit.hit("full", at(181)), Some(1));
    }

    #[test]
    fn drain_gives_every_unlogged_count() {
        let t0 = Instant::now();
        let mut limit = LogLimit::new(MINUTE);
        limit.hit(1, t0);
        limit.hit(1, t0);
        limit.hit(1, t0);
        limit.hit(2, t0);
        assert_eq!(limit.drain(), vec![(1, 2)]);
        assert_eq!(limit.next_due(), None);
    }
}
