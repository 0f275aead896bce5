//! Failures on either side of the gateway: upstream backends and servers that die, clients
//! that vanish, malformed or oversized messages, and clients that never authenticate.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rawpg::{self, RawConn};
use common::{
    closes_within, connect, eventually, gateway_config, GatewaySetup, PgServer, Stack, DB, LABEL,
};
use sluice::codec::pg::{self, tag, Frame};
use tokio_postgres::NoTls;

/// The pid of the upstream backend running exactly `query`, once it is active (10 s at most).
async fn active_backend(direct: &tokio_postgres::Client, query: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = direct
            .query(
                "SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                &[&query],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "`{query}` never became active upstream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a backend with `pid` still exists.
async fn backend_exists(direct: &tokio_postgres::Client, pid: i32) -> bool {
    direct
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .map(|r| r.get::<_, i64>(0) > 0)
        .unwrap_or(true)
}

/// Whether the backend `pid` is gone within 5 s.
async fn backend_ends(direct: &tokio_postgres::Client, pid: i32) -> bool {
    eventually(Duration::from_secs(5), || async move {
        !backend_exists(direct, pid).await
    })
    .await
}

/// Frames received before a close, all of which must be ErrorResponses; returns them decoded.
fn only_errors(frames: &[Frame]) -> Vec<rawpg::ServerError> {
    for f in frames {
        assert_eq!(
            f.tag,
            tag::backend::ERROR_RESPONSE,
            "unexpected message before the close: {frames:?}"
        );
    }
    frames.iter().map(rawpg::server_error).collect()
}

/// Checks that the gateway still runs and serves a normal session.
async fn still_serving(stack: &mut Stack) {
    assert!(stack.gateway.is_running(), "the gateway process exited");
    let client = stack.client().await;
    let row = client.query_one("SELECT 'served'", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "served");
}

#[tokio::test]
async fn upstream_backend_terminated_mid_query() {
    let stack = Stack::start();
    let bystander = stack.client().await;
    bystander.batch_execute("SELECT 1").await.unwrap();

    let victim = Arc::new(stack.client().await);
    let running = {
        let victim = Arc::clone(&victim);
        tokio::spawn(async move { victim.simple_query("SELECT pg_sleep(30)").await })
    };
    let direct = stack.direct().await;
    let pid = active_backend(&direct, "SELECT pg_sleep(30)").await;
    let terminated: bool = direct
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);

    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the client was not told within 10 s")
        .unwrap();
    let err = result.expect_err("the query of a terminated backend succeeded");
    if let Some(db) = err.as_db_error() {
        assert_eq!(db.severity(), "FATAL", "{db:?}");
    }
    let closed = closes_within(&victim, Duration::from_secs(5)).await;
    assert!(closed, "the client connection stayed open");
    assert!(victim.simple_query("SELECT 1").await.is_err());

    // The session opened before is unaffected, and new ones work.
    let row = bystander
        .query_one("SELECT 'bystander'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "bystander");
    let fresh = stack.client().await;
    fresh.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn upstream_server_stopped_mid_query() {
    let pg = PgServer::start();
    pg.create_database(DB);
    let setup = GatewaySetup::new(&pg, DB);
    let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
    let mut gateway = setup.start();
    let config = gateway_config(gateway.addr(), DB, LABEL, &token);

    let client = Arc::new(connect(&config).await.expect("connect"));
    let running = {
        let client = Arc::clone(&client);
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await })
    };
    {
        let direct = connect(&pg.superuser_config(DB)).await.unwrap();
        active_backend(&direct, "SELECT pg_sleep(30)").await;
    }
    drop(pg); // pg_ctl stop -m immediate

    let result = tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("the client was not told within 15 s")
        .unwrap();
    assert!(result.is_err(), "the query succeeded on a stopped server");

    // New sessions get a clean FATAL; the gateway itself keeps running.
    for _ in 0..3 {
        let err = connect(&config)
            .await
            .map(|_| ())
            .expect_err("a session started with no upstream");
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("no server error: {err:?}"));
        assert_eq!(
            (db.severity(), db.code().code()),
            ("FATAL", "08006"),
            "{db:?}"
        );
    }
    assert!(gateway.is_running(), "the gateway exited with its upstream");
}

