//! The token API of the control plane: delegation, revocation and the live-session listing,
//! authenticated with sluice tokens (admin rights come from a role flagged `admin`).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Deserialize;
use tracing::{info, warn};

use super::api;
use super::http::Response;
use super::limit::RateLimiter;
use crate::approvals::{Approvals, Decision};
use crate::audit::{Audit, Event, Kind};
use crate::config::parse_duration;
use crate::identity::oidc::Providers;
use crate::identity::{
    delegate, Claims, DelegateRequest, DelegationRules, IssueRequest, Ledger, Revoke, TokenIssuer,
};
use crate::proxy::sessions::SessionRegistry;
use crate::proxy::state::Snapshot;

/// What the token API works with. Lives on the control-plane thread only.
pub struct Plane {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub issuer: TokenIssuer,
    pub ledger: RefCell<Ledger>,
    pub sessions: Arc<SessionRegistry>,
    pub limiter: RefCell<RateLimiter>,
    /// Identity providers for token exchange; none configured when `None`.
    pub providers: Option<Arc<Providers>>,
    pub audit: Audit,
    /// Held statements waiting for a decision.
    pub approvals: Arc<Approvals>,
    /// The session recorder, for its counters.
    pub recorder: crate::record::Recorder,
}

/// One API request, its head already checked and its body read.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub bearer: Option<&'a str>,
    pub body: &'a [u8],
    pub peer: SocketAddr,
}

/// A refusal: HTTP status, stable code, message for the caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    /// Whether the refusal was audited where it happened (a failed authentication).
    audited: bool,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
        retry_after: None,
        audited: false,
    }
}

impl ApiError {
    fn response(&self) -> Response {
        let mut r = Response::json_error(self.status, self.code, &self.message);
        if let Some(s) = self.retry_after {
            r.headers.push(format!("Retry-After: {s}"));
        }
        r
    }
}

/// Whether `path` belongs to the token API.
pub fn is_api(path: &str) -> bool {
    path.starts_with("/v1/token/")
        || path == api::SESSIONS_PATH
        || path == api::APPROVALS_PATH
        || path.starts_with("/v1/approvals/")
}

/// Answers one API call. Its audit events reach the trail before the answer leaves; when the
/// trail refuses them (`audit.overflow = "fail"`) the caller gets a 503 instead.
pub async fn handle(plane: &Plane, call: Call<'_>) -> Response {
    let mut ctx = Ctx::default();
    let (kind, result) = match (call.method, call.path) {
        ("POST", api::TOKEN_EXCHANGE_PATH) => (
            Some(Kind::TokenExchange),
            exchange_call(plane, &call, &mut ctx),
        ),
        ("POST", api::TOKEN_DELEGATE_PATH) => (
            Some(Kind::TokenDelegation),
            delegate_call(plane, &call, &mut ctx),
        ),
        ("POST", api::TOKEN_REVOKE_PATH) => (
            Some(Kind::TokenRevocation),
            revoke_call(plane, &call, &mut ctx),
        ),
        ("GET", api::SESSIONS_PATH) => (None, sessions_call(plane, &call, &mut ctx)),
        ("GET", api::APPROVALS_PATH) => (None, approvals_call(plane, &call, &mut ctx)),
        (_, api::APPROVALS_PATH) => (None, Err(err(405, "method_not_allowed", "use GET"))),
        (method, path) if path.starts_with("/v1/approvals/") => match decision_of(path) {
            Some(_) if method != "POST" => (None, Err(err(405, "method_not_allowed", "use POST"))),
            Some((id, approve)) => (
                Some(Kind::Approval),
                decide_call(plane, &call, &mut ctx, id, approve),
            ),
            None => (None, Err(err(404, "not_found", "no such endpoint"))),
        },
        (_, api::TOKEN_DELEGATE_PATH | api::TOKEN_REVOKE_PATH | api::TOKEN_EXCHANGE_PATH) => {
            (None, Err(err(405, "method_not_allowed", "use POST")))
        }
        (_, api::SESSIONS_PATH) => (None, Err(err(405, "method_not_allowed", "use GET"))),
        _ => (None, Err(err(404, "not_found", "no such endpoint"))),
    };
    if let (Some(kind), Err(e)) = (kind, &result) {
        if !e.audited {
            let detail = format!("{}: {}", e.code, e.message);
            let refused = noted(&call, kind, "refuse", ctx.who.as_ref(), detail);
            ctx.trail.push(refused);
        }
    }
    for e in ctx.trail {
        if let Err(refused) = plane.audit.record(e).await {
            warn!(error = %refused, "an admin API event was not audited");
            return err(
                503,
                "audit_unavailable",
                "the audit trail cannot take this request",
            )
            .response();
        }
    }
    result.unwrap_or_else(|e| e.response())
}

