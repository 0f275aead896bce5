//! A read-only `reader` role through the real gateway is not in the way of reads that only
//! look dangerous (keywords in literals, identifiers and comments, dollar quotes, SHOW,
//! EXPLAIN, transactions, harmless settings, parameters), over both protocols; and the writes
//! refused to `reader` run for `admin`, whose role has no rules.

mod common;

use common::extended::TEXT;
use common::policy::{Failures, PolicyStack, Session};
use common::rawpg::Reply;
use tokio_postgres::types::ToSql;

/// A read and the text rows it must return (over the simple protocol; single statements are
/// also run through Parse/Bind/Execute).
struct Case {
    sql: &'static str,
    rows: &'static [&'static [&'static str]],
    /// Several statements, or ones whose effect needs the simple protocol.
    simple_only: bool,
}

const fn one(sql: &'static str, rows: &'static [&'static [&'static str]]) -> Case {
    Case {
        sql,
        rows,
        simple_only: false,
    }
}

const fn multi(sql: &'static str, rows: &'static [&'static [&'static str]]) -> Case {
    Case {
        sql,
        rows,
        simple_only: true,
    }
}

const ALLOWED: &[Case] = &[
    one(
        "SELECT 'DROP TABLE customers'",
        &[&["DROP TABLE customers"]],
    ),
    one(
        "SELECT 'x''; DROP TABLE customers; --'",
        &[&["x'; DROP TABLE customers; --"]],
    ),
    one("SELECT 1 AS delete, 2 AS update", &[&["1", "2"]]),
    one(
        "SELECT id AS \"delete\" FROM customers WHERE id = 1",
        &[&["1"]],
    ),
    one(
        "SELECT \"update\".id FROM customers AS \"update\" WHERE \"update\".id = 3",
        &[&["3"]],
    ),
    one(
        "SELECT name FROM customers /* DELETE FROM customers */ WHERE id = 2",
        &[&["Bob Stone"]],
    ),
    one(
        "-- DELETE FROM customers\nSELECT count(*) FROM customers",
        &[&["5"]],
    ),
    one("select /* /* nested DROP */ TRUNCATE */ 7", &[&["7"]]),
    one(
        "SELECT $$;DROP TABLE customers;$$",
        &[&[";DROP TABLE customers;"]],
    ),
    one(
        "SELECT $tag$ DELETE FROM x; $$ $tag$",
        &[&[" DELETE FROM x; $$ "]],
    ),
    one(
        "SELECT E'\\';DROP TABLE customers;--'",
        &[&["';DROP TABLE customers;--"]],
    ),
    one("SELECT '\\'", &[&["\\"]]),
    one(
        "SELECT U&'\\0044ROP TABLE customers'",
        &[&["DROP TABLE customers"]],
    ),
    one(
        "SELECT 'SELECT 1; DELETE FROM customers'::text AS \"drop\"",
        &[&["SELECT 1; DELETE FROM customers"]],
    ),
    one(
        "SELECT lower('DELETE FROM customers')",
        &[&["delete from customers"]],
    ),
    one("SELECT length($$'; DROP TABLE customers; --$$)", &[&["27"]]),
    one(
        "SELECT 'pg_read_file(''postgresql.conf'')' AS pg_read_file",
        &[&["pg_read_file('postgresql.conf')"]],
    ),
    one(
        "SELECT 'nextval(''order_seq'')' AS nextval",
        &[&["nextval('order_seq')"]],
    ),
    one(
        "SELECT count(*) FROM customers WHERE name <> 'TRUNCATE'",
        &[&["5"]],
    ),
    one("SELECT id FROM customers WHERE name ILIKE '%delete%'", &[]),
    one(
        "SELECT \"name\" FROM \"public\".\"customers\" WHERE \"id\" = 4",
        &[&["Dan Wu"]],
    ),
    one(
        "SELECT * FROM (SELECT 1 AS \"insert\") AS \"truncate\"",
        &[&["1"]],
    ),
    one(
        "WITH deleted AS (SELECT id FROM customers WHERE id < 3) SELECT count(*) FROM deleted",
        &[&["2"]],
    ),
    one(
        "VALUES (1, 'DELETE'), (2, 'DROP')",
        &[&["1", "DELETE"], &["2", "DROP"]],
    ),
    one(
        "SELECT id, name FROM customers ORDER BY id",
        &[
            &["1", "Alice Martin"],
            &["2", "Bob Stone"],
            &["3", "Carol Diaz"],
            &["4", "Dan Wu"],
            &["5", "Eve Park"],
        ],
    ),
    one(
        "SELECT c.name, p.amount FROM customers c JOIN payments p ON p.customer_id = c.id \
         ORDER BY p.id",
        &[
            &["Alice Martin", "10.50"],
            &["Bob Stone", "20.50"],
            &["Carol Diaz", "30.50"],
        ],
    ),
    one("SHOW statement_timeout", &[&["0"]]),
    one("SHOW standard_conforming_strings", &[&["on"]]),
    one(
        "SELECT current_setting('standard_conforming_strings')",
        &[&["on"]],
    ),
    one(
        "EXPLAIN (COSTS OFF) SELECT id FROM customers",
        &[&["Seq Scan on customers"]],
    ),
    one(
        "EXPLAIN (COSTS OFF) DELETE FROM customers",
        &[&["Delete on customers"], &["  ->  Seq Scan on customers"]],
    ),
    one(
        "SELECT count(*) FROM pg_class WHERE relname = 'customers'",
        &[&["1"]],
    ),
    one("SELECT last_value FROM order_seq", &[&["1"]]),
    multi("BEGIN; SELECT count(*) FROM customers; COMMIT", &[&["5"]]),
    multi("START TRANSACTION READ ONLY; SELECT 1; ROLLBACK", &[&["1"]]),
    multi(
        "BEGIN; SAVEPOINT s; SELECT 3; RELEASE SAVEPOINT s; COMMIT",
        &[&["3"]],
    ),
    multi(
        "BEGIN; DECLARE cur CURSOR FOR SELECT id FROM customers ORDER BY id; \
         FETCH 2 FROM cur; CLOSE cur; COMMIT",
        &[&["1"], &["2"]],
    ),
    multi(
        "SET statement_timeout = '5s'; SHOW statement_timeout; RESET statement_timeout",
        &[&["5s"]],
    ),
    multi(
        "SET application_name = 'delete'; SHOW application_name",
        &[&["delete"]],
    ),
    multi("SELECT 1 ; ; SELECT 2", &[&["1"], &["2"]]),
    multi("LISTEN delete_channel; UNLISTEN *", &[]),
    multi("SELECT 'a;b'; SELECT $$c;d$$", &[&["a;b"], &["c;d"]]),
];

