//! Connection slots whose number a reload may change. A semaphore grows at
//! once (permits added); it shrinks by forgetting permits as they are free,
//! so connections already open are never cut by a smaller bound.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// At most `size` connections at once; `resize` changes `size`.
#[derive(Debug)]
pub struct ConnectionSlots {
    semaphore: Arc<Semaphore>,
    /// (size asked for, permits still to forget to get there).
    state: Mutex<(usize, usize)>,
}

impl ConnectionSlots {
    /// `size` slots.
    pub fn new(size: usize) -> ConnectionSlots {
        ConnectionSlots {
            semaphore: Arc::new(Semaphore::new(size)),
            state: Mutex::new((size, 0)),
        }
    }

    /// From now on at most `size` at once (those over it stay until they end).
    pub fn resize(&self, size: usize) {
        let mut state = self.state.lock();
        let (current, owed) = &mut *state;
        if size > *current {
            let grow = size - *current;
            let cancelled = grow.min(*owed);
            *owed -= cancelled;
            self.semaphore.add_permits(grow - cancelled);
        } else {
            *owed += *current - size;
        }
        *current = size;
        *owed -= self.semaphore.forget_permits(*owed);
    }

    /// The bound in force.
    pub fn size(&self) -> usize {
        self.state.lock().0
    }

    /// A slot if one is free now, with at most `size` taken from now on
    /// (the bound a reload may have changed).
    pub fn try_acquire(&self, size: usize) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.resize(size);
        self.semaphore.clone().try_acquire_owned()
    }

    /// A slot, waiting for one to be freed.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.collect_owed();
        self.semaphore.clone().acquire_owned().await.ok()
    }

    /// Forgets the permits a shrink is still owed, as far as they are free.
    fn collect_owed(&self) {
        let mut state = self.state.lock();
        if state.1 > 0 {
            state.1 -= self.semaphore.forget_permits(state.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_at_once_and_shrinks_as_slots_free() {
        let slots = ConnectionSlots::new(2);
        let a = slots.try_acquire(2).expect("first");
        let b = slots.try_acquire(2).expect("second");
        assert!(slots.try_acquire(2).is_err());
        let c = slots.try_acquire(3).expect("grown");
        slots.resize(1);
        assert_eq!(slots.size(), 1);
        drop((a, b));
        // Two freed, both owed to the shrink: still full with one open.
        assert!(slots.try_acquire(1).is_err());
        drop(c);
        let d = slots.try_acquire(1).expect("one slot left");
        assert!(slots.try_acquire(1).is_err());
        drop(d);
        let _e = slots.try_acquire(2).expect("regrown");
        let _f = slots.try_acquire(2).expect("regrown");
        assert!(slots.try_acquire(2).is_err());
    }
}
