//! A read-only `reader` role through the real gateway: every write, DDL, admin and procedural
//! statement is refused with SQLSTATE 42501 however it is spelled, over the simple protocol,
//! the extended protocol (a driver's Parse and hand-made pipelines) and FunctionCall; the
//! session stays usable, a refused statement fails a transaction block exactly as PostgreSQL
//! fails one, and the database is provably unchanged afterwards.

mod common;

use std::path::Path;

use bytes::BytesMut;
use common::extended::{self as ext, TEXT};
use common::policy::{is_sluice_block, is_sluice_block_pg, Failures, PolicyStack, Session};
use common::rawpg::Reply;
use sluice::codec::pg::tag;

/// Statements a reader must never run. `{file}` and `{marker}` are replaced with paths the
/// server could write to if the statement got through.
const BLOCKED: &[&str] = &[
    // Plain writes, and the same hidden by comments, case and quoting.
    "DELETE FROM customers",
    "/**/DELETE FROM customers WHERE id = 1",
    "DELETE/**/FROM customers WHERE id = 1",
    "-- x\nDROP TABLE customers",
    "/* outer /* nested */ still a comment */ DELETE FROM customers WHERE id = 1",
    "/* /* /* deep */ */ */DROP TABLE payments",
    "dElEtE fRoM CuStOmErs WHERE id = 1",
    "\n\t  delete\nfrom\tcustomers",
    "DELETE FROM \"customers\" WHERE \"id\" = 1",
    "DELETE FROM public.\"customers\" WHERE id = 2",
    "DELETE FROM U&\"\\0063ustomers\" WHERE id = 1",
    "DELETE FROM U&\"!0063ustomers\" UESCAPE '!' WHERE id = 1",
    "UPDATE customers SET name = 'x' WHERE id = 1",
    "UPDATE customers SET name = $$it's; fine$$ WHERE id = 1",
    "UPDATE customers SET name = $q$ $$ ; $q$ WHERE id = 1",
    "UPDATE customers SET name = E'\\x41\\'' WHERE id = 1",
    "UPDATE customers SET card_number = NULL",
    "INSERT INTO customers (id, name) VALUES (100, 'mallory')",
    "INSERT INTO customers (id) SELECT 200",
    "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = 'm'",
    "MERGE INTO customers c USING (SELECT 1 AS id) s ON c.id = s.id \
     WHEN MATCHED THEN UPDATE SET name = 'm'",
    // Data-modifying CTEs, SELECT INTO, CREATE TABLE AS, EXPLAIN ANALYZE of a write.
    "WITH d AS (DELETE FROM customers RETURNING *) SELECT count(*) FROM d",
    "WITH x AS (SELECT 1) UPDATE customers SET name = 'w' WHERE id = 1",
    "WITH u AS (UPDATE customers SET name = 'w' WHERE id = 1 RETURNING id) SELECT * FROM u",
    "WITH RECURSIVE r AS (SELECT 1 AS n) , i AS (INSERT INTO customers (id) VALUES (300) \
     RETURNING id) SELECT * FROM r",
    "SELECT * INTO stolen FROM customers",
    "SELECT id INTO TEMP stolen_tmp FROM customers",
    "CREATE TABLE stolen AS SELECT * FROM customers",
    "CREATE TEMP TABLE scratch_tmp (a int)",
    "CREATE TABLE scratch (a int)",
    "EXPLAIN ANALYZE DELETE FROM customers",
    "EXPLAIN (ANALYZE) UPDATE customers SET name = 'e'",
    "EXPLAIN (ANALYZE true, BUFFERS) INSERT INTO customers (id) VALUES (301)",
    "explain analyse delete from payments",
    // Several statements in one message: one bad statement blocks the message.
    "SELECT 1; DELETE FROM customers",
    "SELECT 1; /* */ DROP TABLE payments",
    "SELECT 'a;b'; UPDATE customers SET name = 'z'",
    "SELECT E'it\\'s'; DELETE FROM payments",
    "SELECT '\\'; DELETE FROM payments; --'",
    "SELECT $a$ $$ ; $a$; DELETE FROM payments",
    "SELECT $$;$$; DROP TABLE payments",
    "SELECT U&'\\0027'; DELETE FROM payments",
    "SELECT 1 AS \"x;\"; DELETE FROM payments",
    "TABLE customers; TRUNCATE payments",
    "BEGIN; DELETE FROM customers WHERE id = 1; COMMIT",
    // Procedural code.
    "DO $$ BEGIN DELETE FROM customers; END $$",
    "DO LANGUAGE plpgsql $body$ BEGIN PERFORM 1; END $body$",
    "CALL wipe_payments()",
    "call public.\"wipe_payments\"()",
    // Functions with side effects, however named.
    "SELECT pg_read_file('postgresql.conf')",
    "SELECT pg_catalog.pg_read_file('postgresql.conf')",
    "SELECT \"pg_read_file\"('postgresql.conf')",
    "SELECT PG_READ_FILE('postgresql.conf')",
    "SELECT U&\"pg\\005fread\\005ffile\"('postgresql.conf')",
    "SELECT length(pg_read_file('postgresql.conf')) > 0",
    "SELECT id FROM customers WHERE pg_read_file('postgresql.conf') IS NOT NULL",
    "SELECT pg_ls_dir('.')",
    "SELECT set_config('search_path', 'evil', false)",
    "SELECT \"pg_catalog\".\"set_config\"('work_mem', '1MB', false)",
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT pg_cancel_backend(0)",
    "SELECT pg_reload_conf()",
    "SELECT nextval('order_seq')",
    "SELECT pg_catalog.nextval('order_seq')",
    "SELECT setval('order_seq', 100)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_from_bytea(0, 'x')",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_notify('c', 'x')",
    "SELECT dblink_connect('host=127.0.0.1')",
    "SELECT query_to_xml('DELETE FROM customers RETURNING *', true, false, '')",
    "NOTIFY c, 'x'",
    // COPY in, and COPY to server files and programs.
    "COPY customers FROM STDIN",
    "COPY customers (id) FROM stdin WITH (FORMAT csv)",
    "copy payments from STDIN",
    "COPY customers TO '{file}'",
    "COPY (SELECT 1) TO '{file}'",
    "COPY customers TO PROGRAM 'cat > {marker}'",
    "COPY customers FROM '/etc/hostname'",
    // Identity and server settings.
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "SET session_authorization = 'postgres'",
    "SET standard_conforming_strings = off",
    "SET client_encoding = 'SJIS'",
    "SET default_transaction_read_only = off",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "GRANT ALL ON customers TO PUBLIC",
    "REVOKE SELECT ON customers FROM PUBLIC",
    "CREATE ROLE mallory SUPERUSER LOGIN",
    "DROP ROLE IF EXISTS nobody",
    // Maintenance, locks and schema changes.
    "VACUUM customers",
    "VACUUM (FULL) payments",
    "ANALYZE customers",
    "CHECKPOINT",
    "CLUSTER customers USING customers_pkey",
    "REINDEX TABLE customers",
    "TRUNCATE customers CASCADE",
    "TRUNCATE TABLE ONLY payments",
    "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE",
    "SELECT * FROM customers FOR UPDATE",
    "SELECT id FROM customers WHERE id = 1 FOR SHARE",
    "SELECT id FROM customers FOR NO KEY UPDATE SKIP LOCKED",
    "DROP TABLE IF EXISTS payments",
    "DROP VIEW customer_cards",
    "ALTER TABLE customers ADD COLUMN x int",
    "ALTER TABLE customers RENAME card_number TO cc",
    "CREATE INDEX ON customers (name)",
    "CREATE VIEW v_all AS SELECT * FROM customers",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE EXTENSION IF NOT EXISTS dblink",
    "CREATE SCHEMA evil",
    "COMMENT ON TABLE customers IS 'x'",
    "LOAD 'plpgsql'",
    "PREPARE p AS DELETE FROM customers",
    "PREPARE TRANSACTION 'x'",
];

