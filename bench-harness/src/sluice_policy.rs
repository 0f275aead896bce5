//! The role of the `sluice-policy` target: the full statement policy and masking on every
//! statement, so that a run measures what classification, the denylist, the derived-use checks
//! and `DataRow` scanning cost against the pass-through `admin` role.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::proc;

/// Role the `sluice-policy` target's token carries.
pub const ROLE: &str = "policy";

/// Statement classes the rule allows; every other class, and any class the gateway adds
/// later (`default`), is blocked.
const ALLOWED: &[&str] = &["read", "session", "transaction"];

/// Statement classes named explicitly as blocked, so the file reads as the whole rule.
const BLOCKED: &[&str] = &["write", "ddl", "admin", "copy_out", "procedural", "unknown"];

/// Command prefixes the rule refuses even where their class would be allowed.
const DENY_COMMANDS: &[&str] = &["TRUNCATE", "DROP", "ALTER SYSTEM"];

/// Function patterns the rule refuses.
const DENY_FUNCTIONS: &[&str] = &["pg_sleep", "pg_read_file", "dblink*", "lo_*"];

/// SQL word sequences the rule refuses.
const DENY_PATTERNS: &[&str] = &["pg_authid", "pg_shadow", "pg_user_mapping"];

/// Cap on result rows; far above what the select-only load returns, so it never cuts a result
/// but the row counter still runs.
pub const MAX_ROWS: u64 = 100_000;

/// Column masking rules. `pgbench_accounts.filler` is a real column of the benchmark table;
/// the others name columns the benchmark never reads, so the rule set has the shape of a real
/// one without changing what pgbench receives.
const MASK_COLUMNS: &[(&str, &str)] = &[
    ("pgbench_accounts.filler", "full"),
    ("email", "full"),
    ("ssn", "full"),
    ("card_number", "last4"),
];

/// Every value detector, so each DataRow field is scanned.
const DETECTORS: &[&str] = &["cards", "emails", "ssns", "secrets"];

/// A statement the rule must refuse, used to check the policy is in force before measuring.
/// Harmless should it ever run: it updates nothing.
pub const BLOCKED_PROBE: &str = "UPDATE pgbench_branches SET bbalance = bbalance WHERE false";

/// Clear value a detector must hide, used to check masking is in force before measuring.
pub const MASK_PROBE_VALUE: &str = "bench.probe@example.com";

/// A query whose result holds [`MASK_PROBE_VALUE`].
pub fn mask_probe() -> String {
    format!("SELECT '{MASK_PROBE_VALUE}'::text AS contact")
}

/// Checks through `endpoint` that the policy is in force (a write is refused with SQLSTATE
/// 42501) and that masking is (a detector hides a clear value), so a run never reports a
/// policy cost that was not paid.
pub fn verify(endpoint: &Endpoint, psql: &Path) -> Result<(), String> {
    let query = |sql: &str| {
        let mut cmd = Command::new(psql);
        endpoint.apply(&mut cmd);
        cmd.env("PGCONNECT_TIMEOUT", "5").args([
            "-X",
            "-At",
            "-v",
            "VERBOSITY=verbose",
            "-d",
            &endpoint.dbname,
            "-c",
            sql,
        ]);
        proc::run(&mut cmd, Duration::from_secs(30))
    };
    let blocked = query(BLOCKED_PROBE)?;
    if blocked.status.success() || !blocked.stderr.contains("42501") {
        return Err(format!(
            "policy not in force: `{BLOCKED_PROBE}` was not refused with 42501 ({}){}",
            blocked.status,
            blocked.stderr.trim()
        ));
    }
    let masked = query(&mask_probe())?.ok("masking probe")?;
    if masked.contains(MASK_PROBE_VALUE) {
        return Err(format!(
            "masking not in force: the email detector let `{}` through",
            masked.trim()
        ));
    }
    Ok(())
}

