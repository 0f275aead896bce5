//! The gateway's side of the upstream connection: every PostgreSQL password method, a wrong
//! credential, TLS with full verification, and the upstream's cancel key staying hidden.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::process::server_user;
use common::{
    connect, gateway_config, sluice, AuthMethod, GatewaySetup, InitOptions, PgServer, RawConn, DB,
    LABEL,
};

/// A gateway in front of `pg`'s database [`DB`], logging in as `user` with `password`.
fn gateway_as(pg: &PgServer, user: &str, password: &str) -> GatewaySetup {
    GatewaySetup::init(
        pg,
        InitOptions {
            user: user.to_string(),
            password: password.to_string(),
            database: DB.to_string(),
            resource: DB.to_string(),
            plaintext: true,
        },
    )
}

/// Logs in through a gateway that uses `method` upstream and checks the session and, from the
/// server log, that the method really was the one used.
async fn session_works_with(method: AuthMethod, logged_method: Option<&str>) {
    let pg = PgServer::start_with(&[("log_connections", "on")]);
    pg.create_database(DB);
    let role = format!("gw_{}", method.keyword().replace('-', "_"));
    let password = format!("pw-{}", common::pg::random_secret());
    pg.create_role(&role, &password, method);
    let setup = gateway_as(&pg, &role, &password);
    let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
    let gateway = setup.start();

    let client = connect(&gateway_config(gateway.addr(), DB, LABEL, &token))
        .await
        .unwrap_or_else(|e| panic!("session through a {method:?} upstream: {e:?}"));
    let row = client
        .query_one("SELECT current_user::text, $1::text", &[&"round trip"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), role);
    assert_eq!(row.get::<_, String>(1), "round trip");

    let log = pg.log();
    let authenticated = format!("connection authenticated: identity=\"{role}\"");
    match logged_method {
        Some(m) => assert!(
            log.lines()
                .any(|l| l.contains(&authenticated) && l.contains(&format!("method={m} "))),
            "no `{authenticated} method={m}` line in the server log:\n{log}"
        ),
        // trust authenticates no identity: the session was authorized without one.
        None => {
            assert!(!log.contains(&authenticated), "{log}");
            assert!(
                log.contains(&format!("connection authorized: user={role}")),
                "{log}"
            );
        }
    }
    assert!(
        !gateway.stderr().contains(&password),
        "the gateway logged the upstream password"
    );
}

#[tokio::test]
async fn upstream_scram_sha_256() {
    session_works_with(AuthMethod::ScramSha256, Some("scram-sha-256")).await;
}

#[tokio::test]
async fn upstream_md5() {
    session_works_with(AuthMethod::Md5, Some("md5")).await;
}

#[tokio::test]
async fn upstream_cleartext_password() {
    session_works_with(AuthMethod::Password, Some("password")).await;
}

#[tokio::test]
async fn upstream_trust() {
    session_works_with(AuthMethod::Trust, None).await;
}

#[tokio::test]
async fn wrong_upstream_password_gives_a_clean_fatal() {
    let pg = PgServer::start();
    pg.create_database(DB);
    for method in [
        AuthMethod::ScramSha256,
        AuthMethod::Md5,
        AuthMethod::Password,
    ] {
        let role = format!("victim_{}", method.keyword().replace('-', "_"));
        let real = format!("real-{}", common::pg::random_secret());
        let wrong = format!("wrong-{}", common::pg::random_secret());
        pg.create_role(&role, &real, method);
        let setup = gateway_as(&pg, &role, &wrong);
        let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
        let gateway = setup.start();

        let err = connect(&gateway_config(gateway.addr(), DB, LABEL, &token))
            .await
            .map(|_| ())
            .expect_err("a wrong upstream password was accepted");
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("{method:?}: no server error, got {err:?}"));
        assert_eq!(db.severity(), "FATAL", "{method:?}: {db:?}");
        let text = format!("{db:?}");
        for secret in [&real, &wrong, &token] {
            assert!(!text.contains(secret.as_str()), "{method:?}: {text}");
        }
        assert!(
            !db.message().contains(&role),
            "{method:?}: the client learns the upstream role: {}",
            db.message()
        );
        for secret in [&real, &wrong] {
            assert!(
                !gateway.stderr().contains(secret.as_str()),
                "{method:?}: the gateway logged a password"
            );
        }
    }
}

/// Writes a certificate for 127.0.0.1 with `sluice keygen` into a directory the PostgreSQL
/// server's OS user owns, with the key private to it. Returns (directory, cert, key).
fn server_certificate() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("sluice-pgtls-")
        .tempdir()
        .unwrap();
    let out = sluice(
        &[
            "keygen",
            "--out",
            dir.path().to_str().unwrap(),
            "--host",
            "127.0.0.1",
        ],
        &[],
    );
    assert!(out.success(), "sluice keygen failed:\n{}", out.stderr);
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&cert, fs::Permissions::from_mode(0o644)).unwrap();
    if let Some(user) = server_user() {
        for path in [dir.path(), cert.as_path(), key.as_path()] {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).unwrap();
        }
    }
    (dir, cert, key)
}

