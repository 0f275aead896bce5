//! Relay through the real gateway binary against a real PostgreSQL: the simple and extended
//! protocols, COPY both ways, notifications, large values, many sessions, backpressure, cancel.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::rawpg::{self, RawConn};
use common::{closes_within, connect, eventually, gateway_config, Stack, DB, LABEL};
use futures_util::{SinkExt, StreamExt};
use sluice::codec::pg::{tag, CancelRequest};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

/// Rows of a simple-query reply, as text.
fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Row counts of the CommandComplete messages of a simple-query reply.
fn simple_counts(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_protocol_runs_multi_statement_strings_and_survives_errors() {
    let stack = Stack::start();
    let client = stack.client().await;

    let reply = client
        .simple_query(
            "CREATE TABLE t (a int, b text); \
             INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, NULL); \
             SELECT a, b FROM t ORDER BY a; SELECT 'tail'",
        )
        .await
        .expect("multi-statement query");
    assert_eq!(simple_counts(&reply), [0, 3, 3, 1]);
    assert_eq!(
        simple_rows(&reply),
        [
            vec![Some("1".into()), Some("one".into())],
            vec![Some("2".into()), Some("two".into())],
            vec![Some("3".into()), None],
            vec![Some("tail".into())],
        ]
    );

    // An error in the middle of a multi-statement string aborts it as one implicit transaction.
    let err = client
        .simple_query("INSERT INTO t VALUES (4, 'four'); SELECT 1/0; SELECT 'never'")
        .await
        .expect_err("division by zero");
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err:?}");
    let reply = client.simple_query("SELECT count(*) FROM t").await.unwrap();
    assert_eq!(simple_rows(&reply), [vec![Some("3".into())]]);

    // Errors of every kind leave the session usable.
    for bad in ["SELEC 1", "SELECT * FROM missing_table", "SELECT 'x'::int"] {
        let err = client.simple_query(bad).await.expect_err(bad);
        assert!(err.as_db_error().is_some(), "{bad}: {err:?}");
        let reply = client.simple_query("SELECT 42").await.unwrap();
        assert_eq!(
            simple_rows(&reply),
            [vec![Some("42".into())]],
            "after {bad}"
        );
    }
    assert!(!client.is_closed());
}

#[tokio::test]
async fn simple_protocol_transactions_report_their_status() {
    let stack = Stack::start();
    let mut conn =
        RawConn::login(stack.gateway.addr(), DB, LABEL, &stack.token).expect("raw login");

    let reply = conn.query("CREATE TABLE t (a int)").unwrap();
    assert_eq!((reply.status, reply.error()), (b'I', None));

    let reply = conn.query("BEGIN").unwrap();
    assert_eq!(reply.status, b'T');
    let reply = conn.query("INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(
        (reply.status, reply.command_tags()),
        (b'T', vec!["INSERT 0 1".into()])
    );
    let reply = conn.query("SELECT 1/0").unwrap();
    assert_eq!(reply.status, b'E', "a failed transaction block");
    assert_eq!(reply.error().expect("error").code, "22012");
    let reply = conn.query("SELECT 1").unwrap();
    assert_eq!(reply.status, b'E');
    assert_eq!(
        reply.error().expect("error").code,
        "25P02",
        "in failed transaction"
    );
    let reply = conn.query("ROLLBACK").unwrap();
    assert_eq!(
        (reply.status, reply.command_tags()),
        (b'I', vec!["ROLLBACK".into()])
    );

    let reply = conn
        .query("BEGIN; INSERT INTO t VALUES (2); COMMIT")
        .unwrap();
    assert_eq!(reply.status, b'I');
    let reply = conn
        .query("SELECT array_agg(a ORDER BY a)::text FROM t")
        .unwrap();
    assert_eq!(reply.rows(), [vec![Some("{2}".to_string())]]);
    conn.terminate();
}

