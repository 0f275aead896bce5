//! A single-thread async gate: one holder at a time, the others wait without polling. The
//! runtime has no local mutex, and a shard's tasks never cross threads, so cells suffice.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Admits one holder at a time.
#[derive(Default)]
pub struct Gate {
    held: Cell<bool>,
    waiting: RefCell<Vec<Waker>>,
}

impl Gate {
    /// Waits until the gate is free and takes it; it is released when the guard drops.
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire { gate: self }
    }
}

/// The future returned by [`Gate::acquire`].
pub struct Acquire<'a> {
    gate: &'a Gate,
}

impl<'a> Future for Acquire<'a> {
    type Output = Turn<'a>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Turn<'a>> {
        let gate = self.gate;
        if gate.held.replace(true) {
            gate.waiting.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(Turn { gate })
        }
    }
}

/// Holding the gate.
pub struct Turn<'a> {
    gate: &'a Gate,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.gate.held.set(false);
        // Wake every waiter rather than one: a waiter may have been cancelled (its lookup timed
        // out), and a wake-up handed only to it would be lost. The losers simply wait again.
        let waiting = std::mem::take(&mut *self.gate.waiting.borrow_mut());
        for w in waiting {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_holder_at_a_time_and_cancelled_waiters_do_not_block_others() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let gate = Rc::new(Gate::default());
            let log = Rc::new(RefCell::new(Vec::new()));
            let first = gate.acquire().await;
            // A waiter that gives up must not strand the others.
            let gave_up = monoio::time::timeout(Duration::from_millis(10), gate.acquire()).await;
            assert!(gave_up.is_err());
            let mut tasks = Vec::new();
            for i in 0..3 {
                let (gate, log) = (gate.clone(), log.clone());
                tasks.push(monoio::spawn(async move {
                    let _turn = gate.acquire().await;
                    log.borrow_mut().push(format!("in {i}"));
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    log.borrow_mut().push(format!("out {i}"));
                }));
            }
            monoio::time::sleep(Duration::from_millis(20)).await;
            assert!(log.borrow().is_empty(), "entered while held");
            drop(first);
            for t in tasks {
                t.await;
            }
            let log = log.borrow();
            assert_eq!(log.len(), 6);
            for pair in log.chunks(2) {
                assert_eq!(pair[0].replace("in", "out"), pair[1], "overlap: {log:?}");
            }
        });
    }
}
