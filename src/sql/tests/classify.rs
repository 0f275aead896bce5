//! Classifier tests: every class, each tricky case, written many ways.

use crate::sql::{
    classify, relations, ClassifyOptions, ClassifyPath, LexOptions, StatementClass, StatementInfo,
};
use StatementClass::*;

fn one(sql: &str) -> StatementInfo {
    let c = classify(sql, &ClassifyOptions::default());
    assert_eq!(c.statements.len(), 1, "{sql}: {c:?}");
    c.statements.into_iter().next().unwrap()
}

fn class_of(sql: &str) -> StatementClass {
    classify(sql, &ClassifyOptions::default()).strongest()
}

/// Each entry is judged as one message; the expected class is the message's strongest.
const CASES: &[(&str, StatementClass)] = &[
    // Reads, including ones that look dangerous.
    ("SELECT 1", Read),
    ("select * from users where id = 1", Read),
    ("SELECT id delete FROM t", Read),
    ("SELECT id AS \"drop\" FROM t", Read),
    ("SELECT 'DROP TABLE x'", Read),
    ("SELECT $$; DELETE FROM t; $$", Read),
    ("SELECT 1 -- ; DELETE FROM t", Read),
    ("SELECT /* ; DROP TABLE t; */ 1", Read),
    ("SELECT /* nested /* ; */ DROP */ 1", Read),
    ("SELECT E'\\'; DELETE FROM t; --'", Read),
    ("SELECT \"delete\" FROM \"update\"", Read),
    ("SELECT count(*), lower(name) FROM users GROUP BY 2", Read),
    ("SELECT pg_catalog.count(*) FROM t", Read),
    ("VALUES (1), (2)", Read),
    ("TABLE users", Read),
    ("(SELECT 1) UNION (SELECT 2)", Read),
    (
        "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x > 1)",
        Read,
    ),
    ("WITH x AS (SELECT 1) SELECT * FROM x", Read),
    (
        "with recursive r(n) as (select 1 union all select n+1 from r where n < 5) select * from r",
        Read,
    ),
    ("SELECT extract(year FROM created_at) FROM orders", Read),
    ("SELECT * FROM t WHERE name LIKE '%for update%'", Read),
    ("SHOW search_path", Read),
    ("EXPLAIN SELECT * FROM t", Read),
    ("EXPLAIN DELETE FROM t", Read),
    ("EXPLAIN (ANALYZE false) DELETE FROM t", Read),
    ("EXPLAIN ANALYZE SELECT * FROM t", Read),
    ("EXPLAIN (SELECT 1)", Read),
    ("FETCH 10 FROM c", Read),
    ("MOVE NEXT IN c", Read),
    ("DECLARE c CURSOR FOR SELECT * FROM t", Read),
    ("DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT 1", Read),
    ("PREPARE q (int) AS SELECT * FROM t WHERE id = $1", Read),
    ("SELECT a$b FROM t", Read),
    ("SELECT \"for\", \"into\", \"with\" FROM t", Read),
    (";;", Read),
    ("/* only a comment */", Read),
    // Copy out.
    ("COPY users TO STDOUT", CopyOut),
    ("copy users (id, name) to stdout with (format csv)", CopyOut),
    ("COPY (SELECT * FROM users) TO STDOUT", CopyOut),
    ("COPY BINARY users TO STDOUT", CopyOut),
    // Writes.
    ("INSERT INTO t (a) VALUES (1)", Write),
    ("insert into t select * from u", Write),
    ("UPDATE t SET a = 1 WHERE id = 2", Write),
    ("DELETE FROM t", Write),
    ("DeLeTe/**/FROM t", Write),
    (
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
        Write,
    ),
    ("COPY t FROM STDIN", Write),
    (
        "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        Write,
    ),
    (
        "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT count(*) FROM x",
        Write,
    ),
    (
        "WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT 1",
        Write,
    ),
    (
        "WITH x AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM x)",
        Write,
    ),
    ("SELECT * FROM t FOR UPDATE", Write),
    ("SELECT * FROM t FOR SHARE", Write),
    ("SELECT * FROM t FOR NO KEY UPDATE", Write),
    ("select * from t for key share skip locked", Write),
    (
        "SELECT * FROM (SELECT * FROM t FOR UPDATE OF t NOWAIT) s",
        Write,
    ),
    (
        "(WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x)",
        Write,
    ),
    (
        "COPY (WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x) TO STDOUT",
        Write,
    ),
    (
        "EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
        Write,
    ),
    ("SELECT nextval('s')", Write),
    ("SELECT * FROM t WHERE id = setval('s', 1)", Write),
    ("SELECT pg_catalog.nextval('s')", Write),
    ("SELECT \"nextval\"('s')", Write),
    ("EXPLAIN ANALYZE DELETE FROM t", Write),
    ("EXPLAIN (ANALYZE) UPDATE t SET a = 1", Write),
    (
        "EXPLAIN (costs off, analyze on) INSERT INTO t VALUES (1)",
        Write,
    ),
    ("explain analyse verbose delete from t", Write),
    ("COPY (DELETE FROM t RETURNING *) TO STDOUT", Write),
    ("NOTIFY chan, 'x'", Write),
    ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Write),
    ("REFRESH MATERIALIZED VIEW mv", Write),
    ("SELECT 1; DELETE FROM t", Write),
    ("SELECT 1;\rDELETE FROM t", Write),
    ("SELECT 1 --x\rDELETE FROM t", Read),
    // DDL.
    ("CREATE TABLE t (a int)", Ddl),
    ("create temp table t as select 1", Ddl),
    ("CREATE TABLE t AS SELECT * FROM u", Ddl),
    ("SELECT * INTO newt FROM t", Ddl),
    ("SELECT 1 AS a INTO TEMP x", Ddl),
    ("ALTER TABLE t ADD COLUMN b int", Ddl),
    ("DROP TABLE t", Ddl),
    ("dRoP/* x */TaBlE t", Ddl),
    ("DROP TABLE IF EXISTS t CASCADE", Ddl),
    ("TRUNCATE t", Ddl),
    ("COMMENT ON TABLE t IS 'x'", Ddl),
    ("CREATE INDEX i ON t (a)", Ddl),
    (
        "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
        Ddl,
    ),
    (
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        Ddl,
    ),
    ("CREATE VIEW v AS SELECT * FROM t", Ddl),
    ("SELECT 1; DROP TABLE t; SELECT 2", Ddl),
    ("EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", Ddl),
    // Admin.
    ("ALTER SYSTEM SET work_mem = '1GB'", Admin),
    ("alter system reset all", Admin),
    ("CREATE ROLE r LOGIN", Admin),
    ("CREATE USER u WITH PASSWORD 'x'", Admin),
    ("ALTER ROLE r SUPERUSER", Admin),
    ("DROP ROLE r", Admin),
    ("GRANT SELECT ON t TO r", Admin),
    ("REVOKE ALL ON t FROM r", Admin),
    ("VACUUM FULL t", Admin),
    ("ANALYZE t", Admin),
    ("CHECKPOINT", Admin),
    ("CLUSTER t USING i", Admin),
    ("REINDEX TABLE t", Admin),
    ("LOAD 'plugin'", Admin),
    ("CREATE EXTENSION dblink", Admin),
    ("DROP EXTENSION dblink", Admin),
    ("CREATE DATABASE d", Admin),
    (
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r",
        Admin,
    ),
    ("CREATE FOREIGN DATA WRAPPER w", Admin),
    ("COPY t TO '/tmp/x'", Admin),
    ("COPY t FROM '/etc/passwd'", Admin),
    ("COPY t TO PROGRAM 'sh -c id'", Admin),
    ("COPY (SELECT 1) TO PROGRAM 'id'", Admin),
    ("COPY t FROM PROGRAM 'id'", Admin),
    ("PREPARE TRANSACTION 'x'", Admin),
    ("COMMIT PREPARED 'x'", Admin),
    ("ROLLBACK PREPARED 'x'", Admin),
    ("SELECT pg_read_file('/etc/passwd')", Admin),
    ("SELECT PG_READ_FILE('/etc/passwd')", Admin),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", Admin),
    ("SELECT pg_catalog . pg_read_file ('/etc/passwd')", Admin),
    ("SELECT \"pg_read_file\"('/etc/passwd')", Admin),
    (
        "SELECT \"pg_catalog\".\"pg_read_file\"('/etc/passwd')",
        Admin,
    ),
    ("SELECT U&\"pg\\005fread_file\"('/etc/passwd')", Admin),
    (
        "SELECT U&\"pg!005fread_file\" UESCAPE '!' ('/etc/passwd')",
        Admin,
    ),
    ("SELECT pg_read_file /* c */ ('/etc/passwd')", Admin),
    ("SELECT * FROM pg_ls_dir('.')", Admin),
    ("SELECT 1 FROM t WHERE pg_terminate_backend(42)", Admin),
    (
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        Admin,
    ),
    ("SELECT dblink_exec('host=x', 'DROP TABLE t')", Admin),
    (
        "SELECT query_to_xml('DELETE FROM t RETURNING *', true, true, '')",
        Admin,
    ),
    ("SELECT lo_import('/etc/passwd')", Admin),
    ("INSERT INTO t VALUES (pg_read_file('/etc/passwd'))", Admin),
    (
        "WITH x AS (SELECT pg_read_file('f')) SELECT * FROM x",
        Admin,
    ),
    ("EXPLAIN SELECT pg_read_file('f')", Admin),
    ("SELECT 1; VACUUM", Admin),
    // Session.
    ("SET search_path = public", Session),
    ("set local work_mem = '64MB'", Session),
    ("SET ROLE admin", Session),
    ("SET SESSION AUTHORIZATION admin", Session),
    ("RESET ALL", Session),
    ("DISCARD ALL", Session),
    ("LISTEN chan", Session),
    ("UNLISTEN *", Session),
    ("CLOSE c", Session),
    ("DEALLOCATE q", Session),
    // Transaction.
    ("BEGIN", Transaction),
    ("BEGIN ISOLATION LEVEL SERIALIZABLE", Transaction),
    ("START TRANSACTION READ ONLY", Transaction),
    ("COMMIT", Transaction),
    ("END", Transaction),
    ("ROLLBACK", Transaction),
    ("ABORT", Transaction),
    ("SAVEPOINT s", Transaction),
    ("RELEASE SAVEPOINT s", Transaction),
    ("ROLLBACK TO SAVEPOINT s", Transaction),
    ("SET TRANSACTION READ WRITE", Transaction),
    ("BEGIN; SELECT 1; COMMIT", Transaction),
    // Procedural.
    ("DO $$ BEGIN DELETE FROM t; END $$", Procedural),
    (
        "DO LANGUAGE plpgsql $body$ BEGIN NULL; END $body$",
        Procedural,
    ),
    ("CALL p(1)", Procedural),
    ("SELECT 1; CALL p()", Procedural),
    // Unknown: fail closed.
    ("SELECT 'unterminated", Unknown),
    ("SELECT /* unterminated", Unknown),
    ("SELECT $a$ unterminated", Unknown),
    ("SELECT \"\"", Unknown),
    ("FROBNICATE t", Unknown),
    ("EXECUTE q(1)", Unknown),
    ("\"select\" 1", Unknown),
    ("SELECT 1; SELECT 'oops", Unknown),
    ("SELECT myfunc(1) FROM t WHERE", Unknown),
];

