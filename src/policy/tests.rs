//! Unit and property tests of compiling and judging.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::config::fixture::{resource, HEAD};
use crate::config::Config;
use crate::mask::{Detectors, MaskStyle};

/// The shared head, the resources demo, billing, and the rest.
fn base() -> String {
    [HEAD, &resource("demo"), &resource("billing"), BASE_REST].concat()
}

const BASE_REST: &str = r#"
[role.admin]
resources = ["*"]

[role.reader]
resources = ["demo", "billing"]

[role.reader.rules."*"]
read = "allow"
transaction = "allow"
session = "allow"
copy_out = "allow"
#STAR#

[role.reader.rules."*".mask]
columns = { card_number = "last4", email = "full" }
"#;

fn key() -> Option<crate::mask::HashKey> {
    Some(mask_key_from_signing_key(&[9; 32]))
}

/// `base()` with `star` added to the reader's `"*"` rule and `extra` appended.
fn config(star: &str, extra: &str) -> Config {
    toml::from_str(&format!("{}{extra}", base().replace("#STAR#", star))).unwrap()
}

fn compile(extra: &str) -> PolicySet {
    PolicySet::compile(&config("", extra), key()).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn compile_errors(extra: &str) -> Vec<String> {
    PolicySet::compile(&config("", extra), key()).unwrap_err()
}

fn session(set: &PolicySet, role: &str, resource: &str) -> Arc<SessionPolicy> {
    set.session(&[role.to_string()], resource).unwrap()
}

/// The reader's policy on `demo` under its `"*"` rule, with `star` added to that rule.
fn reader(star: &str) -> Arc<SessionPolicy> {
    let set = PolicySet::compile(&config(star, ""), key()).unwrap_or_else(|e| panic!("{e:#?}"));
    session(&set, "reader", "demo")
}

/// A rule table of its own for `demo`, so each test states exactly what it allows.
fn demo_rule(body: &str) -> Arc<SessionPolicy> {
    session(
        &compile(&format!("\n[role.reader.rules.demo]\n{body}\n")),
        "reader",
        "demo",
    )
}

fn blocked(p: &SessionPolicy, sql: &str) -> Blocked {
    match p.judge(sql, true) {
        Verdict::Block(b) => b,
        Verdict::Allow => panic!("{sql:?} was allowed"),
    }
}

fn allowed(p: &SessionPolicy, sql: &str) {
    if let Verdict::Block(b) = p.judge(sql, true) {
        panic!("{sql:?} was blocked: {}", b.message);
    }
}

#[test]
fn a_role_without_rules_is_unrestricted() {
    let set = compile("");
    let admin = session(&set, "admin", "demo");
    assert!(admin.unrestricted());
    assert!(!admin.mask().is_active());
    assert_eq!(admin.max_rows(), None);
    assert_eq!(admin.rule_path(), None);
    for sql in [
        "DROP TABLE t",
        "ALTER SYSTEM SET x = 1",
        "garbage ((",
        "SET ROLE x",
    ] {
        allowed(&admin, sql);
    }
}

#[test]
fn reads_pass_and_writes_are_blocked_with_the_rule_named() {
    let p = reader("");
    assert!(!p.unrestricted());
    assert_eq!(p.rule_path(), Some("role.reader.rules.\"*\""));
    allowed(&p, "SELECT * FROM customers");
    allowed(&p, "BEGIN; SELECT 1; COMMIT");
    allowed(&p, "COPY customers (id, name) TO STDOUT");
    let b = blocked(&p, "DELETE FROM customers WHERE id = 1");
    assert_eq!(
        b.message,
        "sluice: DELETE blocked by policy (role reader, rule role.reader.rules.\"*\".default = block)"
    );
    assert_eq!(b.rule, "role.reader.rules.\"*\".default");
    assert!(!b.review);
    let p = reader("write = \"block\"\n");
    let b = blocked(&p, "delete from customers where id = 1");
    assert_eq!(
        b.message,
        "sluice: DELETE blocked by policy (role reader, rule role.reader.rules.\"*\".write = block)"
    );
    assert_eq!(b.rule, "role.reader.rules.\"*\".write");
}

#[test]
fn one_blocked_statement_blocks_the_message() {
    let p = reader("");
    let b = blocked(&p, "SELECT 1; DROP TABLE customers; SELECT 2");
    assert!(b
        .message
        .starts_with("sluice: DROP TABLE blocked by policy"));
}

#[test]
fn empty_messages_are_allowed() {
    let p = reader("");
    for sql in ["", "   ", ";", " -- nothing\n ; /* at all */ ;"] {
        allowed(&p, sql);
    }
}

#[test]
fn review_blocks_with_an_approval_message_unless_something_blocks_outright() {
    let p = demo_rule("read = \"allow\"\nwrite = \"review\"\n");
    let b = blocked(&p, "SELECT 1; UPDATE t SET a = 1 WHERE id = 2");
    assert!(b.review);
    assert_eq!(b.rule, "role.reader.rules.demo.write");
    assert!(b.message.starts_with("sluice: UPDATE requires approval (role reader, rule role.reader.rules.demo.write = review)"), "{}", b.message);
    assert!(b.message.contains("approvals are not available yet"));
    // The hard block comes later in the message but wins.
    let b = blocked(&p, "UPDATE t SET a = 1 WHERE id = 2; TRUNCATE t");
    assert!(!b.review);
    assert!(b.message.starts_with("sluice: TRUNCATE blocked by policy"));
    // So does a deny list that applies to the reviewed statement itself.
    let p = demo_rule("write = \"review\"\nrequire_where = true\n");
    let b = blocked(&p, "UPDATE t SET a = 1");
    assert!(!b.review);
    assert_eq!(b.rule, "role.reader.rules.demo.require_where");
}

#[test]
fn require_where_blocks_unfiltered_updates_and_deletes() {
    let p = demo_rule("read = \"allow\"\nwrite = \"allow\"\nrequire_where = true\n");
    allowed(&p, "DELETE FROM t WHERE id = 1");
    allowed(&p, "UPDATE t SET a = (SELECT 1 WHERE true) WHERE id = 1");
    allowed(&p, "INSERT INTO t VALUES (1)");
    // Planning only: nothing runs.
    allowed(&p, "EXPLAIN DELETE FROM t");
    for sql in [
        "DELETE FROM t",
        "UPDATE t SET a = (SELECT 1 WHERE true)",
        "EXPLAIN ANALYZE DELETE FROM t",
    ] {
        let b = blocked(&p, sql);
        assert_eq!(b.rule, "role.reader.rules.demo.require_where", "{sql}");
        assert!(
            b.message.contains("without a WHERE clause"),
            "{}",
            b.message
        );
    }
}

#[test]
fn deny_commands_match_whole_leading_words() {
    let p = demo_rule(
        "read = \"allow\"\nddl = \"allow\"\nadmin = \"allow\"\ndeny_commands = [\"DROP\", \"alter  system\"]\n",
    );
    let b = blocked(&p, "drop table t");
    assert_eq!(b.rule, "role.reader.rules.demo.deny_commands");
    assert_eq!(
        b.message,
        "sluice: DROP TABLE blocked by policy (role reader, rule role.reader.rules.demo.deny_commands includes \"DROP\")"
    );
    blocked(&p, "ALTER SYSTEM SET work_mem = '1MB'");
    allowed(&p, "ALTER TABLE t ADD COLUMN c int");
    allowed(&p, "CREATE TABLE dropped (a int)");
}

#[test]
fn deny_functions_match_however_the_call_is_spelled() {
    let p = demo_rule("read = \"allow\"\ndeny_functions = [\"pg_sleep\", \"my_*\"]\n");
    for sql in [
        "SELECT pg_sleep(1)",
        "SELECT PG_CATALOG.PG_SLEEP(1)",
        "SELECT \"pg_sleep\"(1)",
        "SELECT 1 WHERE pg_sleep(1) IS NULL",
        "SELECT my_func()",
    ] {
        let b = blocked(&p, sql);
        assert_eq!(b.rule, "role.reader.rules.demo.deny_functions", "{sql}");
        assert!(b.message.contains(" calling "), "{}", b.message);
    }
    allowed(&p, "SELECT pg_sleeper(1)");
    allowed(&p, "SELECT 'pg_sleep(1)'");
}

#[test]
fn deny_patterns_match_tokens_not_literals() {
    let p = demo_rule("read = \"allow\"\ndeny_patterns = [\"pg_authid\"]\n");
    let b = blocked(&p, "SELECT * FROM /* hidden */ PG_AUTHID");
    assert_eq!(b.rule, "role.reader.rules.demo.deny_patterns");
    assert!(
        b.message.contains("matching \"pg_authid\""),
        "{}",
        b.message
    );
    allowed(&p, "SELECT 'pg_authid'");
    // Only the offending statement is matched, and it is named.
    let b = blocked(&p, "SELECT 1; SHOW x; SELECT * FROM pg_authid");
    assert!(
        b.message.starts_with("sluice: SELECT matching"),
        "{}",
        b.message
    );
}

#[test]
fn protected_settings_block_even_when_session_is_allowed() {
    let p = reader("");
    allowed(&p, "SET application_name = 'report'");
    allowed(&p, "SET statement_timeout = '5s'");
    for (sql, setting) in [
        ("SET search_path = evil, public", "search_path"),
        ("SET ROLE postgres", "role"),
        ("RESET ROLE", "role"),
        (
            "SET SESSION AUTHORIZATION postgres",
            "session_authorization",
        ),
        (
            "SET standard_conforming_strings = off",
            "standard_conforming_strings",
        ),
        ("SET NAMES 'SJIS'", "client_encoding"),
        (
            "SET LOCAL default_transaction_read_only = off",
            "default_transaction_read_only",
        ),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "session_characteristics",
        ),
    ] {
        let b = blocked(&p, sql);
        assert_eq!(
            b.rule, "role.reader.rules.\"*\".protected_settings",
            "{sql}"
        );
        assert!(
            b.message.contains(&format!("protected setting {setting}")),
            "{}",
            b.message
        );
    }
    let p = demo_rule("session = \"allow\"\nprotected_settings = []\n");
    allowed(&p, "SET search_path = public");
}