/// A server with TLS on, where role `tls_app` may connect only over TLS.
fn tls_server() -> (PgServer, tempfile::TempDir, PathBuf, String) {
    let (dir, cert, key) = server_certificate();
    let quoted = |p: &Path| format!("'{}'", p.display());
    let pg = PgServer::start_with(&[
        ("ssl", "on"),
        ("log_connections", "on"),
        ("ssl_cert_file", &quoted(&cert)),
        ("ssl_key_file", &quoted(&key)),
    ]);
    pg.create_database(DB);
    let password = format!("tls-{}", common::pg::random_secret());
    pg.create_role("tls_app", &password, AuthMethod::ScramSha256);
    pg.set_hba_lines(&[
        "hostnossl all tls_app 127.0.0.1/32 reject",
        "hostssl all tls_app 127.0.0.1/32 scram-sha-256",
    ]);
    (pg, dir, cert, password)
}

fn verify_full(setup: &GatewaySetup, ca: &Path) {
    setup.set("resource.0.upstream_tls", "verify-full");
    setup.set("resource.0.ca_file", ca.to_str().unwrap());
}

#[tokio::test]
async fn upstream_tls_verify_full_encrypts_the_session() {
    let (pg, _certs, cert, password) = tls_server();

    // Without TLS the server turns the role away: the TLS session below is not an accident.
    let plain = gateway_as(&pg, "tls_app", &password);
    let token = plain.issue_token("tester", &["admin"], &[DB], "10m");
    let gateway = plain.start();
    let err = connect(&gateway_config(gateway.addr(), DB, LABEL, &token))
        .await
        .map(|_| ())
        .expect_err("hostnossl reject let a plaintext upstream connection in");
    assert_eq!(err.as_db_error().map(|e| e.severity()), Some("FATAL"));
    drop(gateway);

    let setup = gateway_as(&pg, "tls_app", &password);
    verify_full(&setup, &cert);
    let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
    let gateway = setup.start();
    let client = connect(&gateway_config(gateway.addr(), DB, LABEL, &token))
        .await
        .expect("session over a verified TLS upstream");
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the upstream connection is not TLS");
    assert!(row.get::<_, String>(1).starts_with("TLS"));
    // A larger exchange over TLS, both directions.
    let big = "t".repeat(1 << 20);
    let row = client
        .query_one("SELECT length($1::text), $1::text", &[&big])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1 << 20);
    assert!(row.get::<_, &str>(1) == big);
}

#[tokio::test]
async fn upstream_tls_with_another_ca_fails_cleanly() {
    let (pg, _certs, _cert, password) = tls_server();
    let (_other_dir, other_ca, _) = server_certificate();
    let setup = gateway_as(&pg, "tls_app", &password);
    verify_full(&setup, &other_ca);
    let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
    let gateway = setup.start();

    let err = connect(&gateway_config(gateway.addr(), DB, LABEL, &token))
        .await
        .map(|_| ())
        .expect_err("a server certificate from another CA was accepted");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.code().code(), "08006", "{db:?}");
    assert!(!format!("{db:?}").contains(&password));
    // Nothing reached the server's authentication.
    assert!(!pg.log().contains("tls_app"), "{}", pg.log());
}

#[tokio::test]
async fn upstream_tls_required_but_server_has_none_fails_cleanly() {
    let pg = PgServer::start();
    pg.create_database(DB);
    let (_dir, cert, _) = server_certificate();
    let setup = GatewaySetup::new(&pg, DB);
    verify_full(&setup, &cert);
    let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
    let gateway = setup.start();
    let err = connect(&gateway_config(gateway.addr(), DB, LABEL, &token))
        .await
        .map(|_| ())
        .expect_err("verify-full fell back to plaintext");
    let db = err.as_db_error().expect("a server error");
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "08006"));
    assert!(!format!("{db:?}").contains(pg.password()));
}

#[test]
fn client_never_sees_the_upstream_backend_key() {
    let pg = PgServer::start();
    pg.create_database(DB);
    let setup = GatewaySetup::new(&pg, DB);
    let token = setup.issue_token("tester", &["admin"], &[DB], "10m");
    let gateway = setup.start();

    let mut keys = Vec::new();
    for _ in 0..3 {
        let mut conn = RawConn::login(gateway.addr(), DB, LABEL, &token).expect("raw login");
        let key = conn.key.expect("the gateway sends BackendKeyData");
        let reply = conn.query("SELECT pg_backend_pid()").unwrap();
        let backend: i32 = reply.rows()[0][0].as_deref().unwrap().parse().unwrap();
        assert_ne!(key.pid, backend, "the client got the upstream's pid");
        keys.push(key);
        conn.terminate();
    }
    keys.sort_by_key(|k| (k.pid, k.secret));
    keys.dedup();
    assert_eq!(keys.len(), 3, "sessions share a cancel key");
}