#[test]
fn every_case_has_its_class() {
    let mut failures = Vec::new();
    for (sql, want) in CASES {
        let got = class_of(sql);
        if got != *want {
            failures.push(format!(
                "{sql:?}: want {want:?}, got {got:?}: {:?}",
                classify(sql, &ClassifyOptions::default())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 80);
}

#[test]
fn fast_path_decides_common_statements() {
    for sql in [
        "SELECT a, b FROM t WHERE c = 1 ORDER BY a LIMIT 10",
        "SELECT count(*) FROM t",
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t WHERE id = $1",
        "BEGIN",
        "COMMIT",
        "SET x = 1",
    ] {
        assert_eq!(one(sql).path, ClassifyPath::FastPath, "{sql}");
    }
}

#[test]
fn uncertain_statements_take_the_full_parse() {
    for sql in [
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SELECT myfunc(1)",
        "SELECT * FROM t FOR UPDATE",
        "SELECT 1 INTO x",
    ] {
        assert_eq!(one(sql).path, ClassifyPath::FullParse, "{sql}");
    }
    let s = one("SELECT myfunc(1) FROM t WHERE");
    assert_eq!((s.class, s.path), (Unknown, ClassifyPath::ParseError));
    assert!(s.reason.unwrap().contains("full parse failed"));
}

#[test]
fn lexical_errors_are_unknown_with_a_reason() {
    let s = one("SELECT 'abc");
    assert_eq!((s.class, s.path), (Unknown, ClassifyPath::LexError));
    assert!(s.reason.unwrap().contains("unterminated string"));
}

#[test]
fn multi_statement_messages_judge_each_statement() {
    let c = classify(
        "SELECT 1; /* x */ ; DELETE FROM t; SET a = 1",
        &ClassifyOptions::default(),
    );
    let classes: Vec<_> = c.statements.iter().map(|s| s.class).collect();
    assert_eq!(classes, vec![Read, Write, Session]);
    assert_eq!(c.strongest(), Write);
    let src = "SELECT 1; DELETE FROM t";
    assert_eq!(&src[c.statements[0].span.clone()], "SELECT 1");
    assert_eq!(classify("", &ClassifyOptions::default()).strongest(), Read);
}

#[test]
fn where_clause_presence_is_reported_for_update_and_delete() {
    assert_eq!(one("DELETE FROM t").has_where, Some(false));
    assert_eq!(one("DELETE FROM t WHERE id = 1").has_where, Some(true));
    assert_eq!(
        one("UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)").has_where,
        Some(false)
    );
    assert_eq!(one("UPDATE t SET a = 1 WHERE true").has_where, Some(true));
    assert_eq!(one("UPDATE t SET \"where\" = 1").has_where, Some(false));
    assert_eq!(
        one("WITH x AS (SELECT 1) DELETE FROM t").has_where,
        Some(false)
    );
    assert_eq!(
        one("WITH x AS (SELECT 1) DELETE FROM t WHERE a = 1").has_where,
        Some(true)
    );
    assert_eq!(one("INSERT INTO t VALUES (1)").has_where, None);
    assert_eq!(one("PREPARE d AS DELETE FROM t").has_where, Some(false));
}

#[test]
fn functions_are_normalized_and_reported() {
    let s = one("SELECT Lower(x), PG_CATALOG.\"Upper\"(y), U&\"pg\\005fsleep\"(1) FROM t");
    assert_eq!(s.functions, vec!["lower", "pg_catalog.Upper", "pg_sleep"]);
    let s = one("INSERT INTO t (a, b) SELECT f(a), g.h(b) FROM u AS x(a, b)");
    assert_eq!(s.functions, vec!["f", "g.h"]);
    let s = one("SELECT CAST(x AS numeric(10, 2)), y::varchar(3) FROM t WHERE a IN (1) AND EXISTS (SELECT 1)");
    assert!(s.functions.is_empty(), "{:?}", s.functions);
}

#[test]
fn admin_function_list_is_configurable() {
    let opts = ClassifyOptions {
        admin_functions: vec!["my_danger*".into(), "audit.purge".into()],
        ..ClassifyOptions::default()
    };
    assert_eq!(
        classify("SELECT my_danger_zone()", &opts).strongest(),
        Admin
    );
    assert_eq!(classify("SELECT audit.purge()", &opts).strongest(), Admin);
    assert_eq!(classify("SELECT other.purge()", &opts).strongest(), Read);
    // Without the built-in list, pg_read_file is just a call.
    assert_eq!(
        classify("SELECT pg_read_file('x')", &opts).strongest(),
        Read
    );
}

#[test]
fn relations_are_reported_best_effort() {
    let tables = |sql: &str| {
        let c = classify(sql, &ClassifyOptions::default());
        relations(sql, &c.statements[0], LexOptions::default())
    };
    assert_eq!(
        tables("SELECT * FROM a, s.b AS x JOIN \"C\" ON true"),
        vec!["a", "s.b", "C"]
    );
    assert_eq!(tables("DELETE FROM ONLY t WHERE id = 1"), vec!["t"]);
    assert_eq!(tables("UPDATE t SET a = 1"), vec!["t"]);
    assert_eq!(tables("INSERT INTO s.t (a) VALUES (1)"), vec!["s.t"]);
    assert_eq!(
        tables("SELECT extract(year FROM ts) FROM orders"),
        vec!["orders"]
    );
    assert_eq!(tables("COPY users TO STDOUT"), vec!["users"]);
    assert_eq!(tables("COPY BINARY s.users TO STDOUT"), vec!["s.users"]);
    let t = tables("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x");
    assert!(t.contains(&"t".to_string()), "{t:?}");
    // The span of the second statement, not the first.
    let sql = "SELECT 1 FROM a; SELECT 2 FROM b";
    let c = classify(sql, &ClassifyOptions::default());
    assert_eq!(
        relations(sql, &c.statements[1], LexOptions::default()),
        vec!["b"]
    );
}

#[test]
fn settings_are_reported_so_policy_can_refuse_them() {
    let setting = |sql: &str| one(sql).setting;
    assert_eq!(
        setting("SET standard_conforming_strings = off").as_deref(),
        Some("standard_conforming_strings")
    );
    assert_eq!(
        setting("SET LOCAL \"Search_Path\" TO x").as_deref(),
        Some("Search_Path")
    );
    assert_eq!(setting("SET ROLE admin").as_deref(), Some("role"));
    assert_eq!(
        setting("SET SESSION AUTHORIZATION admin").as_deref(),
        Some("session_authorization")
    );
    assert_eq!(
        setting("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE").as_deref(),
        Some("session_characteristics")
    );
    assert_eq!(
        setting("SET NAMES 'SJIS'").as_deref(),
        Some("client_encoding")
    );
    assert_eq!(setting("SET TIME ZONE 'UTC'").as_deref(), Some("timezone"));
    assert_eq!(
        setting("RESET SESSION AUTHORIZATION").as_deref(),
        Some("session_authorization")
    );
    assert_eq!(setting("RESET ROLE").as_deref(), Some("role"));
    assert_eq!(setting("BEGIN READ WRITE").as_deref(), Some("transaction"));
    assert_eq!(setting("BEGIN").as_deref(), None);
    assert_eq!(setting("DISCARD ALL").as_deref(), Some("all"));
}

#[test]
fn commands_are_named() {
    let cmd = |sql: &str| one(sql).command;
    assert_eq!(cmd("select 1"), "SELECT");
    assert_eq!(cmd("SELECT 1 INTO t"), "SELECT INTO");
    assert_eq!(cmd("CREATE TABLE t AS SELECT 1"), "CREATE TABLE AS");
    assert_eq!(cmd("alter system set x = 1"), "ALTER SYSTEM");
    assert_eq!(cmd("EXPLAIN ANALYZE DELETE FROM t"), "EXPLAIN");
    assert_eq!(cmd("DECLARE c CURSOR FOR SELECT 1"), "DECLARE CURSOR");
    assert_eq!(cmd("COPY (SELECT 1) TO STDOUT"), "COPY");
}

#[test]
fn standard_conforming_strings_off_changes_boundaries() {
    let sql = r"SELECT 'a\'; DELETE FROM t; --'";
    let on = classify(sql, &ClassifyOptions::default());
    assert_eq!(on.strongest(), Write);
    let off = ClassifyOptions {
        standard_conforming_strings: false,
        ..ClassifyOptions::default()
    };
    assert_eq!(classify(sql, &off).strongest(), Read);
}

#[test]
fn full_parse_results_are_cached_by_normalized_text() {
    let before = crate::sql::cache_len();
    one("SELECT myfunc(123456789) FROM cache_probe_table");
    let after_first = crate::sql::cache_len();
    one("select MYFUNC(42) /* c */ from cache_probe_table");
    assert_eq!(crate::sql::cache_len(), after_first);
    assert!(after_first > before || after_first == crate::sql::CACHE_CAP);
}
