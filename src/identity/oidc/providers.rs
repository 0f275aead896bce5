//! The configured identity providers and the exchange of one of their tokens for a grant.
//!
//! Order of checks: size cap (before any decoding), shape, header, then the still-untrusted
//! payload is parsed only to read `iss`, which picks the provider with exactly that issuer.
//! Its allowlist fixes the algorithm, its key set the key, and the signature is verified before
//! any other claim is looked at. Times are the caller's `now`.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::alg;
use super::claims::{self, TimeRules};
use super::error::{ExchangeError, OidcError};
use super::header::{self, json_error};
use super::json::{lookup, parse_object};
use super::jwks::KeySet;
use super::refresh::{Signal, Wake, RETRY};
use super::rules::Condition;
use super::source::Source;
use crate::config::{IdentitySection, ProviderSection};

/// Longest provider token accepted, in bytes; checked before any decoding.
pub const MAX_PROVIDER_TOKEN_LEN: usize = 16 * 1024;

/// What a provider token is exchanged for: who it is, and what sluice grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Name of the provider that issued the token.
    pub provider: String,
    /// The value of the provider's `subject_claim`.
    pub subject: String,
    pub roles: Vec<String>,
    pub resources: Vec<String>,
    /// The mapping's `ttl` (or `identity.default_ttl`), clamped to `identity.max_ttl` and to
    /// the provider token's remaining lifetime (at least one second).
    pub ttl: Duration,
    /// Index of the `[[identity.provider.map]]` that matched.
    pub rule: usize,
    /// base64url of the first 16 bytes of SHA-256 over the presented token, for audit.
    pub token_hash: String,
    /// The provider token's `exp`.
    pub token_exp: u64,
}

struct Rule {
    when: Condition,
    roles: Vec<String>,
    resources: Vec<String>,
    ttl: Option<Duration>,
}

/// One provider, shared with its refresher thread.
struct Provider {
    name: String,
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    subject_claim: String,
    max_lifetime: u64,
    rules: Vec<Rule>,
    source: Source,
    refresh: Duration,
    keys: ArcSwapOption<KeySet>,
    signal: Signal,
}

impl Provider {
    fn new(cfg: &ProviderSection) -> Result<Provider, OidcError> {
        let config = |reason: String| OidcError::Config {
            provider: cfg.name.clone(),
            reason,
        };
        let mut algorithms = Vec::new();
        for name in &cfg.algorithms {
            match alg::parse(name) {
                Some(a) => algorithms.push(a),
                None => {
                    return Err(config(format!(
                        "algorithms: {}",
                        alg::algorithm_error(name).unwrap_or_default()
                    )))
                }
            }
        }
        if algorithms.is_empty() {
            return Err(config(
                "algorithms: must name at least one algorithm".into(),
            ));
        }
        if cfg.subject_claim.is_empty() {
            return Err(config("subject_claim: must not be empty".into()));
        }
        if cfg.jwks_refresh < Duration::from_secs(1) {
            return Err(config("jwks_refresh: must be at least 1s".into()));
        }
        let rules = cfg
            .mappings
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(Rule {
                    when: Condition::parse(&m.when)
                        .map_err(|e| config(format!("map[{i}].when: {e}")))?,
                    roles: m.roles.clone(),
                    resources: m.resources.clone(),
                    ttl: m.ttl,
                })
            })
            .collect::<Result<Vec<_>, OidcError>>()?;
        Ok(Provider {
            name: cfg.name.clone(),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            algorithms,
            subject_claim: cfg.subject_claim.clone(),
            max_lifetime: cfg.max_token_lifetime.as_secs(),
            rules,
            source: Source::new(
                &cfg.name,
                cfg.jwks_file.as_ref(),
                cfg.jwks_url.as_deref(),
                cfg.jwks_ca_file.as_deref(),
            )?,
            refresh: cfg.jwks_refresh,
            keys: ArcSwapOption::empty(),
            signal: Signal::default(),
        })
    }

    /// Reads or fetches the key set and, if it is good, makes it the current one.
    fn reload(&self) -> Result<(), OidcError> {
        let set = self.source.load(&self.name)?;
        for why in &set.skipped {
            tracing::warn!(provider = %self.name, "JWKS entry skipped: {why}");
        }
        tracing::info!(provider = %self.name, keys = set.len(), "identity provider keys loaded");
        self.keys.store(Some(Arc::new(set)));
        Ok(())
    }

    /// The refresher thread's loop.
    fn run_refresher(&self) {
        let retry = self.refresh.min(RETRY);
        let mut wait = if self.keys.load().is_some() {
            self.refresh
        } else {
            retry
        };
        loop {
            if self.signal.wait(wait) == Wake::Stop {
                return;
            }
            wait = match self.reload() {
                Ok(()) => self.refresh,
                Err(e) => {
                    tracing::warn!(
                        "{e}; keeping the last good keys, retrying in {}s",
                        retry.as_secs()
                    );
                    retry
                }
            };
        }
    }
}