#[tokio::test]
async fn extended_protocol_round_trips_parameters_of_many_types() {
    let stack = Stack::start();
    let client = stack.client().await;

    let stmt = client
        .prepare(
            "SELECT $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, \
             ($6::text::numeric * 2)::text, $7::text, $8::bytea, $9::bool, $10::timestamptz, \
             $11::text::uuid::text, ($12::text::jsonb -> 'k')::text, $13::int4[], $14::text[], \
             $15::int8[], $16::int4",
        )
        .await
        .expect("prepare");
    let when = SystemTime::UNIX_EPOCH + Duration::from_micros(1_712_345_678_901_234);
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    let text = "héllo, wörld — \u{1F600} 'quoted' \"double\" \\ back";
    let ints = vec![1, -2, i32::MAX, i32::MIN];
    let texts = vec!["a".to_string(), String::new(), "c,d".into(), "{e}".into()];
    let longs = vec![Some(i64::MAX), None, Some(-7)];
    for round in 0..3i32 {
        let row = client
            .query_one(
                &stmt,
                &[
                    &(i16::MIN + round as i16),
                    &(i32::MAX - round),
                    &(i64::MIN + i64::from(round)),
                    &1.5f32,
                    &-2.25e300f64,
                    &"12345678901234567890.123456789",
                    &text,
                    &bytes,
                    &(round % 2 == 0),
                    &when,
                    &"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                    &r#"{"k": [1, "two", null, {"x": true}]}"#,
                    &ints,
                    &texts,
                    &longs,
                    &None::<i32>,
                ],
            )
            .await
            .expect("execute prepared statement");
        assert_eq!(row.get::<_, i16>(0), i16::MIN + round as i16);
        assert_eq!(row.get::<_, i32>(1), i32::MAX - round);
        assert_eq!(row.get::<_, i64>(2), i64::MIN + i64::from(round));
        assert_eq!(row.get::<_, f32>(3), 1.5);
        assert_eq!(row.get::<_, f64>(4), -2.25e300);
        assert_eq!(row.get::<_, String>(5), "24691357802469135780.246913578");
        assert_eq!(row.get::<_, String>(6), text);
        assert_eq!(row.get::<_, Vec<u8>>(7), bytes);
        assert_eq!(row.get::<_, bool>(8), round % 2 == 0);
        assert_eq!(row.get::<_, SystemTime>(9), when);
        assert_eq!(
            row.get::<_, String>(10),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert_eq!(row.get::<_, String>(11), r#"[1, "two", null, {"x": true}]"#);
        assert_eq!(row.get::<_, Vec<i32>>(12), ints);
        assert_eq!(row.get::<_, Vec<String>>(13), texts);
        assert_eq!(row.get::<_, Vec<Option<i64>>>(14), longs);
        assert_eq!(row.get::<_, Option<i32>>(15), None);
    }

    // Unnamed statements (query with parameters, no explicit prepare) and an error in the
    // extended protocol that leaves the session usable.
    let err = client
        .query_one("SELECT 10 / $1::int4", &[&0i32])
        .await
        .expect_err("division by zero");
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
    let row = client
        .query_one("SELECT 10 / $1::int4", &[&5i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
}

#[tokio::test]
async fn pipelined_queries_on_one_connection_all_get_their_own_answers() {
    let stack = Stack::start();
    let client = Arc::new(stack.client().await);
    let stmt = client
        .prepare("SELECT $1::int4 * 2, repeat('p', $1::int4 % 97)")
        .await
        .unwrap();

    // Every request is issued before any answer is awaited; tokio-postgres writes them back to
    // back on the one connection. Some fail; the others must not be affected.
    let started = Instant::now();
    let tasks: Vec<_> = (0..600i32)
        .map(|i| {
            let client = Arc::clone(&client);
            let stmt = stmt.clone();
            tokio::spawn(async move {
                if i % 50 == 7 {
                    client
                        .query_one("SELECT 1 / ($1::int4 - $1::int4)", &[&i])
                        .await
                        .map(|_| None)
                } else {
                    client
                        .query_one(&stmt, &[&i])
                        .await
                        .map(|row| Some((row.get::<_, i32>(0), row.get::<_, String>(1))))
                }
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let i = i as i32;
        let result = task.await.unwrap();
        if i % 50 == 7 {
            let err = result.expect_err("division by zero in the pipeline");
            assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "request {i}");
        } else {
            let (doubled, padding) = result
                .unwrap_or_else(|e| panic!("request {i}: {e:?}"))
                .expect("a row");
            assert_eq!(doubled, i * 2, "request {i}");
            assert_eq!(padding, "p".repeat((i % 97) as usize), "request {i}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    let row = client.query_one("SELECT 'still fine'", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "still fine");
}

#[tokio::test]
async fn copy_in_and_copy_out_carry_every_row() {
    const ROWS: usize = 50_000;
    let stack = Stack::start();
    let client = stack.client().await;
    client
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text, note text)")
        .await
        .unwrap();

    let mut expected = String::new();
    for i in 0..ROWS {
        let note = if i % 10 == 0 {
            "\\N".to_string()
        } else {
            format!("tab\\there {}", i * 7)
        };
        expected.push_str(&format!("{i}\tname-{i}\t{note}\n"));
    }

    let sink = client
        .copy_in("COPY items FROM STDIN")
        .await
        .expect("copy_in");
    futures_util::pin_mut!(sink);
    // Uneven chunks, so rows straddle CopyData messages.
    for chunk in expected.as_bytes().chunks(7_919) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let copied = sink.finish().await.expect("finish copy");
    assert_eq!(copied, ROWS as u64);

    let row = client
        .query_one(
            "SELECT count(*), sum(id), count(note), sum(length(name)) FROM items",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), ROWS as i64);
    assert_eq!(row.get::<_, i64>(1), (ROWS * (ROWS - 1) / 2) as i64);
    assert_eq!(row.get::<_, i64>(2), (ROWS - ROWS / 10) as i64);
    let one: String = client
        .query_one("SELECT note FROM items WHERE id = 3", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, "tab\there 21");

    let stream = client
        .copy_out("COPY (SELECT * FROM items ORDER BY id) TO STDOUT")
        .await
        .expect("copy_out");
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("copy data"));
    }
    assert_eq!(out.len(), expected.len());
    assert!(
        out == expected.as_bytes(),
        "COPY TO STDOUT differs from what was copied in"
    );

    // A failed COPY (bad data) reports the error and the session goes on.
    let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"not-a-number\tx\ty\n"))
        .await
        .unwrap();
    let err = sink.finish().await.expect_err("bad COPY data");
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    let row = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), ROWS as i64);
}

#[tokio::test]
async fn notifications_from_another_session_arrive_through_the_gateway() {
    let stack = Stack::start();
    let (client, mut connection) = stack.config().connect(NoTls).await.expect("connect");
    let (tx, rx) = std::sync::mpsc::channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client
        .batch_execute("LISTEN jobs; LISTEN other")
        .await
        .unwrap();

    let recv = |within: Duration| {
        let rx = &rx;
        async move {
            let deadline = Instant::now() + within;
            loop {
                if let Ok(n) = rx.try_recv() {
                    return Some(n);
                }
                if Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // From a direct session to PostgreSQL, while the gateway session is idle.
    let direct = stack.direct().await;
    direct
        .batch_execute("NOTIFY jobs, 'from-direct'")
        .await
        .unwrap();
    assert_eq!(
        recv(Duration::from_secs(10)).await,
        Some(("jobs".into(), "from-direct".into()))
    );

    // From another gateway session, with a payload near the 8000-byte limit.
    let other = stack.client().await;
    let payload = "n".repeat(7_000);
    other
        .execute("SELECT pg_notify('other', $1)", &[&payload])
        .await
        .unwrap();
    assert_eq!(
        recv(Duration::from_secs(10)).await,
        Some(("other".into(), payload))
    );
    // Nothing for channels not listened to.
    direct.batch_execute("NOTIFY nobody, 'x'").await.unwrap();
    assert_eq!(recv(Duration::from_millis(500)).await, None);

    // The listening session still answers queries.
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
}

#[tokio::test]
async fn twenty_megabyte_values_cross_in_both_directions() {
    const SIZE: usize = 20 << 20;
    // A 20 MB parameter is a Bind message larger than the default 16 MB frontend limit.
    let stack = Stack::start_with(|setup| setup.set("gateway.max_message_bytes", 64 << 20));
    let client = stack.client().await;
    client
        .batch_execute("CREATE TABLE blobs (id int, b bytea, t text)")
        .await
        .unwrap();

    let bytes: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let text: String = (0..SIZE)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let n = client
        .execute("INSERT INTO blobs VALUES (1, $1, $2)", &[&bytes, &text])
        .await
        .expect("insert 20 MB values");
    assert_eq!(n, 1);

    let row = client
        .query_one(
            "SELECT octet_length(b), octet_length(t), b, t FROM blobs WHERE id = 1",
            &[],
        )
        .await
        .expect("read back");
    assert_eq!(row.get::<_, i32>(0), SIZE as i32);
    assert_eq!(row.get::<_, i32>(1), SIZE as i32);
    assert!(row.get::<_, &[u8]>(2) == bytes.as_slice(), "bytea differs");
    assert!(row.get::<_, &str>(3) == text, "text differs");

    // A value generated by the server, in text format through the simple protocol.
    let reply = client
        .simple_query("SELECT repeat('ab', 10 * 1024 * 1024)")
        .await
        .unwrap();
    let rows = simple_rows(&reply);
    let value = rows[0][0].as_deref().expect("a value");
    assert_eq!(value.len(), SIZE);
    assert!(value
        .bytes()
        .enumerate()
        .all(|(i, b)| b == if i % 2 == 0 { b'a' } else { b'b' }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sessions_all_work() {
    const SESSIONS: usize = 200;
    let stack = Stack::start();
    let mut config = stack.config();
    config.application_name("relay-many");

    let connects: Vec<_> = (0..SESSIONS)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { connect(&config).await })
        })
        .collect();
    let mut clients = Vec::new();
    for (i, task) in connects.into_iter().enumerate() {
        let client = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("session {i} of {SESSIONS}: {e:?}"));
        clients.push(Arc::new(client));
    }

    // All sessions are open at once: each has its own upstream backend.
    let direct = stack.direct().await;
    let open: i64 = direct
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'relay-many'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, SESSIONS as i64);

    let work: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let client = Arc::clone(client);
            tokio::spawn(async move {
                let mut pids = Vec::new();
                for round in 0..5i32 {
                    let row = client
                        .query_one(
                            "SELECT $1::int4 + $2::int4, pg_backend_pid()",
                            &[&(i as i32), &round],
                        )
                        .await?;
                    assert_eq!(row.get::<_, i32>(0), i as i32 + round);
                    pids.push(row.get::<_, i32>(1));
                }
                let reply = client.simple_query("SELECT count(*) FROM pg_class").await?;
                assert!(!simple_rows(&reply).is_empty());
                Ok::<_, tokio_postgres::Error>(pids)
            })
        })
        .collect();
    let mut backends = std::collections::HashSet::new();
    for (i, task) in work.into_iter().enumerate() {
        let pids = task
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("session {i}: {e:?}"));
        assert!(
            pids.windows(2).all(|w| w[0] == w[1]),
            "session {i} changed backend"
        );
        backends.insert(pids[0]);
    }
    assert_eq!(
        backends.len(),
        SESSIONS,
        "every session has its own backend"
    );
}

