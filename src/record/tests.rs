//! The recorder end to end: a real writer thread and real files; the format, torn tails,
//! rotation, retention, the index, overflow, and transcripts of captured sessions.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use super::format::{self, encode_item, read_record, Entry, FormatError, HEADER_LEN};
use super::reader::read_session;
use super::segment::{self, Segment};
use super::transcript::{self, Output};
use super::*;
use crate::codec::pg;
use crate::identity::ChainLink;

fn section(dir: &Path) -> RecordingSection {
    RecordingSection {
        dir: dir.to_owned(),
        segment_bytes: 64 << 20,
        retention: Duration::from_secs(3600),
        // Long enough that only shutdown syncs, unless a test shortens it.
        flush_interval: Duration::from_secs(60),
        max_statement_bytes: 64 << 10,
        queue_capacity: 16,
        overflow: RecordingOverflow::Block,
    }
}

fn identity() -> Arc<Identity> {
    Arc::new(Identity {
        token: "tok-child".into(),
        subject: "report-subagent".into(),
        chain: vec![ChainLink {
            jti: "tok-root".into(),
            name: "ci-nightly".into(),
        }],
        roles: vec!["reader".into()],
        user: Some("report".into()),
    })
}

fn start() -> Item {
    Item::Start {
        time: UNIX_EPOCH + Duration::new(1_795_453_200, 123_456_789),
        identity: identity(),
        resource: "orders".into(),
        client: "127.0.0.1:5555".parse().unwrap(),
        tls: true,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn every_kind() -> Vec<Item> {
    let mut q = BytesMut::new();
    pg::encode_query(&mut q, "select 1");
    vec![
        start(),
        Item::Start {
            time: UNIX_EPOCH - Duration::new(5, 1),
            identity: Arc::new(Identity {
                token: String::new(),
                subject: "ünïcode".into(),
                chain: Vec::new(),
                roles: Vec::new(),
                user: None,
            }),
            resource: "".into(),
            client: "[::1]:6432".parse().unwrap(),
            tls: false,
        },
        Item::FromClient {
            at: ms(1),
            bytes: q.freeze(),
        },
        Item::ToClient {
            at: Duration::from_nanos(1_000_001),
            bytes: Bytes::new(),
        },
        Item::Decision {
            at: ms(2),
            fingerprint: "select ?".into(),
            decision: "allow",
            rule: Some("role.reader.rules.orders.read".into()),
        },
        Item::Decision {
            at: ms(2),
            fingerprint: String::new(),
            decision: "block",
            rule: None,
        },
        Item::Truncated {
            at: ms(3),
            bytes: u64::MAX,
            rows: 7,
        },
        Item::End {
            at: Duration::from_secs(u32::MAX.into()),
            reason: "client closed",
        },
    ]
}

#[test]
fn every_item_kind_round_trips() {
    for item in every_kind() {
        let mut buf = Vec::new();
        encode_item(42, &item, &mut buf);
        let (record, len) = read_record(&Bytes::from(buf.clone())).unwrap();
        assert_eq!(len, buf.len());
        assert_eq!(record.session, 42);
        assert_eq!(record.entry, Entry::from_item(&item), "{item:?}");
    }
}

#[test]
fn a_huge_byte_item_is_split_and_reads_back_whole() {
    let big = Bytes::from(vec![7u8; format::MAX_CHUNK + 10]);
    let mut buf = Vec::new();
    encode_item(
        1,
        &Item::ToClient {
            at: ms(1),
            bytes: big.clone(),
        },
        &mut buf,
    );
    let buf = Bytes::from(buf);
    let (first, n) = read_record(&buf).unwrap();
    let (second, m) = read_record(&buf.slice(n..)).unwrap();
    assert_eq!(n + m, buf.len());
    let mut whole = Vec::new();
    for r in [first, second] {
        let Entry::ToClient { bytes, .. } = r.entry else {
            panic!("not a ToClient")
        };
        whole.extend_from_slice(&bytes);
    }
    assert_eq!(whole, big);
}

#[test]
fn the_checksum_catches_every_flipped_bit() {
    let mut buf = Vec::new();
    encode_item(
        9,
        &Item::Decision {
            at: ms(5),
            fingerprint: "delete from t".into(),
            decision: "block",
            rule: None,
        },
        &mut buf,
    );
    for bit in (format::RECORD_HEADER_LEN * 8)..(buf.len() * 8) {
        let mut bad = buf.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            read_record(&Bytes::from(bad)).unwrap_err(),
            FormatError::Checksum,
            "bit {bit}"
        );
    }
}

/// A segment file holding `items` of session 1.
fn segment_file(path: &Path, items: &[Item]) -> Vec<usize> {
    let mut buf = Vec::new();
    format::write_header(&mut buf);
    let offsets = items.iter().map(|i| encode_item(1, i, &mut buf)).collect();
    std::fs::write(path, &buf).unwrap();
    offsets
}

#[test]
fn a_torn_tail_at_every_byte_keeps_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seg-1-0.rec");
    let items = every_kind();
    let offsets = segment_file(&path, &items);
    let whole = std::fs::read(&path).unwrap();
    let last = *offsets.last().unwrap();
    for cut in last..whole.len() {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let (records, torn) = Segment::read(&path).unwrap().records(None);
        assert_eq!(records.len(), items.len() - 1, "cut at {cut}");
        for ((_, r), item) in records.iter().zip(&items) {
            assert_eq!(r.entry, Entry::from_item(item));
        }
        if cut == last {
            assert_eq!(torn, None);
        } else {
            let torn = torn.expect("a torn tail");
            assert_eq!((torn.offset, torn.error), (last, FormatError::Short));
        }
    }
    // A flipped byte in the last record's payload: a checksum failure.
    let mut bad = whole.clone();
    *bad.last_mut().unwrap() ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    let (records, torn) = Segment::read(&path).unwrap().records(None);
    assert_eq!(records.len(), items.len() - 1);
    assert_eq!(torn.unwrap().error, FormatError::Checksum);
}

