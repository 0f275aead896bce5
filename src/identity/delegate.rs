//! Delegation: what a token may hand to a child. Pure; the control plane signs the result.
//!
//! A child is always a subset of its parent: its resources are among the parent's, each of its
//! roles is one of the parent's or declared weaker than one of them, it expires no later than
//! the parent, and the chain below the root stays within the configured depth. The child's
//! chain is the parent's plus the parent itself, so every link is in the token and audit
//! needs no lookup.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::claims::{ChainLink, Claims};
use super::issue::IssueRequest;
use crate::config::RoleSection;

/// Longest name a delegate may be given.
pub const MAX_NAME_LEN: usize = 128;

/// What the parent asks for its child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegateRequest {
    /// The child's name: its subject, and its link in the chain of its own children.
    pub name: String,
    pub roles: Vec<String>,
    pub resources: Vec<String>,
    /// Lifetime; the configured default (cut to the parent's remaining life) when absent.
    pub ttl: Option<Duration>,
}

/// The configuration delegation is judged against.
pub struct DelegationRules<'a> {
    pub roles: &'a BTreeMap<String, RoleSection>,
    pub max_depth: usize,
    pub default_ttl: Duration,
}

/// Why a delegation was refused. Each has a stable code for the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegateError {
    #[error("the child needs a name of 1 to {MAX_NAME_LEN} printable characters")]
    BadName,
    #[error("the child needs at least one role")]
    NoRoles,
    #[error("the child needs at least one resource")]
    NoResources,
    #[error("role `{0}` is not configured")]
    UnknownRole(String),
    #[error("role `{0}` is stronger than every role of the parent token")]
    RoleTooStrong(String),
    #[error("resource `{0}` is not among the parent token's resources")]
    ResourceNotHeld(String),
    #[error(
        "the child would expire after its parent: the parent has {left}s left, {asked}s were asked"
    )]
    OutlivesParent { asked: u64, left: u64 },
    #[error("the parent token has expired")]
    ParentExpired,
    #[error("the delegation chain would be {depth} links deep; at most {max} are allowed")]
    TooDeep { depth: usize, max: usize },
}

impl DelegateError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DelegateError::BadName => "bad_name",
            DelegateError::NoRoles => "no_roles",
            DelegateError::NoResources => "no_resources",
            DelegateError::UnknownRole(_) => "unknown_role",
            DelegateError::RoleTooStrong(_) => "role_too_strong",
            DelegateError::ResourceNotHeld(_) => "resource_not_held",
            DelegateError::OutlivesParent { .. } => "outlives_parent",
            DelegateError::ParentExpired => "parent_expired",
            DelegateError::TooDeep { .. } => "chain_too_deep",
        }
    }
}

/// The issue request for `parent`'s child as asked in `req` at `now`, or why it is refused.
pub fn delegate(
    parent: &Claims,
    req: &DelegateRequest,
    rules: &DelegationRules<'_>,
    now: SystemTime,
) -> Result<IssueRequest, DelegateError> {
    let name_ok = !req.name.trim().is_empty()
        && req.name.chars().count() <= MAX_NAME_LEN
        && !req.name.chars().any(char::is_control);
    if !name_ok {
        return Err(DelegateError::BadName);
    }
    let depth = parent.chain.len() + 1;
    if depth > rules.max_depth {
        return Err(DelegateError::TooDeep {
            depth,
            max: rules.max_depth,
        });
    }
    if req.roles.is_empty() {
        return Err(DelegateError::NoRoles);
    }
    for role in &req.roles {
        check_role(parent, role, rules.roles)?;
    }
    if req.resources.is_empty() {
        return Err(DelegateError::NoResources);
    }
    for r in &req.resources {
        let held = parent.resources.iter().any(|p| p == "*" || p == r);
        if !held {
            return Err(DelegateError::ResourceNotHeld(r.clone()));
        }
    }
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let left = parent.exp.saturating_sub(now_secs);
    if left == 0 {
        return Err(DelegateError::ParentExpired);
    }
    let ttl = match req.ttl {
        Some(asked) if asked.as_secs() > left => {
            return Err(DelegateError::OutlivesParent {
                asked: asked.as_secs(),
                left,
            })
        }
        Some(asked) => asked,
        None => rules.default_ttl.min(Duration::from_secs(left)),
    };
    let mut chain = parent.chain.clone();
    chain.push(ChainLink {
        jti: parent.jti.clone(),
        name: parent.sub.clone(),
    });
    Ok(IssueRequest {
        subject: req.name.clone(),
        roles: dedup(&req.roles),
        resources: dedup(&req.resources),
        ttl,
        chain,
    })
}

/// A role may be handed on if the parent holds it, or if it is declared weaker than one of the
/// parent's roles. Roles without a declared strength only pass as themselves.
fn check_role(
    parent: &Claims,
    role: &str,
    roles: &BTreeMap<String, RoleSection>,
) -> Result<(), DelegateError> {
    let Some(section) = roles.get(role) else {
        return Err(DelegateError::UnknownRole(role.to_owned()));
    };
    if parent.roles.iter().any(|p| p == role) {
        return Ok(());
    }
    let weaker = section.strength.is_some_and(|asked| {
        parent
            .roles
            .iter()
            .filter_map(|p| roles.get(p)?.strength)
            .any(|held| asked < held)
    });
    // An admin role is never reached by strength alone.
    if weaker && !section.admin {
        Ok(())
    } else {
        Err(DelegateError::RoleTooStrong(role.to_owned()))
    }
}