/// Resident memory of a process in KiB, from /proc.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn slow_reader_keeps_gateway_memory_bounded() {
    const ROWS: usize = 200_000;
    const LIMIT_KIB: u64 = 64 * 1024;
    let stack = Stack::start();
    let pid = stack.gateway.pid();
    let mut conn =
        RawConn::login(stack.gateway.addr(), DB, LABEL, &stack.token).expect("raw login");
    // Warm up allocator and buffers with a small result first.
    let reply = conn
        .query("SELECT repeat('x', 1000) FROM generate_series(1, 2000)")
        .unwrap();
    assert_eq!(reply.rows().len(), 2000);
    let baseline = vm_rss_kib(pid);

    // About 200 MB of DataRows, read at a trickle for a few seconds.
    conn.send_query(&format!(
        "SELECT i, repeat('x', 1000) FROM generate_series(1, {ROWS}) AS g(i)"
    ))
    .unwrap();
    let mut peak = baseline;
    let slow_until = Instant::now() + Duration::from_secs(5);
    let mut trickled = 0usize;
    while Instant::now() < slow_until {
        trickled += conn.fill(16 * 1024).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(vm_rss_kib(pid));
    }
    assert!(
        trickled < 100 << 20,
        "the slow phase read too much to mean anything ({trickled} bytes)"
    );
    assert!(
        peak.saturating_sub(baseline) < LIMIT_KIB,
        "gateway RSS grew from {baseline} KiB to {peak} KiB while the client read slowly"
    );

    // Then read everything at full speed and check the result is whole and in order.
    let mut rows = 0usize;
    let mut total = 0usize;
    loop {
        let frame = conn.expect_frame().expect("result stream");
        total += frame.len();
        match frame.tag {
            tag::backend::DATA_ROW => {
                rows += 1;
                let values = rawpg::data_row(&frame);
                assert_eq!(values[0].as_deref(), Some(rows.to_string().as_bytes()));
                let x = values[1].as_deref().expect("value");
                assert!(
                    x.len() == 1000 && x.iter().all(|&b| b == b'x'),
                    "row {rows}"
                );
            }
            tag::backend::ERROR_RESPONSE => panic!("{:?}", rawpg::server_error(&frame)),
            tag::backend::READY_FOR_QUERY => break,
            _ => {}
        }
        if rows % 20_000 == 0 {
            peak = peak.max(vm_rss_kib(pid));
        }
    }
    eprintln!("gateway RSS baseline {baseline} KiB, peak {peak} KiB; trickled {trickled} bytes");
    assert_eq!(rows, ROWS);
    assert!(total > 200_000_000, "result was {total} bytes");
    assert!(
        peak.saturating_sub(baseline) < LIMIT_KIB,
        "gateway RSS grew from {baseline} KiB to {peak} KiB"
    );
    let reply = conn.query("SELECT 'after'").unwrap();
    assert_eq!(reply.rows(), [vec![Some("after".to_string())]]);
    conn.terminate();
}