#[test]
fn unknown_statements_carry_the_classifier_reason() {
    let p = reader("");
    let b = blocked(&p, "EXECUTE prepared_one");
    assert_eq!(b.rule, "role.reader.rules.\"*\".default");
    assert!(
        b.message.starts_with(
            "sluice: EXECUTE blocked by policy: EXECUTE runs a statement prepared earlier"
        ),
        "{}",
        b.message
    );
    let p = demo_rule("read = \"allow\"\nunknown = \"block\"\n");
    let b = blocked(&p, "SELECT 'unterminated");
    assert_eq!(b.rule, "role.reader.rules.demo.unknown");
    assert!(
        b.message
            .starts_with("sluice: statement blocked by policy: lexical error"),
        "{}",
        b.message
    );
}

#[test]
fn standard_conforming_strings_decides_where_a_string_ends() {
    let p = reader("");
    let sql = r"SELECT 'a\'; DROP TABLE t; --'";
    // Off: the backslash escapes the quote, so this is one read of a string literal.
    assert!(p.judge(sql, false).is_allow());
    // On: the string ends at the backslash's quote and a DROP follows.
    assert!(!p.judge(sql, true).is_allow());
}

#[test]
fn function_lists_replace_the_defaults() {
    let set = compile("\n[policy]\nadmin_functions = [\"my_admin\"]\nwrite_functions = []\n");
    let p = session(&set, "reader", "demo");
    let b = blocked(&p, "SELECT my_admin()");
    assert!(
        b.message.starts_with("sluice: SELECT blocked"),
        "{}",
        b.message
    );
    // No longer on the admin list: an unknown function in a read is a read.
    allowed(&p, "SELECT pg_read_file('x')");
    allowed(&p, "SELECT nextval('s')");
    let default = reader("");
    blocked(&default, "SELECT pg_read_file('x')");
    blocked(&default, "SELECT nextval('s')");
}

