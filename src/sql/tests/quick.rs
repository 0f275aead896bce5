//! The quick scan answers only where the token path gives the very same verdict.

use crate::sql::classify::classify_without_quick_scan;
use crate::sql::quick::plain_select;
use crate::sql::{ClassifyOptions, ClassifyPath, StatementClass};
use proptest::prelude::*;

#[test]
fn plain_selects_are_decided_from_their_bytes() {
    for sql in [
        "SELECT 1",
        "  select a, b FROM t WHERE x = $1 AND y <> 'it''s; -- not /* a comment */' LIMIT 10;",
        "SELECT u.id, u.email FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 10.5",
        "SELECT format, information, forum, intox, without FROM fortune",
        "SELECT 'with', 'into', 'for', 'DROP TABLE t' FROM t;  \n",
        "SELECT a::text, b[1] FROM t WHERE c ~* 'x' OR d @> e",
        "SELECT 'a'\n'b'",
        "SELECT x FROM t WHERE s = U&'d\\0061t'",
    ] {
        let quick = plain_select(sql).unwrap_or_else(|| panic!("not decided quickly: {sql}"));
        assert_eq!(quick.class, StatementClass::Read, "{sql}");
        assert_eq!(quick.path, ClassifyPath::FastPath, "{sql}");
        let tokens = classify_without_quick_scan(sql, &ClassifyOptions::default());
        assert_eq!(tokens.statements, vec![quick], "{sql}");
    }
}

#[test]
fn anything_needing_the_lexers_rules_is_left_to_the_token_path() {
    for sql in [
        "SELECT * FROM t FOR UPDATE",
        "select 1 into t",
        "SELECT 1for update",
        "SELECT $1for update",
        "SELECT a.for FROM t",
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        "SELECT count(*) FROM t",
        "SELECT 1; DELETE FROM t",
        "SELECT 1; -- trailing comment",
        "SELECT 1 -- comment",
        "SELECT /* c */ 1",
        "/* c */ SELECT 1",
        "SELECT E'\\''",
        "SELECT x'1f'",
        "SELECT 1'a'",
        "SELECT $$ ; DELETE FROM t; $$",
        "SELECT $a$x$a$",
        "SELECT \"for\" FROM t",
        "SELECT 'unterminated",
        "SELECT é FROM t",
        "SELECT \\x",
        "SELECTED",
        "DELETE FROM t",
        "",
    ] {
        assert!(plain_select(sql).is_none(), "decided quickly: {sql}");
    }
}

/// Text made mostly of plain SELECT material, with every construct the scan must notice.
fn selectish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        " ", "\n", "\t", "a", "b1", "_x", "x$", "for", "FOR", "into", "With", "format", "fo", "w",
        "i", "f", "1", "1.5", "1e5", "$1", "$", "$$", "$a$", "'", "'x'", "''", "E'a\\'b'", "e'",
        "x'1f'", "U&'d'", "\"q\"", "(", ")", "count(*)", ",", ".", "=", "<>", "::", "-", "--c\n",
        "/", "/*c*/", "*/", "*", ";", "; ", "é", "\\", "[", "]", "{", "#", "?", "from", "join",
        "union", "select", "delete", "insert", "values", "table",
    ]);
    (prop::bool::ANY, prop::collection::vec(pieces, 0..24)).prop_map(|(head, parts)| {
        let mut s = if head {
            "SELECT ".to_string()
        } else {
            String::new()
        };
        s.extend(parts);
        s
    })
}

/// Plain SELECT material only, so that most texts are ones the scan accepts, with the
/// keyword-like words and the digits, quotes and `$` next to them that decide acceptance.
fn plain_selectish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        " ", "\n", "a", "b1", "x$", "for", "FoR", "into", "with", "format", "w", "i", "f", "1",
        "1e5", "$1", "'x'", "''", "'it''s'", ",", ".", "=", "::", "-", "/", "*", "from",
    ]);
    prop::collection::vec(pieces, 0..24).prop_map(|parts| {
        let mut s = "SELECT ".to_string();
        s.extend(parts);
        s
    })
}

fn agrees(sql: &str) -> Result<(), TestCaseError> {
    if let Some(quick) = plain_select(sql) {
        let tokens = classify_without_quick_scan(sql, &ClassifyOptions::default());
        prop_assert_eq!(tokens.statements, vec![quick]);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn the_quick_scan_agrees_with_the_token_path(sql in selectish()) {
        agrees(&sql)?;
    }

    #[test]
    fn the_quick_scan_agrees_on_plain_selects(sql in plain_selectish()) {
        agrees(&sql)?;
    }
}