#[test]
fn the_reader_warns_about_a_torn_tail_and_continues_with_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("seg-1-0.rec");
    segment_file(
        &first,
        &[
            start(),
            Item::ToClient {
                at: ms(1),
                bytes: Bytes::from_static(b"x"),
            },
        ],
    );
    let whole = std::fs::read(&first).unwrap();
    std::fs::write(&first, &whole[..whole.len() - 1]).unwrap();
    segment_file(
        &dir.path().join("seg-2-1.rec"),
        &[Item::End {
            at: ms(2),
            reason: "done",
        }],
    );
    // No index: the reader scans.
    let rec = read_session(dir.path(), 1).unwrap();
    assert!(rec.start.is_some());
    assert_eq!(rec.entries.len(), 1, "{:?}", rec.entries);
    assert!(rec.ended);
    assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
    assert!(
        rec.warnings[0].contains("seg-1-0.rec"),
        "{}",
        rec.warnings[0]
    );
    assert!(matches!(
        read_session(dir.path(), 2),
        Err(reader::ReadError::NotFound { session: 2, .. })
    ));
}

fn batch(session: u64, items: Vec<Item>) -> Batch {
    Batch { session, items }
}

fn session_items(n: u64) -> Vec<Item> {
    vec![
        start(),
        Item::FromClient {
            at: ms(n),
            bytes: Bytes::from(vec![b'x'; 100]),
        },
        Item::End {
            at: ms(n + 1),
            reason: "client closed",
        },
    ]
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn sessions_round_trip_through_the_writer_and_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::start(&section(dir.path())).unwrap();
    block_on(async {
        for s in 0..20 {
            rec.record(batch(s, session_items(s))).await.unwrap();
        }
    });
    rec.shutdown();
    let c = rec.counters();
    assert_eq!((c.batches, c.lost, c.refused, c.queued), (20, 0, 0, 0));
    let (entries, bad) = index::load(dir.path()).unwrap();
    assert_eq!((entries.len(), bad), (20, 0));
    let e = &entries[7];
    assert_eq!(e.session, 7);
    assert_eq!(
        e.chain.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["ci-nightly", "report-subagent"]
    );
    assert_eq!(e.time, "2026-11-23T17:00:00.123456Z");
    // The index points at the session's first record.
    let data = Bytes::from(std::fs::read(dir.path().join(&e.segment)).unwrap());
    let (r, _) = read_record(&data.slice(e.offset as usize..)).unwrap();
    assert_eq!((r.session, r.entry), (7, Entry::from_item(&start())));
    let back = read_session(dir.path(), 7).unwrap();
    assert!(back.ended && back.warnings.is_empty());
    assert_eq!(back.entries[0], Entry::from_item(&session_items(7)[1]));
}