#[tokio::test]
async fn cancel_request_stops_the_running_query() {
    let stack = Stack::start();
    let client = Arc::new(stack.client().await);
    let cancel = client.cancel_token();
    let running = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let started = Instant::now();
            let result = client.simple_query("SELECT pg_sleep(30)").await;
            (result, started.elapsed())
        })
    };
    // Cancel once the statement is really running upstream.
    let direct = stack.direct().await;
    let active = eventually(Duration::from_secs(10), || {
        let direct = &direct;
        async move {
            direct
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
                    &[],
                )
                .await
                .map(|r| r.get::<_, i64>(0) == 1)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(active, "the statement never showed up as active upstream");
    cancel.cancel_query(NoTls).await.expect("send cancel");

    let (result, elapsed) = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("query still running 20 s after the cancel")
        .unwrap();
    let err = result.expect_err("cancelled query");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    assert!(elapsed < Duration::from_secs(10), "cancel took {elapsed:?}");

    // The session is still usable.
    let row = client.query_one("SELECT 'alive'", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "alive");
}

#[test]
fn cancel_request_with_a_wrong_secret_does_nothing() {
    let stack = Stack::start();
    let addr = stack.gateway.addr();
    let mut conn = RawConn::login(addr, DB, LABEL, &stack.token).expect("raw login");
    let key = conn.key.expect("BackendKeyData from the gateway");

    conn.send_query("SELECT pg_sleep(2), 'done'").unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    for wrong in [
        CancelRequest {
            pid: key.pid,
            secret: key.secret ^ 1,
        },
        CancelRequest {
            pid: key.pid ^ 1,
            secret: key.secret,
        },
    ] {
        rawpg::send_cancel(addr, wrong).expect("send cancel");
    }
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.error(), None, "a wrong key cancelled the query");
    assert_eq!(reply.rows()[0][1].as_deref(), Some("done"));
    assert!(started.elapsed() >= Duration::from_millis(1_500));

    // The right key, through the same path, does cancel: the wrong ones were really ignored.
    conn.send_query("SELECT pg_sleep(30)").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    rawpg::send_cancel(addr, key).expect("send cancel");
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.error().expect("cancelled").code, "57014");
    assert!(started.elapsed() < Duration::from_secs(10));
    conn.terminate();
}

