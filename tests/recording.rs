//! Session recording through the real gateway and a real PostgreSQL: a reader's session with
//! simple, extended and COPY traffic replays to the same statements and results, with masked
//! values masked and never stored in clear in the segment files; recorded sessions are listed
//! with their identity chains; and a gateway killed with SIGKILL during heavy traffic leaves
//! readable segments that lose at most the last flush interval.

mod common;

use std::time::Duration;

use common::extended::TEXT;
use common::{connect, gateway_config, GatewaySetup, RawConn, Stack, DB, LABEL};
use serde_json::Value;

const CARD: &str = "4111111111111111";
const EMAIL: &str = "alice.liddell@example.com";
const SSN: &str = "123-45-6789";

fn configure(setup: &GatewaySetup) {
    setup.set("recording.dir", "recordings");
    setup.set("recording.flush_interval", "1s");
    setup.set("recording.max_statement_bytes", 4096);
    setup.set("gateway.workers", 2);
    setup.set("gateway.pin_cores", false);
}

async fn seed(stack: &Stack) {
    let direct = stack.direct().await;
    direct
        .batch_execute(&format!(
            "CREATE TABLE customers (id int primary key, name text, email text, card_number text, ssn text);
             INSERT INTO customers VALUES (1, 'Alice', '{EMAIL}', '{CARD}', '{SSN}');
             INSERT INTO customers SELECT g, 'n' || g, 'x' || g || '@example.org', NULL, NULL
               FROM generate_series(2, 500) g;
             GRANT SELECT ON customers TO PUBLIC;"
        ))
        .await
        .unwrap();
}

fn sluice(stack: &Stack, args: &[&str]) -> String {
    let config = stack.setup.config_path();
    let mut all = vec![args[0], "--config", config.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    let out = common::sluice(&all, stack.setup.env());
    assert!(out.success(), "sluice {args:?}: {}", out.stderr);
    out.stdout
}

/// The recorded sessions of `subject`.
fn recorded(stack: &Stack, subject: &str) -> Vec<Value> {
    sluice(stack, &["sessions", "--since", "1h", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["chain"].as_array().unwrap().last().unwrap()["name"] == subject)
        .collect()
}

fn segment_bytes(stack: &Stack) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(stack.setup.dir().join("recordings")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rec") {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_replays_as_it_happened_and_masked_values_never_reach_the_disk() {
    let mut stack = Stack::start_with(configure);
    seed(&stack).await;
    let token = stack
        .setup
        .issue_token("report-agent", &["reader"], &[DB], "1h");
    let addr = stack.gateway.addr();
    // One session, driven message by message: simple, extended, an error, a big result, COPY.
    let mut conn = tokio::task::spawn_blocking(move || {
        RawConn::login(addr, DB, LABEL, &token).expect("login")
    })
    .await
    .unwrap();
    let simple = conn
        .simple("SELECT id, name, email, card_number FROM customers WHERE id = 1")
        .unwrap();
    assert_eq!(simple.rows().len(), 1);
    let extended = conn
        .extended(
            "SELECT ssn FROM customers WHERE id = $1",
            &[Some("1")],
            TEXT,
        )
        .unwrap();
    assert_ne!(extended.rows()[0][0].as_deref(), Some(SSN));
    let refused = conn.simple("DELETE FROM customers WHERE id = 2").unwrap();
    assert_eq!(refused.error().unwrap().code, "42501");
    // A big result: only max_statement_bytes of it is kept.
    let big = conn
        .simple("SELECT id, name, email FROM customers ORDER BY id")
        .unwrap();
    assert_eq!(big.rows().len(), 500);
    let copy = conn
        .simple("COPY (SELECT id, name FROM customers WHERE id <= 3) TO STDOUT")
        .unwrap();
    assert!(copy.error().is_none());
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;

    stack.gateway.sigterm();
    assert!(stack.gateway.wait_exit(Duration::from_secs(20)).is_some());

    let sessions = recorded(&stack, "report-agent");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let id = sessions[0]["session"].as_u64().unwrap().to_string();
    assert_eq!(sessions[0]["resource"], DB);
    let text = sluice(&stack, &["replay", &id]);
    for expected in [
        "SELECT id, name, email, card_number FROM customers WHERE id = 1",
        "SELECT ssn FROM customers WHERE id = $1",
        "$1 = '1'",
        "DELETE FROM customers WHERE id = 2",
        "42501",
        "COPY (SELECT id, name FROM customers WHERE id <= 3) TO STDOUT",
        "Alice",
        "n3",
        "not kept",
    ] {
        assert!(
            text.contains(expected),
            "replay lacks {expected:?}:\n{text}"
        );
    }
    let json = sluice(&stack, &["replay", &id, "--format", "json"]);
    let events: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 6, "{json}");

    // Masked values never reach the segment files, in any encoding of them.
    let raw = segment_bytes(&stack);
    assert!(!raw.is_empty());
    for secret in [CARD, EMAIL, SSN, "4111", "alice.liddell"] {
        assert!(!contains(&raw, secret), "{secret} is in a segment file");
        assert!(
            !text.contains(secret) && !json.contains(secret),
            "{secret} replayed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_heavy_traffic_leaves_readable_segments() {
    let mut stack = Stack::start_with(configure);
    seed(&stack).await;
    let config = gateway_config(stack.gateway.addr(), DB, LABEL, &stack.token);
    let client = std::sync::Arc::new(connect(&config).await.unwrap());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (c, d) = (client.clone(), done.clone());
    let traffic = tokio::spawn(async move {
        for i in 0.. {
            if c.simple_query(&format!("SELECT {i} AS n, repeat('x', 200)"))
                .await
                .is_err()
            {
                return;
            }
            d.store(i + 1, std::sync::atomic::Ordering::Release);
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = done.load(std::sync::atomic::Ordering::Acquire);
    // Everything before `before` was flushed by the next tick; kill after two more intervals.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stack.gateway.kill();
    let _ = traffic.await;
    assert!(before > 0);

    let sessions = recorded(&stack, "tester");
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let id = sessions[0]["session"].as_u64().unwrap().to_string();
    let json = sluice(&stack, &["replay", &id, "--format", "json"]);
    let replayed = json.matches("AS n, repeat").count();
    assert!(
        replayed >= before,
        "{replayed} statements replayed, {before} sent before the last flush"
    );
}