#[test]
fn segments_rotate_at_the_size_limit_and_a_restart_never_appends() {
    let dir = tempfile::tempdir().unwrap();
    let s = RecordingSection {
        segment_bytes: 600,
        ..section(dir.path())
    };
    let rec = Recorder::start(&s).unwrap();
    block_on(async {
        for s in 0..10 {
            rec.record(batch(s, session_items(s))).await.unwrap();
            // One group per batch, so that every rotation point is exercised.
            while rec.counters().batches <= s {
                monoio::time::sleep(ms(1)).await;
            }
        }
    });
    rec.shutdown();
    let segs = segment::list(dir.path()).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    for seg in &segs {
        let len = std::fs::metadata(dir.path().join(&seg.file)).unwrap().len();
        assert!(len <= 600, "{} has {len} bytes", seg.file);
    }
    for s in 0..10 {
        assert!(read_session(dir.path(), s).unwrap().ended, "session {s}");
    }
    // A second run starts a segment of its own, numbered after the others.
    let before = segs.len();
    let rec = Recorder::start(&s).unwrap();
    block_on(rec.record(batch(99, session_items(99)))).unwrap();
    rec.shutdown();
    let after = segment::list(dir.path()).unwrap();
    assert_eq!(after.len(), before + 1);
    assert!(after.last().unwrap().seq > segs.last().unwrap().seq);
}

#[test]
fn retention_deletes_old_segments_and_their_index_lines() {
    let dir = tempfile::tempdir().unwrap();
    let s = section(dir.path());
    let rec = Recorder::start(&s).unwrap();
    block_on(rec.record(batch(1, session_items(1)))).unwrap();
    rec.shutdown();
    let rec = Recorder::start(&s).unwrap();
    block_on(rec.record(batch(2, session_items(2)))).unwrap();
    rec.shutdown();
    let segs = segment::list(dir.path()).unwrap();
    assert_eq!(segs.len(), 2);
    // Age the first segment past the retention.
    let old = std::fs::File::options()
        .write(true)
        .open(dir.path().join(&segs[0].file))
        .unwrap();
    old.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    drop(old);
    let rec = Recorder::start(&s).unwrap();
    rec.shutdown();
    let left = segment::list(dir.path()).unwrap();
    assert_eq!(left, segs[1..]);
    let (entries, _) = index::load(dir.path()).unwrap();
    assert_eq!(entries.iter().map(|e| e.session).collect::<Vec<_>>(), [2]);
    assert!(read_session(dir.path(), 1).is_err());
}