#[tokio::test]
async fn expired_token_ends_an_idle_session() {
    let stack = Stack::start();
    let token = stack.setup.issue_token("short", &["admin"], &[DB], "3s");
    let issued = Instant::now();
    let client = connect(&gateway_config(stack.gateway.addr(), DB, LABEL, &token))
        .await
        .expect("connect with a short token");
    client.batch_execute("SELECT 1").await.unwrap();
    let closed = closes_within(&client, Duration::from_secs(10)).await;
    assert!(closed, "the session outlived its token by 10 s");
    assert!(issued.elapsed() >= Duration::from_secs(2));
}

/// tokio-postgres ends an extended-protocol COPY FROM STDIN with CopyDone + Sync after the
/// Sync of its Bind/Execute; PostgreSQL ignores Sync during COPY, so two Syncs get one
/// ReadyForQuery. The session must still count as idle afterwards.
#[tokio::test]
async fn expired_token_ends_an_idle_session_after_an_extended_copy_in() {
    let stack = Stack::start();
    let token = stack.setup.issue_token("short", &["admin"], &[DB], "4s");
    let client = connect(&gateway_config(stack.gateway.addr(), DB, LABEL, &token))
        .await
        .expect("connect with a short token");
    client
        .batch_execute("CREATE TABLE c (a int)")
        .await
        .unwrap();
    let sink = client.copy_in("COPY c FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\n2\n")).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);

    let closed = closes_within(&client, Duration::from_secs(12)).await;
    let after = client.query_one("SELECT count(*) FROM c", &[]).await;
    assert!(
        closed && after.is_err(),
        "the session outlived its token (closed: {closed}, query after expiry: {after:?})"
    );
}