/// The blocked statements with the placeholder paths filled in.
fn cases(dir: &Path) -> Vec<String> {
    let file = dir.join("copy.csv");
    let marker = dir.join("program-ran");
    BLOCKED
        .iter()
        .map(|s| {
            s.replace("{file}", &file.to_string_lossy())
                .replace("{marker}", &marker.to_string_lossy())
        })
        .collect()
}

/// The reply is the gateway's refusal and nothing else ran: exactly one ErrorResponse 42501
/// starting `sluice:`, no rows, no completed command, and the expected transaction status.
fn refused(reply: &Result<Reply, String>, status: u8) -> Result<(), String> {
    refused_reply(reply.as_ref().map_err(Clone::clone)?, status)
}

/// [`refused`] for a reply that arrived.
fn refused_reply(reply: &Reply, status: u8) -> Result<(), String> {
    let errors = reply.errors();
    let ok = errors.len() == 1
        && is_sluice_block(&errors[0])
        && !reply.has(tag::backend::DATA_ROW)
        && !reply.has(tag::backend::COMMAND_COMPLETE)
        && !reply.has(tag::backend::COPY_IN_RESPONSE)
        && !reply.has(tag::backend::COPY_OUT_RESPONSE)
        && reply.status == status;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected only a sluice 42501 refusal with status {}; got {}",
            status as char,
            reply.summary()
        ))
    }
}

