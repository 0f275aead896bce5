//! The control plane's admin listener against the real gateway and a real PostgreSQL: after
//! statements through a pass-through role and a policy role, `/metrics` and `/v1/stats` count
//! them per class and action, `sluice stats` prints one row per shard plus the total, and the
//! listener answers bad requests cleanly and keeps serving.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::admin::{http_get, http_raw, parse_prometheus, sum, Sample};
use common::extended::TEXT;
use common::policy::{is_sluice_block, PolicyStack};
use common::{sluice, RawConn, Stack, DB, LABEL};
use sluice::metrics::StatsReport;

/// Shards the tests' gateways run, so that the per-shard rows are known.
const SHARDS: usize = 2;

fn with_admin(setup: &common::GatewaySetup) {
    setup.set("admin.listen", "127.0.0.1:0");
    setup.set("gateway.workers", SHARDS as i64);
    setup.set("gateway.pin_cores", false);
}

fn scrape(addr: std::net::SocketAddr) -> Vec<Sample> {
    let reply = http_get(addr, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_prometheus(&reply.body)
}

fn stats(addr: std::net::SocketAddr) -> StatsReport {
    let reply = http_get(addr, "/v1/stats");
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

/// Scrapes until `done` holds (the last ReadyForQuery's round trip is recorded just after the
/// client has it) or 5 s have passed; returns the last scrape.
fn scrape_until(addr: std::net::SocketAddr, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let samples = scrape(addr);
        if done(&samples) || std::time::Instant::now() > deadline {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_stats_count_statements_by_class_and_action() {
    let ps = PolicyStack::start_with(with_admin).await;
    let admin = ps.stack.gateway.admin_addr();

    // Pass-through role: three simple queries and one extended-protocol execution.
    let mut a = ps.raw_admin();
    for _ in 0..3 {
        assert!(a.query("SELECT 1").unwrap().error().is_none());
    }
    assert!(a
        .extended("SELECT $1::int", &[Some("7")], TEXT)
        .unwrap()
        .error()
        .is_none());
    // Policy role: a masked read (5 rows x 3 masked columns) and a blocked write.
    let mut r = ps.raw_reader();
    let read = r.query("SELECT * FROM customers ORDER BY id").unwrap();
    assert!(read.error().is_none(), "{:?}", read.error());
    assert_eq!(read.rows().len(), 5);
    let blocked = r.query("DELETE FROM customers").unwrap();
    assert!(blocked.error().as_ref().is_some_and(is_sluice_block));
    // A bad token: an authentication failure.
    assert!(RawConn::login(ps.addr(), DB, LABEL, "not-a-token").is_err());
    // A client that speaks garbage: a client protocol error.
    let mut junk = TcpStream::connect(ps.addr()).unwrap();
    junk.write_all(&[0, 0, 0, 8, 0, 9, 9, 9]).unwrap();
    drop(junk);

    let requests = 3 + 1 + 2;
    let samples = scrape_until(admin, |s| {
        sum(s, "sluice_statement_latency_seconds_count", &[]) >= requests as f64
            && sum(s, "sluice_errors_total", &[("kind", "client_protocol")]) >= 1.0
    });
    let count = |name: &str, want: &[(&str, &str)]| sum(&samples, name, want);
    let st = |class: &str, action: &str| {
        count(
            "sluice_statements_total",
            &[("class", class), ("action", action)],
        )
    };
    assert_eq!(
        st("unclassified", "allow"),
        4.0,
        "three Queries and one Execute"
    );
    assert_eq!(st("read", "allow"), 1.0);
    assert_eq!(st("write", "block"), 1.0);
    assert_eq!(st("write", "allow"), 0.0);
    assert_eq!(count("sluice_masked_values_total", &[]), 15.0);
    assert_eq!(count("sluice_requests_total", &[]), requests as f64);
    assert_eq!(
        count("sluice_statement_latency_seconds_count", &[]),
        requests as f64
    );
    assert_eq!(
        count("sluice_added_time_seconds_count", &[]),
        requests as f64
    );
    assert!(count("sluice_statement_latency_seconds_sum", &[]) > 0.0);
    assert!(count("sluice_added_time_seconds_sum", &[]) > 0.0);
    assert_eq!(count("sluice_auth_failures_total", &[]), 1.0);
    assert_eq!(count("sluice_sessions_started_total", &[]), 2.0);
    assert!(count("sluice_connections_opened_total", &[]) >= 4.0);
    assert_eq!(count("sluice_connections_active", &[]), 2.0);
    assert_eq!(count("sluice_shard_up", &[]), SHARDS as f64);
    for dir in ["client_to_upstream", "upstream_to_client"] {
        assert!(
            count("sluice_bytes_total", &[("direction", dir)]) > 0.0,
            "{dir}"
        );
    }
    // Buckets are cumulative and end with every sample.
    for shard in 0..SHARDS {
        let shard = shard.to_string();
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|s| s.name == "sluice_statement_latency_seconds_bucket")
            .filter(|s| s.labels.get("shard") == Some(&shard))
            .map(|s| s.value)
            .collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
        let total = count(
            "sluice_statement_latency_seconds_count",
            &[("shard", &shard)],
        );
        assert_eq!(buckets.last().copied(), Some(total));
    }

    // The JSON report says the same.
    let report = stats(admin);
    assert_eq!(report.shards.len(), SHARDS);
    let t = &report.total;
    assert!(t.responded && report.shards.iter().all(|s| s.responded));
    assert_eq!(t.statements.by_class["unclassified"]["allow"], 4);
    assert_eq!(t.statements.by_class["read"]["allow"], 1);
    assert_eq!(t.statements.by_class["write"]["block"], 1);
    assert_eq!(t.statements.refused, 1);
    assert_eq!(t.masked_values, 15);
    assert_eq!(t.requests, requests);
    assert_eq!(t.statement_latency.count, requests);
    assert!(
        t.statement_latency.p50_us > 0.0
            && t.statement_latency.p999_us >= t.statement_latency.p50_us
    );
    assert!(t.added_time.p50_us > 0.0);
    assert_eq!(t.auth_failures, 1);
    assert!(t
        .errors
        .by_kind
        .get("client_protocol")
        .is_some_and(|&n| n >= 1));
    let per_shard: u64 = report.shards.iter().map(|s| s.statements.total).sum();
    assert_eq!(per_shard, t.statements.total);

    // `sluice stats` prints a header, one row per shard and the total.
    let url = format!("http://{admin}");
    let out = sluice(&["stats", "--gateway", &url], &[]);
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), SHARDS + 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with("shard") && lines[0].contains("p99.9"),
        "{}",
        out.stdout
    );
    for (i, line) in lines[1..=SHARDS].iter().enumerate() {
        assert!(line.starts_with(&format!("{i} ")), "{}", out.stdout);
    }
    let total: Vec<&str> = lines[SHARDS + 1].split_whitespace().collect();
    assert_eq!(total[0], "total");
    assert_eq!(
        total[1],
        "2/".to_string() + &t.connections.opened.to_string(),
        "{}",
        out.stdout
    );
    assert_eq!(total[3], "1", "blocked column: {}", out.stdout);
    assert_eq!(total[4], "15", "masked column: {}", out.stdout);
    let json = sluice(&["stats", "--gateway", &url, "--json"], &[]);
    let again: StatsReport = serde_json::from_str(&json.stdout).expect("--json prints the report");
    assert_eq!(again.total.masked_values, 15);

    // Closing the sessions brings the active count back to zero.
    a.terminate();
    r.terminate();
    let samples = scrape_until(admin, |s| sum(s, "sluice_connections_active", &[]) == 0.0);
    assert_eq!(sum(&samples, "sluice_connections_active", &[]), 0.0);
}

#[test]
fn admin_listener_refuses_bad_requests_and_keeps_serving() {
    let stack = Stack::start_with(with_admin);
    let admin = stack.gateway.admin_addr();

    // A client that sends half a request and stalls, and one that sends nothing, hold their
    // own connections only.
    let mut slow = TcpStream::connect(admin).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let _idle = TcpStream::connect(admin).unwrap();
    assert_eq!(http_get(admin, "/metrics").status, 200);

    let status = |req: &[u8]| http_raw(admin, req).expect("a response").status;
    assert_eq!(status(b"HELLO THERE\r\n\r\n"), 400);
    assert_eq!(status(b"GET /metrics HTTP/1.1\r\n\r\n"), 400, "no Host");
    assert_eq!(
        status(b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        400
    );
    assert_eq!(
        status(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"),
        413
    );
    let mut huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: ".to_vec();
    huge.resize(64 * 1024, b'a');
    assert_eq!(status(&huge), 431);
    assert_eq!(http_get(admin, "/nope").status, 404);
    assert_eq!(http_get(admin, "/metrics/../v1/stats").status, 404);
    let post = http_raw(
        admin,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = http_raw(admin, b"HEAD /v1/stats HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    // Still serving, with the stalled client still connected.
    let reply = http_get(admin, "/v1/stats");
    assert_eq!(reply.status, 200);
    drop(slow);

    // check-config refuses plaintext admin HTTP off loopback, naming the key.
    stack.setup.set("admin.listen", "0.0.0.0:9432");
    let out = stack.setup.check_config();
    assert!(!out.success(), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("admin.listen: plaintext HTTP is only allowed on a loopback address"),
        "{}",
        out.stdout
    );
}

#[test]
fn admin_listener_serves_https_with_the_gateway_certificate() {
    let stack = Stack::start_with(|setup| {
        with_admin(setup);
        setup.set("admin.tls_cert", "tls.crt");
        setup.set("admin.tls_key", "tls.key");
    });
    let admin = stack.gateway.admin_addr();
    let ca = stack.setup.dir().join("tls.crt");
    let ca = ca.to_str().unwrap();
    let url = format!("https://{admin}");
    let out = sluice(&["stats", "--gateway", &url, "--ca-file", ca], &[]);
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.lines().count(), SHARDS + 2, "{}", out.stdout);
    // Without the CA the self-signed certificate is refused.
    let out = sluice(&["stats", "--gateway", &url], &[]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("TLS") || out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    // Plaintext HTTP on the HTTPS listener gets no HTTP answer.
    assert!(http_raw(admin, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").is_err());
    // The listener keeps serving after that.
    let out = sluice(&["stats", "--gateway", &url, "--ca-file", ca], &[]);
    assert!(out.success(), "{}", out.stderr);
}
