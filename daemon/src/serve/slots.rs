//! Connection slots (`--max-connections`), and memory given back after a crowd of connections
//! has gone. Every connection's memory is freed when it closes, but glibc keeps freed heap pages
//! resident when anything allocated later sits above them: 4,000 closed connections left the
//! daemon 30 MiB larger (measured, docs/benchmarks.md) until `malloc_trim` handed them back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A crowd worth trimming after: below this many connections the memory held is small (a few
/// KiB each), and an owner's short calls (one connection each) do not trim.
const CROWD: usize = 64;

pub struct Slots {
    free: Arc<Semaphore>,
    max: usize,
    /// Most connections open at once since the last trim.
    peak: AtomicUsize,
}

/// A connection's slot; handing it back may return memory to the OS.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<Slots>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots { free: Arc::new(Semaphore::new(max)), max, peak: AtomicUsize::new(0) })
    }

    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let permit = self.free.clone().try_acquire_owned().ok()?;
        self.peak.fetch_max(self.open(), Ordering::Relaxed);
        Some(Slot { permit: Some(permit), slots: self.clone() })
    }

    fn open(&self) -> usize {
        self.max - self.free.available_permits()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let slots = &self.slots;
        let open = slots.open();
        let peak = slots.peak.load(Ordering::Relaxed);
        // Once three quarters of a crowd have gone: a few trims per crowd (10,000 connections
        // going: four), not one per close.
        if peak >= CROWD && open <= peak / 4 {
            slots.peak.store(open, Ordering::Relaxed);
            give_back_free_memory();
        }
    }
}

fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heap; it takes the
    // allocator's lock like any malloc call.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_come_back_and_a_gone_crowd_resets_the_peak() {
        let slots = Slots::new(2 * CROWD);
        let mut held: Vec<Slot> = (0..2 * CROWD).map(|_| slots.try_take().unwrap()).collect();
        assert!(slots.try_take().is_none(), "all taken");
        assert_eq!(slots.peak.load(Ordering::Relaxed), 2 * CROWD);
        held.truncate(CROWD);
        assert_eq!(slots.peak.load(Ordering::Relaxed), 2 * CROWD, "half gone: no trim yet");
        held.truncate(CROWD / 2);
        assert_eq!(slots.peak.load(Ordering::Relaxed), CROWD / 2, "three quarters gone: trimmed once");
        held.clear();
        assert_eq!(slots.open(), 0);
        assert!(slots.try_take().is_some());
    }
}
