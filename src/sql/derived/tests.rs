//! Tests of the masked-use check: plain output columns pass, derived forms are refused, the
//! token pass clears ordinary statements without parsing, and nothing panics.

use super::words::{flag, flags, flags_any_case};
use super::{
    check_masked_uses, derived_cache_len, QUERY_TEXT_FUNCTIONS, ROW_FUNCTIONS, STATISTICS_RELATIONS,
};
use crate::sql::LexOptions;
use proptest::prelude::*;

fn masked() -> Vec<String> {
    ["card_number", "email", "ssn"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn check(sql: &str) -> Result<(), String> {
    check_masked_uses(sql, &masked(), LexOptions::default())
}

/// Plain output columns of a top-level SELECT, stars in its select list, and statements that
/// only mention masked names in literals or comments.
const ALLOWED: &[&str] = &[
    "SELECT id, card_number FROM customers WHERE id = 1",
    "SELECT c.card_number AS cc FROM customers c",
    "SELECT * FROM customers ORDER BY id",
    "SELECT 'card_number'::text",
    "SELECT id FROM customers -- card_number",
    "/* card_number */ SELECT 1",
    "SELECT $$card_number$$, E'email'",
    "SELECT card_number FROM customers",
    "SELECT public.customers.card_number FROM public.customers",
    "SELECT \"card_number\" FROM customers",
    "SELECT U&\"card\\005fnumber\" FROM customers",
    "SELECT U&\"card!005fnumber\" UESCAPE '!' FROM customers",
    "SELECT CARD_NUMBER FROM Customers",
    "SELECT card_number cc, email AS \"E\" FROM customers",
    "SELECT c.* FROM customers c",
    "SELECT * FROM customers",
    "SELECT *, card_number FROM customers WHERE id = $1",
    "SELECT id, name FROM customers WHERE name = $1",
    "SELECT count(*) FROM customers",
    "SELECT card_number, email FROM customers LIMIT 10 OFFSET 5",
    "SELECT c.id, c.card_number FROM customers c JOIN orders o ON o.customer_id = c.id \
     WHERE o.total > 100 ORDER BY o.created_at DESC",
    "SELECT * FROM customers WHERE EXISTS (SELECT * FROM orders o WHERE o.cid = customers.id)",
    "WITH recent AS (SELECT id FROM orders) SELECT card_number FROM customers \
     WHERE id IN (SELECT id FROM recent)",
    "TABLE customers",
    "SELECT id FROM customers; SELECT card_number FROM customers",
    "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id \
     WHERE u.status = 'active' AND o.created_at > $1 ORDER BY o.created_at DESC LIMIT 50",
    "INSERT INTO audit (note) VALUES ('card_number')",
    "UPDATE orders SET total = 0 WHERE id = 1",
    "DELETE FROM orders WHERE id = 1 RETURNING id",
    "SELECT name AS card_number FROM customers",
    "SELECT card_number FROM customers FOR UPDATE",
    "SELECT card_number FROM customers FOR NO KEY UPDATE",
    "SELECT a.x * 2 FROM a",
    "COPY customers (id, name) TO STDOUT WITH (FORMAT csv)",
    "COPY orders FROM STDIN",
    "SELECT id, sum(total) FROM orders GROUP BY id ORDER BY id",
    "BEGIN; SELECT card_number FROM customers; COMMIT",
    "SELECT row_number() OVER (ORDER BY id), card_number FROM customers",
    "SELECT c.id FROM customers c WHERE c.name = 'to_jsonb(c)'",
    "SELECT ALL card_number FROM customers",
    "SELECT * FROM generate_series(1, 3) g",
    "SELECT * FROM customers c JOIN orders o ON o.cid = c.id",
    "SELECT card_number FROM customers WHERE id = ANY($1)",
    "SELECT id FROM t GROUP BY id ORDER BY id",
    "SET search_path = public",
    "SHOW email_domain",
    "",
    ";;",
];

/// Derived forms: expressions, conditions, clauses, subqueries, set operations, writes,
/// wrappers, whole rows, stars, alias lists, SQL run from text, COPY.
const BLOCKED: &[&str] = &[
    "SELECT card_number::text FROM customers",
    "SELECT upper(card_number) FROM customers",
    "SELECT id FROM customers WHERE card_number = '4111111111111111'",
    "SELECT id FROM customers ORDER BY card_number",
    "SELECT card_number FROM customers GROUP BY card_number",
    "SELECT count(*) FROM customers GROUP BY email HAVING count(*) > 1",
    "SELECT o.id FROM orders o JOIN customers c ON c.card_number = o.card",
    "SELECT (SELECT card_number FROM customers LIMIT 1)",
    "SELECT * FROM (SELECT card_number FROM customers) s",
    "WITH x AS (SELECT card_number FROM customers) SELECT * FROM x",
    "SELECT card_number FROM customers UNION SELECT 'x'",
    "SELECT id FROM a UNION SELECT card_number FROM customers",
    "SELECT card_number FROM customers INTERSECT SELECT card_number FROM customers",
    "VALUES ((SELECT card_number FROM customers LIMIT 1))",
    "UPDATE customers SET name = 'x' RETURNING card_number",
    "INSERT INTO other SELECT card_number FROM customers",
    "PREPARE p AS SELECT card_number FROM customers",
    "DECLARE c CURSOR FOR SELECT card_number FROM customers",
    "EXPLAIN SELECT card_number FROM customers",
    "COPY (SELECT card_number FROM customers) TO STDOUT",
    "CREATE TABLE x AS SELECT card_number FROM customers",
    "SELECT \"card_number\" || '' FROM customers",
    "SELECT U&\"card\\005fnumber\"::text FROM customers",
    "SELECT row_to_json(c) FROM customers c",
    "SELECT c FROM customers c",
    "SELECT to_jsonb(customers) FROM customers",
    "SELECT array_agg(t) FROM customers t",
    "SELECT c::text FROM customers c",
    "SELECT (c).card_number FROM customers c",
    "SELECT (c).* FROM customers c",
    "SELECT row_to_json(t.*) FROM customers t",
    "SELECT (c.*)::text FROM customers c",
    "SELECT * FROM (SELECT * FROM customers) s",
    "SELECT * FROM customers AS c(a, b, c2)",
    "SELECT * FROM customers c(a, b, c2)",
    "WITH x(a, b) AS (SELECT id, name FROM customers) SELECT * FROM x",
    "SELECT query_to_xml('select * from customers', true, false, '')",
    "SELECT pg_catalog.table_to_xml('customers', true, false, '')",
    "SELECT \"query_to_xmlschema\"('select 1', true, false, '')",
    "COPY customers TO STDOUT",
    "COPY customers (id, card_number) TO STDOUT",
    "COPY customers (id) TO STDOUT WITH (FORMAT binary)",
    "COPY (SELECT id FROM customers) TO STDOUT (FORMAT 'binary')",
    "COPY BINARY customers (id) TO STDOUT",
    "SELECT c.to_jsonb FROM customers c",
    "SELECT c.record_out FROM customers c",
    "SELECT * FROM customers UNION ALL SELECT * FROM customers",
    "TABLE customers UNION TABLE customers",
    "TABLE customers UNION SELECT * FROM customers",
    "TABLE customers EXCEPT SELECT id, name, 'x', 'y' FROM customers",
    "SELECT * FROM (TABLE customers) s",
    "INSERT INTO other SELECT * FROM customers",
    "INSERT INTO other TABLE customers",
    "DELETE FROM customers RETURNING *",
    "SELECT * INTO backup FROM customers",
    "CREATE VIEW v AS SELECT * FROM customers",
    "SELECT card_number AS cc FROM customers ORDER BY cc",
    "SELECT card_number FROM customers ORDER BY 1",
    "SELECT * FROM customers ORDER BY 3",
    "SELECT email FROM customers GROUP BY 1",
    "SELECT DISTINCT card_number FROM customers",
    "SELECT DISTINCT * FROM customers",
    "SELECT id FROM customers NATURAL JOIN guesses",
    "SELECT most_common_vals FROM pg_stats WHERE attname = 'card_number'",
    "SELECT count(*) FILTER (WHERE ssn LIKE '1%') FROM customers",
    "SELECT c.id FROM customers c JOIN orders o USING (card_number)",
    "SELECT card_number FROM customers; SELECT ssn::text FROM customers",
    "SELECT 'x' FROM customers WHERE email LIKE 'a%'",
    "SELECT card_number isnull FROM customers",
    "SELECT ts_stat('select to_tsvector(card_number) from customers')",
    "SELECT * FROM customers c, LATERAL (SELECT c.email) x",
    "INSERT INTO customers AS c VALUES (1) ON CONFLICT (id) DO UPDATE SET name = 'x' RETURNING c",
    "SELECT jsonb_agg(x) FROM (SELECT id FROM customers) x",
    "SELECT Customers FROM customers",
    "SELECT 1 FROM customers c WHERE c = c",
    "SELECT * FROM (SELECT 1) s(a)",
    "SELECT x.card FROM (VALUES (1)) AS x(card)",
    "SELECT card_number FROM customers WINDOW w AS (ORDER BY card_number)",
    "SELECT hash_record(c) FROM customers c",
    "SELECT * FROM customers JOIN LATERAL to_jsonb(customers) j ON true",
    "SELECT t FROM customers, LATERAL (SELECT 1) t",
    "SELECT id FROM customers WHERE card_number = 'unterminated",
    "SELECT card_number FROM customers WHERE (",
    "SELECT * FROM customers WHERE id IN (SELECT * FROM orders)",
    "DROP TABLE customers; SELECT lower(email) FROM customers",
    "ALTER TABLE customers RENAME COLUMN card_number TO cn",
    "SELECT * FROM customers GROUP BY ALL",
    "SELECT row_to_json(x) FROM (customers JOIN orders ON true) x",
    "SELECT ARRAY[c.*] FROM customers c",
    "SELECT c.* || 'x' FROM customers c",
    "SELECT 'x' || c.* FROM customers c",
    "SELECT c.*::text FROM customers c",
    "SELECT ROW(c.*) FROM customers c",
    "SELECT * FROM customers c WHERE c.* IS NOT NULL",
];

#[test]
fn plain_output_columns_are_allowed() {
    assert!(ALLOWED.len() >= 25);
    let wrong: Vec<_> = ALLOWED
        .iter()
        .filter_map(|sql| check(sql).err().map(|e| format!("{sql} => {e}")))
        .collect();
    assert!(wrong.is_empty(), "blocked: {wrong:#?}");
}

#[test]
fn derived_forms_are_blocked() {
    assert!(BLOCKED.len() >= 40);
    let wrong: Vec<_> = BLOCKED.iter().filter(|sql| check(sql).is_ok()).collect();
    assert!(wrong.is_empty(), "not blocked: {wrong:#?}");
}

#[test]
fn reasons_are_fixed_text_without_client_text() {
    for sql in BLOCKED {
        let Err(reason) = check(sql) else { continue };
        assert!(!reason.is_empty());
        // No literal value or user identifier of these statements leaks into the reason.
        for secret in ["4111", "guesses", "backup", "customers c"] {
            assert!(!reason.contains(secret), "{sql}: {reason}");
        }
    }
}

#[test]
fn reasons_name_the_construct() {
    for (sql, want) in [
        (
            "SELECT id FROM customers WHERE email = $1",
            "masked column in WHERE",
        ),
        (
            "SELECT id FROM customers ORDER BY ssn",
            "masked column in ORDER BY",
        ),
        (
            "SELECT lower(email) FROM customers",
            "masked column in an expression, cast or function call",
        ),
        (
            "SELECT to_json(c) FROM customers c",
            "whole-row reference to a relation",
        ),
        (
            "SELECT * FROM customers AS c(a, b)",
            "column alias list that renames columns",
        ),
        (
            "EXPLAIN SELECT email FROM customers",
            "masked column in EXPLAIN",
        ),
    ] {
        assert_eq!(check(sql), Err(want.to_string()), "{sql}");
    }
}

#[test]
fn ordinary_statements_are_cleared_without_parsing() {
    let before = derived_cache_len();
    let masked = vec!["card_number".to_string(), "ssn".to_string()];
    for sql in [
        "SELECT id, name FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = $1",
        "SELECT u.id, u.name, u.email, o.total, o.created_at FROM users u JOIN orders o \
         ON o.user_id = u.id WHERE u.status = 'active' AND o.created_at > $1 \
         ORDER BY o.created_at DESC LIMIT 50",
        "SELECT * FROM customers",
        "SELECT count(*) FROM customers WHERE id > 3",
        "SELECT c.* FROM customers c",
        "SELECT 'card_number'",
        "SELECT id FROM t ORDER BY id",
        "UPDATE t SET a = 1, b = 2 WHERE id = 3",
    ] {
        assert_eq!(
            check_masked_uses(sql, &masked, LexOptions::default()),
            Ok(()),
            "{sql}"
        );
    }
    assert_eq!(derived_cache_len(), before);
}

#[test]
fn verdicts_are_cached_by_canonical_text() {
    let before = derived_cache_len();
    assert_eq!(
        check("SELECT card_number FROM customers WHERE id = 1"),
        Ok(())
    );
    assert_eq!(
        check("select  CARD_NUMBER from customers where id = 2"),
        Ok(())
    );
    assert_eq!(derived_cache_len(), before + 1);
    // A different masked set is a different entry.
    let other = vec!["ssn".to_string()];
    assert_eq!(
        check_masked_uses(
            "SELECT card_number FROM customers WHERE id = 1",
            &other,
            LexOptions::default()
        ),
        Ok(())
    );
}

#[test]
fn no_masked_columns_allows_derived_forms_of_other_columns() {
    let none: Vec<String> = Vec::new();
    assert_eq!(
        check_masked_uses(
            "SELECT upper(name) FROM t WHERE x = 1",
            &none,
            LexOptions::default()
        ),
        Ok(())
    );
    // Whole rows, stars and SQL from text stay refused: they carry every column.
    assert!(
        check_masked_uses("SELECT row_to_json(t) FROM t", &none, LexOptions::default()).is_err()
    );
}

#[test]
fn globs_match_masked_names() {
    let globs = vec!["card_*".to_string()];
    let opts = LexOptions::default();
    assert_eq!(
        check_masked_uses("SELECT card_no FROM t", &globs, opts),
        Ok(())
    );
    assert!(check_masked_uses("SELECT lower(card_no) FROM t", &globs, opts).is_err());
    assert!(check_masked_uses("SELECT lower(CARD_HOLDER) FROM t", &globs, opts).is_err());
}

#[test]
fn standard_conforming_strings_off_changes_what_is_a_literal() {
    let opts = LexOptions {
        standard_conforming_strings: false,
    };
    // With backslash escapes, the quote is escaped and the literal swallows the name.
    assert_eq!(
        check_masked_uses("SELECT 'a\\' card_number '", &masked(), opts),
        Ok(())
    );
    assert!(check_masked_uses(
        "SELECT 'a\\' card_number '",
        &masked(),
        LexOptions::default()
    )
    .is_err());
}

#[test]
fn word_lookup_agrees_with_the_lists() {
    for (list, f) in [
        (QUERY_TEXT_FUNCTIONS, flag::QUERY_TEXT),
        (STATISTICS_RELATIONS, flag::STATISTICS),
        (ROW_FUNCTIONS, flag::ROW_FUNCTION),
        (super::words::IMPLICIT_RELATIONS, flag::IMPLICIT),
    ] {
        for name in list {
            let name = name.trim_end_matches('*');
            assert_ne!(flags(name.as_bytes()) & f, 0, "{name}");
            assert_ne!(flags_any_case(&name.to_ascii_uppercase()) & f, 0, "{name}");
        }
    }
    assert_ne!(flags(b"dblink_exec") & flag::QUERY_TEXT, 0);
    assert_ne!(flags(b"select") & flag::RESERVED, 0);
    assert_ne!(flags(b"as") & flag::DECLARES, 0);
    assert_eq!(flags(b"as") & flag::QUERY_TEXT, 0);
    for other in [
        "id",
        "name",
        "to_char",
        "query_to_xm",
        "pg_stat_activity",
        "",
        "by",
        "update",
    ] {
        assert_eq!(
            flags(other.as_bytes()) & (flag::RESERVED | flag::QUERY_TEXT | flag::STATISTICS),
            0,
            "{other}"
        );
    }
}

/// Text built from the pieces that matter here, so random inputs hit masked names, stars,
/// parentheses and the clause keywords often.
fn sqlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "select",
        "from",
        "where",
        "card_number",
        "email",
        "c",
        "customers",
        "*",
        ".",
        ",",
        "(",
        ")",
        "as",
        "with",
        "union",
        "table",
        "copy",
        "to",
        "stdout",
        "binary",
        "format",
        "order",
        "by",
        "1",
        "'x'",
        "\"card_number\"",
        "U&\"a\"",
        "::",
        "text",
        "row_to_json",
        "join",
        "on",
        "lateral",
        "values",
        "into",
        "distinct",
        "exists",
        ";",
        " ",
        "--",
        "\n",
        "$$",
        "natural",
        "insert",
        "returning",
        "over",
        "filter",
        "=",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(sql in sqlish(), scs in any::<bool>()) {
        let opts = LexOptions { standard_conforming_strings: scs };
        let _ = check_masked_uses(&sql, &masked(), opts);
        let _ = check_masked_uses(&sql, &[], opts);
    }

    #[test]
    fn never_panics_on_any_text(sql in ".{0,200}") {
        let _ = check_masked_uses(&sql, &masked(), LexOptions::default());
    }
}