fn dedup(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> BTreeMap<String, RoleSection> {
        let mut m = BTreeMap::new();
        for (name, strength, admin) in [
            ("deployer", Some(50), false),
            ("agent", Some(30), false),
            ("reader", Some(10), false),
            ("auditor", None, false),
            ("ops", Some(5), true),
        ] {
            m.insert(
                name.to_string(),
                RoleSection {
                    resources: vec!["*".into()],
                    strength,
                    admin,
                    ..Default::default()
                },
            );
        }
        m
    }

    fn parent(roles: &[&str], resources: &[&str], exp: u64, depth: usize) -> Claims {
        let ancestors: Vec<String> = (0..depth).map(|i| format!("a{i}")).collect();
        let ancestors: Vec<&str> = ancestors.iter().map(String::as_str).collect();
        let mut c = Claims::test_chain("p", &ancestors, exp);
        c.sub = "ci-job".into();
        c.roles = roles.iter().map(|s| s.to_string()).collect();
        c.resources = resources.iter().map(|s| s.to_string()).collect();
        c
    }

    fn req(roles: &[&str], resources: &[&str], ttl: Option<u64>) -> DelegateRequest {
        DelegateRequest {
            name: "child".into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            ttl: ttl.map(Duration::from_secs),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn run(p: &Claims, r: &DelegateRequest, now: u64) -> Result<IssueRequest, DelegateError> {
        let roles = roles();
        let rules = DelegationRules {
            roles: &roles,
            max_depth: 3,
            default_ttl: Duration::from_secs(900),
        };
        delegate(p, r, &rules, at(now))
    }

    #[test]
    fn a_narrower_child_gets_the_parent_in_its_chain() {
        let p = parent(&["deployer"], &["orders", "billing"], 10_000, 1);
        let child = run(&p, &req(&["reader"], &["orders"], Some(300)), 1_000).unwrap();
        assert_eq!(child.subject, "child");
        assert_eq!(child.roles, vec!["reader"]);
        assert_eq!(child.resources, vec!["orders"]);
        assert_eq!(child.ttl, Duration::from_secs(300));
        let links: Vec<_> = child.chain.iter().map(|l| l.jti.as_str()).collect();
        assert_eq!(links, vec!["a0", "p"]);
        assert_eq!(child.chain[1].name, "ci-job");
    }

    #[test]
    fn the_same_role_and_resources_may_be_handed_on() {
        let p = parent(&["auditor"], &["*"], 10_000, 0);
        let child = run(&p, &req(&["auditor"], &["*", "orders"], None), 1_000).unwrap();
        assert_eq!(child.resources, vec!["*", "orders"]);
        // Default ttl, cut to the parent's remaining life.
        assert_eq!(child.ttl, Duration::from_secs(900));
        let child = run(&p, &req(&["auditor"], &["orders"], None), 9_500).unwrap();
        assert_eq!(child.ttl, Duration::from_secs(500));
    }

    #[test]
    fn wider_children_are_refused_with_a_reason() {
        let p = parent(&["agent"], &["orders"], 10_000, 0);
        let cases = [
            (req(&["deployer"], &["orders"], None), "role_too_strong"),
            (
                req(&["agent", "deployer"], &["orders"], None),
                "role_too_strong",
            ),
            (req(&["auditor"], &["orders"], None), "role_too_strong"),
            (req(&["ops"], &["orders"], None), "role_too_strong"),
            (req(&["nobody"], &["orders"], None), "unknown_role"),
            (req(&["reader"], &["billing"], None), "resource_not_held"),
            (req(&["reader"], &["*"], None), "resource_not_held"),
            (
                req(&["reader"], &["orders"], Some(9_001)),
                "outlives_parent",
            ),
            (req(&[], &["orders"], None), "no_roles"),
            (req(&["reader"], &[], None), "no_resources"),
        ];
        for (r, code) in cases {
            let err = run(&p, &r, 1_000).unwrap_err();
            assert_eq!(err.code(), code, "{r:?}: {err}");
        }
        assert!(run(&p, &req(&["reader"], &["orders"], Some(9_000)), 1_000).is_ok());
    }

    #[test]
    fn depth_expiry_and_names_are_bounded() {
        let r = req(&["reader"], &["orders"], None);
        let deep = parent(&["agent"], &["orders"], 10_000, 3);
        assert_eq!(
            run(&deep, &r, 1_000).unwrap_err(),
            DelegateError::TooDeep { depth: 4, max: 3 }
        );
        assert!(run(&parent(&["agent"], &["orders"], 10_000, 2), &r, 1_000).is_ok());
        let p = parent(&["agent"], &["orders"], 10_000, 0);
        assert_eq!(
            run(&p, &r, 10_000).unwrap_err(),
            DelegateError::ParentExpired
        );
        for name in ["", "  ", "a\nb", &"x".repeat(MAX_NAME_LEN + 1)] {
            let mut bad = r.clone();
            bad.name = name.to_string();
            assert_eq!(run(&p, &bad, 1_000).unwrap_err(), DelegateError::BadName);
        }
    }
}
