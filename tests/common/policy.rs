//! A gateway with statement policy: a read-only, masking `reader` role and an unrestricted
//! `admin` role in front of a database seeded with fake personal data; the clear values a
//! reader must never see, and a snapshot of everything a blocked statement could have changed.

use std::net::SocketAddr;

use super::rawpg::ServerError;
use super::stack::{Stack, DB, LABEL};
use super::RawConn;

/// Rules of the `reader` role: reads, session and transaction control and COPY TO STDOUT are
/// allowed, everything else blocked; card numbers keep their last four characters, emails and
/// SSNs are masked whole. `admin` (written by `sluice init`) has no rules.
pub const READER_RULES: &str = r#"
[role.reader.rules."*"]
read = "allow"
write = "block"
ddl = "block"
admin = "block"
session = "allow"
transaction = "allow"
copy_out = "allow"
procedural = "block"
unknown = "block"
default = "block"

[role.reader.rules."*".mask]
columns = { card_number = "last4", email = "full", ssn = "full" }
"#;

/// One seeded customer: id, name, email, card number as stored, SSN.
pub struct Customer {
    pub id: i32,
    pub name: &'static str,
    pub email: &'static str,
    pub card: &'static str,
    pub ssn: &'static str,
}

/// The seeded customers. Card numbers are Luhn-valid test numbers stored in the ways people
/// type them (plain, dashed, spaced; 15 and 16 digits); SSNs use numbers the SSA issues.
pub const CUSTOMERS: &[Customer] = &[
    Customer {
        id: 1,
        name: "Alice Martin",
        email: "alice.martin@example.com",
        card: "4111111111111111",
        ssn: "219-09-9999",
    },
    Customer {
        id: 2,
        name: "Bob Stone",
        email: "bob.stone@example.org",
        card: "5555-5555-5555-4444",
        ssn: "457-55-5462",
    },
    Customer {
        id: 3,
        name: "Carol Diaz",
        email: "carol.diaz@example.net",
        card: "4012 8888 8888 1881",
        ssn: "536-22-8726",
    },
    Customer {
        id: 4,
        name: "Dan Wu",
        email: "dan.wu.billing@example.com",
        card: "378282246310005",
        ssn: "301-64-2209",
    },
    Customer {
        id: 5,
        name: "Eve Park",
        email: "eve.park@example.io",
        card: "6011111111111117",
        ssn: "612-80-4417",
    },
];

/// Card numbers stored as `bigint` in `payments.card_number` (a non-text column under a mask
/// rule), and repeated inside free-text memos that only the value detectors can catch.
pub const PAYMENT_CARDS: &[i64] = &[
    4_111_111_111_111_111,
    5_555_555_555_554_444,
    6_011_111_111_111_117,
];

/// Builds the seed script: `customers`, `payments` (the second table), a sequence, a
/// procedure that writes, and views over `customers` (plain and with renamed columns).
pub fn seed_sql() -> String {
    let mut sql = String::from(
        "CREATE TABLE customers (id int PRIMARY KEY, name text, email text, \
         card_number text, ssn text);\n",
    );
    for c in CUSTOMERS {
        sql.push_str(&format!(
            "INSERT INTO customers VALUES ({}, '{}', '{}', '{}', '{}');\n",
            c.id, c.name, c.email, c.card, c.ssn
        ));
    }
    sql.push_str(
        "CREATE TABLE payments (id int PRIMARY KEY, customer_id int REFERENCES customers, \
         amount numeric(10,2), card_number bigint, memo text);\n",
    );
    let memos = [
        "paid with 5555 5555 5555 4444, receipt to bob.stone@example.org",
        "refund to 4012-8888-8888-1881 for carol.diaz@example.net (ssn 536-22-8726)",
        "manual entry 378282246310005",
    ];
    for (i, (card, memo)) in PAYMENT_CARDS.iter().zip(memos).enumerate() {
        sql.push_str(&format!(
            "INSERT INTO payments VALUES ({}, {}, {}.50, {card}, '{memo}');\n",
            i + 1,
            i + 1,
            10 * (i + 1)
        ));
    }
    sql.push_str(
        "CREATE SEQUENCE order_seq;\n\
         CREATE PROCEDURE wipe_payments() LANGUAGE sql AS $$ DELETE FROM payments $$;\n\
         CREATE VIEW customer_cards AS SELECT id, name, card_number, email, ssn FROM customers;\n\
         CREATE VIEW customer_contacts AS \
           SELECT id, card_number AS pan, email AS contact, ssn AS tax_id FROM customers;\n",
    );
    sql
}

