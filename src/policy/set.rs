//! Every role's policy on every resource it reaches, compiled once per configuration snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{rule_path, validate_policy, Config, RuleSection};
use crate::mask::{ColumnRules, HashKey, MaskError, MaskPolicy, MaskStyle};

use super::rule::Rule;
use super::session::{Classifiers, SessionPolicy};

/// The compiled policy of a configuration. `Send + Sync`: shards share it read-only.
#[derive(Debug)]
pub struct PolicySet {
    /// Role name -> resource name -> policy. Resources share the `Arc` of the rule they fall
    /// under.
    roles: HashMap<String, HashMap<String, Arc<SessionPolicy>>>,
}

impl PolicySet {
    /// Compiles the policy of `config`. `mask_key` is the `hash` style's key (see
    /// [`super::mask_key_from_signing_key`]); a rule using that style without one is an error.
    /// Errors are `key: message` lines, the same check-config reports.
    pub fn compile(config: &Config, mask_key: Option<HashKey>) -> Result<PolicySet, Vec<String>> {
        let problems = validate_policy(config);
        if !problems.is_empty() {
            return Err(problems.iter().map(ToString::to_string).collect());
        }
        let classifiers = Arc::new(Classifiers::new(&config.policy));
        let mut errors = Vec::new();
        let mut roles = HashMap::new();
        for (name, role) in &config.roles {
            let unrestricted = Arc::new(SessionPolicy::new_unrestricted(name, classifiers.clone()));
            let mut by_rule: BTreeMap<&str, Arc<SessionPolicy>> = BTreeMap::new();
            let mut by_resource = HashMap::new();
            for resource in config
                .resources
                .iter()
                .filter(|r| role.allows_resource(&r.name))
            {
                let policy = match role.rule_for(&resource.name) {
                    // Validation guarantees a role with rules covers each of its resources.
                    None => unrestricted.clone(),
                    Some((key, section)) => match by_rule.get(key) {
                        Some(p) => p.clone(),
                        None => {
                            let compiled =
                                compile_rule(name, key, section, &mask_key, &classifiers)
                                    .map(Arc::new);
                            match compiled {
                                Ok(p) => {
                                    by_rule.insert(key, p.clone());
                                    p
                                }
                                Err(e) => {
                                    errors.extend(e);
                                    continue;
                                }
                            }
                        }
                    },
                };
                by_resource.insert(resource.name.clone(), policy);
            }
            roles.insert(name.clone(), by_resource);
        }
        if errors.is_empty() {
            Ok(PolicySet { roles })
        } else {
            Err(errors)
        }
    }

    /// The policy of the first of the token's roles that reaches the resource (`None` if none
    /// does). Roles the configuration does not define are skipped.
    pub fn session(&self, roles: &[String], resource: &str) -> Option<Arc<SessionPolicy>> {
        roles
            .iter()
            .find_map(|role| self.roles.get(role)?.get(resource).cloned())
    }
}

fn compile_rule(
    role: &str,
    key: &str,
    section: &RuleSection,
    mask_key: &Option<HashKey>,
    classifiers: &Arc<Classifiers>,
) -> Result<SessionPolicy, Vec<String>> {
    if section.is_unrestricted() {
        return Ok(SessionPolicy::new_unrestricted(role, classifiers.clone()));
    }
    let path = rule_path(role, key);
    let mut errors = Vec::new();
    let mut columns = Vec::with_capacity(section.mask.columns.len());
    for (pattern, style) in &section.mask.columns {
        match style.parse::<MaskStyle>() {
            Ok(s) => columns.push((pattern.clone(), s)),
            Err(e) => errors.push(format!("{path}.mask.columns: {e}")),
        }
    }
    let mask = ColumnRules::new(&columns)
        .and_then(|rules| MaskPolicy::new(rules, section.mask.detectors(), mask_key.clone()));
    let mask = match mask {
        Ok(m) => Some(m),
        Err(MaskError::MissingKey) => {
            errors.push(format!(
                "{path}.mask.columns: the hash style needs the key derived from the gateway's signing key, and none was given"
            ));
            None
        }
        Err(e) => {
            errors.push(format!("{path}.mask.columns: {e}"));
            None
        }
    };
    let rule = Rule::compile(path, section).map_err(|e| errors.extend(e));
    match (rule, mask) {
        (Ok(rule), Some(mask)) if errors.is_empty() => Ok(SessionPolicy::new_restricted(
            role,
            rule,
            mask,
            masked_column_names(&section.mask.columns),
            classifiers.clone(),
        )),
        _ => Err(errors),
    }
}

/// The column part of each column rule (`public.customers.email` -> `email`), lower case,
/// without repeats.
fn masked_column_names<'a>(
    patterns: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<String> {
    let mut names: Vec<String> = patterns
        .into_iter()
        .map(|(p, _)| p.rsplit('.').next().unwrap_or(p).to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names
}