#[test]
fn sessions_take_the_first_role_that_reaches_the_resource() {
    let set = compile("\n[role.reader.rules.billing]\nread = \"allow\"\nwrite = \"allow\"\n\n[role.narrow]\nresources = [\"billing\"]\n");
    let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Unknown roles are skipped; order decides.
    let p = set
        .session(&roles(&["ghost", "reader", "admin"]), "demo")
        .unwrap();
    assert!(!p.unrestricted());
    assert_eq!(p.role(), "reader");
    let p = set.session(&roles(&["admin", "reader"]), "demo").unwrap();
    assert!(p.unrestricted());
    // `narrow` does not reach demo, so reader decides.
    let p = set.session(&roles(&["narrow", "reader"]), "demo").unwrap();
    assert_eq!(p.role(), "reader");
    // A named entry wins over "*".
    let p = set.session(&roles(&["reader"]), "billing").unwrap();
    assert_eq!(p.rule_path(), Some("role.reader.rules.billing"));
    allowed(&p, "UPDATE t SET a = 1");
    assert!(set.session(&roles(&["reader"]), "nowhere").is_none());
    assert!(set.session(&roles(&["ghost"]), "demo").is_none());
    assert!(set.session(&[], "demo").is_none());
}

#[test]
fn a_rule_that_restricts_nothing_is_unrestricted() {
    let all = "read = \"allow\"\nwrite = \"allow\"\nddl = \"allow\"\nadmin = \"allow\"\n\
               session = \"allow\"\ntransaction = \"allow\"\ncopy_out = \"allow\"\n\
               procedural = \"allow\"\nunknown = \"allow\"\n";
    assert!(demo_rule(all).unrestricted());
    assert!(demo_rule("default = \"allow\"\n").unrestricted());
    assert!(!demo_rule("default = \"allow\"\nmax_rows = 5\n").unrestricted());
    assert!(!demo_rule("default = \"allow\"\nprotected_settings = [\"role\"]\n").unrestricted());
    assert!(!demo_rule(
        "default = \"allow\"\n[role.reader.rules.demo.mask]\ndetectors = [\"cards\"]\n"
    )
    .unrestricted());
}

