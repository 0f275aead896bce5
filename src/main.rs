//! The `sluice` command line: a thin layer over the library.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use sluice::admin::api::{
    self, DelegateRequest, ExchangeRequest, RevokeRequest, RevokeResponse, SessionsResponse,
    TokenResponse,
};
use sluice::admin::client;
use sluice::config::{self, parse_duration};
use sluice::identity::{escape_controls, IssueRequest};
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
    /// List a running gateway's live sessions (needs an admin token), or with --config the
    /// recorded sessions.
    Sessions(SessionsArgs),
    /// List, approve or deny statements held for approval (needs an approver token).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Print a recorded session as it happened.
    Replay(ReplayArgs),
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Pending requests (oldest first), then recent decisions.
    List(ApprovalsListArgs),
    /// Let a held statement run.
    Approve(DecideArgs),
    /// Refuse a held statement; its client gets SQLSTATE 42501 naming you.
    Deny(DecideArgs),
}

#[derive(Args)]
struct ApprovalsListArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// An approver (or admin) session token, or `-` to read it from standard input.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the gateway's JSON instead of the list.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DecideArgs {
    /// The approval id (from the client's notice or `sluice approvals list`).
    id: String,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// An approver session token, or `-` to read it from standard input.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
    /// A comment recorded with the decision (shown to the client on a denial).
    #[arg(long)]
    comment: Option<String>,
    /// With approve: also approve the same statement by the same identity for this long (e.g. 10m).
    #[arg(long, value_parser = ttl_arg)]
    window: Option<String>,
}

#[derive(Args)]
struct ReplayArgs {
    /// The gateway's configuration (its [recording] dir is read).
    #[arg(long)]
    config: PathBuf,
    /// The session id (`sluice sessions --config` lists them).
    session: u64,
    #[arg(long, value_enum, default_value = "text")]
    format: ReplayFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReplayFormat {
    /// A psql-like transcript.
    Text,
    /// One JSON object per statement or event, per line.
    Json,
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
    /// Exchange an identity provider's token (e.g. CI OIDC) for a session token; prints the token alone.
    Exchange(ExchangeArgs),
    /// Mint a narrower, shorter-lived child of a session token; prints the child token alone.
    Delegate(DelegateArgs),
    /// Revoke a token and every token derived from it, closing their sessions.
    Revoke(RevokeArgs),
    /// Show what a session token says, offline (the signature is not checked).
    Inspect(InspectArgs),
}

/// How to reach the gateway's admin API.
#[derive(Args)]
struct GatewayArgs {
    /// The gateway's admin listener, e.g. https://gw:8443 (http:// only to a loopback address).
    #[arg(long, env = "SLUICE_GATEWAY")]
    gateway: String,
    /// CA certificate (PEM) that signed an https:// admin listener's certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// How long to wait for the gateway, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

impl GatewayArgs {
    fn gateway(&self) -> sluice::admin::client::Gateway<'_> {
        sluice::admin::client::Gateway {
            url: &self.gateway,
            ca_file: self.ca_file.as_deref(),
            timeout: self.timeout,
        }
    }
}

#[derive(Args)]
struct ExchangeArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// The identity provider's JWT, or `-` to read it from standard input.
    #[arg(long, env = "SLUICE_ID_TOKEN", hide_env_values = true)]
    id_token: String,
    /// Print the whole response (token, id, subject, roles, resources, expiry, chain) as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DelegateArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// The parent session token, or `-` to read it from standard input.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
    /// Name of the delegate, recorded in the chain and the audit trail.
    #[arg(long)]
    name: String,
    /// Role for the child (repeatable); each one the parent holds or weaker.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// Resource for the child (repeatable); a subset of the parent's.
    #[arg(long = "resource", required = true)]
    resources: Vec<String>,
    /// Lifetime, e.g. 5m (default: the gateway's; never past the parent's expiry).
    #[arg(long, value_parser = ttl_arg)]
    ttl: Option<String>,
    /// Print the whole response as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RevokeArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    /// The caller's session token, or `-` to read it from standard input.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
    /// Token id (`jti`) to revoke; `sluice token inspect` shows it. Older ids may begin
    /// with `-`, so a value that looks like a flag is taken as the id.
    #[arg(long = "id", allow_hyphen_values = true)]
    id: String,
}

