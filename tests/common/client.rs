//! Client-side helpers: tokio-postgres configurations and connections, and a `psql` runner, both
//! for talking to the gateway (database = resource, password = session token) or to PostgreSQL.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use super::pg::{conninfo_value, pg_bindir};
use super::process::{run_with_timeout, Captured};

/// psql against a local server or gateway answers in milliseconds; a minute means it hung.
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// A tokio-postgres configuration for the gateway at `addr`: the database name selects the
/// resource, `user` is a free label, the password is the session token. Use with `NoTls`.
pub fn gateway_config(
    addr: SocketAddr,
    resource: &str,
    user: &str,
    token: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .dbname(resource)
        .user(user)
        .password(token)
        .connect_timeout(Duration::from_secs(10));
    config
}

/// Connects without TLS and drives the connection on a spawned task (needs a tokio runtime).
pub async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // The error, if any, surfaces to the caller through the client's next request.
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs `psql CONNINFO -c SQL` with `password` in PGPASSWORD: no psqlrc, unaligned tuples-only
/// output, stop on the first error. Panics only if psql cannot run or hangs.
pub fn psql(conninfo: &str, password: &str, sql: &str) -> Captured {
    let psql = pg_bindir().join("psql");
    let program = if psql.is_file() {
        psql.into_os_string()
    } else {
        "psql".into()
    };
    let mut cmd = Command::new(program);
    for var in [
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGSSLMODE",
        "PGSERVICE",
        "PGOPTIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "sluice-tests")
        .args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
        .arg(conninfo)
        .arg("-c")
        .arg(sql);
    run_with_timeout(&mut cmd, PSQL_TIMEOUT)
}

/// Runs `sql` through the gateway at `addr` with psql, as `user` with session `token` on
/// `resource`, with the given libpq `sslmode` (`disable`, `require`, ...).
pub fn psql_gateway(
    addr: SocketAddr,
    resource: &str,
    user: &str,
    token: &str,
    sslmode: &str,
    sql: &str,
) -> Captured {
    let conninfo = format!(
        "host={} port={} dbname={} user={} sslmode={sslmode}",
        addr.ip(),
        addr.port(),
        conninfo_value(resource),
        conninfo_value(user)
    );
    psql(&conninfo, token, sql)
}