/// The same accounting attacked on purpose: Syncs sent inside a simple-protocol COPY are ignored
/// by PostgreSQL and answered by nothing, so a gateway that counts them as statements in flight
/// never sees the session idle again and lets it outlive its token.
#[test]
fn syncs_sent_during_copy_do_not_keep_an_expired_session_alive() {
    let stack = Stack::start();
    let token = stack.setup.issue_token("short", &["admin"], &[DB], "4s");
    let issued = Instant::now();
    let mut conn = RawConn::login(stack.gateway.addr(), DB, LABEL, &token).expect("raw login");
    assert_eq!(conn.query("CREATE TABLE c (a int)").unwrap().error(), None);

    conn.send_query("COPY c FROM STDIN").unwrap();
    let start = conn.expect_frame().unwrap();
    assert_eq!(start.tag, tag::backend::COPY_IN_RESPONSE);
    let mut msgs = Vec::new();
    for _ in 0..3 {
        msgs.extend_from_slice(&[tag::frontend::SYNC, 0, 0, 0, 4]);
    }
    msgs.extend_from_slice(&[tag::frontend::COPY_DATA, 0, 0, 0, 6, b'1', b'\n']);
    msgs.extend_from_slice(&[tag::frontend::COPY_DONE, 0, 0, 0, 4]);
    conn.send(&msgs).unwrap();
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.error(), None);
    assert_eq!(reply.command_tags(), ["COPY 1"]);

    std::thread::sleep(Duration::from_secs(7).saturating_sub(issued.elapsed()));
    // The token expired about 3 s ago: the session must be over, not run another statement.
    let outcome = conn.query("SELECT 'still running'");
    let rows = outcome.as_ref().map(|r| r.rows()).unwrap_or_default();
    assert!(
        rows.is_empty(),
        "an expired session still ran a statement: {outcome:?}"
    );
}