#[test]
fn block_mode_waits_for_a_stalled_writer() {
    let dir = tempfile::tempdir().unwrap();
    let s = RecordingSection {
        queue_capacity: 2,
        ..section(dir.path())
    };
    let rec = Recorder::start(&s).unwrap();
    let gate = rec.pause_writer();
    let waiter = {
        let rec = rec.clone();
        std::thread::spawn(move || {
            block_on(async {
                for i in 0..3 {
                    rec.record(batch(i, session_items(i))).await.unwrap();
                }
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.counters().blocked == 0 && Instant::now() < deadline {
        std::thread::sleep(ms(5));
    }
    assert_eq!(rec.counters().blocked, 1);
    assert!(!waiter.is_finished(), "the third batch must wait");
    drop(gate);
    waiter.join().unwrap();
    rec.shutdown();
    let c = rec.counters();
    assert_eq!((c.batches, c.refused, c.lost), (3, 0, 0));
}

#[test]
fn fail_mode_refuses_when_the_writer_is_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let s = RecordingSection {
        queue_capacity: 2,
        overflow: RecordingOverflow::Fail,
        ..section(dir.path())
    };
    let rec = Recorder::start(&s).unwrap();
    let gate = rec.pause_writer();
    block_on(async {
        rec.record(batch(1, session_items(1))).await.unwrap();
        rec.record(batch(2, session_items(2))).await.unwrap();
        assert_eq!(
            rec.record(batch(3, session_items(3))).await,
            Err(Refused::Full)
        );
    });
    drop(gate);
    rec.shutdown();
    let c = rec.counters();
    assert_eq!((c.batches, c.refused, c.blocked), (2, 1, 0));
    assert_eq!(
        block_on(rec.record(batch(4, session_items(4)))),
        Err(Refused::Closed)
    );
}

#[test]
fn a_failed_write_is_retried_in_a_new_segment_and_counted_lost_only_after_the_last_try() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::start(&section(dir.path())).unwrap();
    let inner = rec.inner.as_ref().unwrap();
    // One batch at a time, each written (or lost) before the next failure is set up.
    let settle = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while rec.counters().batches + rec.counters().lost < n && Instant::now() < deadline {
            std::thread::sleep(ms(2));
        }
    };
    inner.lane.send(writer::Msg::FailWrites(2)).unwrap();
    block_on(rec.record(batch(1, session_items(1)))).unwrap();
    settle(1);
    // Every attempt fails: lost, loudly.
    inner.lane.send(writer::Msg::FailWrites(100)).unwrap();
    block_on(rec.record(batch(2, session_items(2)))).unwrap();
    settle(2);
    inner.lane.send(writer::Msg::FailWrites(0)).unwrap();
    block_on(rec.record(batch(3, session_items(3)))).unwrap();
    rec.shutdown();
    let c = rec.counters();
    assert_eq!((c.batches, c.lost), (2, 1));
    assert_eq!(c.write_errors, 2 + 4);
    // No half record and no duplicate anywhere: every segment reads cleanly.
    for seg in segment::list(dir.path()).unwrap() {
        let (_, torn) = Segment::read(&dir.path().join(&seg.file))
            .unwrap()
            .records(None);
        assert_eq!(torn, None, "{}", seg.file);
    }
    let one = read_session(dir.path(), 1).unwrap();
    assert_eq!(one.entries.len(), 2);
    assert!(read_session(dir.path(), 2).is_err());
    assert!(read_session(dir.path(), 3).unwrap().ended);
}

#[test]
fn the_index_is_found_and_a_missing_line_falls_back_to_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::start(&section(dir.path())).unwrap();
    block_on(async {
        for s in 0..5 {
            rec.record(batch(s, session_items(s))).await.unwrap();
        }
    });
    rec.shutdown();
    // A torn last index line, as a crash could leave it.
    let index_path = dir.path().join(index::INDEX_FILE);
    let text = std::fs::read_to_string(&index_path).unwrap();
    std::fs::write(&index_path, &text[..text.len() - 10]).unwrap();
    let back = read_session(dir.path(), 4).unwrap();
    assert!(back.ended);
    assert!(back.warnings.iter().any(|w| w.contains("unreadable line")));
    let (listed, bad) = list::recorded_sessions(dir.path(), None).unwrap();
    assert_eq!((listed.len(), bad), (4, 1));
    let table = list::render(&listed);
    assert!(table.starts_with("session  started"), "{table}");
    assert!(table.contains("ci-nightly > report-subagent"), "{table}");
    // A restart rewrites the index without the torn line.
    Recorder::start(&section(dir.path())).unwrap().shutdown();
    assert_eq!(index::load(dir.path()).unwrap(), (listed, 0));
}

// --- transcripts -------------------------------------------------------------------------

fn recording(items: Vec<Item>) -> reader::SessionRecording {
    let mut entries: Vec<Entry> = items.iter().map(Entry::from_item).collect();
    let start = match entries.remove(0) {
        Entry::Start(s) => Some(*s),
        _ => None,
    };
    reader::SessionRecording {
        session: 5,
        start,
        ended: true,
        entries,
        warnings: Vec::new(),
    }
}

fn from_client(at: u64, b: BytesMut) -> Item {
    Item::FromClient {
        at: ms(at),
        bytes: b.freeze(),
    }
}

fn to_client(at: u64, b: BytesMut) -> Item {
    Item::ToClient {
        at: ms(at),
        bytes: b.freeze(),
    }
}

fn columns<'a>(names: &[&'a str]) -> Vec<pg::FieldDescription<'a>> {
    names
        .iter()
        .map(|n| pg::FieldDescription {
            name: n.as_bytes(),
            table_oid: 0,
            column: 0,
            type_oid: 25,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        })
        .collect()
}

fn render(items: Vec<Item>) -> (String, transcript::Transcript) {
    let t = transcript::build(&recording(items));
    let mut out = String::new();
    transcript::text::render(&t, &mut out);
    (out, t)
}

fn decision(at: u64, d: &'static str, rule: Option<&str>) -> Item {
    Item::Decision {
        at: ms(at),
        fingerprint: "f".into(),
        decision: d,
        rule: rule.map(str::to_owned),
    }
}

