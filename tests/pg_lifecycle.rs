//! A session's life and the gateway's: token expiry ends sessions, SIGTERM drains them, and the
//! operator commands (`init`, `keygen`, `token issue`, `check-config`, `demo`) do what they say.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    closes_within, connect, gateway_config, psql, sluice, GatewaySetup, PgServer, SLUICE_BIN,
};

#[tokio::test]
async fn an_idle_session_ends_when_its_token_expires() {
    let pg = PgServer::start();
    pg.create_database("orders");
    let setup = GatewaySetup::new(&pg, "orders");
    let gw = setup.start();
    let token = setup.issue_token("agent", &["reader"], &["orders"], "2s");
    let client = connect(&gateway_config(gw.addr(), "orders", "agent", &token))
        .await
        .expect("a fresh token is accepted");
    client.simple_query("SELECT 1").await.unwrap();
    // Idle past expiry (plus the verification leeway does not apply to live sessions).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let err = client
        .simple_query("SELECT 2")
        .await
        .expect_err("the session outlived its token");
    let text = format!("{err:?}");
    assert!(
        text.contains("expired") || client.is_closed(),
        "expected an expiry error, got {text}"
    );
    assert!(closes_within(&client, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_running_statement_finishes_before_expiry_ends_the_session() {
    let pg = PgServer::start();
    pg.create_database("orders");
    let setup = GatewaySetup::new(&pg, "orders");
    setup.set("identity.leeway", "0s");
    let gw = setup.start();
    let token = setup.issue_token("agent", &["reader"], &["orders"], "2s");
    let client = connect(&gateway_config(gw.addr(), "orders", "agent", &token))
        .await
        .unwrap();
    // Runs across the expiry instant: it must complete with its result.
    let row = client
        .query_one("SELECT pg_sleep(3.5), 42::int AS answer", &[])
        .await
        .expect("the running statement completes despite expiry");
    assert_eq!(row.get::<_, i32>(1), 42);
    let err = client
        .simple_query("SELECT 1")
        .await
        .expect_err("session ended");
    // Either the FATAL expiry error arrives first or the closed connection does.
    assert!(
        err.as_db_error().is_none_or(|e| e.severity() == "FATAL"),
        "{err:?}"
    );
    assert!(
        closes_within(&client, Duration::from_secs(5)).await,
        "{err:?}"
    );
    // And the expired token no longer opens a session.
    let again = connect(&gateway_config(gw.addr(), "orders", "agent", &token)).await;
    let Err(err) = again else {
        panic!("an expired token is refused")
    };
    assert_eq!(err.as_db_error().unwrap().code().code(), "28P01");
}

#[tokio::test]
async fn sigterm_drains_running_statements_then_exits() {
    let pg = PgServer::start();
    pg.create_database("orders");
    let setup = GatewaySetup::new(&pg, "orders");
    let mut gw = setup.start();
    let token = setup.issue_token("agent", &["reader"], &["orders"], "10m");
    let config = gateway_config(gw.addr(), "orders", "agent", &token);
    let busy = connect(&config).await.unwrap();
    let idle = connect(&config).await.unwrap();
    idle.simple_query("SELECT 1").await.unwrap();

    let running = tokio::spawn(async move {
        let r = busy
            .query_one("SELECT pg_sleep(2), 'finished'::text", &[])
            .await;
        (r.map(|row| row.get::<_, String>(1)), busy)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    gw.sigterm();
    let (result, busy) = running.await.unwrap();
    assert_eq!(result.expect("the running statement drains"), "finished");
    // The idle session was told and closed; the busy one closes after its statement.
    assert!(idle.simple_query("SELECT 1").await.is_err());
    assert!(busy.simple_query("SELECT 1").await.is_err());
    let status = gw
        .wait_exit(Duration::from_secs(15))
        .expect("the gateway exits after draining");
    assert!(status.success(), "exit status {status}");
    assert!(gw.stderr().contains("draining"));
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(gw.addr()).is_err());
}

#[tokio::test]
async fn drain_timeout_ends_statements_that_run_too_long() {
    let pg = PgServer::start();
    pg.create_database("orders");
    let setup = GatewaySetup::new(&pg, "orders");
    setup.set("gateway.drain_timeout", "1s");
    let mut gw = setup.start();
    let token = setup.issue_token("agent", &["reader"], &["orders"], "10m");
    let client = connect(&gateway_config(gw.addr(), "orders", "agent", &token))
        .await
        .unwrap();
    let running =
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    gw.sigterm();
    let result = running.await.unwrap();
    let err = result.expect_err("the statement is cut off at the drain deadline");
    assert!(format!("{err:?}").contains("shutting down"), "{err:?}");
    assert!(gw.wait_exit(Duration::from_secs(15)).is_some());
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn check_config_reports_problems_and_accepts_good_files() {
    let pg = PgServer::start();
    let setup = GatewaySetup::new(&pg, "postgres");
    let ok = setup.check_config();
    assert!(ok.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout.trim(), "config OK");

    setup.set("gateway.max_message_bytes", 12);
    setup.set("listener.0.address", "0.0.0.0:6432");
    setup.set("role.reader.resources", vec!["nowhere"]);
    let bad = setup.check_config();
    assert!(!bad.success());
    for needle in [
        "gateway.max_message_bytes",
        "listener[0].allow_plaintext",
        "unknown resource `nowhere`",
    ] {
        assert!(
            bad.stdout.contains(needle),
            "missing {needle}:\n{}",
            bad.stdout
        );
    }

    setup.set("gateway.wrokers", 2);
    let typo = setup.check_config();
    assert!(!typo.success());
    assert!(typo.stdout.contains("wrokers"), "{}", typo.stdout);

    // serve refuses a bad file with the same message instead of starting.
    let out = sluice(
        &["serve", "--config", setup.config_path().to_str().unwrap()],
        setup.env(),
    );
    assert!(!out.success());
    assert!(out.stderr.contains("wrokers"), "{}", out.stderr);
}

#[test]
fn keygen_token_issue_and_init_guard_their_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = sluice(&["keygen", "--out", keys.to_str().unwrap()], &[]);
    assert!(out.success(), "{}", out.stderr);
    for f in ["signing.key", "tls.crt", "tls.key"] {
        assert!(keys.join(f).is_file(), "{f} missing");
    }
    let again = sluice(&["keygen", "--out", keys.to_str().unwrap()], &[]);
    assert!(!again.success(), "keygen overwrote existing keys");
    assert!(
        again.stderr.contains("refusing to overwrite"),
        "{}",
        again.stderr
    );

    let pg = PgServer::start();
    let setup = GatewaySetup::new(&pg, "postgres");
    // The token alone on stdout, and no upstream password needed to mint it.
    let cfg = setup.config_path();
    let out = sluice(
        &[
            "token",
            "issue",
            "--config",
            cfg.to_str().unwrap(),
            "--subject",
            "ci-job",
            "--role",
            "reader",
            "--resource",
            "postgres",
            "--ttl",
            "5m",
        ],
        &[],
    );
    assert!(out.success(), "{}", out.stderr);
    let token = out.stdout.trim_end();
    assert_eq!(out.stdout.lines().count(), 1);
    assert_eq!(token.split('.').count(), 3);
    for (args, needle) in [
        (vec!["--role", "root"], "role `root` is not defined"),
        (vec!["--resource", "nope"], "resource `nope` is not defined"),
        (vec!["--ttl", "48h"], "exceeds identity.max_ttl"),
    ] {
        let mut full = vec![
            "token",
            "issue",
            "--config",
            cfg.to_str().unwrap(),
            "--subject",
            "x",
        ];
        if !args.contains(&"--role") {
            full.extend(["--role", "reader"]);
        }
        if !args.contains(&"--resource") {
            full.extend(["--resource", "postgres"]);
        }
        full.extend(args.iter().copied());
        let out = sluice(&full, &[]);
        assert!(!out.success(), "{args:?} accepted");
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }

    let out = sluice(
        &[
            "init",
            "--upstream",
            "postgresql://app:secret@db:5432/orders",
            "--password-env",
            "PW",
            "--listen",
            "127.0.0.1:6432",
            "--out",
            dir.path().join("a").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.success());
    assert!(
        out.stderr.contains("must not contain a password"),
        "{}",
        out.stderr
    );
    let out = sluice(
        &[
            "init",
            "--upstream",
            "postgresql://app@db:5432/orders",
            "--password-env",
            "PW",
            "--listen",
            "0.0.0.0:6432",
            "--plaintext",
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.success());
    assert!(out.stderr.contains("loopback"), "{}", out.stderr);
}

#[test]
fn demo_serves_fake_customers_to_pasted_commands_and_cleans_up() {
    if sluice::setup::pgtemp::find_bindir().is_none() {
        panic!("PostgreSQL server binaries are required (Debian package `postgresql`)");
    }
    let mut demo = KillOnDrop(
        Command::new(SLUICE_BIN)
            .args(["demo", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut demo.0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut commands = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while commands.len() < 2 && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        for role in ["reader", "admin"] {
            if let Some(rest) = line.strip_prefix(&format!("{role}: PGPASSWORD=")) {
                let (token, psql_part) = rest.split_once(' ').unwrap();
                let conninfo = psql_part
                    .strip_prefix("psql \"")
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("unexpected demo line: {line}"));
                commands.push((role, token.to_owned(), conninfo.to_owned()));
            }
        }
    }
    assert_eq!(
        commands.len(),
        2,
        "the demo printed no psql lines for both roles"
    );
    for (role, token, conninfo) in &commands {
        let out = psql(conninfo, token, "SELECT count(*) FROM customers");
        assert!(out.success(), "{role}: {}", out.stderr);
        assert_eq!(out.stdout.trim(), "120", "{role}");
        let out = psql(
            conninfo,
            token,
            "SELECT card_number, email, ssn FROM customers WHERE id = 1",
        );
        assert!(out.success(), "{role}: {}", out.stderr);
        let delete = || psql(conninfo, token, "DELETE FROM customers WHERE id = 1");
        if *role == "admin" {
            // The admin sees the seeded data as it is, and may change it.
            let stats = psql(
                conninfo,
                token,
                "SELECT count(DISTINCT email), bool_and(ssn ~ '^\\d{3}-\\d{2}-\\d{4}$') FROM customers",
            );
            assert_eq!(stats.stdout.trim(), "120|t", "{}", stats.stderr);
            assert!(!out.stdout.contains("****"), "admin: {}", out.stdout);
            let delete = delete();
            assert!(delete.success(), "admin: {}", delete.stderr);
        } else {
            // The reader sees the masks, never the values, and cannot change anything.
            let fields: Vec<&str> = out.stdout.trim().split('|').collect();
            assert_eq!(fields.len(), 3, "{}", out.stdout);
            assert!(
                fields[0].starts_with("****") && fields[0].len() == 8,
                "{}",
                out.stdout
            );
            assert_eq!(&fields[1..], ["****", "****"], "{}", out.stdout);
            let delete = delete();
            assert!(!delete.success());
            assert!(
                delete.stderr.contains("blocked by policy"),
                "{}",
                delete.stderr
            );
        }
    }
    let port: u16 = commands[0]
        .2
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
        .parse()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Kills a child process if the test fails before it stopped it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
