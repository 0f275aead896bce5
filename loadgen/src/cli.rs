//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::conninfo::{TlsMode, UrlParts};
use crate::driver::Plan;
use crate::pg::client::Protocol;
use crate::pg::scenario::Scenario;

/// Load generator for sluice and PostgreSQL: real wire protocol, closed or open loop, HDR
/// latency histograms.
#[derive(Debug, Parser)]
#[command(name = "sluice-loadgen", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a PostgreSQL workload (a built-in scenario or a SQL file).
    Pg(PgArgs),
    /// Create and fill the tables the built-in scenarios use (drops them first).
    Init(InitArgs),
    /// Run an HTTP/1.1 workload against one URL.
    Http(HttpArgs),
}

/// Where to connect, as whom.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// postgres://user:password@host:port/dbname?sslmode=require&sslrootcert=ca.pem
    #[arg(long)]
    pub url: Option<String>,
    /// Server host [default: PGHOST, else 127.0.0.1]
    #[arg(long)]
    pub host: Option<String>,
    /// Server port [default: PGPORT, else 5432]
    #[arg(short, long)]
    pub port: Option<u16>,
    /// User name [default: PGUSER, else postgres]
    #[arg(short = 'U', long)]
    pub user: Option<String>,
    /// Password (or token); PGPASSWORD is used when neither this nor the URL has one
    #[arg(long)]
    pub password: Option<String>,
    /// Database [default: PGDATABASE, else the user name]
    #[arg(short = 'd', long)]
    pub dbname: Option<String>,
    /// TLS towards the server [default: PGSSLMODE, else disable]
    #[arg(long, value_enum)]
    pub tls: Option<TlsMode>,
    /// Verify the server certificate against this PEM CA file
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
}

impl ConnArgs {
    pub fn flags(&self) -> UrlParts {
        UrlParts {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.dbname.clone(),
            tls: self.tls,
            ca: self.tls_ca.clone(),
        }
    }
}

/// How much load, for how long, and where the results go.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Connections (one task each)
    #[arg(short = 'c', long, default_value_t = 8)]
    pub connections: usize,
    /// Worker threads, each with its own event loop; connections are spread over them
    #[arg(short = 'j', long, default_value_t = 1)]
    pub threads: usize,
    /// Pin worker thread i to CPU core i (modulo the cores there are)
    #[arg(long)]
    pub pin: bool,
    /// Measured duration, e.g. 10s, 500ms, 2m [default: 10s unless --requests is given]
    #[arg(short = 'T', long, value_parser = crate::duration::parse)]
    pub duration: Option<Duration>,
    /// Stop after this many counted requests (split evenly over the connections)
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Run this long before counting anything
    #[arg(long, value_parser = crate::duration::parse, default_value = "0s")]
    pub warmup: Duration,
    /// Open loop: send this many requests per second in total, latency from the intended send
    /// time (coordinated omission corrected); without it, closed loop as fast as possible
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// Open a new connection for every request (its set-up is part of the latency)
    #[arg(short = 'C', long)]
    pub connect_per_request: bool,
    /// Limit on one request
    #[arg(long, value_parser = crate::duration::parse, default_value = "10s")]
    pub timeout: Duration,
    /// Limit on opening one connection (TCP, TLS, authentication, preparing the statements)
    #[arg(long, value_parser = crate::duration::parse, default_value = "10s")]
    pub connect_timeout: Duration,
    /// Print the JSON report on stdout (the text report goes to stderr)
    #[arg(long)]
    pub json: bool,
    /// Write the JSON report to this file
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Write an HdrHistogram interval log (latencies in nanoseconds) to this file
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,
    /// Interval of the HDR log
    #[arg(long, value_parser = crate::duration::parse, default_value = "1s")]
    pub hdr_interval: Duration,
    /// Seed of the random parameters [default: from the clock]
    #[arg(long)]
    pub seed: Option<u64>,
}

impl LoadArgs {
    /// Checks the numbers and builds the plan.
    pub fn plan(&self) -> Result<Plan, String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if self.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        if let Some(r) = self.rate {
            if !(0.01..=1e9).contains(&r) {
                return Err("--rate must be between 0.01 and 1e9 requests per second".into());
            }
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err("--duration must be longer than zero".into());
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("--timeout and --connect-timeout must be longer than zero".into());
        }
        if self.hdr_interval < Duration::from_millis(10) {
            return Err("--hdr-interval must be at least 10ms".into());
        }
        let duration = match (self.duration, self.requests) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        // A connection with no request to send would only connect and idle.
        let connections = match self.requests {
            Some(n) => self
                .connections
                .min(usize::try_from(n).unwrap_or(usize::MAX)),
            None => self.connections,
        };
        Ok(Plan {
            connections,
            threads: self.threads,
            duration,
            requests: self.requests,
            warmup: self.warmup,
            rate: self.rate,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            per_request: self.connect_per_request,
            pin: self.pin,
            hdr_interval: self.hdr_log.as_ref().map(|_| self.hdr_interval),
            seed: self.seed.unwrap_or_else(clock_seed),
        })
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}

/// The PostgreSQL query protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// One Query message per statement
    Simple,
    /// Parse once per connection, then Bind/Execute/Sync
    #[value(alias = "extended")]
    Prepared,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Protocol {
        match p {
            ProtocolArg::Simple => Protocol::Simple,
            ProtocolArg::Prepared => Protocol::Prepared,
        }
    }
}

#[derive(Debug, Args)]
pub struct PgArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Built-in scenario
    #[arg(
        short = 's',
        long,
        value_enum,
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    pub scenario: Option<Scenario>,
    /// SQL script: statements separated by `;`, `{rand LO HI}` for a random integer
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Query protocol
    #[arg(short = 'M', long, value_enum, default_value = "simple")]
    pub protocol: ProtocolArg,
    /// Create and fill the scenario tables before the run (as `init` does)
    #[arg(long)]
    pub init: bool,
    #[command(flatten)]
    pub sizes: SizeArgs,
}

/// Table sizes for `init`.
#[derive(Debug, Args)]
pub struct SizeArgs {
    /// Rows of loadgen_accounts (point-select, read-100, small-insert keys)
    #[arg(long, default_value_t = 100_000)]
    pub rows: i64,
    /// Rows of loadgen_customers (mask-row)
    #[arg(long, default_value_t = 10_000)]
    pub customers: i64,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub sizes: SizeArgs,
    /// Limit on connecting and on each statement
    #[arg(long, value_parser = crate::duration::parse, default_value = "300s")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// http://host:port/path (or https://)
    pub url: String,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Request method [default: GET, or POST when a body is given]
    #[arg(short = 'X', long)]
    pub method: Option<String>,
    /// Request body
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body from a file
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Extra header, `Name: value` (repeatable)
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Send `Connection: close` and open a connection per request
    #[arg(long)]
    pub no_keepalive: bool,
    /// For https://: verify the server against this PEM CA file (otherwise unverified)
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
}
