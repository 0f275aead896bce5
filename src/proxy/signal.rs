//! Single-threaded wake-ups for a shard: a one-waiter notification and a shard-wide broadcast.
//!
//! Both live on one shard (`!Send`), so plain `Cell`s suffice and nothing locks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

/// A latch one task waits on and any task on the shard can set.
#[derive(Default)]
pub struct Notify {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Sets the latch and wakes the waiter.
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Whether the latch is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the latch is set. Only one task may wait at a time.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.get() {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// The wakers of the tasks waiting on one signal, each under its own id; a waiter that goes
/// away removes itself.
#[derive(Default)]
struct Waiters {
    next: Cell<u64>,
    map: RefCell<HashMap<u64, Waker>>,
}

impl Waiters {
    /// A fresh id for a new waiter.
    fn id(&self) -> u64 {
        let id = self.next.get();
        self.next.set(id + 1);
        id
    }

    /// Keeps `cx`'s waker for `id`. A session's futures are polled together on every wake-up:
    /// the map is only touched when the waker actually changed.
    fn register(&self, id: u64, cx: &Context<'_>) {
        let mut map = self.map.borrow_mut();
        match map.get_mut(&id) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => {
                map.insert(id, cx.waker().clone());
            }
        }
    }

    fn wake_all(&self) {
        for (_, w) in self.map.borrow_mut().drain() {
            w.wake();
        }
    }
}

/// Removes a waiter's waker when its future is dropped.
struct Deregister<'a>(&'a Waiters, u64);

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        self.0.map.borrow_mut().remove(&self.1);
    }
}

/// A latch any number of tasks wait on (shutdown, drain deadline).
#[derive(Default)]
pub struct Broadcast {
    set: Cell<bool>,
    waiters: Waiters,
}

impl Broadcast {
    /// Sets the latch and wakes every waiter.
    pub fn fire(&self) {
        self.set.set(true);
        self.waiters.wake_all();
    }

    /// Whether the latch is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the latch is set; a dropped waiter leaves nothing behind.
    pub async fn wait(&self) {
        let id = self.waiters.id();
        let _guard = Deregister(&self.waiters, id);
        poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            self.waiters.register(id, cx);
            Poll::Pending
        })
        .await
    }
}

/// A wake-up that can fire any number of times (a change every waiter must look at, such as a
/// new revocation set). Waiters see each firing after they started waiting.
#[derive(Default)]
pub struct Pulse {
    generation: Cell<u64>,
    waiters: Waiters,
}

impl Pulse {
    /// Wakes every waiter.
    pub fn fire(&self) {
        self.generation.set(self.generation.get() + 1);
        self.waiters.wake_all();
    }

    /// Resolves at the next firing; a dropped waiter leaves nothing behind.
    pub async fn next(&self) {
        let start = self.generation.get();
        let id = self.waiters.id();
        let _guard = Deregister(&self.waiters, id);
        poll_fn(|cx| {
            if self.generation.get() != start {
                return Poll::Ready(());
            }
            self.waiters.register(id, cx);
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    fn poll(f: std::pin::Pin<&mut impl std::future::Future<Output = ()>>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        f.poll(&mut cx).is_ready()
    }

    #[test]
    fn a_pulse_wakes_each_waiter_once_per_firing_and_forgets_dropped_ones() {
        let pulse = Pulse::default();
        {
            let mut first = pin!(pulse.next());
            assert!(!poll(first.as_mut()));
            let mut second = pin!(pulse.next());
            assert!(!poll(second.as_mut()));
            assert_eq!(pulse.waiters.map.borrow().len(), 2);
            pulse.fire();
            assert!(poll(first.as_mut()) && poll(second.as_mut()));
        }
        assert!(pulse.waiters.map.borrow().is_empty());
        // A waiter that starts after a firing waits for the next one.
        let mut third = pin!(pulse.next());
        assert!(!poll(third.as_mut()));
        pulse.fire();
        assert!(poll(third.as_mut()));
    }

    #[test]
    fn a_broadcast_stays_set() {
        let b = Broadcast::default();
        let mut w = pin!(b.wait());
        assert!(!poll(w.as_mut()));
        b.fire();
        assert!(poll(w.as_mut()));
        assert!(poll(pin!(b.wait()).as_mut()));
        assert!(b.waiters.map.borrow().is_empty());
    }
}