fn text_rows(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| Some(v.to_string())).collect())
        .collect()
}

/// The reply ran without error, returned `rows` and left the session idle.
fn answered(reply: Result<Reply, String>, rows: &[&[&str]]) -> Result<(), String> {
    let reply = reply?;
    if reply.errors().is_empty() && reply.rows() == text_rows(rows) && reply.status == b'I' {
        Ok(())
    } else {
        Err(format!("expected rows {rows:?}, got {}", reply.summary()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_runs_reads_that_look_dangerous_and_admin_runs_writes() {
    let ps = PolicyStack::start().await;
    let mut f = Failures::default();
    let mut s = Session::reader(&ps);
    assert!(ALLOWED.len() >= 30, "{} cases", ALLOWED.len());
    for (i, case) in ALLOWED.iter().enumerate() {
        let sql = case.sql.escape_debug();
        if let Err(e) = answered(s.simple(case.sql), case.rows) {
            f.push(format!("case {i} `{sql}` [simple]: {e}"));
        }
        if !case.simple_only {
            if let Err(e) = answered(s.extended(case.sql, &[], TEXT), case.rows) {
                f.push(format!("case {i} `{sql}` [Parse/Bind/Execute]: {e}"));
            }
        }
    }

    // Parameters through a raw pipeline: text in, text out.
    for (sql, params, rows) in [
        (
            "SELECT name FROM customers WHERE id = $1",
            vec![Some("2")],
            &[&["Bob Stone"][..]][..],
        ),
        (
            "SELECT $1::text",
            vec![Some("DROP TABLE customers")],
            &[&["DROP TABLE customers"][..]][..],
        ),
        (
            "SELECT count(*) FROM customers WHERE name = $1",
            vec![Some("'; DELETE FROM customers; --")],
            &[&["0"][..]][..],
        ),
        ("SELECT $1::int IS NULL", vec![None], &[&["t"][..]][..]),
    ] {
        if let Err(e) = answered(s.extended(sql, &params, TEXT), rows) {
            f.push(format!("`{sql}` with {params:?} [Parse/Bind/Execute]: {e}"));
        }
    }

    driver_reads(&ps, &mut f).await;
    admin_runs_writes(&ps, &mut f);
    f.assert_none(&format!("{} allowed reads", ALLOWED.len()));
}

/// Reads with typed parameters and binary results through tokio-postgres.
async fn driver_reads(ps: &PolicyStack, f: &mut Failures) {
    let client = ps.reader_client().await;
    let two = 2i32;
    let text = "'; DROP TABLE customers; --";
    let ids = vec![1i32, 3];
    let cases: [(&str, Vec<&(dyn ToSql + Sync)>, Vec<String>); 4] = [
        (
            "SELECT name FROM customers WHERE id = $1",
            vec![&two],
            vec!["Bob Stone".into()],
        ),
        ("SELECT $1::text", vec![&text], vec![text.into()]),
        (
            "SELECT name FROM customers WHERE id = ANY($1) ORDER BY id",
            vec![&ids],
            vec!["Alice Martin".into(), "Carol Diaz".into()],
        ),
        (
            "SELECT name FROM customers WHERE name LIKE $1 || '%' ORDER BY id",
            vec![&"D"],
            vec!["Dan Wu".into()],
        ),
    ];
    for (sql, params, want) in cases {
        match client.query(sql, &params).await {
            Ok(rows) => {
                let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                f.check(got == want, || {
                    format!("`{sql}` [tokio-postgres]: expected {want:?}, got {got:?}")
                });
            }
            Err(e) => f.push(format!("`{sql}` [tokio-postgres]: {e:?}")),
        }
    }
    match client
        .query_one("SELECT count(*) FROM customers", &[])
        .await
    {
        Ok(row) => f.check(row.get::<_, i64>(0) == 5, || {
            format!("count(*) [tokio-postgres]: got {row:?}")
        }),
        Err(e) => f.push(format!("count(*) [tokio-postgres]: {e:?}")),
    }
}

/// The policy is per role: statements refused to `reader` run for `admin`.
fn admin_runs_writes(ps: &PolicyStack, f: &mut Failures) {
    let mut s = Session::admin(ps);
    for (sql, want) in [
        ("CREATE TABLE scratch (a int, b text)", "CREATE TABLE"),
        (
            "INSERT INTO scratch VALUES (1, 'one'), (2, 'two')",
            "INSERT 0 2",
        ),
        ("/**/UPDATE scratch SET b = 'uno' WHERE a = 1", "UPDATE 1"),
        ("-- x\nDELETE FROM scratch WHERE a = 2", "DELETE 1"),
        (
            "WITH d AS (DELETE FROM scratch RETURNING *) SELECT count(*) FROM d",
            "SELECT 1",
        ),
        ("ALTER TABLE scratch ADD COLUMN c int", "ALTER TABLE"),
        ("SELECT nextval('order_seq')", "SELECT 1"),
        ("TRUNCATE scratch", "TRUNCATE TABLE"),
        ("DO $$ BEGIN INSERT INTO scratch VALUES (3); END $$", "DO"),
        ("DROP TABLE scratch", "DROP TABLE"),
    ] {
        match s.simple(sql) {
            Ok(r) if r.errors().is_empty() && r.command_tags() == [want] => {}
            Ok(r) => f.push(format!(
                "admin `{}`: expected {want}, got {}",
                sql.escape_debug(),
                r.summary()
            )),
            Err(e) => f.push(format!("admin `{}`: {e}", sql.escape_debug())),
        }
    }
}