#[derive(Args)]
struct InspectArgs {
    /// The session token, or `-` to read it from standard input.
    #[arg(env = "SLUICE_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the claims and `remaining_seconds` as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SessionsArgs {
    /// List the sessions recorded under this configuration's [recording] dir instead of
    /// asking a running gateway.
    #[arg(long)]
    config: Option<PathBuf>,
    /// With --config: only sessions that started within this span, e.g. 1h.
    #[arg(long, value_parser = parse_duration, requires = "config")]
    since: Option<Duration>,
    /// The gateway's admin listener, e.g. https://gw:8443 (http:// only to a loopback address).
    #[arg(long, env = "SLUICE_GATEWAY")]
    gateway: Option<String>,
    /// CA certificate (PEM) that signed an https:// admin listener's certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// How long to wait for the gateway, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// An admin session token, or `-` to read it from standard input (live sessions).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// `--ttl` is checked here, so that a typo is a usage error and never reaches the gateway.
fn ttl_arg(text: &str) -> Result<String, String> {
    parse_duration(text)?;
    Ok(text.trim().to_owned())
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
            let sampler = start_profiler()?;
            let served = runtime::serve(&loaded, shutdown);
            finish_profiler(sampler);
            served?;
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
        Command::Token { command } => token(command),
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
        Command::Approvals(command) => approvals(command),
        Command::Sessions(args) => sessions(&args),
        Command::Replay(args) => replay(&args),
    }
}

/// The recording directory of the configuration at `path`.
fn recording_dir(path: &std::path::Path) -> Result<PathBuf> {
    let loaded = config::load_without_secrets(path)?;
    match loaded.config.recording {
        Some(r) => Ok(r.dir),
        None => bail!("{} has no [recording] section", path.display()),
    }
}