#[test]
fn masking_and_limits_come_from_the_rule() {
    let p = reader("");
    assert!(p.mask().is_active());
    let rules = p.mask().rules();
    assert_eq!(rules.style_for(None, "card_number"), Some(MaskStyle::Last4));
    assert_eq!(
        rules.style_for(Some(("public", "customers")), "email"),
        Some(MaskStyle::Full)
    );
    assert_eq!(p.mask().detectors(), Detectors::ALL);
    assert_eq!(p.max_rows(), None);
    let p = demo_rule("read = \"allow\"\nmax_rows = 100\n[role.reader.rules.demo.mask]\ncolumns = { \"customers.name\" = \"hash\" }\ndetectors = []\n");
    assert_eq!(p.max_rows(), Some(100));
    assert_eq!(p.mask().detectors(), Detectors::NONE);
    assert!(p.mask().key().is_some());
    assert!(p.mask().is_active());
    let p = demo_rule("read = \"allow\"\n");
    assert!(!p.mask().is_active());
}

#[test]
fn compile_reports_every_problem_with_its_key() {
    let errors = compile_errors("\n[role.reader.rules.nope]\nmax_rows = 0\n");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("role.reader.rules.nope: names unknown resource")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("role.reader.rules.nope.max_rows:")),
        "{errors:#?}"
    );
    // The hash style needs the key the gateway derives from its signing key.
    let config = config(
        "",
        "\n[role.reader.rules.demo.mask]\ncolumns = { ssn = \"hash\" }\n",
    );
    let errors = PolicySet::compile(&config, None).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("role.reader.rules.demo.mask.columns: the hash style needs"),
        "{errors:#?}"
    );
    assert!(PolicySet::compile(&config, key()).is_ok());
}

#[test]
fn compiled_policy_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<PolicySet>();
    shareable::<SessionPolicy>();
}

/// Text built from pieces that matter to the lexer and the classifier.
fn sqlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "'",
        "\"",
        "$$",
        "$a$",
        ";",
        "--",
        "/*",
        "*/",
        "\n",
        " ",
        "\\",
        "E'",
        "U&\"",
        "select",
        "delete",
        "update",
        "where",
        "set",
        "role",
        "drop",
        "table",
        "pg_sleep",
        "(",
        ")",
        "x",
        "1",
        ".",
        "é",
        "with",
        "into",
        "copy",
        "to",
        "stdout",
        "execute",
        "begin",
        "explain",
        "analyze",
        "pg_authid",
        "search_path",
        "=",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

/// Whole statements, so that a message joined from them splits back into them.
fn statement() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "SELECT 1",
        "SELECT * FROM pg_authid",
        "SELECT pg_sleep(1)",
        "DELETE FROM t",
        "DELETE FROM t WHERE id = 1",
        "UPDATE t SET a = 1 WHERE id = 1",
        "INSERT INTO t VALUES (1)",
        "DROP TABLE t",
        "TRUNCATE t",
        "SET search_path = x",
        "SET application_name = 'a'",
        "BEGIN",
        "COMMIT",
        "EXECUTE p",
        "DO $$ BEGIN END $$",
        "COPY t TO STDOUT",
        "VACUUM t",
        "SELECT 'drop table; x'",
    ])
}

