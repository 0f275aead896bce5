//! Checks of the statement policy: the function lists, which resources each role's rules name
//! and cover, and every rule's deny lists, limits and masking. Pure: nothing here reads files,
//! so the policy compiler runs the same checks.

use super::model::Config;
use super::policy::{rule_path, toml_key, RuleSection};
use super::validate::{Problem, Problems};
use crate::mask::{ColumnRules, MaskStyle};
use crate::sql::{function_pattern_error, Denylist};

/// Every problem of the policy part of `config` (the `[policy]` section and the rule tables).
pub fn validate_policy(config: &Config) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    check(config, &mut p);
    p.0
}

pub(super) fn check(config: &Config, p: &mut Problems) {
    let policy = &config.policy;
    if let Some(list) = &policy.admin_functions {
        functions("policy.admin_functions", list, p);
    }
    if let Some(list) = &policy.write_functions {
        functions("policy.write_functions", list, p);
    }
    for (name, role) in &config.roles {
        if role.rules.is_empty() {
            continue;
        }
        for key in role.rules.keys().filter(|k| *k != "*") {
            if !config.resources.iter().any(|r| &r.name == key) {
                p.add(
                    rule_path(name, key),
                    format!("names unknown resource `{key}`"),
                );
            } else if !role.allows_resource(key) {
                p.add(
                    rule_path(name, key),
                    format!(
                        "resource `{key}` is not in role.{}.resources, so this rule never applies",
                        toml_key(name)
                    ),
                );
            }
        }
        if !role.rules.contains_key("*") {
            for r in config
                .resources
                .iter()
                .filter(|r| role.allows_resource(&r.name))
            {
                if !role.rules.contains_key(&r.name) {
                    p.add(
                        format!("role.{}.rules", toml_key(name)),
                        format!(
                            "no rule covers resource `{}`, which the role reaches; add [{}] or a \"*\" entry",
                            r.name,
                            rule_path(name, &r.name)
                        ),
                    );
                }
            }
        }
        for (key, rule) in &role.rules {
            check_rule(&rule_path(name, key), rule, p);
        }
    }
}

fn functions(key: &str, patterns: &[String], p: &mut Problems) {
    for (i, pattern) in patterns.iter().enumerate() {
        if let Some(why) = function_pattern_error(pattern) {
            p.add(
                format!("{key}[{i}]"),
                format!("function pattern `{pattern}` {why}"),
            );
        }
    }
}

