//! The per-shard catalog against a real PostgreSQL: names for the (table OID, attribute number)
//! pairs a RowDescription carries, across schemas, dropped columns, renames after the TTL,
//! nonexistent tables, and a side connection that dies or an upstream that restarts.

mod common;

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use common::process::{run_with_timeout, server_user};
use common::{PgServer, DB};
use sluice::mask::ColumnResolver;
use sluice::proxy::pg::catalog::{Catalog, CatalogError, CatalogSettings, APPLICATION_NAME};
use sluice::proxy::state::UpstreamTarget;

/// The resource name the targets use (the cache is keyed by it).
const RESOURCE: &str = "orders";

fn target_with_password(pg: &PgServer, password: &str) -> Arc<UpstreamTarget> {
    Arc::new(UpstreamTarget {
        name: RESOURCE.into(),
        host: "127.0.0.1".into(),
        port: pg.port(),
        database: DB.into(),
        user: pg.superuser().into(),
        password: Some(password.into()),
        tls: None,
        connect_timeout: Duration::from_secs(10),
    })
}

fn target(pg: &PgServer) -> Arc<UpstreamTarget> {
    target_with_password(pg, pg.password())
}

/// Runs `f` on a monoio runtime like a shard's (timer on, io_uring where allowed).
fn on_shard<F: Future>(f: F) -> F::Output {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime");
    rt.block_on(async {
        let out = f.await;
        // Let the runtime submit the close of anything the future dropped at its end.
        monoio::time::sleep(Duration::from_millis(5)).await;
        out
    })
}

fn server() -> PgServer {
    let pg = PgServer::start();
    pg.create_database(DB);
    pg
}

fn oid(pg: &PgServer, relation: &str) -> u32 {
    pg.psql_as_superuser(DB, &format!("SELECT '{relation}'::regclass::oid"))
        .parse()
        .expect("an OID")
}

/// The (table OID, attribute number) of each result column of `sql`, as the server describes
/// them to a client.
fn described(pg: &PgServer, sql: &str) -> Vec<(u32, i16)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = common::connect(&pg.superuser_config(DB)).await.unwrap();
        let stmt = client.prepare(sql).await.unwrap();
        stmt.columns()
            .iter()
            .map(|c| (c.table_oid().unwrap_or(0), c.column_id().unwrap_or(0)))
            .collect()
    })
}

fn names(catalog: &Catalog, pairs: &[(u32, i16)]) -> Vec<Option<String>> {
    let resolver = catalog.resolver(RESOURCE);
    pairs
        .iter()
        .map(|&(t, c)| {
            resolver
                .resolve(t, c)
                .map(|(s, t, c)| format!("{s}.{t}.{c}"))
        })
        .collect()
}

fn side_connections(pg: &PgServer) -> usize {
    pg.psql_as_superuser(
        DB,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}'"
        ),
    )
    .parse()
    .unwrap()
}