/// What one call leaves behind: its audit events, and who called once that is known.
#[derive(Default)]
struct Ctx {
    trail: Vec<Event>,
    who: Option<Claims>,
}

/// An audit event of an API call by `who` (when known).
fn event(call: &Call<'_>, kind: Kind, decision: &'static str, who: Option<&Claims>) -> Event {
    let mut e = Event::new(kind);
    e.client = Some(call.peer);
    e.decision = Some(decision);
    e.identity = who.map(|c| Arc::new(crate::proxy::pg::audit::identity_of(c, None)));
    e
}

/// `event` with a detail.
fn noted(
    call: &Call<'_>,
    kind: Kind,
    decision: &'static str,
    who: Option<&Claims>,
    detail: String,
) -> Event {
    let mut e = event(call, kind, decision, who);
    e.detail = Some(detail);
    e
}

impl Plane {
    /// The verified claims of the caller's bearer token, also kept in `ctx`; a refusal is
    /// audited as a failed authentication.
    fn caller(&self, call: &Call<'_>, ctx: &mut Ctx) -> Result<Claims, ApiError> {
        match self.verify_caller(call) {
            Ok(claims) => {
                ctx.who = Some(claims.clone());
                Ok(claims)
            }
            Err(mut e) => {
                let detail = format!("{} {}: {}", call.path, e.code, e.message);
                let failed = noted(call, Kind::Authentication, "failure", None, detail);
                ctx.trail.push(failed);
                e.audited = true;
                Err(e)
            }
        }
    }

    fn verify_caller(&self, call: &Call<'_>) -> Result<Claims, ApiError> {
        let Some(bearer) = call.bearer else {
            return Err(err(
                401,
                "unauthenticated",
                "this endpoint needs Authorization: Bearer <sluice token>",
            ));
        };
        let claims = self
            .snapshot
            .load()
            .verifier
            .verify(bearer, SystemTime::now())
            .map_err(|e| err(401, "invalid_token", e.to_string()))?;
        if self.ledger.borrow().revocations().load().covers(&claims) {
            return Err(err(401, "token_revoked", "token was revoked"));
        }
        Ok(claims)
    }

    fn is_admin(&self, claims: &Claims) -> bool {
        let snapshot = self.snapshot.load();
        claims
            .roles
            .iter()
            .any(|r| snapshot.config.roles.get(r).is_some_and(|s| s.admin))
    }

    /// Charges one token request to `key`.
    fn charge(&self, key: &str) -> Result<(), ApiError> {
        self.limiter
            .borrow_mut()
            .take(key, Instant::now())
            .map_err(|wait| ApiError {
                retry_after: Some(wait.as_secs().max(1)),
                ..err(429, "rate_limited", "too many token requests; retry later")
            })
    }

    /// Signs `req`, notes it in the ledger and answers with it.
    pub fn mint(
        &self,
        req: &IssueRequest,
        idp: Option<&str>,
    ) -> Result<(api::TokenResponse, Claims), ApiError> {
        let (token, claims) = self
            .issuer
            .issue(req, SystemTime::now())
            .map_err(|e| err(400, "invalid_request", e.to_string()))?;
        if let Err(e) = self.ledger.borrow_mut().issued(&claims, idp) {
            warn!(error = %e, "cannot record an issued token");
            return Err(err(500, "internal", "cannot record the token"));
        }
        let answer = api::TokenResponse {
            token,
            token_id: claims.jti.clone(),
            subject: claims.sub.clone(),
            roles: claims.roles.clone(),
            resources: claims.resources.clone(),
            expires_at: claims.exp,
            chain: claims.chain.clone(),
        };
        Ok((answer, claims))
    }
}

/// The rate-limit key of a token holder: the root of its tree, so that a tree of delegates
/// shares one budget.
fn tree_key(claims: &Claims) -> String {
    let root = claims.chain.first().map_or(&claims.jti, |l| &l.jti);
    format!("tree:{root}")
}

fn body<'a, T: Deserialize<'a>>(call: &Call<'a>) -> Result<T, ApiError> {
    serde_json::from_slice(call.body)
        .map_err(|e| err(400, "invalid_request", format!("request body: {e}")))
}

