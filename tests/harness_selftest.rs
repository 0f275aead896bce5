//! Tests of the integration-test harness itself, against PostgreSQL only (no gateway): if these
//! fail, every gateway test would fail for reasons that have nothing to do with sluice.

mod common;

use std::time::Duration;

use common::{connect, AuthMethod, PgServer};

#[tokio::test]
async fn superuser_connects_with_scram_and_queries() {
    let pg = PgServer::start();
    let client = connect(&pg.superuser_config("postgres"))
        .await
        .expect("SCRAM connect");
    let row = client
        .query_one("SELECT 1 + 1, current_user", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert_eq!(row.get::<_, String>(1), pg.superuser());
    let method = pg.psql_as_superuser(
        "postgres",
        "SELECT auth_method FROM pg_hba_file_rules WHERE address = '127.0.0.1' LIMIT 1",
    );
    assert_eq!(method, "scram-sha-256");
}

#[tokio::test]
async fn server_settings_suit_the_tests() {
    let pg = PgServer::start();
    let settings = pg.psql_as_superuser(
        "postgres",
        "SELECT current_setting('max_connections'), current_setting('fsync'), \
         current_setting('server_encoding'), current_setting('lc_collate'), \
         current_setting('server_version_num')::int >= 150000",
    );
    assert_eq!(settings, "300|off|UTF8|C|t");
}

#[tokio::test]
async fn created_database_holds_data() {
    let pg = PgServer::start();
    pg.create_database("orders");
    pg.psql_as_superuser(
        "orders",
        "CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    );
    let client = connect(&pg.superuser_config("orders")).await.unwrap();
    let rows = client
        .query("SELECT name FROM t ORDER BY id", &[])
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        pg.psql_as_superuser("orders", "SELECT count(*) FROM t"),
        "2"
    );
}

#[tokio::test]
async fn md5_role_really_uses_md5() {
    let pg = PgServer::start();
    pg.create_role("legacy", "old-secret", AuthMethod::Md5);
    let stored = pg.psql_as_superuser(
        "postgres",
        "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'legacy'",
    );
    assert_eq!(stored, "md5");
    let rule = pg.psql_as_superuser(
        "postgres",
        "SELECT auth_method FROM pg_hba_file_rules WHERE 'legacy' = ANY(user_name) LIMIT 1",
    );
    assert_eq!(rule, "md5");

    let client = connect(&pg.client_config("legacy", "old-secret", "postgres"))
        .await
        .expect("md5 connect");
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "legacy");
    let Err(err) = connect(&pg.client_config("legacy", "wrong", "postgres")).await else {
        panic!("a wrong password was accepted");
    };
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(
        message.contains("password authentication failed"),
        "{err:?}"
    );
    // The superuser is untouched by the role's rule.
    connect(&pg.superuser_config("postgres"))
        .await
        .expect("superuser still SCRAM");
}

#[tokio::test]
async fn cleartext_and_trust_methods_apply_per_role() {
    let pg = PgServer::start();
    pg.create_role("plain", "clear-secret", AuthMethod::Password);
    connect(&pg.client_config("plain", "clear-secret", "postgres"))
        .await
        .expect("cleartext connect");

    pg.create_role("open", "unused", AuthMethod::ScramSha256);
    assert!(connect(&pg.client_config("open", "nope", "postgres"))
        .await
        .is_err());
    pg.set_auth("open", "postgres", AuthMethod::Trust);
    connect(&pg.client_config("open", "nope", "postgres"))
        .await
        .expect("trust connect");
    let out = pg.psql_as("open", "anything", "postgres", "SELECT current_user");
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "open");
}

#[tokio::test]
async fn many_concurrent_connections_fit() {
    let pg = PgServer::start();
    let config = pg.superuser_config("postgres");
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { connect(&config).await })
        })
        .collect();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.unwrap().expect("connection among 200"));
    }
    assert_eq!(clients.len(), 200);
}

#[test]
fn drop_stops_the_server() {
    let pg = PgServer::start();
    let addr = pg.addr();
    assert!(pg.accepts_connections());
    drop(pg);
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err();
    assert!(
        refused,
        "port {} still accepts connections after drop",
        addr.port()
    );
}

#[test]
fn two_servers_run_side_by_side() {
    let a = PgServer::start();
    let b = PgServer::start();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.psql_as_superuser("postgres", "SELECT 1"), "1");
    assert_eq!(b.psql_as_superuser("postgres", "SELECT 2"), "2");
}