fn sessions(args: &SessionsArgs) -> Result<ExitCode> {
    if let Some(config) = &args.config {
        let dir = recording_dir(config)?;
        let since = args.since.map(|d| SystemTime::now() - d);
        let (entries, bad) = sluice::record::list::recorded_sessions(&dir, since)
            .with_context(|| format!("reading the session index in {}", dir.display()))?;
        if bad > 0 {
            eprintln!("warning: {bad} unreadable line(s) in the session index skipped");
        }
        if args.json {
            for e in &entries {
                println!("{}", serde_json::to_string(e)?);
            }
        } else {
            print!("{}", sluice::record::list::render(&entries));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(url) = &args.gateway else {
        bail!("give --gateway (live sessions) or --config (recorded sessions)");
    };
    let Some(token) = &args.token else {
        bail!("--token is required to list a gateway's live sessions");
    };
    let token = secret_arg(token, "--token")?;
    let gateway = sluice::admin::client::Gateway {
        url,
        ca_file: args.ca_file.as_deref(),
        timeout: args.timeout,
    };
    let context = || format!("listing sessions at {url}");
    if args.json {
        let raw: serde_json::Value =
            client::get_json(&gateway, api::SESSIONS_PATH, Some(&token)).with_context(context)?;
        println!("{}", serde_json::to_string_pretty(&raw)?);
    } else {
        let answer: SessionsResponse =
            client::get_json(&gateway, api::SESSIONS_PATH, Some(&token)).with_context(context)?;
        let table = sluice::admin::session_table::render(&answer.sessions, SystemTime::now());
        print!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}

fn approvals(command: ApprovalsCommand) -> Result<ExitCode> {
    match command {
        ApprovalsCommand::List(args) => {
            let token = secret_arg(&args.token, "--token")?;
            let gateway = args.gateway.gateway();
            let context = || format!("listing approvals at {}", args.gateway.gateway);
            let answer: serde_json::Value =
                client::get_json(&gateway, api::APPROVALS_PATH, Some(&token))
                    .with_context(context)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(ExitCode::SUCCESS);
            }
            let answer: api::ApprovalsResponse = serde_json::from_value(answer)?;
            print!("{}", sluice::admin::session_table::approvals(&answer));
        }
        ApprovalsCommand::Approve(args) => decide(args, true)?,
        ApprovalsCommand::Deny(args) => decide(args, false)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn decide(args: DecideArgs, approve: bool) -> Result<()> {
    if args.window.is_some() && !approve {
        bail!("--window only goes with approve");
    }
    let token = secret_arg(&args.token, "--token")?;
    let body = api::DecisionRequest {
        comment: args.comment.clone(),
        window: args.window.clone(),
    };
    let path = api::decision_path(&args.id, approve);
    let decided: sluice::approvals::Request =
        client::post_json(&args.gateway.gateway(), &path, Some(&token), &body).with_context(
            || format!("deciding approval {} at {}", args.id, args.gateway.gateway),
        )?;
    let verb = if approve { "approved" } else { "denied" };
    println!(
        "{verb} {} ({} on {}: {})",
        decided.id, decided.subject, decided.resource, decided.fingerprint
    );
    Ok(())
}

fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    use sluice::record::{reader, transcript};
    let dir = recording_dir(&args.config)?;
    let recording = reader::read_session(&dir, args.session)?;
    for w in &recording.warnings {
        eprintln!("warning: {w}");
    }
    let t = transcript::build(&recording);
    let mut out = String::new();
    match args.format {
        ReplayFormat::Text => transcript::text::render(&t, &mut out),
        ReplayFormat::Json => transcript::to_json_lines(&t, &mut out)?,
    }
    print!("{out}");
    if !recording.ended {
        eprintln!("note: the session's end is not in the recording (still running, or cut short)");
    }
    Ok(ExitCode::SUCCESS)
}

fn token(command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Issue(args) => println!("{}", issue(&args)?),
        TokenCommand::Exchange(args) => {
            let request = ExchangeRequest {
                id_token: secret_arg(&args.id_token, "--id-token")?,
            };
            let answer: TokenResponse = client::post_json(
                &args.gateway.gateway(),
                api::TOKEN_EXCHANGE_PATH,
                None,
                &request,
            )
            .with_context(|| format!("exchanging the token at {}", args.gateway.gateway))?;
            print_token(&answer, args.json)?;
        }
        TokenCommand::Delegate(args) => {
            let parent = secret_arg(&args.token, "--token")?;
            let request = DelegateRequest {
                name: args.name,
                roles: args.roles,
                resources: args.resources,
                ttl: args.ttl,
            };
            let answer: TokenResponse = client::post_json(
                &args.gateway.gateway(),
                api::TOKEN_DELEGATE_PATH,
                Some(&parent),
                &request,
            )
            .with_context(|| format!("delegating at {}", args.gateway.gateway))?;
            print_token(&answer, args.json)?;
        }
        TokenCommand::Revoke(args) => {
            let caller = secret_arg(&args.token, "--token")?;
            let request = RevokeRequest { token_id: args.id };
            let answer: RevokeResponse = client::post_json(
                &args.gateway.gateway(),
                api::TOKEN_REVOKE_PATH,
                Some(&caller),
                &request,
            )
            .with_context(|| format!("revoking at {}", args.gateway.gateway))?;
            println!("revoked {}", escape_controls(&answer.revoked));
        }
        TokenCommand::Inspect(args) => {
            let token = secret_arg(&args.token, "the token")?;
            let inspection = sluice::identity::inspect(&token, SystemTime::now())?;
            eprintln!("note: decoded offline; the signature is NOT checked (only the gateway can)");
            if args.json {
                println!("{}", serde_json::to_string_pretty(&inspection.to_json())?);
            } else {
                print!("{}", inspection.render());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The token alone (for `TOKEN=$(...)`), or the whole answer as JSON.
fn print_token(answer: &TokenResponse, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else if !answer.token.is_empty() && answer.token.bytes().all(|b| b.is_ascii_graphic()) {
        println!("{}", answer.token);
    } else {
        bail!("the gateway answered with a malformed token");
    }
    Ok(())
}

/// A token given on the command line or in the environment, or read from standard input when
/// it is `-` (keeping it out of `ps` and shell history). Surrounding whitespace is dropped.
fn secret_arg(value: &str, what: &str) -> Result<String> {
    let text = if value == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_SECRET_INPUT + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {what} from standard input"))?;
        if text.len() as u64 > MAX_SECRET_INPUT {
            bail!("{what}: standard input holds more than {MAX_SECRET_INPUT} bytes");
        }
        text
    } else {
        value.to_owned()
    };
    let text = text.trim();
    if text.is_empty() && value == "-" {
        bail!("{what}: nothing on standard input");
    }
    if text.is_empty() {
        bail!("{what} is empty");
    }
    Ok(text.to_owned())
}

/// Most bytes read from standard input for a token (identity provider tokens included).
const MAX_SECRET_INPUT: u64 = 64 * 1024;

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

/// The in-process profiler, when the environment asks for it (see `sluice::profiler`).
#[cfg(feature = "profiler")]
fn start_profiler() -> Result<Option<sluice::profiler::Sampler>> {
    use sluice::profiler::{Sampler, Settings};
    let Some(settings) = Settings::from_env()? else {
        return Ok(None);
    };
    let sampler = Sampler::start(&settings)?;
    tracing::info!(
        hz = settings.hz,
        out = %settings.out.display(),
        "in-process profiler sampling; stacks are written at shutdown"
    );
    Ok(Some(sampler))
}

/// Without the `profiler` feature there is nothing to start; asking for it is only a warning,
/// so a profiling run on the wrong build still serves and says why no profile appears.
#[cfg(not(feature = "profiler"))]
fn start_profiler() -> Result<Option<std::convert::Infallible>> {
    if std::env::var_os("SLUICE_PROFILE").is_some_and(|f| !f.is_empty()) {
        tracing::warn!(
            "SLUICE_PROFILE is set but this sluice was built without the `profiler` feature \
             (cargo build --release --features profiler): no profile will be written"
        );
    }
    Ok(None)
}

/// Writes the profile, after the gateway has drained (or failed): a profile of a failed run
/// is still worth having. A write error is logged; the gateway's own outcome stands.
#[cfg(feature = "profiler")]
fn finish_profiler(sampler: Option<sluice::profiler::Sampler>) {
    let Some(sampler) = sampler else { return };
    let out = sampler.out().to_path_buf();
    match sampler.finish() {
        Ok(w) => tracing::info!(
            path = %w.path.display(),
            samples = w.samples,
            stacks = w.stacks,
            "profile written"
        ),
        Err(e) => tracing::error!(path = %out.display(), "profile not written: {e}"),
    }
}

#[cfg(not(feature = "profiler"))]
fn finish_profiler(_: Option<std::convert::Infallible>) {}

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