#[tokio::test]
async fn client_dropped_mid_query_frees_its_upstream_backend() {
    let stack = Stack::start();
    let direct = stack.direct().await;
    let mut config = stack.config();
    config.application_name("dropped-client");
    let (client, connection) = config.connect(NoTls).await.expect("connect");
    let driver = tokio::spawn(connection);
    let query = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    let pid = active_backend(&direct, "SELECT pg_sleep(30)").await;

    // Dropping the connection closes the socket without a Terminate.
    driver.abort();
    query.abort();
    let started = Instant::now();
    let gone = backend_ends(&direct, pid).await;
    assert!(
        gone,
        "upstream backend {pid} still there {:?} after its client vanished",
        started.elapsed()
    );
    let mut stack = stack;
    still_serving(&mut stack).await;
}

#[tokio::test]
async fn killed_psql_mid_query_frees_its_upstream_backend() {
    let stack = Stack::start();
    let direct = stack.direct().await;
    let addr = stack.gateway.addr();
    let mut psql = Command::new(common::pg::pg_bindir().join("psql"))
        .env("PGPASSWORD", &stack.token)
        .env("PGAPPNAME", "killed-psql")
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-q", "-w"])
        .arg(format!(
            "host={} port={} dbname={DB} user={LABEL} sslmode=disable",
            addr.ip(),
            addr.port()
        ))
        .args(["-c", "SELECT pg_sleep(30)"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start psql");
    let pid = active_backend(&direct, "SELECT pg_sleep(30)").await;
    psql.kill().expect("kill psql");
    psql.wait().unwrap();

    let gone = backend_ends(&direct, pid).await;
    assert!(
        gone,
        "upstream backend {pid} outlived its killed client by 5 s"
    );
}

#[tokio::test]
async fn oversized_message_gets_a_protocol_fatal() {
    const LIMIT: i64 = 1 << 20;
    let mut stack = Stack::start_with(|s| s.set("gateway.max_message_bytes", LIMIT));
    let addr = stack.gateway.addr();

    // Under the limit: relayed.
    let mut conn = RawConn::login(addr, DB, LABEL, &stack.token).expect("login");
    let sql = format!("SELECT length('{}')", "x".repeat(900_000));
    let reply = conn.query(&sql).unwrap();
    assert_eq!(reply.rows(), [vec![Some("900000".to_string())]]);

    // A header announcing 100 MB: refused at once, before any body arrives.
    let mut header = vec![tag::frontend::QUERY];
    header.extend_from_slice(&(100_i32 << 20).to_be_bytes());
    header.extend_from_slice(b"SELECT ");
    conn.send(&header).unwrap();
    let errors = only_errors(&conn.wait_closed(Duration::from_secs(5)).unwrap());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].severity.as_str(), errors[0].code.as_str()),
        ("FATAL", "08P01")
    );

    // A real message just over the limit: the same.
    let mut conn = RawConn::login(addr, DB, LABEL, &stack.token).expect("login");
    let mut out = bytes::BytesMut::new();
    pg::encode_query(
        &mut out,
        &format!("SELECT '{}'", "y".repeat(LIMIT as usize)),
    );
    let _ = conn.send(&out); // the gateway may close before it has read it all
    let errors = only_errors(&conn.wait_closed(Duration::from_secs(5)).unwrap());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].code, "08P01");

    still_serving(&mut stack).await;
}