#[test]
fn transcript_of_a_simple_query_session() {
    let mut q = BytesMut::new();
    pg::encode_query(&mut q, "select id, name from customers");
    let mut r = BytesMut::new();
    pg::encode_row_description(&mut r, &columns(&["id", "name"]));
    pg::encode_data_row(&mut r, [Some(&b"1"[..]), Some(b"Ada")]);
    pg::encode_data_row(&mut r, [Some(&b"22"[..]), None]);
    pg::encode_command_complete(&mut r, "SELECT 2");
    pg::encode_ready_for_query(&mut r, pg::TransactionStatus::Idle);
    let mut notice = BytesMut::new();
    pg::encode_notice(&mut notice, "NOTICE", "00000", "hello");
    let (text, t) = render(vec![
        start(),
        from_client(1, q),
        decision(1, "allow", Some("role.reader.rules.orders.read")),
        to_client(2, r),
        to_client(3, notice),
        Item::End {
            at: ms(4),
            reason: "client closed",
        },
    ]);
    let expected = "\
session 5
identity: ci-nightly (tok-root) -> report-subagent (tok-child)
roles:    reader
user:     report
resource: orders
client:   127.0.0.1:5555 (TLS)
started:  2026-11-23T17:00:00.123456Z

[+0.001000s] simple query:
  select id, name from customers
  decision: allow (rule role.reader.rules.orders.read)
 id | name
----+------
 1  | Ada
 22 |
(2 rows)
SELECT 2

[+0.003000s] NOTICE:  00000 hello

[+0.004000s] session ended: client closed
";
    assert_eq!(text, expected);
    let mut json = String::new();
    transcript::to_json_lines(&t, &mut json).unwrap();
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines[1]["type"], "statement");
    assert_eq!(
        lines[1]["outputs"][0]["rows"][1][1],
        serde_json::Value::Null
    );
    assert_eq!(lines[1]["decision"]["decision"], "allow");
    assert_eq!(lines[3]["type"], "end");
}