#[test]
fn tls_clients_carry_large_copies_and_results() {
    const ROWS: usize = 100_000;
    let stack = Stack::start();
    let addr = stack.gateway.addr();
    let psql = |sql: &str| {
        let out = common::psql_gateway(addr, DB, LABEL, &stack.token, "require", sql);
        assert!(
            out.success(),
            "psql `{}` failed:\n{}",
            &sql[..sql.len().min(80)],
            out.stderr
        );
        out.stdout
    };
    assert_eq!(
        psql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").trim(),
        "f",
        "the gateway's upstream leg is plaintext in this test"
    );

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.tsv");
    let mut data = String::new();
    for i in 0..ROWS {
        let c = char::from(b'a' + (i % 26) as u8);
        data.push_str(&format!("{i}\t{}\n", c.to_string().repeat(200)));
    }
    std::fs::write(&input, &data).unwrap();
    psql("CREATE TABLE big (id int, v text)");
    psql(&format!("\\copy big from '{}'", input.display()));
    assert_eq!(
        psql(
            "SELECT count(*), count(*) FILTER (WHERE v <> repeat(chr(97 + id % 26), 200)) FROM big"
        )
        .trim(),
        format!("{ROWS}|0")
    );

    let output = dir.path().join("out.tsv");
    psql(&format!(
        "\\copy (SELECT * FROM big ORDER BY id) to '{}'",
        output.display()
    ));
    assert!(
        std::fs::read(&output).unwrap() == data.as_bytes(),
        "COPY TO over TLS differs from COPY FROM"
    );

    let value = psql("SELECT repeat('ab', 10 * 1024 * 1024)");
    assert_eq!(value.trim_end().len(), 20 << 20);
    assert!(value
        .trim_end()
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b"ab"[i % 2]));
}

/// A client that always has its next request on the wire before the previous one is answered
/// is never "between statements"; its session must still end once its token expires.
#[test]
fn pipelining_client_does_not_outlive_its_token() {
    let stack = Stack::start();
    let token = stack.setup.issue_token("short", &["admin"], &[DB], "3s");
    let issued = Instant::now();
    let mut conn = RawConn::login(stack.gateway.addr(), DB, LABEL, &token).expect("raw login");

    let late = answers_after_expiry(&mut conn, issued, |c| c.send_query("SELECT pg_sleep(0.2)"));
    assert_eq!(
        late, 0,
        "statements kept running 3 s and more after the token expired"
    );
}

/// Keeps one request always in flight (`send` the next, then read the previous answer) for 9 s
/// after `issued`, and counts the answers that arrived more than 6 s after it.
fn answers_after_expiry(
    conn: &mut RawConn,
    issued: Instant,
    mut send: impl FnMut(&mut RawConn) -> std::io::Result<()>,
) -> usize {
    send(conn).unwrap();
    let mut answered_late = 0;
    while issued.elapsed() < Duration::from_secs(9) {
        if send(conn).is_err() {
            break;
        }
        match conn.read_reply() {
            Ok(reply) if reply.error().is_none() => {
                if issued.elapsed() > Duration::from_secs(6) {
                    answered_late += 1;
                }
            }
            _ => break,
        }
    }
    answered_late
}

/// One extended-protocol batch (Parse, Bind, Execute, Sync) of `sql` on the unnamed statement.
fn extended_batch(sql: &str) -> Vec<u8> {
    fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    let mut parse = vec![0u8];
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(&[0, 0, 0]);
    message(&mut out, b'P', &parse);
    message(&mut out, b'B', &[0, 0, 0, 0, 0, 0, 0, 0]);
    message(&mut out, b'E', &[0, 0, 0, 0, 0]);
    message(&mut out, b'S', &[]);
    out
}

#[test]
fn extended_protocol_pipelining_does_not_outlive_its_token() {
    let stack = Stack::start();
    let token = stack.setup.issue_token("short", &["admin"], &[DB], "3s");
    let issued = Instant::now();
    let mut conn = RawConn::login(stack.gateway.addr(), DB, LABEL, &token).expect("raw login");
    let batch = extended_batch("SELECT pg_sleep(0.2)");
    // Always one batch in flight: the session is never idle.
    let late = answers_after_expiry(&mut conn, issued, |c| c.send(&batch));
    assert_eq!(
        late, 0,
        "extended-protocol statements kept running 3 s and more after the token expired"
    );
}