/// Everything a reader must never receive in any byte: each clear email (any case is checked
/// by [`leaks`]), SSN in its stored, digits-only and spaced forms, card number as stored and
/// digits-only, every 8-digit window of each card's digits, and each `bigint` card in its
/// binary (big-endian) form.
pub fn needles() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: String, bytes: Vec<u8>| {
        if !out.iter().any(|(_, b)| *b == bytes) {
            out.push((what, bytes));
        }
    };
    for c in CUSTOMERS {
        add(format!("email {}", c.email), c.email.as_bytes().to_vec());
        let local = c.email.split('@').next().unwrap_or_default();
        add(
            format!("email local part {local}"),
            local.as_bytes().to_vec(),
        );
        add(format!("ssn {}", c.ssn), c.ssn.as_bytes().to_vec());
        add(
            format!("ssn digits of {}", c.ssn),
            digits(c.ssn).into_bytes(),
        );
        add(
            format!("ssn spaced {}", c.ssn),
            c.ssn.replace('-', " ").into_bytes(),
        );
        add(format!("card {}", c.card), c.card.as_bytes().to_vec());
        let d = digits(c.card);
        add(format!("card digits {d}"), d.clone().into_bytes());
        for sep in [" ", "-"] {
            let grouped: Vec<&str> = d
                .as_bytes()
                .chunks(4)
                .map(|g| std::str::from_utf8(g).unwrap_or_default())
                .collect();
            add(
                format!("card {d} grouped with `{sep}`"),
                grouped.join(sep).into_bytes(),
            );
        }
        for (start, window) in d.as_bytes().windows(8).enumerate() {
            add(
                format!("8 digits of card {} at {start}", c.card),
                window.to_vec(),
            );
        }
    }
    for card in PAYMENT_CARDS {
        add(
            format!("binary bigint card {card}"),
            card.to_be_bytes().to_vec(),
        );
    }
    out
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The needles found in `bytes` (case-insensitively for letters), described.
pub fn leaks(bytes: &[u8]) -> Vec<String> {
    let hay = bytes.to_ascii_lowercase();
    needles()
        .into_iter()
        .filter(|(_, n)| {
            let n = n.to_ascii_lowercase();
            hay.windows(n.len()).any(|w| w == n.as_slice())
        })
        .map(|(what, _)| what)
        .collect()
}

/// One query, run as the upstream superuser, summarizing everything a blocked statement could
/// have changed: table contents, the sequence, every relation and its storage, roles,
/// functions, large objects, schemas, ALTER SYSTEM settings, grants, comments, extensions,
/// databases, and manual VACUUM/ANALYZE counts.
pub const SNAPSHOT_SQL: &str = "SELECT concat_ws(E'\\n', \
  (SELECT count(*) || ' ' || md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c), \
  (SELECT count(*) || ' ' || md5(string_agg(p::text, ',' ORDER BY id)) FROM payments p), \
  (SELECT last_value || ' ' || is_called FROM order_seq), \
  (SELECT count(*) FROM pg_class), \
  (SELECT string_agg(n.nspname || '.' || relname || '/' || relkind::text || '/' || relfilenode \
     || '/' || coalesce(relacl::text, '-'), ',' ORDER BY n.nspname, relname) \
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')), \
  (SELECT string_agg(rolname || '/' || rolsuper, ',' ORDER BY rolname) FROM pg_roles), \
  (SELECT count(*) FROM pg_proc), \
  (SELECT count(*) FROM pg_largeobject_metadata), \
  (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace \
     WHERE nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'), \
  (SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'), \
  (SELECT count(*) FROM pg_description), \
  (SELECT count(*) FROM pg_extension), \
  (SELECT count(*) FROM pg_database), \
  (SELECT count(*) FROM pg_prepared_xacts), \
  (SELECT string_agg(relname || ' ' || vacuum_count || ' ' || analyze_count, ',' ORDER BY relname) \
     FROM pg_stat_user_tables))";

/// The gateway stack with policy, seeded, with tokens for both roles.
pub struct PolicyStack {
    /// PostgreSQL and the gateway; `stack.token` is the `admin` token.
    pub stack: Stack,
    /// A one-hour `reader` token.
    pub reader: String,
}

impl PolicyStack {
    /// Starts PostgreSQL, seeds it, and starts the gateway with [`READER_RULES`].
    pub async fn start() -> PolicyStack {
        Self::start_with(|_| {}).await
    }