/// TOML that adds [`ROLE`] for `resource` to a configuration written by `sluice init`.
pub fn role_toml(resource: &str) -> String {
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|s| quoted(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\n# Added by bench-harness for targets sluice-policy and sluice-audit: statement policy\n\
         # and masking on every statement (classification, denylist, derived-use checks,\n\
         # DataRow scanning).\n\
         [role.{ROLE}]\n\
         resources = [{}]\n\n\
         [role.{ROLE}.rules.\"*\"]\n",
        quoted(resource)
    ));
    for class in ALLOWED {
        out.push_str(&format!("{class} = \"allow\"\n"));
    }
    for class in BLOCKED {
        out.push_str(&format!("{class} = \"block\"\n"));
    }
    out.push_str("default = \"block\"\n");
    out.push_str("require_where = true\n");
    out.push_str(&format!("max_rows = {MAX_ROWS}\n"));
    out.push_str(&format!("deny_commands = {}\n", list(DENY_COMMANDS)));
    out.push_str(&format!("deny_functions = {}\n", list(DENY_FUNCTIONS)));
    out.push_str(&format!("deny_patterns = {}\n", list(DENY_PATTERNS)));
    let columns: Vec<String> = MASK_COLUMNS
        .iter()
        .map(|(column, style)| format!("{} = {}", quoted(column), quoted(style)))
        .collect();
    out.push_str(&format!(
        "\n[role.{ROLE}.rules.\"*\".mask]\ncolumns = {{ {} }}\ndetectors = {}\n",
        columns.join(", "),
        list(DETECTORS)
    ));
    out
}

/// A TOML basic string. The values here are fixed ASCII; escaping keeps a future edit safe.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::{Table, Value};

    /// What `sluice init --resource bench` writes for roles, enough to check the appended
    /// text merges into the same document.
    const INIT_ROLES: &str =
        "[role.admin]\nresources = [\"*\"]\n\n[role.reader]\nresources = [\"bench\"]\n";

    fn parsed() -> Table {
        let text = format!("{INIT_ROLES}{}", role_toml("bench"));
        text.parse::<Table>().expect("appended role is valid TOML")
    }

    fn rule(doc: &Table) -> &Table {
        doc["role"][ROLE]["rules"]["*"]
            .as_table()
            .expect("rule \"*\" is a table")
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|s| s.as_str().expect("a string"))
            .collect()
    }

    #[test]
    fn role_keeps_admin_pass_through_and_reaches_the_resource() {
        let doc = parsed();
        let admin = doc["role"]["admin"].as_table().unwrap();
        assert!(
            !admin.contains_key("rules"),
            "admin stays the unrestricted role"
        );
        assert_eq!(strings(&doc["role"][ROLE]["resources"]), ["bench"]);
    }

    #[test]
    fn rule_allows_read_session_transaction_and_blocks_the_rest() {
        let doc = parsed();
        let rule = rule(&doc);
        let action = |class: &str| rule[class].as_str().unwrap();
        for class in ["read", "session", "transaction"] {
            assert_eq!(action(class), "allow", "{class}");
        }
        for class in [
            "write",
            "ddl",
            "admin",
            "copy_out",
            "procedural",
            "unknown",
            "default",
        ] {
            assert_eq!(action(class), "block", "{class}");
        }
        for (_, v) in rule.iter().filter(|(_, v)| v.is_str()) {
            assert!(matches!(v.as_str(), Some("allow" | "block")));
        }
    }

    #[test]
    fn rule_sets_where_row_cap_and_deny_lists() {
        let doc = parsed();
        let rule = rule(&doc);
        assert_eq!(rule["require_where"].as_bool(), Some(true));
        assert_eq!(rule["max_rows"].as_integer(), Some(100_000));
        assert!(strings(&rule["deny_commands"]).contains(&"TRUNCATE"));
        assert!(strings(&rule["deny_functions"]).contains(&"pg_sleep"));
        assert!(strings(&rule["deny_patterns"]).contains(&"pg_authid"));
    }

    #[test]
    fn masking_has_column_rules_and_every_detector() {
        let doc = parsed();
        let mask = rule(&doc)["mask"].as_table().unwrap();
        let columns = mask["columns"].as_table().unwrap();
        assert_eq!(
            columns["pgbench_accounts.filler"].as_str(),
            Some("full"),
            "a dotted column name stays one quoted key"
        );
        assert_eq!(columns["email"].as_str(), Some("full"));
        assert_eq!(columns["card_number"].as_str(), Some("last4"));
        assert_eq!(
            strings(&mask["detectors"]),
            ["cards", "emails", "ssns", "secrets"]
        );
    }

    #[test]
    fn probes_are_statements_the_rule_acts_on() {
        // The blocked probe is a write with a WHERE clause: refused by class, not by
        // require_where, and it changes nothing should a broken gateway let it through.
        assert!(BLOCKED_PROBE.starts_with("UPDATE") && BLOCKED_PROBE.ends_with("WHERE false"));
        assert!(mask_probe().contains(MASK_PROBE_VALUE));
    }

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted("x\ny"), "\"x\\u000Ay\"");
        let doc: Table = format!("k = {}", quoted("a\"b\\c\n")).parse().unwrap();
        assert_eq!(doc["k"].as_str(), Some("a\"b\\c\n"));
    }
}