/// Restarts the server in place (same data directory and port), dropping every connection.
fn restart(pg: &PgServer) {
    let data = pg.psql_as_superuser("postgres", "SHOW data_directory");
    let dir = Path::new(&data)
        .parent()
        .expect("data directory has a parent");
    let mut cmd = Command::new(pg.bindir().join("pg_ctl"));
    cmd.current_dir(dir)
        .env_remove("PGDATA")
        .env("LC_ALL", "C")
        .args(["restart", "-m", "immediate", "-w", "-t", "90", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"));
    if let Some(user) = server_user() {
        user.apply(&mut cmd);
    }
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    assert!(
        out.success(),
        "pg_ctl restart failed: {}{}\n{}",
        out.stdout,
        out.stderr,
        pg.log()
    );
}

#[test]
fn resolves_columns_across_schemas_without_dropped_columns_or_unknown_tables() {
    let pg = server();
    pg.psql_as_superuser(
        DB,
        "CREATE SCHEMA billing; \
         CREATE TABLE public.customers (id int, dropped_me text, email text, name text); \
         ALTER TABLE public.customers DROP COLUMN dropped_me; \
         CREATE TABLE billing.cards (id int, \"Card Number\" text, customer_id int); \
         CREATE TABLE public.gone (x int);",
    );
    let customers = oid(&pg, "public.customers");
    let cards = oid(&pg, "billing.cards");
    let gone = oid(&pg, "public.gone");
    pg.psql_as_superuser(DB, "DROP TABLE public.gone");

    let described = described(
        &pg,
        "SELECT c.id, c.email, k.\"Card Number\" AS label, c.name, 1 AS computed, k.ctid \
         FROM customers c JOIN billing.cards k ON k.customer_id = c.id",
    );
    assert_eq!(described[0], (customers, 1));
    // Attribute 2 was dropped: email is 3.
    assert_eq!(described[1], (customers, 3));
    assert_eq!(described[4], (0, 0));

    let target = target(&pg);
    on_shard(async {
        let catalog = Catalog::default();
        let oids: Vec<u32> = described.iter().map(|d| d.0).chain([gone]).collect();
        catalog.ensure(&target, &oids).await.expect("lookup");
        assert_eq!(
            names(&catalog, &described),
            vec![
                Some("public.customers.id".into()),
                Some("public.customers.email".into()),
                Some("billing.cards.Card Number".into()),
                Some("public.customers.name".into()),
                None,
                Some("billing.cards.ctid".into()),
            ]
        );
        // The dropped column has an attribute number but no name; neither has the dropped
        // table, nor an attribute the table never had.
        assert_eq!(
            names(&catalog, &[(customers, 2), (gone, 1), (cards, 99)]),
            vec![None; 3]
        );
        // Two tables and the unknown OID are cached.
        assert_eq!(catalog.cached(), 3);
        // Another resource does not see them.
        assert!(catalog.resolver("other").resolve(customers, 1).is_none());

        // Cached answers, the unknown OID included, need no connection: stop the side
        // connection and ask again.
        pg.psql_as_superuser(
            DB,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = '{APPLICATION_NAME}'"
            ),
        );
        assert_eq!(side_connections(&pg), 0);
        catalog
            .ensure(&target, &[customers, cards, gone, 0])
            .await
            .unwrap();
        assert_eq!(side_connections(&pg), 0, "cached OIDs were queried again");

        // Concurrent lookups on one shard share one side connection.
        pg.psql_as_superuser(DB, "CREATE TABLE t1 (a int); CREATE TABLE t2 (b int)");
        let (t1, t2) = (oid(&pg, "t1"), oid(&pg, "t2"));
        let catalog = Rc::new(catalog);
        let tasks: Vec<_> = [t1, t2]
            .into_iter()
            .map(|o| {
                let (catalog, target) = (catalog.clone(), target.clone());
                monoio::spawn(async move { catalog.ensure(&target, &[o]).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("concurrent lookup");
        }
        assert_eq!(
            names(&catalog, &[(t1, 1), (t2, 1)]),
            vec![Some("public.t1.a".into()), Some("public.t2.b".into())]
        );
        assert_eq!(side_connections(&pg), 1);
        let app: String = pg.psql_as_superuser(
            DB,
            &format!(
                "SELECT usename || ' ' || datname FROM pg_stat_activity \
                 WHERE application_name = '{APPLICATION_NAME}'"
            ),
        );
        assert_eq!(app, format!("{} {DB}", pg.superuser()));
    });
}

#[test]
fn a_renamed_column_is_seen_once_the_ttl_has_passed() {
    let pg = server();
    pg.psql_as_superuser(DB, "CREATE TABLE people (id int, mail text)");
    let people = oid(&pg, "people");
    let target = target(&pg);
    on_shard(async {
        let long = Catalog::new(CatalogSettings {
            ttl: Duration::from_secs(3600),
            ..CatalogSettings::default()
        });
        let short = Catalog::new(CatalogSettings {
            ttl: Duration::from_millis(200),
            ..CatalogSettings::default()
        });
        for catalog in [&long, &short] {
            catalog.ensure(&target, &[people]).await.unwrap();
            assert_eq!(
                names(catalog, &[(people, 2)]),
                vec![Some("public.people.mail".into())]
            );
        }
        pg.psql_as_superuser(DB, "ALTER TABLE people RENAME COLUMN mail TO email");
        monoio::time::sleep(Duration::from_millis(300)).await;
        // Within the TTL the cached name stands; past it the lookup runs again.
        long.ensure(&target, &[people]).await.unwrap();
        assert_eq!(
            names(&long, &[(people, 2)]),
            vec![Some("public.people.mail".into())]
        );
        // Past the TTL the next lookup brings the new name.
        short.ensure(&target, &[people]).await.unwrap();
        assert_eq!(
            names(&short, &[(people, 2)]),
            vec![Some("public.people.email".into())]
        );
    });
}

#[test]
fn the_side_connection_is_reopened_after_the_upstream_restarts() {
    let pg = server();
    pg.psql_as_superuser(DB, "CREATE TABLE before_restart (a int)");
    let first = oid(&pg, "before_restart");
    let target = target(&pg);
    on_shard(async {
        let catalog = Catalog::default();
        catalog.ensure(&target, &[first]).await.unwrap();
        assert_eq!(side_connections(&pg), 1);

        restart(&pg);
        pg.psql_as_superuser(DB, "CREATE TABLE after_restart (b int)");
        let second = oid(&pg, "after_restart");
        catalog
            .ensure(&target, &[second])
            .await
            .expect("lookup after the restart");
        assert_eq!(
            names(&catalog, &[(first, 1), (second, 1)]),
            vec![
                Some("public.before_restart.a".into()),
                Some("public.after_restart.b".into())
            ]
        );
        assert_eq!(side_connections(&pg), 1);

        // A terminated backend is replaced the same way.
        pg.psql_as_superuser(
            DB,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = '{APPLICATION_NAME}'"
            ),
        );
        pg.psql_as_superuser(DB, "CREATE TABLE after_kill (c int)");
        let third = oid(&pg, "after_kill");
        catalog.ensure(&target, &[third]).await.unwrap();
        assert_eq!(
            names(&catalog, &[(third, 1)]),
            vec![Some("public.after_kill.c".into())]
        );
    });
}

#[test]
fn lookups_fail_cleanly_with_a_wrong_credential_or_no_upstream() {
    let pg = server();
    let wrong = target_with_password(&pg, "not the password");
    let good = target(&pg);
    on_shard(async {
        let catalog = Catalog::new(CatalogSettings {
            timeout: Duration::from_secs(5),
            ..CatalogSettings::default()
        });
        let err = catalog.ensure(&wrong, &[1259]).await.unwrap_err();
        assert!(matches!(err, CatalogError::Connect(_)), "{err:?}");
        assert!(!err.to_string().contains("not the password"));
        assert_eq!(catalog.cached(), 0);
        // pg_class itself resolves once the credential is right.
        catalog.ensure(&good, &[1259]).await.unwrap();
        assert_eq!(
            catalog.resolver(RESOURCE).resolve(1259, 2),
            Some(("pg_catalog".into(), "pg_class".into(), "relname".into()))
        );
    });
    drop(pg);
    on_shard(async {
        // The server is stopped: nothing listens on its port any more.
        let catalog = Catalog::default();
        let err = catalog.ensure(&good, &[1259]).await.unwrap_err();
        assert!(matches!(err, CatalogError::Connect(_)), "{err:?}");
    });
}