    /// [`start`](Self::start), letting `configure` edit the configuration further first.
    pub async fn start_with(configure: impl FnOnce(&super::GatewaySetup)) -> PolicyStack {
        let stack = Stack::start_with(|setup| {
            // Replace whatever rules `sluice init` wrote for `reader` with the tests' own.
            let ours: toml::Table = toml::from_str(READER_RULES).expect("READER_RULES parse");
            let rules = ours["role"]["reader"]["rules"].clone();
            setup.set("role.reader.rules", rules);
            configure(setup);
        });
        let direct = stack.direct().await;
        direct
            .batch_execute(&seed_sql())
            .await
            .unwrap_or_else(|e| panic!("seeding the database: {e:?}"));
        let reader = stack
            .setup
            .issue_token("policy-tests", &["reader"], &[DB], "1h");
        PolicyStack { stack, reader }
    }

    /// The gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.stack.gateway.addr()
    }

    /// A raw protocol session as `reader`.
    pub fn raw_reader(&self) -> RawConn {
        RawConn::login(self.addr(), DB, LABEL, &self.reader)
            .unwrap_or_else(|e| panic!("reader login: {e:?}"))
    }

    /// A raw protocol session as `admin`.
    pub fn raw_admin(&self) -> RawConn {
        RawConn::login(self.addr(), DB, LABEL, &self.stack.token)
            .unwrap_or_else(|e| panic!("admin login: {e:?}"))
    }

    /// A tokio-postgres session as `reader`.
    pub async fn reader_client(&self) -> tokio_postgres::Client {
        let config = super::gateway_config(self.addr(), DB, LABEL, &self.reader);
        super::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("reader connect: {e:?}"))
    }

    /// The upstream's state as the superuser sees it (see [`SNAPSHOT_SQL`]), or the error
    /// that prevented taking it.
    pub async fn snapshot(&self) -> String {
        let direct = self.stack.direct().await;
        // A failure (a table dropped by a statement that got through) is a difference too.
        match direct.query_one(SNAPSHOT_SQL, &[]).await {
            Ok(row) => row.get(0),
            Err(e) => format!("snapshot failed: {e:?}"),
        }
    }
}

/// Whether `e` is the gateway's refusal: SQLSTATE 42501 and a message starting `sluice:`.
pub fn is_sluice_block(e: &ServerError) -> bool {
    e.code == "42501" && e.message.starts_with("sluice:")
}

/// Whether a tokio-postgres error is the gateway's refusal.
pub fn is_sluice_block_pg(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| d.code().code() == "42501" && d.message().starts_with("sluice:"))
}

/// Collects failed checks so that one run reports every failing case, not only the first.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Records a failure.
    pub fn push(&mut self, what: impl Into<String>) {
        self.0.push(what.into());
    }

    /// Records `what` unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Panics with every recorded failure, numbered, if there is any.
    pub fn assert_none(&self, group: &str) {
        if !self.0.is_empty() {
            let list: Vec<String> = self
                .0
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{:>3}. {f}", i + 1))
                .collect();
            panic!("{group}: {} failure(s):\n{}", self.0.len(), list.join("\n"));
        }
    }
}

/// A raw session that logs in again after an I/O failure, so that one broken case does not
/// hide the results of the others.
pub struct Session<'a> {
    stack: &'a PolicyStack,
    admin: bool,
    conn: Option<RawConn>,
}

impl<'a> Session<'a> {
    /// A `reader` session.
    pub fn reader(stack: &'a PolicyStack) -> Session<'a> {
        Session {
            stack,
            admin: false,
            conn: None,
        }
    }

    /// An `admin` session.
    pub fn admin(stack: &'a PolicyStack) -> Session<'a> {
        Session {
            stack,
            admin: true,
            conn: None,
        }
    }

    /// Runs `f` on the connection (logging in first if needed); an I/O error drops the
    /// connection and is returned as text.
    pub fn run(
        &mut self,
        f: impl FnOnce(&mut RawConn) -> std::io::Result<super::rawpg::Reply>,
    ) -> Result<super::rawpg::Reply, String> {
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => {
                let c = if self.admin {
                    self.stack.raw_admin()
                } else {
                    self.stack.raw_reader()
                };
                self.conn.insert(c)
            }
        };
        f(conn).map_err(|e| {
            self.conn = None;
            format!("connection failed: {e}")
        })
    }

    /// A simple-protocol query.
    pub fn simple(&mut self, sql: &str) -> Result<super::rawpg::Reply, String> {
        self.run(|c| c.simple(sql))
    }

    /// An extended-protocol query with text parameters and results in `format`.
    pub fn extended(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
        format: i16,
    ) -> Result<super::rawpg::Reply, String> {
        self.run(|c| c.extended(sql, params, format))
    }
}
