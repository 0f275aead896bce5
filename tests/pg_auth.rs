//! Client authentication through the real gateway: the session token is the password, and any
//! token that is not valid for the requested resource is refused with FATAL 28P01 before an
//! upstream connection is ever opened.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine;
use common::{connect, gateway_config, psql_gateway, GatewaySetup, PgServer};
use sluice::identity::{IssueRequest, SigningKey, TokenIssuer, TokenSettings};

/// The gateway's own issuer and audience as written by `sluice init`.
fn settings(audience: &str) -> TokenSettings {
    TokenSettings {
        issuer: "sluice".into(),
        audience: audience.into(),
        leeway: Duration::from_secs(5),
    }
}

fn mint(key: &SigningKey, audience: &str, resource: &str, issued: SystemTime, ttl: u64) -> String {
    TokenIssuer::new(key, &settings(audience))
        .issue(
            &IssueRequest {
                subject: "test-agent".into(),
                roles: vec!["admin".into()],
                resources: vec![resource.into()],
                ttl: Duration::from_secs(ttl),
                chain: Vec::new(),
            },
            issued,
        )
        .expect("minting a test token")
        .0
}

/// Upstream connections PostgreSQL has received so far (needs log_connections).
fn upstream_connections(pg: &PgServer) -> usize {
    pg.log().matches("connection received").count()
}

async fn refused_code_and_message(
    gw: &common::Gateway,
    resource: &str,
    token: &str,
) -> (String, String) {
    let err = match connect(&gateway_config(gw.addr(), resource, "agent", token)).await {
        Ok(_) => panic!("the gateway accepted a bad token"),
        Err(e) => e,
    };
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {err:?}"));
    assert_eq!(db.severity(), "FATAL");
    (db.code().code().to_owned(), db.message().to_owned())
}

#[tokio::test]
async fn bad_tokens_are_refused_before_any_upstream_connection() {
    let pg = PgServer::start_with(&[("log_connections", "on")]);
    pg.create_database("orders");
    let setup = GatewaySetup::new(&pg, "orders");
    let gw = setup.start();
    let key = SigningKey::load(&setup.dir().join("signing.key")).unwrap();
    let now = SystemTime::now();
    let valid = mint(&key, "sluice", "orders", now, 600);

    // A valid token works, and it costs exactly one upstream connection.
    let before = upstream_connections(&pg);
    let client = connect(&gateway_config(gw.addr(), "orders", "agent", &valid))
        .await
        .expect("a valid token is accepted");
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);
    let baseline = upstream_connections(&pg);
    assert_eq!(baseline, before + 1, "one session, one upstream connection");

    let other_key = SigningKey::generate().unwrap();
    let [header, payload, signature]: [&str; 3] =
        valid.split('.').collect::<Vec<_>>().try_into().unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs_header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    // Flip a character of the payload: the signature no longer matches.
    let mut tampered_payload = payload.to_owned().into_bytes();
    tampered_payload[10] = if tampered_payload[10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered_payload = String::from_utf8(tampered_payload).unwrap();

    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "forged",
            mint(&other_key, "sluice", "orders", now, 600),
            "orders",
            "unknown key",
        ),
        (
            "expired",
            mint(
                &key,
                "sluice",
                "orders",
                now - Duration::from_secs(7200),
                600,
            ),
            "orders",
            "expired",
        ),
        (
            "not yet valid",
            mint(
                &key,
                "sluice",
                "orders",
                now + Duration::from_secs(3600),
                600,
            ),
            "orders",
            "not yet valid",
        ),
        (
            "wrong audience",
            mint(&key, "other-gateway", "orders", now, 600),
            "orders",
            "audience",
        ),
        (
            "wrong resource",
            mint(&key, "sluice", "billing", now, 600),
            "orders",
            "not valid for resource",
        ),
        (
            "valid token, other database",
            valid.clone(),
            "postgres",
            "not valid for resource",
        ),
        (
            "alg none",
            format!("{none_header}.{payload}."),
            "orders",
            "",
        ),
        (
            "alg none with signature",
            format!("{none_header}.{payload}.{signature}"),
            "orders",
            "algorithm",
        ),
        (
            "HS256 confusion",
            format!("{hs_header}.{payload}.{signature}"),
            "orders",
            "algorithm",
        ),
        (
            "tampered payload",
            format!("{header}.{tampered_payload}.{signature}"),
            "orders",
            "",
        ),
        ("garbage", "not-a-token".into(), "orders", "malformed"),
        ("empty", String::new(), "orders", ""),
        ("oversized", "a".repeat(12_000), "orders", ""),
    ];
    for (name, token, resource, needle) in cases {
        let (code, message) = refused_code_and_message(&gw, resource, &token).await;
        assert_eq!(code, "28P01", "{name}: {message}");
        assert!(
            message.to_lowercase().contains(needle),
            "{name}: message `{message}` should mention `{needle}`"
        );
        assert!(
            !message.contains(&token[..token.len().min(40)]) || token.is_empty(),
            "{name}: the message echoes the token"
        );
    }
    assert_eq!(
        upstream_connections(&pg),
        baseline,
        "a refused client must never cause an upstream connection"
    );
    assert!(gw.stderr().contains("authentication refused"));
}