fn exchange_call(plane: &Plane, call: &Call<'_>, ctx: &mut Ctx) -> Result<Response, ApiError> {
    plane.charge(&format!("ip:{}", call.peer.ip()))?;
    let b: api::ExchangeRequest = body(call)?;
    let Some(providers) = &plane.providers else {
        return Err(err(
            404,
            "exchange_disabled",
            "no identity provider is configured on this gateway",
        ));
    };
    let grant = providers
        .exchange(&b.id_token, SystemTime::now())
        .map_err(|e| {
            info!(peer = %call.peer, code = e.code(), reason = %e, "token exchange refused");
            let status = if e.is_gateway_side() { 503 } else { 401 };
            err(status, e.code(), e.to_string())
        })?;
    if plane
        .ledger
        .borrow()
        .revocations()
        .load()
        .covers_idp(&grant.token_hash)
    {
        info!(peer = %call.peer, provider = grant.provider, "revoked identity token replayed");
        return Err(err(
            401,
            "identity_token_revoked",
            "the session token this identity token was exchanged for was revoked; get a new identity token",
        ));
    }
    let req = IssueRequest {
        subject: format!("{}:{}", grant.provider, grant.subject),
        roles: grant.roles.clone(),
        resources: grant.resources.clone(),
        ttl: grant.ttl,
        chain: Vec::new(),
    };
    let (minted, claims) = plane.mint(&req, Some(&grant.token_hash))?;
    let detail = format!(
        "provider {}, rule {}, identity token {}",
        grant.provider, grant.rule, grant.token_hash
    );
    ctx.trail.push(noted(
        call,
        Kind::TokenExchange,
        "success",
        Some(&claims),
        detail,
    ));
    info!(
        peer = %call.peer,
        provider = grant.provider,
        rule = grant.rule,
        token = minted.token_id,
        subject = minted.subject,
        "identity token exchanged"
    );
    Ok(Response::json(200, &minted))
}

fn delegate_call(plane: &Plane, call: &Call<'_>, ctx: &mut Ctx) -> Result<Response, ApiError> {
    let parent = &plane.caller(call, ctx)?;
    plane.charge(&tree_key(parent))?;
    let b: api::DelegateRequest = body(call)?;
    let ttl = match &b.ttl {
        Some(t) => Some(parse_duration(t).map_err(|e| err(400, "invalid_request", e))?),
        None => None,
    };
    let req = DelegateRequest {
        name: b.name,
        roles: b.roles,
        resources: b.resources,
        ttl,
    };
    let child = {
        let snapshot = plane.snapshot.load();
        let identity = &snapshot.config.identity;
        let rules = DelegationRules {
            roles: &snapshot.config.roles,
            max_depth: identity.max_delegation_depth,
            default_ttl: identity.default_ttl,
        };
        delegate(parent, &req, &rules, SystemTime::now())
    };
    let child = child.map_err(|e| {
        info!(parent = parent.jti, name = req.name, reason = %e, "delegation refused");
        err(403, e.code(), e.to_string())
    })?;
    let (minted, claims) = plane.mint(&child, None)?;
    let detail = format!("delegated by {}", parent.jti);
    ctx.trail.push(noted(
        call,
        Kind::TokenDelegation,
        "success",
        Some(&claims),
        detail,
    ));
    info!(peer = %call.peer, parent = parent.jti, child = minted.token_id, name = minted.subject, "token delegated");
    Ok(Response::json(200, &minted))
}

fn revoke_call(plane: &Plane, call: &Call<'_>, ctx: &mut Ctx) -> Result<Response, ApiError> {
    let caller = &plane.caller(call, ctx)?;
    plane.charge(&tree_key(caller))?;
    let b: api::RevokeRequest = body(call)?;
    if b.token_id.is_empty() || b.token_id.len() > 128 {
        return Err(err(
            400,
            "invalid_request",
            "token_id must be 1 to 128 bytes",
        ));
    }
    let allowed = plane.is_admin(caller) || plane.ledger.borrow().may_revoke(caller, &b.token_id);
    if !allowed {
        return Err(err(
            403,
            "not_allowed",
            "only an admin, the token itself or one of its ancestors may revoke it",
        ));
    }
    let now = SystemTime::now();
    let by = format!("{} ({})", caller.sub, caller.jti);
    let outcome = plane
        .ledger
        .borrow_mut()
        .revoke(&b.token_id, None, &by, now)
        .map_err(|e| {
            warn!(error = %e, "cannot record a revocation");
            err(500, "internal", "cannot record the revocation")
        })?;
    info!(peer = %call.peer, token = b.token_id, by, "token revoked");
    let detail = format!("revoked {} and every token delegated from it", b.token_id);
    ctx.trail.push(noted(
        call,
        Kind::TokenRevocation,
        "success",
        Some(caller),
        detail,
    ));
    Ok(Response::json(
        200,
        &api::RevokeResponse {
            revoked: b.token_id,
            at: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            already: outcome == Revoke::Already,
        },
    ))
}

