//! Single-threaded wake-ups for a shard: a one-waiter notification and a shard-wide broadcast.
//!
//! Both live on one shard (`!Send`), so plain `Cell`s suffice and nothing locks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::task::{Poll, Waker};

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

/// A latch any number of tasks wait on (shutdown, drain deadline).
#[derive(Default)]
pub struct Broadcast {
    set: Cell<bool>,
    next: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl Broadcast {
    /// Sets the latch and wakes every waiter.
    pub fn fire(&self) {
        self.set.set(true);
        for (_, w) in self.waiters.borrow_mut().drain() {
            w.wake();
        }
    }

    /// Whether the latch is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the latch is set; a dropped waiter leaves nothing behind.
    pub async fn wait(&self) {
        let id = self.next.get();
        self.next.set(id + 1);
        let _guard = Deregister(self, id);
        poll_fn(|cx| {
            if self.set.get() {
                return Poll::Ready(());
            }
            // A session's futures are polled together on every wake-up: only touch the map
            // when the waker actually changed.
            let mut waiters = self.waiters.borrow_mut();
            match waiters.get_mut(&id) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => w.clone_from(cx.waker()),
                None => {
                    waiters.insert(id, cx.waker().clone());
                }
            }
            Poll::Pending
        })
        .await
    }
}

struct Deregister<'a>(&'a Broadcast, u64);

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        self.0.waiters.borrow_mut().remove(&self.1);
    }
}

/// A wake-up that can fire any number of times (a change every waiter must look at, such as a
/// new revocation set). Waiters see each firing after they started waiting.
#[derive(Default)]
pub struct Pulse {
    generation: Cell<u64>,
    next: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl Pulse {
    /// Wakes every waiter.
    pub fn fire(&self) {
        self.generation.set(self.generation.get() + 1);
        for (_, w) in self.waiters.borrow_mut().drain() {
            w.wake();
        }
    }

    /// Resolves at the next firing; a dropped waiter leaves nothing behind.
    pub async fn next(&self) {
        let start = self.generation.get();
        let id = self.next.get();
        self.next.set(id + 1);
        let _guard = DeregisterPulse(self, id);
        poll_fn(|cx| {
            if self.generation.get() != start {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            match waiters.get_mut(&id) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => w.clone_from(cx.waker()),
                None => {
                    waiters.insert(id, cx.waker().clone());
                }
            }
            Poll::Pending
        })
        .await
    }
}

struct DeregisterPulse<'a>(&'a Pulse, u64);

impl Drop for DeregisterPulse<'_> {
    fn drop(&mut self) {
        self.0.waiters.borrow_mut().remove(&self.1);
    }
}
