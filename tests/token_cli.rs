//! The real `sluice` binary's token commands as a shell script sees them: the token alone on
//! stdout, the gateway's error code and message on stderr, exit 1 for failures and 2 for
//! usage errors. The gateway here is a canned HTTP server on a loopback port; the real control
//! plane's endpoints are covered by their own tests.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime};

use common::process::run_with_timeout;
use common::{Captured, SLUICE_BIN};
use sluice::identity::{ChainLink, IssueRequest, SigningKey, TokenIssuer, TokenSettings};

const TIMEOUT: Duration = Duration::from_secs(60);

/// One request as the canned gateway received it.
struct Received {
    head: String,
    body: String,
}

/// Serves `replies` in order, one connection each, and reports every request it read.
fn canned_gateway(replies: Vec<(u16, String)>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (status, body) in replies {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body_in) = loop {
                let n = conn.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    return;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break (head, text[end + 4..end + 4 + len].to_owned());
                    }
                }
            };
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
            let _ = tx.send(Received {
                head,
                body: body_in,
            });
        }
    });
    (url, rx)
}

fn received(rx: &mpsc::Receiver<Received>) -> Received {
    rx.recv_timeout(TIMEOUT)
        .expect("the canned gateway saw no request")
}

/// `sluice ARGS` with no `SLUICE_*` variables inherited from the caller.
fn sluice(args: &[&str], env: &[(&str, &str)]) -> Captured {
    let mut cmd = Command::new(SLUICE_BIN);
    cmd.args(args)
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_ID_TOKEN")
        .env_remove("SLUICE_GATEWAY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, TIMEOUT)
}

fn code(out: &Captured) -> Option<i32> {
    out.status.code()
}

const TOKEN_RESPONSE: &str = r#"{"token":"aaa.bbb.ccc","token_id":"J2","subject":"ci-job","roles":["reader"],"resources":["orders"],"expires_at":1748779500,"chain":[]}"#;

#[test]
fn exchange_prints_the_token_alone_for_shell_capture() {
    let (url, rx) = canned_gateway(vec![(200, TOKEN_RESPONSE.to_owned())]);
    // As a CI script would: the provider's token on stdin, the session token captured.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"TOKEN=$(printf '%s\n' "the-ci-jwt" | "$SLUICE" token exchange --gateway "$GW" --id-token -) && printf '[%s]' "$TOKEN""#,
    ])
    .env("SLUICE", SLUICE_BIN)
    .env("GW", &url);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "[aaa.bbb.ccc]");
    let req = received(&rx);
    assert!(
        req.head.starts_with("POST /v1/token/exchange HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(!req.head.to_ascii_lowercase().contains("authorization"));
    assert_eq!(req.body, r#"{"id_token":"the-ci-jwt"}"#);
}

#[test]
fn delegate_sends_the_parent_as_bearer_and_json_prints_everything() {
    let (url, rx) = canned_gateway(vec![(200, TOKEN_RESPONSE.to_owned())]);
    let out = sluice(
        &[
            "token",
            "delegate",
            "--gateway",
            &url,
            "--name",
            "report-subagent",
            "--role",
            "reader",
            "--resource",
            "orders",
            "--resource",
            "billing",
            "--ttl",
            "5m",
            "--json",
        ],
        &[("SLUICE_TOKEN", "parent.token.sig")],
    );
    assert!(out.success(), "{}", out.stderr);
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["token_id"], "J2");
    let req = received(&rx);
    assert!(req.head.starts_with("POST /v1/token/delegate HTTP/1.1\r\n"));
    assert!(
        req.head
            .contains("\r\nAuthorization: Bearer parent.token.sig"),
        "{}",
        req.head
    );
    assert_eq!(
        req.body,
        r#"{"name":"report-subagent","roles":["reader"],"resources":["orders","billing"],"ttl":"5m"}"#
    );
}

#[test]
fn gateway_errors_exit_1_with_its_code_and_message() {
    let refusal = r#"{"error":{"code":"not_in_chain","message":"you may only revoke your own token or its descendants"}}"#;
    let (url, rx) = canned_gateway(vec![(403, refusal.to_owned())]);
    let out = sluice(
        &[
            "token",
            "revoke",
            "--gateway",
            &url,
            "--token",
            "a.b.c",
            "--id",
            "J9",
        ],
        &[],
    );
    assert_eq!(code(&out), Some(1), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("403 not_in_chain): you may only revoke your own token or its descendants"),
        "{}",
        out.stderr
    );
    assert_eq!(received(&rx).body, r#"{"token_id":"J9"}"#);
}

#[test]
fn revoke_and_sessions_print_what_the_gateway_answered() {
    let sessions = r#"{"sessions":[{"session":4,"shard":1,"token_id":"J2","subject":"report-subagent",
        "chain":[{"jti":"J1","name":"ci-root"}],"roles":["reader"],"resource":"orders","user":"bob",
        "client":"127.0.0.1:50000","started_at":1.5,"statements":12}]}"#;
    let (url, rx) = canned_gateway(vec![
        (200, r#"{"revoked":"-J9","at":1748779300}"#.to_owned()),
        (200, sessions.to_owned()),
    ]);
    let out = sluice(
        &[
            "token",
            "revoke",
            "--gateway",
            &url,
            "--token",
            "a.b.c",
            "--id",
            // Ids minted before they were kept from beginning with `-` still revoke.
            "-J9",
        ],
        &[],
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "revoked -J9\n");
    assert_eq!(received(&rx).body, r#"{"token_id":"-J9"}"#);
    let out = sluice(
        &["sessions", "--gateway", &url],
        &[("SLUICE_TOKEN", "admin.t.s")],
    );
    assert!(out.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with("session  shard  identity"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("ci-root > report-subagent  reader  orders    bob"),
        "{}",
        lines[1]
    );
    let req = received(&rx);
    assert!(req.head.starts_with("GET /v1/sessions HTTP/1.1\r\n"));
    assert!(req.head.contains("\r\nAuthorization: Bearer admin.t.s"));
}

#[test]
fn usage_errors_exit_2() {
    let url = "http://127.0.0.1:9";
    for args in [
        // no --role
        vec![
            "token",
            "delegate",
            "--gateway",
            url,
            "--token",
            "t",
            "--name",
            "n",
            "--resource",
            "o",
        ],
        // a --ttl that is not a duration
        vec![
            "token",
            "delegate",
            "--gateway",
            url,
            "--token",
            "t",
            "--name",
            "n",
            "--role",
            "r",
            "--resource",
            "o",
            "--ttl",
            "5 minutes",
        ],
        // no id token, no SLUICE_ID_TOKEN
        vec!["token", "exchange", "--gateway", url],
        // no token, no SLUICE_TOKEN
        vec!["token", "inspect"],
    ] {
        let out = sluice(&args, &[]);
        assert_eq!(code(&out), Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
}

fn delegated_token() -> (String, String) {
    let settings = TokenSettings {
        issuer: "sluice".into(),
        audience: "orders-gw".into(),
        leeway: Duration::ZERO,
    };
    let issuer = TokenIssuer::new(&SigningKey::generate().unwrap(), &settings);
    let req = IssueRequest {
        subject: "report-subagent".into(),
        roles: vec!["reader".into()],
        resources: vec!["orders".into()],
        ttl: Duration::from_secs(600),
        chain: vec![ChainLink {
            jti: "ROOTJTI".into(),
            name: "ci-root".into(),
        }],
    };
    let (token, claims) = issuer.issue(&req, SystemTime::now()).unwrap();
    (token, claims.jti)
}

#[test]
fn inspect_works_offline_and_says_the_signature_is_unchecked() {
    let (token, jti) = delegated_token();
    let out = sluice(&["token", "inspect", &token], &[]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("signature is NOT checked"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!(
            "chain       ci-root (ROOTJTI) -> report-subagent ({jti})"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("audience    orders-gw"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(expires in "), "{}", out.stdout);

    let out = sluice(&["token", "inspect", "--json"], &[("SLUICE_TOKEN", &token)]);
    assert!(out.success(), "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["jti"], jti.as_str());
    let remaining = json["remaining_seconds"].as_i64().unwrap();
    assert!((1..=600).contains(&remaining), "{remaining}");
}

#[test]
fn inspect_refuses_malformed_tokens_with_exit_1() {
    for bad in ["not-a-token", "a.%%%.c", "a.eyJzdWIiOiJ4In0.c"] {
        let out = sluice(&["token", "inspect", bad], &[]);
        assert_eq!(code(&out), Some(1), "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("not a sluice token"),
            "{bad}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(out.stdout, "");
    }
}
