//! Masking for the `reader` role through the real gateway: card numbers (last four kept),
//! emails and SSNs never reach the client in the clear, in any byte of any message, whether
//! read directly, through aliases, casts, functions, JSON and arrays, subqueries, CTEs, set
//! operations, views, COPY, error messages or notifications, in text or binary format. Each
//! attempt either returns masked values or is refused with 42501. `admin` sees clear values.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::extended::{self as ext, BINARY, TEXT};
use common::policy::{is_sluice_block, leaks, Failures, PolicyStack, Session, CUSTOMERS};
use common::rawpg::Reply;
use sluice::codec::pg::tag;

/// What an attempt may produce besides leaking nothing.
#[derive(Clone, Copy)]
enum Accept {
    /// Must answer exactly these rows (masked values).
    Rows(&'static [&'static [&'static str]]),
    /// Masked rows or a 42501 refusal.
    MaskedOrBlocked,
    /// Only a 42501 refusal: an answer would carry the value in a form no detector can know.
    Blocked,
    /// Masked rows, a refusal, or an error from the server whose text is masked.
    NoLeak,
}

use Accept::{Blocked, MaskedOrBlocked, NoLeak, Rows};

const CARDS_LAST4: &[&[&str]] = &[
    &["****1111"],
    &["****4444"],
    &["****1881"],
    &["****0005"],
    &["****1117"],
];

const MASKED_ROWS: &[&[&str]] = &[
    &["1", "Alice Martin", "****", "****1111", "****"],
    &["2", "Bob Stone", "****", "****4444", "****"],
    &["3", "Carol Diaz", "****", "****1881", "****"],
    &["4", "Dan Wu", "****", "****0005", "****"],
    &["5", "Eve Park", "****", "****1117", "****"],
];

const CASES: &[(&str, Accept)] = &[
    // Direct reads: the column rules apply.
    ("SELECT * FROM customers ORDER BY id", Rows(MASKED_ROWS)),
    (
        "SELECT card_number FROM customers ORDER BY id",
        Rows(CARDS_LAST4),
    ),
    (
        "SELECT card_number AS cc FROM customers ORDER BY id",
        Rows(CARDS_LAST4),
    ),
    (
        "SELECT c.card_number AS \"totally harmless\" FROM public.customers c ORDER BY c.id",
        Rows(CARDS_LAST4),
    ),
    (
        "SELECT email, ssn FROM customers WHERE id = 1",
        Rows(&[&["****", "****"]]),
    ),
    ("TABLE customers", MaskedOrBlocked),
    (
        "SELECT cc FROM (SELECT card_number AS cc, id FROM customers) s ORDER BY id",
        MaskedOrBlocked,
    ),
    (
        "WITH x AS (SELECT id, card_number FROM customers) SELECT card_number FROM x ORDER BY id",
        MaskedOrBlocked,
    ),
    (
        "SELECT (SELECT email FROM customers WHERE id = 2)",
        MaskedOrBlocked,
    ),
    (
        "SELECT card_number FROM customer_cards ORDER BY id",
        MaskedOrBlocked,
    ),
    ("SELECT * FROM customer_cards ORDER BY id", MaskedOrBlocked),
    (
        "SELECT pan, contact, tax_id FROM customer_contacts ORDER BY id",
        MaskedOrBlocked,
    ),
    (
        "SELECT p.card_number, p.memo FROM payments p ORDER BY id",
        MaskedOrBlocked,
    ),
    ("SELECT memo FROM payments ORDER BY id", MaskedOrBlocked),
    // Derived forms: refused, or masked by the value detectors.
    ("SELECT card_number::text FROM customers", MaskedOrBlocked),
    ("SELECT card_number || '' FROM customers", MaskedOrBlocked),
    (
        "SELECT CAST(email AS varchar) FROM customers",
        MaskedOrBlocked,
    ),
    ("SELECT upper(email) FROM customers", MaskedOrBlocked),
    ("SELECT row_to_json(c) FROM customers c", MaskedOrBlocked),
    (
        "SELECT row_to_json(c)::text FROM customer_contacts c",
        MaskedOrBlocked,
    ),
    ("SELECT json_agg(c) FROM customers c", MaskedOrBlocked),
    (
        "SELECT to_jsonb(c) ->> 'ssn' FROM customers c",
        MaskedOrBlocked,
    ),
    (
        "SELECT array_agg(card_number) FROM customers",
        MaskedOrBlocked,
    ),
    (
        "SELECT array_agg(ssn)::text FROM customers",
        MaskedOrBlocked,
    ),
    (
        "SELECT string_agg(email, ',') FROM customers",
        MaskedOrBlocked,
    ),
    ("SELECT c::text FROM customers c", MaskedOrBlocked),
    ("SELECT ROW(id, email) FROM customers", MaskedOrBlocked),
    (
        "SELECT format('%s', card_number) FROM customers",
        MaskedOrBlocked,
    ),
    (
        "SELECT card_number FROM customers UNION ALL SELECT 'x'",
        MaskedOrBlocked,
    ),
    (
        "SELECT email FROM customers UNION SELECT ssn FROM customers",
        MaskedOrBlocked,
    ),
    (
        "SELECT CASE WHEN id > 0 THEN card_number END FROM customers",
        MaskedOrBlocked,
    ),
    ("SELECT coalesce(ssn, '') FROM customers", MaskedOrBlocked),
    // Transformations whose output no detector recognizes: only a refusal is safe.
    ("SELECT substr(card_number, 1, 12) FROM customers", Blocked),
    ("SELECT left(ssn, 3), right(ssn, 4) FROM customers", Blocked),
    ("SELECT reverse(card_number) FROM customers", Blocked),
    (
        "SELECT translate(card_number, '0123456789', 'abcdefghij') FROM customers",
        Blocked,
    ),
    ("SELECT replace(ssn, '-', '') FROM customers", Blocked),
    (
        "SELECT encode(convert_to(email, 'UTF8'), 'base64') FROM customers",
        Blocked,
    ),
    (
        "SELECT encode(card_number::bytea, 'hex') FROM customers",
        Blocked,
    ),
    ("SELECT md5(email) FROM customers", Blocked),
    ("SELECT split_part(email, '@', 1) FROM customers", Blocked),
    (
        "SELECT regexp_replace(card_number, '(\\d)', '\\1 ', 'g') FROM customers",
        Blocked,
    ),
    ("SELECT ascii(substr(ssn, 1, 1)) FROM customers", Blocked),
    ("SELECT card_number::numeric + 1 FROM customers", Blocked),
    // Oracles in predicates: the answer is ids only; a refusal is acceptable too.
    (
        "SELECT id FROM customers WHERE card_number LIKE '4111%' ORDER BY id",
        NoLeak,
    ),
    (
        "SELECT id FROM customers WHERE email ILIKE 'alice%' ORDER BY id",
        NoLeak,
    ),
    // COPY out of masked data.
    ("COPY customers TO STDOUT", MaskedOrBlocked),
    (
        "COPY customers TO STDOUT WITH (FORMAT csv, HEADER)",
        MaskedOrBlocked,
    ),
    (
        "COPY (SELECT card_number, email, ssn FROM customers) TO STDOUT",
        MaskedOrBlocked,
    ),
    ("COPY payments TO STDOUT", MaskedOrBlocked),
    (
        "COPY customers TO STDOUT WITH (FORMAT binary)",
        MaskedOrBlocked,
    ),
    // Errors that echo values.
    ("SELECT card_number::int FROM customers", NoLeak),
    ("SELECT email::int FROM customers", NoLeak),
    ("SELECT ssn::date FROM customers", NoLeak),
    (
        "SELECT id FROM customers WHERE card_number::bigint > 0",
        NoLeak,
    ),
    ("SELECT ssn::int FROM customers", NoLeak),
    ("SELECT (email || '')::int FROM customers", NoLeak),
    (
        "SELECT jsonb_build_object('c', card_number)::text::int FROM customers",
        NoLeak,
    ),
];

/// Checks one reply: no needle in any byte, and the outcome `accept` allows.
fn judge(reply: &Reply, accept: Accept) -> Result<(), String> {
    let leaked = leaks(&reply.wire());
    if !leaked.is_empty() {
        return Err(format!("LEAK {leaked:?} in {}", reply.summary()));
    }
    let errors = reply.errors();
    let blocked = errors.len() == 1 && is_sluice_block(&errors[0]);
    let answered = errors.is_empty();
    let ok = match accept {
        Rows(rows) => answered && reply.rows() == text_rows(rows),
        MaskedOrBlocked => blocked || answered,
        Blocked => blocked,
        NoLeak => true,
    };
    if !ok {
        return Err(format!("outcome not allowed: {}", reply.summary()));
    }
    if reply.status != b'I' {
        return Err(format!("status should be I: {}", reply.summary()));
    }
    Ok(())
}

fn text_rows(rows: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|r| r.iter().map(|v| Some(v.to_string())).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_never_receives_clear_cards_emails_or_ssns() {
    let ps = PolicyStack::start().await;
    let mut f = Failures::default();
    let mut answered_derived = Vec::new();
    let mut s = Session::reader(&ps);
    assert!(CASES.len() >= 30, "{} cases", CASES.len());

    for (i, (sql, accept)) in CASES.iter().enumerate() {
        let modes: [(&str, Result<Reply, String>); 2] = [
            ("simple", s.simple(sql)),
            ("Parse/Bind/Execute", s.extended(sql, &[], TEXT)),
        ];
        for (mode, reply) in modes {
            match reply {
                Ok(r) => {
                    if let Err(e) = judge(&r, *accept) {
                        f.push(format!("case {i} `{}` [{mode}]: {e}", sql.escape_debug()));
                    } else if !matches!(accept, Rows(_)) && r.errors().is_empty() {
                        answered_derived.push(format!("`{sql}` [{mode}]: {}", r.summary()));
                    }
                }
                Err(e) => f.push(format!("case {i} `{}` [{mode}]: {e}", sql.escape_debug())),
            }
        }
    }

    binary_results(&ps, &mut s, &mut f).await;
    notifications(&ps, &mut f).await;
    admin_sees_clear_values(&ps, &mut f);

    // Answers to derived forms are legitimate when the detectors masked them; list them so a
    // failing run shows what the reader was given.
    eprintln!(
        "derived forms answered rather than refused ({}):\n{}",
        answered_derived.len(),
        answered_derived.join("\n")
    );
    f.assert_none(&format!("{} masking attempts", CASES.len()));
}

/// Binary result formats: text columns come back masked (their binary form is their text);
/// a non-text column under a mask rule is refused with a clear error, never sent.
async fn binary_results(ps: &PolicyStack, s: &mut Session<'_>, f: &mut Failures) {
    // tokio-postgres asks for every result column in binary.
    let client = ps.reader_client().await;
    match client
        .query(
            "SELECT card_number, email, ssn FROM customers ORDER BY id",
            &[],
        )
        .await
    {
        Ok(rows) => {
            let got: Vec<(String, String, String)> = rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let want: Vec<(String, String, String)> = CARDS_LAST4
                .iter()
                .map(|c| (c[0].to_string(), "****".into(), "****".into()))
                .collect();
            f.check(got == want, || {
                format!("binary text columns [tokio-postgres]: expected {want:?}, got {got:?}")
            });
        }
        Err(e) => f.push(format!(
            "binary text columns [tokio-postgres]: expected masked rows, got {e:?}"
        )),
    }
    match client
        .query("SELECT card_number FROM payments ORDER BY id", &[])
        .await
    {
        Ok(rows) => {
            let got: Vec<Option<i64>> = rows.iter().map(|r| r.try_get(0).ok()).collect();
            f.push(format!(
                "binary bigint card_number [tokio-postgres]: expected a refusal, got rows {got:?}"
            ));
        }
        Err(e) => {
            let clear = e
                .as_db_error()
                .is_some_and(|d| d.message().starts_with("sluice:"));
            f.check(clear, || {
                format!("binary bigint card_number [tokio-postgres]: expected a sluice error, got {e:?}")
            });
        }
    }
    if let Err(e) = client.query_one("SELECT 1", &[]).await {
        f.push(format!(
            "tokio-postgres session after the binary refusal: {e:?}"
        ));
    }

    // The same on the wire, so that every byte can be searched: one pipeline as libpq sends
    // it (Parse, Bind, Describe portal, Execute, Sync), which may be refused because the
    // columns are not known when Bind asks for binary, and a driver's order (the statement
    // described first, then Bind), which must answer masked rows.
    let masked = [CARDS_LAST4[0][0], "****", "****"];
    let text_columns = "SELECT card_number, email, ssn FROM customers ORDER BY id";
    for (what, sql, want) in [
        ("one pipeline", text_columns, BinaryWant::RowsOrRefusal),
        ("described first", text_columns, BinaryWant::Rows),
        (
            "one pipeline",
            "SELECT card_number FROM payments ORDER BY id",
            BinaryWant::Refusal,
        ),
        (
            "described first",
            "SELECT card_number FROM payments ORDER BY id",
            BinaryWant::Refusal,
        ),
        (
            "described first",
            "SELECT * FROM payments ORDER BY id",
            BinaryWant::Refusal,
        ),
    ] {
        let reply = if what == "one pipeline" {
            s.extended(sql, &[], BINARY)
        } else {
            s.run(|c| {
                let mut out = BytesMut::new();
                ext::parse(&mut out, "bin", sql);
                ext::describe(&mut out, b'S', "bin");
                ext::sync(&mut out);
                c.exchange(&out)?;
                let mut out = BytesMut::new();
                ext::bind(&mut out, "", "bin", &[], BINARY);
                ext::execute(&mut out, "");
                ext::close(&mut out, b'S', "bin");
                ext::sync(&mut out);
                c.exchange(&out)
            })
        };
        let label = format!("`{sql}` [binary, {what}]");
        let r = match reply {
            Ok(r) => r,
            Err(e) => {
                f.push(format!("{label}: {e}"));
                continue;
            }
        };
        let leaked = leaks(&r.wire());
        f.check(leaked.is_empty(), || {
            format!("{label}: LEAK {leaked:?} in {}", r.summary())
        });
        let errors = r.errors();
        let refused = errors.len() == 1
            && errors[0].message.starts_with("sluice:")
            && !r.has(tag::backend::DATA_ROW);
        let rows = r.rows();
        let masked_rows = errors.is_empty()
            && rows.len() == CUSTOMERS.len()
            && rows.first().is_some_and(|row| {
                row.iter()
                    .map(|v| v.as_deref())
                    .eq(masked.iter().map(|m| Some(*m)))
            });
        let ok = match want {
            BinaryWant::Rows => masked_rows,
            BinaryWant::Refusal => refused,
            BinaryWant::RowsOrRefusal => masked_rows || refused,
        };
        f.check(ok, || format!("{label}: got {}", r.summary()));
        if refused && want == BinaryWant::RowsOrRefusal {
            eprintln!("{label} refused: {:?}", errors[0].message);
        }
    }
}

/// What a binary-format request may produce.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BinaryWant {
    /// Masked rows.
    Rows,
    /// A `sluice:` error and no rows.
    Refusal,
    /// Either.
    RowsOrRefusal,
}

/// A card number in a NOTIFY payload sent by `admin` reaches a listening `reader` masked.
async fn notifications(ps: &PolicyStack, f: &mut Failures) {
    let mut reader = Session::reader(ps);
    let mut admin = Session::admin(ps);
    match reader.simple("LISTEN payments_feed") {
        Ok(r) if r.errors().is_empty() => {}
        other => {
            f.push(format!("reader LISTEN: {other:?}"));
            return;
        }
    }
    let payload = format!(
        "charge {} for {} ssn {}",
        CUSTOMERS[0].card, CUSTOMERS[1].email, CUSTOMERS[2].ssn
    );
    match admin.simple(&format!("NOTIFY payments_feed, '{payload}'")) {
        Ok(r) if r.errors().is_empty() => {}
        other => {
            f.push(format!("admin NOTIFY: {other:?}"));
            return;
        }
    }
    // The notification arrives with (or before) the reply to the reader's next request.
    let mut seen = Vec::new();
    for _ in 0..40 {
        match reader.simple("SELECT 1") {
            Ok(r) => {
                seen.extend(
                    r.frames
                        .iter()
                        .filter(|fr| fr.tag == tag::backend::NOTIFICATION_RESPONSE)
                        .cloned(),
                );
            }
            Err(e) => {
                f.push(format!("reader after NOTIFY: {e}"));
                return;
            }
        }
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wire: Vec<u8> = seen
        .iter()
        .flat_map(|fr| fr.bytes.iter().copied())
        .collect();
    f.check(!seen.is_empty(), || {
        "the reader never received the notification".to_string()
    });
    let leaked = leaks(&wire);
    f.check(leaked.is_empty(), || {
        format!(
            "notification payload LEAK {leaked:?}: {:?}",
            String::from_utf8_lossy(&wire)
        )
    });
}

/// `admin` has no rules: clear values, which also proves the leak search finds them.
fn admin_sees_clear_values(ps: &PolicyStack, f: &mut Failures) {
    let mut admin = Session::admin(ps);
    match admin.simple("SELECT id, email, card_number, ssn FROM customers ORDER BY id") {
        Ok(r) => {
            let want: Vec<Vec<Option<String>>> = CUSTOMERS
                .iter()
                .map(|c| {
                    [c.id.to_string().as_str(), c.email, c.card, c.ssn]
                        .iter()
                        .map(|v| Some(v.to_string()))
                        .collect()
                })
                .collect();
            f.check(r.rows() == want, || format!("admin rows: {}", r.summary()));
            let found = leaks(&r.wire());
            f.check(found.len() >= 3 * CUSTOMERS.len(), || {
                format!("the leak search misses clear values: found only {found:?}")
            });
        }
        Err(e) => f.push(format!("admin read: {e}")),
    }
}
