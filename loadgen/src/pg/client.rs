//! The PostgreSQL workload: one request runs every statement of the script, each in its own
//! round trip as pgbench does. Simple protocol: one Query per statement. Prepared: every
//! statement is parsed once per connection as a named statement, then each request sends
//! Bind/Execute/Sync per statement.

use std::sync::Arc;

use super::script::Script;
use super::startup::{self, PgParams, PgStream};
use super::wire::{self, ResponseScan};
use crate::driver::{Client, Reply, Target};
use crate::rng::Rng;
use crate::stats::{After, ErrorKind, Failure};

/// Which PostgreSQL query protocol a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Simple,
    Prepared,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Prepared => "prepared",
        }
    }
}

/// Everything the worker threads share.
pub struct PgTarget {
    pub params: PgParams,
    pub script: Arc<Script>,
    pub protocol: Protocol,
}

impl Target for PgTarget {
    type Client = PgClient;

    fn client(&self) -> PgClient {
        let mut params = self.params.clone();
        params.tls = params.tls.as_ref().map(|t| t.for_thread());
        PgClient {
            params,
            script: self.script.clone(),
            protocol: self.protocol,
            names: (0..self.script.statements.len())
                .map(|i| format!("lg{i}"))
                .collect(),
        }
    }
}

/// A worker thread's view of the target.
pub struct PgClient {
    params: PgParams,
    script: Arc<Script>,
    protocol: Protocol,
    /// Prepared statement names.
    names: Vec<String>,
}

impl Client for PgClient {
    type Conn = PgStream;

    async fn connect(&self) -> Result<PgStream, Failure> {
        let mut s = startup::connect(&self.params).await?;
        if self.protocol == Protocol::Prepared {
            for (name, st) in self.names.iter().zip(&self.script.statements) {
                postgres_protocol::message::frontend::parse(
                    name,
                    &st.prepared_sql(),
                    std::iter::empty::<u32>(),
                    &mut s.out,
                )
                .map_err(|e| {
                    Failure::new(ErrorKind::Protocol, format!("Parse: {e}"), After::Stop)
                })?;
            }
            postgres_protocol::message::frontend::sync(&mut s.out);
            let mut scan = ResponseScan::default();
            s.exchange(&mut scan).await?;
            if let Some(e) = scan.error {
                // The same text will fail to prepare on every connection.
                return Err(Failure::new(
                    ErrorKind::Server(e.code),
                    format!("cannot prepare the script: {}", e.message),
                    After::Stop,
                ));
            }
        }
        Ok(s)
    }

    async fn request(&self, s: &mut PgStream, rng: &mut Rng) -> Result<Reply, Failure> {
        let mut rows = 0;
        for (name, st) in self.names.iter().zip(&self.script.statements) {
            match self.protocol {
                Protocol::Simple => st.encode_query(&mut s.out, rng),
                Protocol::Prepared => st.encode_bind_execute(name, &mut s.out, rng),
            }
            let mut scan = ResponseScan::default();
            let status = s.exchange(&mut scan).await?;
            rows += scan.rows;
            if let Some(e) = scan.error {
                if status == b'E' {
                    // The script opened a transaction block that is now aborted: end it so the
                    // next request starts clean.
                    postgres_protocol::message::frontend::query("ROLLBACK", &mut s.out).map_err(
                        |e| Failure::new(ErrorKind::Protocol, e.to_string(), After::Reconnect),
                    )?;
                    s.exchange(&mut ResponseScan::default()).await?;
                }
                return Err(Failure::new(
                    ErrorKind::Server(e.code),
                    e.message,
                    After::Continue,
                ));
            }
        }
        Ok(Reply {
            rows,
            ..Reply::default()
        })
    }

    async fn close(&self, mut s: PgStream) {
        s.out.clear();
        wire::terminate(&mut s.out);
        let _ = s.send().await;
        s.io.close().await;
    }
}

/// Runs one simple-protocol statement on a fresh connection's stream and returns the first
/// column of its first row; for set-up and probes, not for measured work.
pub async fn query_value(s: &mut PgStream, sql: &str) -> Result<Option<String>, Failure> {
    postgres_protocol::message::frontend::query(sql, &mut s.out)
        .map_err(|e| Failure::new(ErrorKind::Protocol, e.to_string(), After::Stop))?;
    let mut scan = ResponseScan {
        capture: true,
        ..ResponseScan::default()
    };
    s.exchange(&mut scan).await?;
    if let Some(e) = scan.error {
        return Err(Failure::new(
            ErrorKind::Server(e.code),
            e.message,
            After::Stop,
        ));
    }
    Ok(scan
        .first_value
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}
