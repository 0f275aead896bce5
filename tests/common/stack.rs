//! The usual arrangement for a gateway test: a throwaway PostgreSQL with one database, a
//! plaintext-loopback gateway in front of it as the superuser, and a session token for it.

use std::time::{Duration, Instant};

use super::client::{connect, gateway_config};
use super::gateway::{Gateway, GatewaySetup};
use super::pg::PgServer;

/// Database (and resource) name the stack serves.
pub const DB: &str = "app";
/// User label clients of the stack send.
pub const LABEL: &str = "agent";

/// PostgreSQL, the gateway in front of it, and a token. Fields drop in order: the gateway
/// stops before the server.
pub struct Stack {
    /// The running gateway.
    pub gateway: Gateway,
    /// Its configuration directory.
    pub setup: GatewaySetup,
    /// A one-hour `admin` token for the resource.
    pub token: String,
    /// The upstream server.
    pub pg: PgServer,
}

impl Stack {
    /// Starts everything with the default configuration.
    pub fn start() -> Stack {
        Self::start_with(|_| {})
    }

    /// Starts everything, letting `configure` edit the gateway's configuration first.
    pub fn start_with(configure: impl FnOnce(&GatewaySetup)) -> Stack {
        let pg = PgServer::start();
        pg.create_database(DB);
        let setup = GatewaySetup::new(&pg, DB);
        configure(&setup);
        let token = setup.issue_token("tester", &["admin"], &[DB], "1h");
        let gateway = setup.start();
        Stack {
            gateway,
            setup,
            token,
            pg,
        }
    }

    /// A tokio-postgres configuration for a session through the gateway.
    pub fn config(&self) -> tokio_postgres::Config {
        gateway_config(self.gateway.addr(), DB, LABEL, &self.token)
    }

    /// A connected session through the gateway (its connection driven on a spawned task).
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.config())
            .await
            .unwrap_or_else(|e| panic!("connect through the gateway: {e:?}"))
    }

    /// A direct superuser session to the upstream database, bypassing the gateway.
    pub async fn direct(&self) -> tokio_postgres::Client {
        connect(&self.pg.superuser_config(DB))
            .await
            .unwrap_or_else(|e| panic!("direct connect: {e:?}"))
    }
}

/// Polls `check` every 50 ms until it returns true or `within` has passed; returns whether it did.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the client's connection task sees the gateway close the connection within `within`.
/// A FATAL error reaches the caller before the connection task reads the end of the stream, so
/// a test that was just handed one waits here instead of asserting `is_closed` at once.
pub async fn closes_within(client: &tokio_postgres::Client, within: Duration) -> bool {
    eventually(within, || async { client.is_closed() }).await
}