fn check_rule(path: &str, rule: &RuleSection, p: &mut Problems) {
    if rule.max_rows == Some(0) {
        p.add(
            format!("{path}.max_rows"),
            "must be at least 1 (leave it out for no limit)",
        );
    }
    for (i, command) in rule.deny_commands.iter().enumerate() {
        let mut words = command.split_whitespace().peekable();
        if words.peek().is_none() {
            p.add(format!("{path}.deny_commands[{i}]"), "must not be empty");
        } else if !words.all(|w| w.bytes().all(|b| b.is_ascii_alphabetic())) {
            p.add(
                format!("{path}.deny_commands[{i}]"),
                format!(
                    "`{command}` must be command words (letters only), such as \"DROP\" or \"ALTER SYSTEM\""
                ),
            );
        }
    }
    functions(&format!("{path}.deny_functions"), &rule.deny_functions, p);
    for (i, pattern) in rule.deny_patterns.iter().enumerate() {
        if let Err(e) = Denylist::new(&[pattern.as_str()]) {
            p.add(format!("{path}.deny_patterns[{i}]"), e.to_string());
        }
    }
    for (i, setting) in rule.protected_settings.iter().flatten().enumerate() {
        let ok = !setting.is_empty()
            && setting
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !ok {
            p.add(
                format!("{path}.protected_settings[{i}]"),
                format!("`{setting}` is not a setting name"),
            );
        }
    }
    for (pattern, style) in &rule.mask.columns {
        let key = format!("{path}.mask.columns.{}", toml_key(pattern));
        match style.parse::<MaskStyle>() {
            Err(e) => p.add(key, e.to_string()),
            Ok(style) => {
                if let Err(e) = ColumnRules::new(&[(pattern.clone(), style)]) {
                    p.add(key, e.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixture::{resource, HEAD};

    /// The shared head, the resources orders, billing, and the rest.
    fn base() -> String {
        [HEAD, &resource("orders"), &resource("billing"), BASE_REST].concat()
    }

    const BASE_REST: &str = r#"
[role.admin]
resources = ["*"]
"#;

    fn problems(extra: &str) -> Vec<String> {
        let config: Config = toml::from_str(&format!("{}{extra}", base())).unwrap();
        validate_policy(&config)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn assert_has(problems: &[String], needle: &str) {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem contains {needle:?}: {problems:#?}"
        );
    }

    #[test]
    fn a_complete_rule_set_is_accepted() {
        let found = problems(
            r#"
[policy]
admin_functions = ["pg_read_file", "dblink*"]

[role.reader]
resources = ["orders", "billing"]

[role.reader.rules."*"]
read = "allow"
write = "review"
require_where = true
max_rows = 100
deny_commands = ["TRUNCATE", "alter  system"]
deny_functions = ["pg_sleep", "pg_catalog.pg_ls_*"]
deny_patterns = ["pg_authid", "drop table"]
protected_settings = ["search_path"]

[role.reader.rules.orders.mask]
columns = { card_number = "last4", "public.customers.name" = "hash", "*email*" = "FULL" }
detectors = ["cards", "secrets"]
"#,
        );
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn rules_must_name_known_reachable_resources_and_cover_every_one() {
        let found = problems(
            r#"
[role.reader]
resources = ["orders", "billing"]

[role.reader.rules.orders]
read = "allow"

[role.reader.rules.nope]
read = "allow"

[role.narrow]
resources = ["orders"]

[role.narrow.rules.billing]
read = "allow"
"#,
        );
        assert_has(
            &found,
            "role.reader.rules.nope: names unknown resource `nope`",
        );
        assert_has(
            &found,
            "role.reader.rules: no rule covers resource `billing`",
        );
        assert_has(
            &found,
            "role.narrow.rules.billing: resource `billing` is not in role.narrow.resources",
        );
        assert_has(
            &found,
            "role.narrow.rules: no rule covers resource `orders`",
        );
        // A role reaching every resource needs every one covered too.
        let found = problems(
            "[role.all]\nresources = [\"*\"]\n[role.all.rules.orders]\nread = \"allow\"\n",
        );
        assert_has(&found, "role.all.rules: no rule covers resource `billing`");
    }

    #[test]
    fn bad_rule_contents_are_reported_with_their_key() {
        let found = problems(
            r#"
[policy]
write_functions = ["next val"]

[role.reader]
resources = ["orders"]

[role.reader.rules."*"]
max_rows = 0
deny_commands = ["", "DROP;"]
deny_functions = ["a*b"]
deny_patterns = ["'x'", "unterminated 'quote"]
protected_settings = ["search path"]

[role.reader.rules."*".mask]
columns = { "users..email" = "full", ssn = "blur" }
"#,
        );
        for needle in [
            "policy.write_functions[0]: function pattern `next val`",
            "role.reader.rules.\"*\".max_rows: must be at least 1",
            "role.reader.rules.\"*\".deny_commands[0]: must not be empty",
            "role.reader.rules.\"*\".deny_commands[1]: `DROP;`",
            "role.reader.rules.\"*\".deny_functions[0]: function pattern `a*b`",
            "role.reader.rules.\"*\".deny_patterns[0]: denylist pattern",
            "role.reader.rules.\"*\".deny_patterns[1]: denylist pattern",
            "role.reader.rules.\"*\".protected_settings[0]",
            "role.reader.rules.\"*\".mask.columns.\"users..email\": masking rule `users..email` has an empty part",
            "role.reader.rules.\"*\".mask.columns.ssn: unknown masking style `blur`",
        ] {
            assert_has(&found, needle);
        }
    }

    #[test]
    fn unknown_keys_and_actions_fail_to_parse() {
        for extra in [
            "[role.r]\nresources = [\"orders\"]\n[role.r.rules.\"*\"]\nreed = \"allow\"\n",
            "[role.r]\nresources = [\"orders\"]\n[role.r.rules.\"*\"]\nread = \"maybe\"\n",
            "[role.r]\nresources = [\"orders\"]\n[role.r.rules.\"*\"]\ncopy-out = \"allow\"\n",
            "[role.r]\nresources = [\"orders\"]\n[role.r.rules.\"*\".mask]\ndetectors = [\"phones\"]\n",
            "[policy]\nadmin_function = []\n",
        ] {
            let parsed = toml::from_str::<Config>(&format!("{}{extra}", base()));
            assert!(parsed.is_err(), "{extra}");
        }
    }
}