/// The identity providers whose tokens the control plane exchanges. `Send + Sync`; share it in
/// an `Arc`.
pub struct Providers {
    providers: Vec<Arc<Provider>>,
    leeway: u64,
    default_ttl: Duration,
    max_ttl: Duration,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Providers {
    /// Loads JWKS files and fetches JWKS URLs once, then starts one refresher thread per URL
    /// provider. A failed first fetch is logged and retried in the background; until it
    /// succeeds that provider's tokens are refused with `keys_unavailable`. Unreadable or
    /// unusable files and bad settings or rules are errors.
    pub fn start(identity: &IdentitySection) -> Result<Providers, OidcError> {
        let mut providers = Vec::new();
        for cfg in &identity.providers {
            let p = Provider::new(cfg)?;
            match p.reload() {
                Ok(()) => {}
                Err(e) if p.source.is_url() => {
                    tracing::warn!("{e}; its tokens are refused until a fetch succeeds");
                }
                Err(e) => return Err(e),
            }
            providers.push(Arc::new(p));
        }
        let mut threads = Vec::new();
        for p in providers.iter().filter(|p| p.source.is_url()) {
            let p2 = Arc::clone(p);
            let thread = std::thread::Builder::new()
                .name(format!("jwks-{}", p.name))
                .spawn(move || p2.run_refresher())
                .map_err(|e| OidcError::Config {
                    provider: p.name.clone(),
                    reason: format!("cannot start the key refresher thread: {e}"),
                });
            match thread {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let started = Providers::assemble(identity, providers.clone(), threads);
                    started.stop();
                    return Err(e);
                }
            }
        }
        Ok(Providers::assemble(identity, providers, threads))
    }

    fn assemble(
        identity: &IdentitySection,
        providers: Vec<Arc<Provider>>,
        threads: Vec<JoinHandle<()>>,
    ) -> Providers {
        Providers {
            providers,
            leeway: identity.leeway.as_secs(),
            default_ttl: identity.default_ttl,
            max_ttl: identity.max_ttl,
            threads: Mutex::new(threads),
        }
    }

    /// Fetches the named provider's key set now, on the caller's thread (for an operator's
    /// "reload keys", and for tests). A failure keeps the last good keys.
    pub fn refresh(&self, provider: &str) -> Result<(), OidcError> {
        let p = self
            .providers
            .iter()
            .find(|p| p.name == provider)
            .ok_or_else(|| OidcError::NoSuchProvider(provider.to_owned()))?;
        if !p.source.is_url() {
            return Err(OidcError::NotRefreshable(provider.to_owned()));
        }
        p.reload()
    }

    /// Stops the refresher threads and waits for them. Also done on drop.
    pub fn stop(&self) {
        for p in &self.providers {
            p.signal.stop();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// Verifies `token` as of `now` and maps it to a grant.
    pub fn exchange(&self, token: &str, now: SystemTime) -> Result<Grant, ExchangeError> {
        if token.len() > MAX_PROVIDER_TOKEN_LEN {
            return Err(ExchangeError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ExchangeError::Malformed);
        };
        // The header is judged before the signature's presence, so that an unsigned
        // `alg: none` token reports as such.
        let header = header::parse(head)?;
        if payload.is_empty() || signature.is_empty() {
            return Err(ExchangeError::Malformed);
        }

        // Not trusted yet: read only to choose the provider whose keys must have signed it.
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| ExchangeError::Malformed)?;
        let claims = parse_object(&payload_bytes).map_err(json_error)?;
        let iss = match claims.get("iss") {
            None => return Err(ExchangeError::MissingClaim("iss".into())),
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(ExchangeError::InvalidClaim("iss")),
        };
        let p = self
            .providers
            .iter()
            .find(|p| &p.issuer == iss)
            .ok_or(ExchangeError::UnknownIssuer)?;
        if !p.algorithms.contains(&header.alg) {
            return Err(ExchangeError::AlgorithmNotAllowed);
        }
        let keys = p.keys.load_full().ok_or(ExchangeError::KeysUnavailable)?;
        let candidates = match keys.select(header.kid.as_deref(), header.alg) {
            Err(ExchangeError::UnknownKey) if header.kid.is_some() && p.source.is_url() => {
                // The provider may have rotated its keys: look again soon, refuse this one.
                if p.signal.request_early(Instant::now()) {
                    tracing::info!(provider = %p.name, "token names an unknown key; refreshing keys early");
                }
                return Err(ExchangeError::UnknownKey);
            }
            other => other?,
        };
        // The algorithm is the header's choice among the provider's allowlist, never beyond.
        let message = &token.as_bytes()[..head.len() + 1 + payload.len()];
        let mut verified = false;
        for key in candidates {
            match jsonwebtoken::crypto::verify(signature, message, key, header.alg) {
                Ok(true) => {
                    verified = true;
                    break;
                }
                Ok(false) => {}
                // Only a signature that is not base64url gets here.
                Err(_) => return Err(ExchangeError::Malformed),
            }
        }
        if !verified {
            return Err(ExchangeError::BadSignature);
        }

        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let times = TimeRules {
            leeway: self.leeway,
            max_lifetime: p.max_lifetime,
        };
        let exp = claims::check(&claims, &p.audience, &times, now)?;
        let subject = match lookup(&claims, &p.subject_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ExchangeError::MissingClaim(p.subject_claim.clone())),
        };
        let (index, rule) = p
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.when.matches(&claims))
            .ok_or(ExchangeError::NoMapping)?;
        let remaining = Duration::from_secs(exp.saturating_sub(now).max(1));
        let ttl = rule
            .ttl
            .unwrap_or(self.default_ttl)
            .min(self.max_ttl)
            .min(remaining);
        Ok(Grant {
            provider: p.name.clone(),
            subject,
            roles: rule.roles.clone(),
            resources: rule.resources.clone(),
            ttl,
            rule: index,
            token_hash: token_hash(token),
            token_exp: exp,
        })
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field(
                "names",
                &self.providers.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// base64url of the first 16 bytes of SHA-256 over the token.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}