#[test]
fn tls_and_plaintext_follow_the_listener() {
    let pg = PgServer::start();
    pg.create_database("orders");
    let setup = GatewaySetup::new(&pg, "orders");
    let token = setup.issue_token("agent", &["reader"], &["orders"], "10m");

    // Plaintext allowed on loopback: both work, and the TLS session really is encrypted.
    let gw = setup.start();
    let tls = psql_gateway(
        gw.addr(),
        "orders",
        "agent",
        &token,
        "require",
        "SELECT 'tls ok'",
    );
    assert!(tls.success(), "TLS session failed: {}", tls.stderr);
    assert_eq!(tls.stdout.trim(), "tls ok");
    let plain = psql_gateway(
        gw.addr(),
        "orders",
        "agent",
        &token,
        "disable",
        "SELECT 'plain ok'",
    );
    assert!(
        plain.success(),
        "plaintext session failed: {}",
        plain.stderr
    );
    assert!(gw.stderr().contains("tls=true") && gw.stderr().contains("tls=false"));
    drop(gw);

    // Plaintext refused: a clear FATAL, and TLS still works.
    setup.set("listener.0.allow_plaintext", false);
    let gw = setup.start();
    let plain = psql_gateway(gw.addr(), "orders", "agent", &token, "disable", "SELECT 1");
    assert!(!plain.success());
    assert!(plain.stderr.contains("requires TLS"), "{}", plain.stderr);
    let tls = psql_gateway(
        gw.addr(),
        "orders",
        "agent",
        &token,
        "require",
        "SELECT 'tls only'",
    );
    assert!(tls.success(), "{}", tls.stderr);
    assert_eq!(tls.stdout.trim(), "tls only");
    // verify-full against the gateway's own certificate works too.
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=orders user=agent sslmode=verify-full sslrootcert={}",
        gw.addr().port(),
        setup.dir().join("tls.crt").display()
    );
    let verified = common::psql(&conninfo, &token, "SELECT 'verified'");
    assert!(verified.success(), "{}", verified.stderr);
}

#[test]
fn roles_limit_resources_and_startup_parameters_are_checked() {
    let pg = PgServer::start();
    pg.create_database("orders");
    pg.create_database("billing");
    let setup = GatewaySetup::new(&pg, "orders");
    // A second resource that only admin may reach.
    setup.edit_config(|text| {
        format!(
            "{text}\n[[resource]]\nname = \"billing\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"billing\"\nuser = \"{}\"\npassword_env = \"{}\"\n",
            pg.port(),
            pg.superuser(),
            common::PASSWORD_ENV
        )
    });
    let gw = setup.start();
    let reader = setup.issue_token("agent", &["reader"], &["orders", "billing"], "10m");
    let out = psql_gateway(
        gw.addr(),
        "billing",
        "agent",
        &reader,
        "disable",
        "SELECT 1",
    );
    assert!(!out.success());
    assert!(
        out.stderr.contains("no role of this token"),
        "{}",
        out.stderr
    );
    let admin = setup.issue_token("ops", &["admin"], &["billing"], "10m");
    let out = psql_gateway(
        gw.addr(),
        "billing",
        "ops",
        &admin,
        "disable",
        "SELECT current_database()",
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "billing");

    // Startup options would set server state before any statement is judged: refused.
    let mut cmd_env =
        common::psql_gateway(gw.addr(), "orders", "agent", &reader, "disable", "SELECT 1");
    assert!(cmd_env.success(), "{}", cmd_env.stderr);
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=orders user=agent sslmode=disable options='-c default_transaction_read_only=off'",
        gw.addr().port()
    );
    cmd_env = common::psql(&conninfo, &reader, "SELECT 1");
    assert!(!cmd_env.success());
    assert!(
        cmd_env.stderr.contains("\"options\" is not allowed"),
        "{}",
        cmd_env.stderr
    );
    // application_name is forwarded.
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=orders user=agent sslmode=disable application_name=report-job",
        gw.addr().port()
    );
    let out = common::psql(&conninfo, &reader, "SHOW application_name");
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "report-job");
}