#[tokio::test]
async fn garbage_and_bad_lengths_close_the_connection_cleanly() {
    let mut stack = Stack::start();
    let addr = stack.gateway.addr();

    let startups: [(&str, Vec<u8>); 5] = [
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: db\r\n\r\n".to_vec(),
        ),
        ("length below 4", vec![0, 0, 0, 3, 0, 3, 0, 0]),
        ("negative length", vec![0xff, 0xff, 0xff, 0xf0, 0, 3, 0, 0]),
        ("protocol 2.0", vec![0, 0, 0, 8, 0, 2, 0, 0]),
        (
            "random bytes",
            (0..64u8).map(|i| i.wrapping_mul(113) ^ 0x5a).collect(),
        ),
    ];
    for (what, bytes) in startups {
        let mut conn = RawConn::connect(addr).unwrap();
        conn.send(&bytes).unwrap();
        let frames = conn
            .wait_closed(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        only_errors(&frames);
        assert!(stack.gateway.is_running(), "the gateway died on {what}");
    }

    let tagged: [(&str, Vec<u8>); 3] = [
        ("length below 4", vec![tag::frontend::QUERY, 0, 0, 0, 3]),
        ("negative length", vec![tag::frontend::QUERY, 0x80, 0, 0, 0]),
        ("length 0 unknown tag", vec![b'!', 0, 0, 0, 0]),
    ];
    for (what, bytes) in tagged {
        let mut conn = RawConn::login(addr, DB, LABEL, &stack.token).expect("login");
        conn.send(&bytes).unwrap();
        let errors = only_errors(
            &conn
                .wait_closed(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{what}: {e}")),
        );
        assert_eq!(errors.len(), 1, "{what}: {errors:?}");
        assert_eq!(
            (errors[0].severity.as_str(), errors[0].code.as_str()),
            ("FATAL", "08P01"),
            "{what}"
        );
        assert!(stack.gateway.is_running(), "the gateway died on {what}");
    }

    // A password message that is not one.
    let mut conn = RawConn::connect(addr).unwrap();
    conn.send_startup(&[("user", LABEL), ("database", DB)])
        .unwrap();
    let auth = conn.expect_frame().unwrap();
    assert_eq!(auth.tag, tag::backend::AUTHENTICATION);
    conn.send(&[tag::frontend::QUERY, 0, 0, 0, 4]).unwrap();
    let errors = only_errors(&conn.wait_closed(Duration::from_secs(5)).unwrap());
    assert!(errors.iter().all(|e| e.severity == "FATAL"), "{errors:?}");

    still_serving(&mut stack).await;
}

#[tokio::test]
async fn clients_that_never_authenticate_are_dropped_and_block_nobody() {
    let mut stack = Stack::start_with(|s| s.set("gateway.auth_timeout", "1s"));
    let addr = stack.gateway.addr();

    let opened = Instant::now();
    let mut silent: Vec<RawConn> = (0..40).map(|_| RawConn::connect(addr).unwrap()).collect();
    // Sent the startup packet, never answers the password request.
    let mut mute = RawConn::connect(addr).unwrap();
    mute.send_startup(&[("user", LABEL), ("database", DB)])
        .unwrap();

    // Others are served meanwhile, without waiting for the idle ones to time out.
    let served = Instant::now();
    let client = stack.client().await;
    client.batch_execute("SELECT 1").await.unwrap();
    assert!(
        served.elapsed() < Duration::from_millis(900),
        "a session waited {:?} behind idle connections",
        served.elapsed()
    );

    for (i, conn) in silent.iter_mut().enumerate() {
        let frames = conn
            .wait_closed(Duration::from_secs(6))
            .unwrap_or_else(|e| panic!("silent connection {i}: {e}"));
        only_errors(&frames);
    }
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(6),
        "idle connections closed after {waited:?} with auth_timeout = 1s"
    );

    let frames = mute.wait_closed(Duration::from_secs(6)).unwrap();
    assert_eq!(
        frames.first().map(|f| f.tag),
        Some(tag::backend::AUTHENTICATION)
    );
    let errors = only_errors(&frames[1..]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].severity, "FATAL");

    // A startup packet trickled in a byte at a time is bound by the same deadline.
    let mut out = bytes::BytesMut::new();
    pg::encode_startup(&[("user", LABEL), ("database", DB)], &mut out);
    let mut trickle = RawConn::connect(addr).unwrap();
    let started = Instant::now();
    let mut closed_early = false;
    for b in out.iter() {
        if trickle.send(&[*b]).is_err() {
            closed_early = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    if !closed_early {
        let frames = trickle
            .wait_closed(Duration::from_secs(3))
            .unwrap_or_else(|e| {
                panic!("a trickled startup kept the connection open past the deadline: {e}")
            });
        assert!(
            frames.iter().all(|f| f.tag == tag::backend::ERROR_RESPONSE),
            "the trickled startup got through: {frames:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // Still serving, and the idle connections left no sessions behind.
    still_serving(&mut stack).await;
    client.batch_execute("SELECT 2").await.unwrap();
}

/// A client may send Terminate while its statement still runs (a driver dropping a connection
/// whose query was abandoned). The gateway cancels the statement when a client vanishes mid
/// statement; a polite goodbye mid-statement deserves the same.
#[tokio::test]
async fn client_terminate_mid_query_frees_its_upstream_backend() {
    let stack = Stack::start();
    let direct = stack.direct().await;
    let mut conn =
        RawConn::login(stack.gateway.addr(), DB, LABEL, &stack.token).expect("raw login");
    conn.send_query("SELECT pg_sleep(30)").unwrap();
    let pid = active_backend(&direct, "SELECT pg_sleep(30)").await;
    conn.terminate();

    let gone = backend_ends(&direct, pid).await;
    assert!(
        gone,
        "upstream backend {pid} still runs its statement 5 s after Terminate"
    );
}
