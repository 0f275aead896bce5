//! The `sluice` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use sluice::config::{self, parse_duration};
use sluice::identity::IssueRequest;
use sluice::runtime::{self, Shutdown};
use sluice::setup;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Identity-aware gateway for machine identities"
)]
struct Cli {
    /// Log filter (e.g. info, debug, sluice=trace); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration and print every problem found.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Create a signing key and a self-signed TLS certificate.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Host names or addresses for the certificate (localhost and 127.0.0.1 are always included).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Session tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Write a starter configuration for one PostgreSQL upstream.
    Init(setup::init::InitArgs),
    /// Start a throwaway PostgreSQL with fake personal data behind a gateway, and print how to connect.
    Demo {
        /// Address for the gateway's PostgreSQL listener.
        #[arg(long, default_value = "127.0.0.1:6432")]
        listen: String,
    },
    /// Print a running gateway's statistics: one row per shard, then the total.
    Stats(StatsArgs),
}

#[derive(Args)]
struct StatsArgs {
    /// The gateway's admin listener, e.g. http://127.0.0.1:9432 (see `[admin] listen`).
    #[arg(long)]
    gateway: String,
    /// CA certificate (PEM) that signed an https:// admin listener's certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    json: bool,
    /// How long to wait for the gateway, e.g. 5s.
    #[arg(long, default_value = "5s")]
    timeout: String,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a session token offline with the gateway's key; prints the token alone.
    Issue(IssueArgs),
}

#[derive(Args)]
struct IssueArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    subject: String,
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    #[arg(long = "resource", required = true)]
    resources: Vec<String>,
    /// Lifetime, e.g. 15m (default: identity.default_ttl).
    #[arg(long)]
    ttl: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve { config } => {
            let loaded = config::load(&config)?;
            let shutdown = Arc::new(Shutdown::default());
            watch_signals(shutdown.clone())?;
            runtime::serve(&loaded, shutdown)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => match config::load(&config) {
            Ok(_) => {
                println!("config OK");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                println!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Keygen { out, hosts } => {
            let written = sluice::identity::keygen(&out, &hosts)?;
            for p in [&written.signing_key, &written.tls_cert, &written.tls_key] {
                eprintln!("wrote {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            command: TokenCommand::Issue(args),
        } => {
            println!("{}", issue(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Init(args) => {
            setup::init::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { listen } => {
            let shutdown = Arc::new(Shutdown::default());
            watch_signals(shutdown.clone())?;
            setup::demo::run(&listen, shutdown)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats(args) => {
            let timeout = parse_duration(&args.timeout)
                .map_err(anyhow::Error::msg)
                .context("--timeout")?;
            let report =
                sluice::admin::client::fetch(&args.gateway, args.ca_file.as_deref(), timeout)
                    .with_context(|| format!("fetching statistics from {}", args.gateway))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", sluice::metrics::table::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn issue(args: &IssueArgs) -> Result<String> {
    let loaded = config::load_without_secrets(&args.config)?;
    let id = &loaded.config.identity;
    let ttl = match &args.ttl {
        Some(t) => parse_duration(t).map_err(anyhow::Error::msg)?,
        None => id.default_ttl,
    };
    if ttl > id.max_ttl {
        bail!(
            "--ttl {} exceeds identity.max_ttl ({})",
            config::format_duration(ttl),
            config::format_duration(id.max_ttl)
        );
    }
    if ttl < Duration::from_secs(1) {
        bail!("--ttl must be at least 1s");
    }
    for role in &args.roles {
        if !loaded.config.roles.contains_key(role) {
            bail!("role `{role}` is not defined in {}", args.config.display());
        }
    }
    for r in &args.resources {
        if loaded.resource(r).is_none() {
            bail!("resource `{r}` is not defined in {}", args.config.display());
        }
    }
    let (token, _) = id
        .token_issuer()?
        .issue(
            &IssueRequest {
                subject: args.subject.clone(),
                roles: args.roles.clone(),
                resources: args.resources.clone(),
                ttl,
                chain: Vec::new(),
            },
            SystemTime::now(),
        )
        .context("minting the token")?;
    Ok(token)
}

/// SIGINT and SIGTERM ask the gateway to drain and stop; a second one exits at once.
fn watch_signals(shutdown: Arc<Shutdown>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("sluice-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if shutdown.requested() {
                    eprintln!("second signal {signal}: exiting now");
                    std::process::exit(130);
                }
                tracing::info!(signal, "shutdown requested: draining");
                shutdown.request();
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
