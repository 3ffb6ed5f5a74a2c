//! How long the machine has slept since it booted, from two clocks that differ by exactly
//! that: one that stops in suspend (what `Instant` and so Tokio's timers and reqwest's pool
//! run on) and one that does not. It cannot be fooled by a wall-clock change (NTP, the user),
//! and it sees a suspend even where no logind announces one.

use std::sync::Mutex;
use std::time::Duration;

/// Less than this is the jitter of reading two clocks one after the other, not a sleep.
const NOISE: Duration = Duration::from_millis(100);

/// Total time asleep since boot; `None` where the platform has no such pair of clocks.
pub fn asleep_total() -> Option<Duration> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let (with_sleep, without_sleep) = (libc::CLOCK_BOOTTIME, libc::CLOCK_MONOTONIC);
    #[cfg(target_vendor = "apple")]
    let (with_sleep, without_sleep) = (libc::CLOCK_MONOTONIC, libc::CLOCK_UPTIME_RAW);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    return None;
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        // The clock that stops in suspend, read on both sides of the other: a thread
        // preempted between two reads would otherwise look like a machine that slept. The
        // closest-bracketed of a few tries, and its lower bound.
        let mut best: Option<(Duration, Duration)> = None;
        for _ in 0..3 {
            let before = read(without_sleep)?;
            let with = read(with_sleep)?;
            let after = read(without_sleep)?;
            let bracket = after.saturating_sub(before);
            if best.is_none_or(|(b, _)| bracket < b) {
                best = Some((bracket, with.saturating_sub(after)));
            }
            if bracket < Duration::from_millis(1) {
                break;
            }
        }
        best.map(|(_, asleep)| asleep)
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
fn read(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec we own; the clock id is one the platform defines.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(u64::try_from(ts.tv_sec).ok()?, u32::try_from(ts.tv_nsec).ok()?))
}

/// Remembers the sleep total it last saw, to tell whether the machine slept since.
#[derive(Debug, Default)]
pub struct SleepWatch {
    seen: Mutex<Option<Duration>>,
}

impl SleepWatch {
    /// Whether the machine slept since the last call (the first call only takes a reading).
    pub fn slept(&self) -> bool {
        asleep_total().is_some_and(|now| self.slept_at(now))
    }

    fn slept_at(&self, now: Duration) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let slept = seen.is_some_and(|before| now.saturating_sub(before) > NOISE);
        if seen.is_none_or(|before| now > before) {
            *seen = Some(now);
        }
        slept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_sleep_total_is_a_sleep_and_jitter_is_not() {
        let watch = SleepWatch::default();
        let s = Duration::from_secs;
        assert!(!watch.slept_at(s(40)), "the first reading only sets the mark");
        assert!(!watch.slept_at(s(40) + Duration::from_millis(30)), "jitter");
        assert!(watch.slept_at(s(60)), "20 s asleep");
        assert!(!watch.slept_at(s(60)), "that sleep was told once");
        assert!(!watch.slept_at(s(59)), "a reading a hair behind is no sleep");
        assert!(watch.slept_at(s(65)));
    }

    #[test]
    fn this_machine_has_the_clocks() {
        if cfg!(any(target_os = "linux", target_vendor = "apple")) {
            let total = asleep_total().expect("both clocks readable");
            assert!(!SleepWatch::default().slept());
            // The total never falls.
            assert!(asleep_total().unwrap() + NOISE >= total);
        }
    }
}
