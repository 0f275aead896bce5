//! The `sluice-recorder` thread: takes batches off the queue, encodes them as records,
//! appends them to the current segment in groups (one write per group), appends an index line
//! per session start, and on every tick syncs the segment and then the index.
//!
//! A group that fails to write is cut back off the segment (so it holds no half record and no
//! duplicate), the segment is closed, and the group is retried in a new one after a pause;
//! after the last retry its batches are counted as lost and logged as an error. Meanwhile the
//! queue fills, which is what makes sessions wait or fail: the recorder never drops silently.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{error, warn};

use super::format::{encode_item, write_header, Entry, HEADER_LEN};
use super::index::{self, IndexEntry, IndexFile};
use super::segment::{self, SegmentName};
use super::{Batch, Item, RecordCounters};
use crate::config::RecordingSection;

/// What goes through the queue.
pub(super) enum Msg {
    Batch(Batch),
    /// Write what is queued, sync and stop.
    Shutdown,
    /// Tests: acknowledge, then stop taking batches until `gate`'s sender is dropped.
    #[cfg(test)]
    Pause {
        ack: std::sync::mpsc::SyncSender<()>,
        gate: Receiver<()>,
    },
    /// Tests: the next `n` segment writes fail.
    #[cfg(test)]
    FailWrites(u32),
}

/// Counters shared by the callers and the writer.
#[derive(Default)]
pub(super) struct Shared {
    pub batches: AtomicU64,
    pub bytes: AtomicU64,
    pub refused: AtomicU64,
    pub blocked: AtomicU64,
    pub write_errors: AtomicU64,
    pub lost: AtomicU64,
    /// Batches in the queue: raised by a caller before it sends, lowered by the writer.
    pub queued: AtomicU64,
}