fn strict() -> Arc<SessionPolicy> {
    demo_rule(
        "read = \"allow\"\nsession = \"allow\"\ntransaction = \"allow\"\nwrite = \"review\"\n\
         require_where = true\ndeny_functions = [\"pg_sleep\"]\ndeny_patterns = [\"pg_authid\"]\n",
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn judge_never_panics(sql in sqlish(), scs in any::<bool>()) {
        let p = strict();
        if let Verdict::Block(b) = p.judge(&sql, scs) {
            prop_assert!(b.message.starts_with("sluice: "));
            prop_assert!(b.message.contains(&b.rule));
        }
    }

    #[test]
    fn judge_never_panics_on_arbitrary_text(sql in ".{0,200}", scs in any::<bool>()) {
        let _ = strict().judge(&sql, scs);
    }

    #[test]
    fn unrestricted_allows_everything(sql in sqlish(), scs in any::<bool>()) {
        let set = compile("");
        prop_assert!(session(&set, "admin", "demo").judge(&sql, scs).is_allow());
    }

    #[test]
    fn a_rule_blocking_every_class_blocks_every_nonempty_message(sql in sqlish(), scs in any::<bool>()) {
        let p = demo_rule("default = \"block\"\n");
        let opts = crate::sql::ClassifyOptions { standard_conforming_strings: scs, ..Default::default() };
        let statements = crate::sql::classify(&sql, &opts).statements.len();
        prop_assert_eq!(p.judge(&sql, scs).is_allow(), statements == 0);
    }

    #[test]
    fn a_message_is_blocked_iff_one_of_its_statements_is(parts in prop::collection::vec(statement(), 1..6)) {
        let p = strict();
        let alone: Vec<Verdict> = parts.iter().map(|s| p.judge(s, true)).collect();
        let verdict = p.judge(&parts.join("; "), true);
        let any_blocked = alone.iter().any(|v| !v.is_allow());
        prop_assert_eq!(!verdict.is_allow(), any_blocked);
        let hard = alone.iter().find_map(|v| match v {
            Verdict::Block(b) if !b.review => Some(b.clone()),
            _ => None,
        });
        match (hard, verdict) {
            // The first statement blocked outright is the one reported.
            (Some(first), Verdict::Block(b)) => prop_assert_eq!(first, b),
            (None, Verdict::Block(b)) => prop_assert!(b.review),
            (_, Verdict::Allow) => {}
        }
    }
}

#[test]
fn derived_uses_of_masked_columns_are_refused_and_plain_ones_pass() {
    let p = reader("");
    for sql in [
        "SELECT substr(card_number, 1, 12) FROM customers",
        "SELECT md5(email) FROM customers",
        "SELECT id FROM customers WHERE card_number LIKE '4111%'",
        "SELECT row_to_json(c) FROM customers c",
        "SELECT 1; SELECT reverse(card_number) FROM customers",
    ] {
        let b = blocked(&p, sql);
        assert!(b.rule.ends_with(".mask"), "{sql}: {}", b.rule);
        assert!(
            b.message.contains("masked column use refused"),
            "{}",
            b.message
        );
    }
    allowed(
        &p,
        "SELECT id, card_number, email FROM customers WHERE id = 1",
    );
    allowed(&p, "SELECT c.card_number AS cc FROM customers c");
    allowed(&p, "SELECT 'card_number' AS label -- card_number");
    // An unmasked role never runs the check.
    let admin = session(&compile(""), "admin", "demo");
    assert!(admin
        .judge("SELECT substr(card_number, 1, 12) FROM customers", true)
        .is_allow());
}

#[test]
fn judge_each_sees_every_statement_even_after_a_block() {
    let r = reader("");
    let mut seen = Vec::new();
    let v = r.judge_each("DELETE FROM t; SELECT 1; BEGIN", true, |c| seen.push(c));
    assert!(!v.is_allow());
    use crate::sql::StatementClass as C;
    assert_eq!(seen, vec![C::Write, C::Read, C::Transaction]);
    // An unrestricted policy classifies nothing.
    let set = compile("");
    let mut none = 0;
    assert!(session(&set, "admin", "demo")
        .judge_each("DROP TABLE t", true, |_| none += 1)
        .is_allow());
    assert_eq!(none, 0);
}
