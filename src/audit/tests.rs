//! The audit trail end to end: a real writer thread, real files, real sockets.

use std::cell::Cell;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::file::AuditFile;
use super::syslog::Syslog;
use super::*;

fn section(dir: &Path) -> AuditSection {
    AuditSection {
        file: Some(dir.join("audit.jsonl")),
        // Long enough that only shutdown flushes, unless a test shortens it.
        flush_interval: Duration::from_secs(60),
        queue_capacity: 16,
        ..AuditSection::default()
    }
}

fn event(session: u64) -> Event {
    let mut e = Event::new(Kind::Statement);
    e.session = Some(session);
    e.resource = Some("orders".into());
    e.fingerprint = Some("select * from orders where id = ?".into());
    e.decision = Some("allow");
    e
}

/// The `session` of every line of `path`, in order; none if the file does not exist.
fn sessions(path: &Path) -> Vec<u64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["session"].as_u64().unwrap()
        })
        .collect()
}

fn numbered(path: &Path, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// Every event in the rotated files, oldest first, then the current file.
fn all_sessions(path: &Path) -> (Vec<u64>, usize) {
    let mut rotated = 0;
    while numbered(path, rotated + 1).exists() {
        rotated += 1;
    }
    let mut all = Vec::new();
    for i in (1..=rotated).rev() {
        all.extend(sessions(&numbered(path, i)));
    }
    all.extend(sessions(path));
    (all, rotated)
}

/// Polls `done` every 10 ms for up to 10 s; the deadline only bounds a failing test.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn shutdown_writes_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let s = AuditSection {
        queue_capacity: 1024,
        ..section(dir.path())
    };
    let audit = Audit::start(&s).unwrap();
    for i in 0..500 {
        audit.try_record(event(i)).unwrap();
    }
    audit.shutdown();
    assert_eq!(
        sessions(&dir.path().join("audit.jsonl")),
        (0..500).collect::<Vec<_>>()
    );
    let c = audit.counters();
    assert_eq!((c.written, c.dropped, c.refused, c.queued), (500, 0, 0, 0));
    // A second shutdown is harmless; after it, block mode refuses events.
    audit.shutdown();
    assert!(matches!(
        audit.try_record(event(500)),
        Err(RecordError::Refused(Refused::Closed))
    ));
}

#[test]
fn the_tick_puts_events_on_disk_while_the_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = AuditSection {
        flush_interval: Duration::from_millis(20),
        ..section(dir.path())
    };
    let audit = Audit::start(&s).unwrap();
    for i in 0..10 {
        audit.try_record(event(i)).unwrap();
    }
    let path = dir.path().join("audit.jsonl");
    assert!(
        eventually(|| sessions(&path).len() == 10),
        "events not flushed: {:?}",
        sessions(&path)
    );
    assert_eq!(sessions(&path), (0..10).collect::<Vec<_>>());
    audit.shutdown();
}

#[test]
fn rotation_neither_loses_nor_duplicates_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let s = AuditSection {
        max_file_bytes: 2048,
        keep_files: 1000,
        queue_capacity: 4096,
        ..section(dir.path())
    };
    let audit = Audit::start(&s).unwrap();
    for i in 0..1000 {
        audit.try_record(event(i)).unwrap();
    }
    audit.shutdown();
    let (all, rotated) = all_sessions(&path);
    assert!(rotated > 10, "only {rotated} rotations");
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    for i in 1..=rotated {
        let len = std::fs::metadata(numbered(&path, i)).unwrap().len();
        assert!(len <= 2048 && len > 1024, "file .{i} has {len} bytes");
    }
}

#[test]
fn rotation_keeps_only_keep_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let s = AuditSection {
        max_file_bytes: 2048,
        keep_files: 3,
        queue_capacity: 4096,
        ..section(dir.path())
    };
    let audit = Audit::start(&s).unwrap();
    for i in 0..1000 {
        audit.try_record(event(i)).unwrap();
    }
    audit.shutdown();
    let (all, rotated) = all_sessions(&path);
    assert_eq!(rotated, 3);
    assert!(!numbered(&path, 4).exists());
    // The newest events, contiguous, ending with the last one.
    let first = all[0];
    assert!(first > 0);
    assert_eq!(all, (first..1000).collect::<Vec<_>>());
}

#[test]
fn drop_mode_counts_what_a_stalled_writer_could_not_take() {
    let dir = tempfile::tempdir().unwrap();
    let s = AuditSection {
        overflow: Overflow::Drop,
        ..section(dir.path())
    };
    let audit = Audit::start(&s).unwrap();
    let gate = audit.pause_writer();
    for i in 0..26 {
        audit.try_record(event(i)).unwrap();
    }
    let c = audit.counters();
    assert_eq!((c.dropped, c.queued, c.refused), (10, 16, 0));
    drop(gate);
    audit.shutdown();
    assert_eq!(
        sessions(&dir.path().join("audit.jsonl")),
        (0..16).collect::<Vec<_>>()
    );
    assert_eq!(audit.counters().written, 16);
    // After shutdown, drop mode drops.
    audit.try_record(event(99)).unwrap();
    assert_eq!(audit.counters().dropped, 11);
}