impl Shared {
    pub fn snapshot(&self) -> RecordCounters {
        RecordCounters {
            batches: self.batches.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

/// A group is written once it reaches this size, or when the queue is empty.
const GROUP_BYTES: usize = 256 * 1024;
/// Pauses before each retry of a failed group: a group gets one attempt more than pauses.
#[cfg(not(test))]
const RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
];
#[cfg(test)]
const RETRY_PAUSES: [Duration; 3] = [Duration::from_millis(1); 3];
/// How often expired segments are looked for, besides start and rotation.
const RETENTION_CHECK: Duration = Duration::from_secs(600);
/// How long the writer sleeps when it found the queue empty.
const NAP: Duration = Duration::from_millis(2);

/// The recording directory as the writer holds it.
pub(super) struct Store {
    dir: PathBuf,
    segment_bytes: u64,
    retention: Duration,
    current: Option<OpenSegment>,
    next_seq: u64,
    index: Option<IndexFile>,
    /// Failures of housekeeping (syncing a closed segment, deleting expired ones) that did
    /// not stop a write, for the writer to count and report.
    errors: Vec<(&'static str, io::Error)>,
    #[cfg(test)]
    fail_writes: u32,
}

struct OpenSegment {
    name: SegmentName,
    file: File,
    size: u64,
    dirty: bool,
}

impl Store {
    /// Creates the directory if needed, deletes expired segments, drops index lines of
    /// segments that are gone (and any torn last line), and opens the index for appending.
    pub fn open(section: &RecordingSection) -> io::Result<Store> {
        std::fs::create_dir_all(&section.dir)?;
        let existing = segment::list(&section.dir)?;
        let mut store = Store {
            dir: section.dir.clone(),
            segment_bytes: section.segment_bytes,
            retention: section.retention,
            current: None,
            next_seq: existing.iter().map(|s| s.seq + 1).max().unwrap_or(0),
            index: None,
            errors: Vec::new(),
            #[cfg(test)]
            fail_writes: 0,
        };
        store.expire()?;
        store.rewrite_index()?;
        store.index = Some(IndexFile::open(&store.dir)?);
        Ok(store)
    }

    /// Appends `group` to the current segment, rotating first when it would pass the size
    /// limit (a group larger than the limit gets a segment of its own). Returns the segment
    /// and the offset the group starts at. On failure the segment is cut back and closed.
    fn write(&mut self, group: &[u8]) -> io::Result<(String, u64)> {
        let len = group.len() as u64;
        if let Some(cur) = &self.current {
            if cur.size > HEADER_LEN as u64 && cur.size + len > self.segment_bytes {
                self.rotate();
            }
        }
        if self.current.is_none() {
            self.current = Some(self.open_segment()?);
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        let base = cur.size;
        #[cfg(test)]
        let result = if self.fail_writes > 0 {
            self.fail_writes -= 1;
            // Half the group reaches the file, as a full disk may allow.
            let _ = cur.file.write_all(&group[..group.len() / 2]);
            Err(io::Error::other("injected write failure"))
        } else {
            cur.file.write_all(group)
        };
        #[cfg(not(test))]
        let result = cur.file.write_all(group);
        match result {
            Ok(()) => {
                cur.size += len;
                cur.dirty = true;
                Ok((cur.name.file.clone(), base))
            }
            Err(e) => {
                // No half record stays behind: a retry goes to a new segment, and a reader
                // would otherwise meet the group's complete first records twice.
                let _ = cur.file.set_len(base);
                let _ = cur.file.sync_data();
                self.current = None;
                Err(e)
            }
        }
    }

    /// Closes the current segment (synced) and deletes expired ones; the next write opens a
    /// new segment whatever fails here.
    fn rotate(&mut self) {
        let Some(cur) = self.current.take() else {
            return;
        };
        if cur.dirty {
            if let Err(e) = cur.file.sync_data() {
                self.errors.push(("syncing a closed segment", e));
            }
        }
        if let Err(e) = self.expire() {
            self.errors.push(("deleting expired segments", e));
        }
    }

    fn open_segment(&mut self) -> io::Result<OpenSegment> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = SegmentName::new(secs, self.next_seq);
        self.next_seq += 1;
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.dir.join(&name.file))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        write_header(&mut header);
        file.write_all(&header)?;
        index::sync_dir(&self.dir);
        Ok(OpenSegment {
            name,
            file,
            size: HEADER_LEN as u64,
            dirty: true,
        })
    }

    /// Deletes segments last written before `now - retention` (never the open one), then
    /// the index lines that point into them.
    fn expire(&mut self) -> io::Result<()> {
        let Some(cutoff) = SystemTime::now().checked_sub(self.retention) else {
            return Ok(());
        };
        let mut removed = 0;
        for seg in segment::list(&self.dir)? {
            if self.current.as_ref().is_some_and(|c| c.name == seg) {
                continue;
            }
            let path = self.dir.join(&seg.file);
            let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if modified < cutoff {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if removed > 0 {
            self.rewrite_index()?;
        }
        Ok(())
    }

    /// Rewrites the index without the lines of missing segments, and reopens it.
    fn rewrite_index(&mut self) -> io::Result<()> {
        if let Some(index) = &mut self.index {
            index.sync()?;
        }
        self.index = None;
        let dir = self.dir.clone();
        index::rewrite(&self.dir, |e| {
            segment::SegmentName::parse(&e.segment).is_some() && dir.join(&e.segment).exists()
        })?;
        self.index = Some(IndexFile::open(&self.dir)?);
        Ok(())
    }

    fn append_index(&mut self, e: &IndexEntry) -> io::Result<()> {
        match &mut self.index {
            Some(index) => index.append(e),
            None => {
                let mut index = IndexFile::open(&self.dir)?;
                let result = index.append(e);
                self.index = Some(index);
                result
            }
        }
    }

    /// The durability point: segment first, so the index never names a record that a crash
    /// could lose.
    fn sync(&mut self) -> io::Result<()> {
        if let Some(cur) = &mut self.current {
            if cur.dirty {
                cur.file.sync_data()?;
                cur.dirty = false;
            }
        }
        match &mut self.index {
            Some(index) => index.sync(),
            None => Ok(()),
        }
    }
}

/// Encoded batches not yet written, and the sessions that start in them.
#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    /// Index entries with the offset in `buf`; the segment is filled in once written.
    starts: Vec<IndexEntry>,
    batches: u64,
}

impl Group {
    fn add(&mut self, batch: &Batch) {
        for item in &batch.items {
            let at = encode_item(batch.session, item, &mut self.buf);
            if let Item::Start { .. } = item {
                if let Entry::Start(start) = Entry::from_item(item) {
                    self.starts
                        .push(IndexEntry::new(batch.session, "", at as u64, &start));
                }
            }
        }
        self.batches += 1;
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.starts.clear();
        self.batches = 0;
    }
}

/// Failed writes, warned about at most once per period.
#[derive(Default)]
struct Complaint(crate::offcore::Complaint);

impl Complaint {
    fn error(&mut self, what: &str, e: &io::Error) {
        if let Some(unreported) = self.0.failed(Instant::now()) {
            warn!(
                error = %e,
                errors_since_last_warning = unreported,
                "recording: {what} failed"
            );
        }
    }
}

pub(super) struct Writer {
    rx: Receiver<Msg>,
    store: Store,
    shared: Arc<Shared>,
    interval: Duration,
    group: Group,
    complaint: Complaint,
}

impl Writer {
    pub fn new(rx: Receiver<Msg>, store: Store, shared: Arc<Shared>, interval: Duration) -> Self {
        Writer {
            rx,
            store,
            shared,
            interval,
            group: Group::default(),
            complaint: Complaint::default(),
        }
    }

    /// The thread's body; returns once `Shutdown` arrives or every sender is gone, after a
    /// last write and sync.
    pub fn run(mut self) {
        let mut next_tick = Instant::now() + self.interval;
        let mut next_retention = Instant::now() + RETENTION_CHECK;
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                next_tick = now + self.interval;
            }
            if now >= next_retention {
                if let Err(e) = self.store.expire() {
                    self.failed("deleting expired segments", &e);
                }
                next_retention = now + RETENTION_CHECK;
            }
            // Nap rather than block on the queue: a sender then never has a sleeping receiver
            // to wake, so handing over a batch costs the shard no system call.
            let msg = match self.rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty) => {
                    std::thread::sleep(NAP.min(next_tick.saturating_duration_since(now)));
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            };
            if !self.take(msg) {
                break;
            }
            // Drain what is already queued into one group, then write it.
            let mut stop = false;
            while self.group.buf.len() < GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(msg) => {
                        if !self.take(msg) {
                            stop = true;
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            self.flush_group();
            if stop {
                break;
            }
        }
        self.flush_group();
        self.tick();
    }

    /// Handles one message; `false` to stop (after writing what is queued behind it).
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Batch(b) => {
                self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                self.add(&b);
                true
            }
            Msg::Shutdown => {
                // Senders may have queued more behind the request: write those too.
                while let Ok(msg) = self.rx.try_recv() {
                    if let Msg::Batch(b) = msg {
                        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                        self.add(&b);
                    }
                }
                false
            }
            #[cfg(test)]
            Msg::Pause { ack, gate } => {
                self.flush_group();
                let _ = ack.send(());
                let _ = gate.recv();
                true
            }
            #[cfg(test)]
            Msg::FailWrites(n) => {
                self.store.fail_writes = n;
                true
            }
        }
    }