fn bind(out: &mut BytesMut, stmt: &str, params: &[(i16, Option<&[u8]>)], result: i16) {
    out.put_u8(b'B');
    let at = out.len();
    out.put_i32(0);
    out.put_slice(b"\0");
    out.put_slice(stmt.as_bytes());
    out.put_u8(0);
    out.put_i16(params.len() as i16);
    for (f, _) in params {
        out.put_i16(*f);
    }
    out.put_i16(params.len() as i16);
    for (_, v) in params {
        match v {
            None => out.put_i32(-1),
            Some(v) => {
                out.put_i32(v.len() as i32);
                out.put_slice(v);
            }
        }
    }
    out.put_i16(1);
    out.put_i16(result);
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn execute(out: &mut BytesMut) {
    out.put_slice(b"E\0\0\0\x09\0\0\0\0\0");
}

fn simple(tag: u8, out: &mut BytesMut) {
    out.put_u8(tag);
    out.put_i32(4);
}

#[test]
fn transcript_of_an_extended_session_with_parameters() {
    let mut c = BytesMut::new();
    pg::encode_parse(
        &mut c,
        b"s1",
        "select name from customers where id = $1 and tag = $2",
    );
    bind(
        &mut c,
        "s1",
        &[(0, Some(b"it's")), (1, Some(&[0, 0, 0, 42]))],
        0,
    );
    pg::encode_describe(&mut c, pg::Target::Portal, b"");
    execute(&mut c);
    pg::encode_sync(&mut c);
    // Executed again with other parameters.
    let mut again = BytesMut::new();
    bind(&mut again, "s1", &[(0, None), (1, Some(&[1]))], 0);
    execute(&mut again);
    pg::encode_sync(&mut again);
    let mut r = BytesMut::new();
    simple(b'1', &mut r);
    simple(b'2', &mut r);
    pg::encode_row_description(&mut r, &columns(&["name"]));
    pg::encode_data_row(&mut r, [Some(&b"Ada"[..])]);
    pg::encode_command_complete(&mut r, "SELECT 1");
    pg::encode_ready_for_query(&mut r, pg::TransactionStatus::Idle);
    let mut r2 = BytesMut::new();
    simple(b'2', &mut r2);
    pg::encode_command_complete(&mut r2, "SELECT 0");
    pg::encode_ready_for_query(&mut r2, pg::TransactionStatus::Idle);
    let (text, t) = render(vec![
        start(),
        from_client(1, c),
        decision(1, "mask", Some("mask.email")),
        to_client(2, r),
        from_client(3, again),
        to_client(4, r2),
    ]);
    assert!(
        text.contains(
            "[+0.001000s] extended query (prepared as s1):
  select name from customers where id = $1 and tag = $2
  $1 = 'it''s'
  $2 = \\x0000002a (binary)
  decision: mask (rule mask.email)
 name
------
 Ada
(1 row)
SELECT 1
"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "[+0.003000s] extended query (prepared as s1):
  select name from customers where id = $1 and tag = $2
  $1 = NULL
  $2 = \\x01 (binary)
  decision: mask (rule mask.email)
SELECT 0
"
        ),
        "{text}"
    );
    assert_eq!(t.events.len(), 2);
}

#[test]
fn transcript_of_a_copy_to_and_an_error() {
    let mut c = BytesMut::new();
    pg::encode_query(&mut c, "copy items to stdout");
    let mut r = BytesMut::new();
    r.put_u8(b'H');
    r.put_i32(4 + 1 + 2 + 4);
    r.put_u8(0);
    r.put_i16(2);
    r.put_i16(0);
    r.put_i16(0);
    pg::encode_copy_data(&mut r, b"1\tapple\n");
    pg::encode_copy_data(&mut r, b"2\tpear\n");
    simple(b'c', &mut r);
    pg::encode_command_complete(&mut r, "COPY 2");
    pg::encode_ready_for_query(&mut r, pg::TransactionStatus::Idle);
    let mut bad = BytesMut::new();
    pg::encode_query(&mut bad, "delete from items");
    let mut e = BytesMut::new();
    pg::encode_error(
        &mut e,
        "ERROR",
        "42501",
        "sluice: blocked by rule no-delete",
    );
    pg::encode_ready_for_query(&mut e, pg::TransactionStatus::Idle);
    let (text, _) = render(vec![
        start(),
        from_client(1, c),
        decision(1, "allow", None),
        to_client(2, r),
        Item::Truncated {
            at: ms(2),
            bytes: 1000,
            rows: 3,
        },
        from_client(3, bad),
        decision(3, "block", Some("no-delete")),
        to_client(3, e),
    ]);
    assert!(
        text.contains(
            "  decision: allow
COPY data to the client:
  1\\tapple
  2\\tpear
COPY 2
(3 rows, 1000 bytes not kept)
"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "  delete from items
  decision: block (rule no-delete)
ERROR:  42501 sluice: blocked by rule no-delete
"
        ),
        "{text}"
    );
}

#[test]
fn malformed_messages_are_unreadable_lines_not_panics() {
    let mut c = BytesMut::new();
    // A Query without its terminator, then an unknown tag.
    c.put_slice(b"Q\0\0\0\x08abcd");
    simple(b'~', &mut c);
    let mut r = BytesMut::new();
    r.put_slice(b"D\0\0\0\x06\xff\xff");
    r.put_slice(b"Z\0\0\0\x02");
    let (text, _) = render(vec![start(), from_client(1, c), to_client(2, r)]);
    assert!(
        text.contains("unreadable message from the client: Query ('Q')"),
        "{text}"
    );
    assert!(text.contains("unknown message type '~'"), "{text}");
    assert!(text.contains("length field below 4"), "{text}");
    // Random bytes in both directions never panic.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        let mut junk = BytesMut::new();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            junk.put_u8(if seed % 3 == 0 { b'D' } else { seed as u8 });
        }
        let half = junk.split_off(32);
        render(vec![start(), from_client(1, junk), to_client(2, half)]);
    }
}

#[test]
fn the_captured_sessions_render_without_unreadable_lines() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/codec/pg/testdata");
    for name in [
        "simple",
        "extended_prepared",
        "copy",
        "error_simple",
        "error_txn",
        "listen_notify",
    ] {
        let fe = std::fs::read(base.join(format!("{name}.fe.bin"))).unwrap();
        let be = std::fs::read(base.join(format!("{name}.be.bin"))).unwrap();
        let (text, t) = render(vec![
            start(),
            from_client(1, BytesMut::from(&fe[..])),
            to_client(2, BytesMut::from(&be[..])),
        ]);
        assert!(!text.contains("unreadable"), "{name}:\n{text}");
        assert!(
            t.events.iter().any(|e| matches!(e, transcript::Event::Statement(s) if s.outputs.iter().any(|o| matches!(o, Output::Complete { .. } | Output::Error(_))))),
            "{name}:\n{text}"
        );
        let _ = HEADER_LEN;
    }
}