#[test]
fn fail_mode_refuses_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let s = AuditSection {
        overflow: Overflow::Fail,
        ..section(dir.path())
    };
    let audit = Audit::start(&s).unwrap();
    let gate = audit.pause_writer();
    for i in 0..16 {
        audit.try_record(event(i)).unwrap();
    }
    assert!(matches!(
        audit.try_record(event(16)),
        Err(RecordError::Refused(Refused::Full))
    ));
    assert_eq!(audit.counters().refused, 1);
    drop(gate);
    audit.shutdown();
    assert_eq!(
        sessions(&dir.path().join("audit.jsonl")),
        (0..16).collect::<Vec<_>>()
    );
    assert!(matches!(
        audit.try_record(event(17)),
        Err(RecordError::Refused(Refused::Closed))
    ));
    assert_eq!(audit.counters().refused, 2);
}

#[test]
fn block_mode_hands_the_event_back_and_record_waits_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::start(&section(dir.path())).unwrap();
    let gate = audit.pause_writer();
    for i in 0..16 {
        audit.try_record(event(i)).unwrap();
    }
    match audit.try_record(event(16)) {
        Err(RecordError::WouldBlock(e)) => assert_eq!(e.session, Some(16)),
        other => panic!("expected WouldBlock, got {other:?}"),
    }
    assert_eq!(audit.counters().blocked, 1);

    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async {
        let done = Rc::new(Cell::new(false));
        let task = monoio::spawn({
            let (audit, done) = (audit.clone(), done.clone());
            async move {
                let result = audit.record(event(16)).await;
                done.set(true);
                result
            }
        });
        // The writer is paused and the queue full: the task cannot finish, however long
        // this takes, while the runtime keeps running other tasks (this one).
        monoio::time::sleep(Duration::from_millis(30)).await;
        assert!(!done.get());
        drop(gate);
        assert_eq!(task.await, Ok(()));
    });
    audit.shutdown();
    assert_eq!(
        sessions(&dir.path().join("audit.jsonl")),
        (0..17).collect::<Vec<_>>()
    );
    let c = audit.counters();
    assert_eq!((c.blocked, c.dropped, c.refused), (2, 0, 0));
}

#[test]
fn a_disabled_trail_records_nothing() {
    let audit = Audit::disabled();
    assert!(!audit.enabled());
    audit.try_record(event(1)).unwrap();
    audit.shutdown();
    assert_eq!(audit.counters(), AuditCounters::default());
}

#[test]
fn start_reports_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let none = AuditSection {
        file: None,
        ..section(dir.path())
    };
    assert!(matches!(Audit::start(&none), Err(AuditError::NoOutput)));
    let missing = AuditSection {
        file: Some(dir.path().join("nope").join("audit.jsonl")),
        ..section(dir.path())
    };
    let err = Audit::start(&missing).unwrap_err().to_string();
    assert!(err.contains("nope/audit.jsonl"), "{err}");
}

#[test]
fn stdout_alone_is_an_output() {
    let s = AuditSection {
        file: None,
        stdout: true,
        ..AuditSection::default()
    };
    let audit = Audit::start(&s).unwrap();
    assert!(audit.enabled());
    audit.try_record(Event::new(Kind::Connection)).unwrap();
    audit.shutdown();
    let c = audit.counters();
    assert_eq!((c.written, c.write_errors), (1, 0));
}

/// Syslog and the file together; when the syslog daemon goes away, its failures are counted
/// and the file still gets every event.
#[test]
fn a_failing_output_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let socket = dir.path().join("log");
    let daemon = UnixDatagram::bind(&socket).unwrap();
    let outputs = Outputs {
        file: Some(AuditFile::open(&path, 1 << 20, 2).unwrap()),
        stdout: None,
        syslog: Some(Syslog::connect(&socket).unwrap()),
    };
    let audit = Audit::spawn(outputs, 64, Overflow::Block, Duration::from_secs(60)).unwrap();
    audit.try_record(event(0)).unwrap();
    assert!(eventually(|| audit.counters().written == 1));
    let mut buf = [0u8; 1024];
    let n = daemon.recv(&mut buf).unwrap();
    let datagram = std::str::from_utf8(&buf[..n]).unwrap();
    let json = datagram.split_once("]: ").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["session"], 0);

    drop(daemon);
    std::fs::remove_file(&socket).unwrap();
    for i in 1..5 {
        audit.try_record(event(i)).unwrap();
    }
    audit.shutdown();
    assert_eq!(sessions(&path), (0..5).collect::<Vec<_>>());
    let c = audit.counters();
    // Four events missed syslog, and the last tick could not reconnect.
    assert_eq!((c.written, c.write_errors), (5, 5));
}

/// The queue allocates `queue_capacity` slots of one message each at start (the default
/// 65,536 slots take about 14 MB, 208 bytes each): an event must not grow unnoticed.
#[test]
fn a_queue_slot_stays_small() {
    let size = std::mem::size_of::<super::writer::Msg>();
    assert!(size <= 224, "a queue slot takes {size} bytes");
}

#[test]
fn the_handle_is_shared_across_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Audit>();
    fn sent<T: Send + 'static>() {}
    sent::<Event>();
}