    fn add(&mut self, batch: &Batch) {
        self.group.add(batch);
        if self.group.buf.len() >= GROUP_BYTES {
            self.flush_group();
        }
    }

    /// Writes the group, retrying in a new segment after a failure; counts it as lost after
    /// the last attempt.
    fn flush_group(&mut self) {
        if self.group.buf.is_empty() {
            self.group.clear();
            return;
        }
        let mut attempt = 0;
        loop {
            match self.store.write(&self.group.buf) {
                Ok((segment, base)) => {
                    self.written(&segment, base);
                    self.housekeeping();
                    return;
                }
                Err(e) => {
                    self.failed("writing a segment", &e);
                    let Some(pause) = RETRY_PAUSES.get(attempt) else {
                        break;
                    };
                    std::thread::sleep(*pause);
                    attempt += 1;
                }
            }
        }
        self.shared
            .lost
            .fetch_add(self.group.batches, Ordering::Relaxed);
        error!(
            batches = self.group.batches,
            bytes = self.group.buf.len(),
            dir = %self.store.dir.display(),
            "recording: batches LOST: they could not be written after {} attempts",
            RETRY_PAUSES.len() + 1
        );
        self.group.clear();
    }

    fn written(&mut self, segment: &str, base: u64) {
        let starts = std::mem::take(&mut self.group.starts);
        for mut e in starts {
            e.segment = segment.to_owned();
            e.offset += base;
            if let Err(err) = self.store.append_index(&e) {
                self.failed("appending to the index", &err);
            }
        }
        self.shared
            .batches
            .fetch_add(self.group.batches, Ordering::Relaxed);
        self.shared
            .bytes
            .fetch_add(self.group.buf.len() as u64, Ordering::Relaxed);
        self.group.clear();
    }

    fn tick(&mut self) {
        if let Err(e) = self.store.sync() {
            self.failed("syncing", &e);
        }
    }

    fn failed(&mut self, what: &str, e: &io::Error) {
        self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
        self.complaint.error(what, e);
        for (what, e) in std::mem::take(&mut self.store.errors) {
            self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
            self.complaint.error(what, &e);
        }
    }

    /// Counts and reports the store's housekeeping failures.
    fn housekeeping(&mut self) {
        for (what, e) in std::mem::take(&mut self.store.errors) {
            self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
            self.complaint.error(what, &e);
        }
    }
}
