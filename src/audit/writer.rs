//! The writer thread: takes events off the queue, serializes each once, hands the line to
//! every output, and on each tick of the flush interval pushes the file to the disk.
//!
//! The tick is the durability promise: a line written before a tick is in the file and
//! synced (`fdatasync`) once that tick has run, so a SIGKILL, or a crash of the machine, loses
//! at most the events of the last interval. Output failures are counted and logged (at most
//! one log line per output every ten seconds) and never stop the other outputs.

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use tracing::warn;

use super::event::Event;
use super::file::AuditFile;
use super::json::write_line;
use super::syslog::Syslog;

/// What goes through the queue.
pub(super) enum Msg {
    /// Inline rather than boxed: a box is one more allocation made on a shard and freed on
    /// this thread, and such frees contend on the allocator's lock with the shard's next
    /// allocations (`benches/audit.rs`: `try_record` took about 650 ns boxed, 380 ns inline).
    /// The price is memory: the channel allocates every slot up front, one `Msg` each.
    Event(Event),
    /// Write what is queued, flush, sync and stop.
    Shutdown,
    /// Tests: acknowledge, then stop taking events until `gate`'s sender is dropped.
    #[cfg(test)]
    Pause {
        ack: std::sync::mpsc::SyncSender<()>,
        gate: Receiver<()>,
    },
}

/// Counters shared by the callers and the writer.
#[derive(Default)]
pub(super) struct Shared {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub refused: AtomicU64,
    pub blocked: AtomicU64,
    pub write_errors: AtomicU64,
    /// Events in the queue: raised by a caller before it sends, lowered by the writer.
    pub queued: AtomicU64,
}

/// The outputs the writer feeds.
pub(super) struct Outputs {
    pub file: Option<AuditFile>,
    pub stdout: Option<BufWriter<Stdout>>,
    pub syslog: Option<Syslog>,
}

/// A failing output, warned about at most once per period.
struct Complaint {
    what: &'static str,
    limit: crate::offcore::Complaint,
}

impl Complaint {
    fn new(what: &'static str) -> Complaint {
        Complaint {
            what,
            limit: Default::default(),
        }
    }

    fn error(&mut self, e: &io::Error) {
        if let Some(unreported) = self.limit.failed(Instant::now()) {
            warn!(
                output = self.what,
                error = %e,
                errors_since_last_warning = unreported,
                "audit output failed"
            );
        }
    }
}

pub(super) struct Writer {
    pub rx: Receiver<Msg>,
    pub outputs: Outputs,
    pub shared: std::sync::Arc<Shared>,
    pub interval: Duration,
}

/// How long the writer sleeps when it found the queue empty.
const NAP: Duration = Duration::from_millis(2);

impl Writer {
    /// The thread's body; returns once `Shutdown` arrives or every sender is gone, after a
    /// last flush and sync.
    pub fn run(mut self) {
        let mut complaints = [
            Complaint::new("file"),
            Complaint::new("stdout"),
            Complaint::new("syslog"),
        ];
        let mut scratch = String::with_capacity(32);
        let mut line = Vec::with_capacity(1024);
        let mut next_tick = Instant::now() + self.interval;
        // The writer naps between drains instead of blocking on the queue: a sender then never
        // has a sleeping receiver to wake, so recording an event costs the shard no system
        // call (a blocking receive made every send a futex wake-up, a tenth of a shard's time
        // under load in the in-process profile).
        'run: loop {
            let now = Instant::now();
            if now >= next_tick {
                self.tick(&mut complaints);
                next_tick = now + self.interval;
            }
            let mut drained = false;
            loop {
                match self.rx.try_recv() {
                    Ok(Msg::Event(e)) => {
                        drained = true;
                        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                        self.write(&e, &mut scratch, &mut line, &mut complaints);
                    }
                    Ok(Msg::Shutdown) => {
                        // Senders may have queued more behind the request: write those too.
                        while let Ok(msg) = self.rx.try_recv() {
                            if let Msg::Event(e) = msg {
                                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                                self.write(&e, &mut scratch, &mut line, &mut complaints);
                            }
                        }
                        break 'run;
                    }
                    #[cfg(test)]
                    Ok(Msg::Pause { ack, gate }) => {
                        let _ = ack.send(());
                        let _ = gate.recv();
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'run,
                }
            }
            if !drained {
                let until_tick = next_tick.saturating_duration_since(Instant::now());
                std::thread::sleep(NAP.min(until_tick));
            }
        }
        self.tick(&mut complaints);
    }

    fn write(
        &mut self,
        event: &Event,
        scratch: &mut String,
        line: &mut Vec<u8>,
        complaints: &mut [Complaint; 3],
    ) {
        let shared = &*self.shared;
        line.clear();
        if let Err(e) = write_line(event, scratch, line) {
            // Unreachable with these types (no maps, no non-string keys); counted if not.
            failed(shared, &mut complaints[0], &io::Error::other(e));
            return;
        }
        if let Some(file) = &mut self.outputs.file {
            match file.write_line(line) {
                Ok(None) => {}
                Ok(Some(rotation)) => failed(shared, &mut complaints[0], &rotation),
                Err(e) => failed(shared, &mut complaints[0], &e),
            }
        }
        if let Some(out) = &mut self.outputs.stdout {
            if let Err(e) = out.write_all(line) {
                failed(shared, &mut complaints[1], &e);
            }
        }
        if let Some(syslog) = &mut self.outputs.syslog {
            // A datagram is one message: no newline.
            if let Err(e) = syslog.send(&line[..line.len() - 1]) {
                failed(shared, &mut complaints[2], &e);
            }
        }
        shared.written.fetch_add(1, Ordering::Relaxed);
    }

    fn tick(&mut self, complaints: &mut [Complaint; 3]) {
        let shared = &*self.shared;
        if let Some(file) = &mut self.outputs.file {
            if let Err(e) = file.sync() {
                failed(shared, &mut complaints[0], &e);
            }
        }
        if let Some(out) = &mut self.outputs.stdout {
            if let Err(e) = out.flush() {
                failed(shared, &mut complaints[1], &e);
            }
        }
        if let Some(syslog) = &mut self.outputs.syslog {
            if let Err(e) = syslog.tick() {
                failed(shared, &mut complaints[2], &e);
            }
        }
    }
}

fn failed(shared: &Shared, complaint: &mut Complaint, e: &io::Error) {
    shared.write_errors.fetch_add(1, Ordering::Relaxed);
    complaint.error(e);
}