fn sessions_call(plane: &Plane, call: &Call<'_>, ctx: &mut Ctx) -> Result<Response, ApiError> {
    let caller = plane.caller(call, ctx)?;
    if !plane.is_admin(&caller) {
        return Err(err(
            403,
            "not_admin",
            "listing sessions needs an admin token",
        ));
    }
    let live = plane.sessions.list();
    let sessions = live
        .iter()
        .map(|e| api::SessionEntry {
            session: e.id,
            shard: e.shard,
            token_id: e.claims.jti.clone(),
            subject: e.claims.sub.clone(),
            chain: e.claims.chain.clone(),
            roles: e.claims.roles.clone(),
            resource: e.resource.clone(),
            user: e.user.clone(),
            client: e.client.to_string(),
            started_at: e
                .started
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            statements: e.statements.load(std::sync::atomic::Ordering::Relaxed),
        })
        .collect();
    Ok(Response::json(200, &api::SessionsResponse { sessions }))
}

/// `/v1/approvals/{id}/approve` or `/deny`: the id and whether it approves.
fn decision_of(path: &str) -> Option<(&str, bool)> {
    let rest = path.strip_prefix("/v1/approvals/")?;
    let (id, verb) = rest.split_once('/')?;
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    match verb {
        "approve" if ok => Some((id, true)),
        "deny" if ok => Some((id, false)),
        _ => None,
    }
}

impl Plane {
    /// Whether the caller's roles may approve statements on `resource`.
    fn approves(&self, claims: &Claims, resource: &str) -> bool {
        let snapshot = self.snapshot.load();
        claims.roles.iter().any(|r| {
            snapshot
                .config
                .roles
                .get(r)
                .is_some_and(|s| s.approves(resource))
        })
    }

    fn is_approver(&self, claims: &Claims) -> bool {
        let snapshot = self.snapshot.load();
        claims
            .roles
            .iter()
            .any(|r| snapshot.config.roles.get(r).is_some_and(|s| s.approver))
    }
}

fn approvals_call(plane: &Plane, call: &Call<'_>, ctx: &mut Ctx) -> Result<Response, ApiError> {
    let caller = plane.caller(call, ctx)?;
    if !plane.is_admin(&caller) && !plane.is_approver(&caller) {
        return Err(err(
            403,
            "not_approver",
            "listing approvals needs an approver or admin token",
        ));
    }
    let (pending, recent) = plane.approvals.list();
    Ok(Response::json(
        200,
        &api::ApprovalsResponse { pending, recent },
    ))
}

fn decide_call(
    plane: &Plane,
    call: &Call<'_>,
    ctx: &mut Ctx,
    id: &str,
    approve: bool,
) -> Result<Response, ApiError> {
    let caller = plane.caller(call, ctx)?;
    let b: api::DecisionRequest = if call.body.is_empty() {
        api::DecisionRequest::default()
    } else {
        body(call)?
    };
    let window = match (&b.window, approve) {
        (Some(_), false) => {
            return Err(err(
                400,
                "invalid_request",
                "a window only goes with an approval",
            ))
        }
        (Some(w), true) => Some(parse_duration(w).map_err(|e| err(400, "invalid_request", e))?),
        (None, _) => None,
    };
    let max_window = plane.snapshot.load().config.approvals.max_window;
    let decided = plane
        .approvals
        .decide(
            id,
            &caller,
            Decision {
                approve,
                comment: b.comment.clone(),
                window,
            },
            max_window,
            |resource| plane.approves(&caller, resource),
        )
        .map_err(|e| {
            let status = match e {
                crate::approvals::DecideError::NotFound(_) => 404,
                crate::approvals::DecideError::AlreadyDecided(..) => 409,
                crate::approvals::DecideError::WindowTooLong(_) => 400,
                _ => 403,
            };
            err(status, e.code(), e.to_string())
        })?;
    let verb = if approve { "approved" } else { "denied" };
    info!(peer = %call.peer, id, by = caller.sub, verb, "approval decided");
    let mut e = noted(
        call,
        Kind::Approval,
        verb,
        Some(&caller),
        format!(
            "approval {id} of session {} ({})",
            decided.session, decided.subject
        ),
    );
    e.resource = Some(decided.resource.as_str().into());
    e.fingerprint = Some(decided.fingerprint.clone());
    ctx.trail.push(e);
    Ok(Response::json(200, &decided))
}