/// `SELECT 1` answers `1` with status `I`.
fn usable(s: &mut Session<'_>) -> Result<(), String> {
    let reply = s.simple("SELECT 1")?;
    if reply.rows() == [vec![Some("1".to_string())]] && reply.status == b'I' {
        Ok(())
    } else {
        Err(format!(
            "the session is not usable after it: SELECT 1 got {}",
            reply.summary()
        ))
    }
}

/// Inside BEGIN: `send` is refused and leaves the block failed (status E, then 25P02 for the
/// next statement), and ROLLBACK ends it.
fn fails_transaction(
    s: &mut Session<'_>,
    send: impl FnOnce(&mut Session<'_>) -> Result<Reply, String>,
) -> Result<(), String> {
    let begin = s.simple("BEGIN")?;
    if begin.status != b'T' {
        return Err(format!("BEGIN got {}", begin.summary()));
    }
    let reply = send(s);
    let checked = refused(&reply, b'E');
    let next = s.simple("SELECT 1")?;
    let rollback = s.simple("ROLLBACK")?;
    checked?;
    let aborted = next.errors().first().is_some_and(|e| e.code == "25P02") && next.status == b'E';
    if !aborted {
        return Err(format!(
            "the next statement in the block should get 25P02 with status E; got {}",
            next.summary()
        ));
    }
    if rollback.status != b'I' || rollback.command_tags() != ["ROLLBACK"] {
        return Err(format!("ROLLBACK got {}", rollback.summary()));
    }
    Ok(())
}

fn record(f: &mut Failures, i: usize, sql: &str, mode: &str, result: Result<(), String>) {
    if let Err(e) = result {
        f.push(format!("case {i} `{}` [{mode}]: {e}", sql.escape_debug()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_is_refused_writes_ddl_admin_and_procedural_statements_every_way() {
    let ps = PolicyStack::start().await;
    let dir = tempfile::Builder::new()
        .prefix("sluice-policy-")
        .tempdir()
        .unwrap();
    // The server may run as another user: let it create files here, so that a COPY TO a file
    // or PROGRAM that got through would leave evidence.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let before = ps.snapshot().await;
    let cases = cases(dir.path());
    assert!(cases.len() >= 60, "{} cases", cases.len());

    let mut f = Failures::default();
    let mut s = Session::reader(&ps);
    let client = ps.reader_client().await;
    for (i, sql) in cases.iter().enumerate() {
        let reply = s.simple(sql);
        record(
            &mut f,
            i,
            sql,
            "simple",
            refused(&reply, b'I').and_then(|()| usable(&mut s)),
        );
        record(
            &mut f,
            i,
            sql,
            "simple in BEGIN",
            fails_transaction(&mut s, |s| s.simple(sql)).and_then(|()| usable(&mut s)),
        );
        let reply = s.extended(sql, &[], TEXT);
        record(
            &mut f,
            i,
            sql,
            "Parse/Bind/Execute",
            refused(&reply, b'I').and_then(|()| usable(&mut s)),
        );
        record(
            &mut f,
            i,
            sql,
            "Parse/Bind/Execute in BEGIN",
            fails_transaction(&mut s, |s| s.extended(sql, &[], TEXT)).and_then(|()| usable(&mut s)),
        );
        let prepared = client.prepare(sql).await;
        let result = match prepared {
            Err(e) if is_sluice_block_pg(&e) => match client.query("SELECT 1", &[]).await {
                Ok(rows) if rows.len() == 1 => Ok(()),
                other => Err(format!("SELECT 1 after the refusal got {other:?}")),
            },
            Err(e) => Err(format!("expected a sluice 42501 refusal, got {e:?}")),
            Ok(_) => Err("the statement was prepared".to_string()),
        };
        record(&mut f, i, sql, "tokio-postgres prepare", result);
    }

    function_calls_are_refused(&ps, &mut s, &mut f).await;
    blocked_statement_names_stay_refused(&mut s, &mut f);

    let after = ps.snapshot().await;
    f.check(before == after, || {
        format!("the database changed:\n--- before\n{before}\n--- after\n{after}")
    });
    for name in ["copy.csv", "program-ran"] {
        f.check(!dir.path().join(name).exists(), || {
            format!("the server wrote {name}: a COPY TO a file or PROGRAM ran")
        });
    }
    f.assert_none(&format!("{} blocked statements", cases.len()));
}

/// FunctionCall messages are refused for a restricted role, whatever the function.
async fn function_calls_are_refused(ps: &PolicyStack, s: &mut Session<'_>, f: &mut Failures) {
    let direct = ps.stack.direct().await;
    for (signature, args) in [
        ("pg_read_file(text)", vec!["postgresql.conf"]),
        ("abs(integer)", vec!["-5"]),
    ] {
        let oid: i64 = direct
            .query_one(
                &format!("SELECT '{signature}'::regprocedure::oid::int8"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let mut out = BytesMut::new();
        ext::function_call(&mut out, u32::try_from(oid).unwrap(), &args);
        let reply = s.run(|c| c.exchange(&out));
        let result = match &reply {
            Ok(r) if r.has(tag::backend::FUNCTION_CALL_RESPONSE) => {
                Err(format!("the function ran: {}", r.summary()))
            }
            _ => refused(&reply, b'I'),
        };
        record(
            f,
            0,
            signature,
            "FunctionCall",
            result.and_then(|()| usable(s)),
        );
    }
}

/// A statement name whose Parse was refused cannot be used afterwards, and a later allowed
/// Parse of the same name works (PostgreSQL never created the refused one).
fn blocked_statement_names_stay_refused(s: &mut Session<'_>, f: &mut Failures) {
    let mut step = |what: &str, build: &dyn Fn(&mut BytesMut), check: &dyn Fn(&Reply) -> bool| {
        let mut out = BytesMut::new();
        build(&mut out);
        let reply = s.run(|c| c.exchange(&out));
        let ok = reply.as_ref().is_ok_and(check);
        f.check(ok, || match &reply {
            Ok(r) => format!("statement names: {what}: got {}", r.summary()),
            Err(e) => format!("statement names: {what}: {e}"),
        });
    };
    let is_block = |r: &Reply| refused_reply(r, b'I').is_ok();

    step(
        "Parse \"s1\" DELETE, Sync is refused",
        &|o| {
            ext::parse(o, "s1", "DELETE FROM customers");
            ext::sync(o);
        },
        &is_block,
    );
    step(
        "Bind \"s1\", Execute, Sync is refused with 42501",
        &|o| {
            ext::bind(o, "", "s1", &[], TEXT);
            ext::execute(o, "");
            ext::sync(o);
        },
        &is_block,
    );
    step(
        "Describe statement \"s1\" fails",
        &|o| {
            ext::describe(o, b'S', "s1");
            ext::sync(o);
        },
        &|r| r.errors().len() == 1 && !r.has(tag::backend::PARAMETER_DESCRIPTION),
    );
    step(
        "Parse \"s2\" DROP, Bind \"s2\", Execute, Sync in one write gives one refusal",
        &|o| {
            ext::parse(o, "s2", "DROP TABLE payments");
            ext::bind(o, "", "s2", &[], TEXT);
            ext::execute(o, "");
            ext::sync(o);
        },
        &is_block,
    );
    step(
        "Bind \"s2\" in a later pipeline is refused with 42501",
        &|o| {
            ext::bind(o, "p2", "s2", &[], TEXT);
            ext::execute(o, "p2");
            ext::sync(o);
        },
        &is_block,
    );
    step(
        "a later allowed Parse \"s1\" SELECT 1 binds and runs",
        &|o| {
            ext::parse(o, "s1", "SELECT 1");
            ext::bind(o, "", "s1", &[], TEXT);
            ext::execute(o, "");
            ext::sync(o);
        },
        &|r| r.errors().is_empty() && r.rows() == [vec![Some("1".to_string())]],
    );
    step(
        "Close \"s1\", Sync",
        &|o| {
            ext::close(o, b'S', "s1");
            ext::sync(o);
        },
        &|r| r.errors().is_empty() && r.status == b'I',
    );
    if let Err(e) = usable(s) {
        f.push(format!("statement names: {e}"));
    }
}
