//! Protocol-following tests of the inspector: message by message, both directions.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::*;
use crate::codec::pg::tag::backend as be;
use crate::codec::pg::{
    decode_frame, encode_command_complete, encode_data_row, encode_error, encode_parameter_status,
    encode_query, encode_ready_for_query, encode_row_description, encode_sync, DataRow,
    ErrorNotice, FieldDescription, TransactionStatus, FORMAT_BINARY, FORMAT_TEXT,
};
use crate::config::fixture::{resource, HEAD};
use crate::config::Config;
use crate::mask::ColumnResolver;
use crate::policy::{mask_key_from_signing_key, PolicySet};

/// The shared head, the resources demo, and the rest.
fn config() -> String {
    [HEAD, &resource("demo"), CONFIG_REST].concat()
}

const CONFIG_REST: &str = r#"
[role.reader]
resources = ["demo"]

[role.reader.rules."*"]
read = "allow"
transaction = "allow"
session = "allow"
max_rows = 2

[role.reader.rules."*".mask]
columns = { card_number = "last4", email = "full" }
"#;

const CUSTOMERS: u32 = 16_400;
const TEXT: u32 = 25;

fn inspector() -> Inspector {
    let config: Config = toml::from_str(&config()).unwrap();
    let set = PolicySet::compile(&config, Some(mask_key_from_signing_key(&[7; 32]))).unwrap();
    let policy = set.session(&["reader".to_string()], "demo").unwrap();
    assert!(Inspector::needed(&policy));
    Inspector::new(Arc::clone(&policy), true)
}

/// Table 16400 is `public.customers(id, email, card_number)`.
fn resolver() -> impl ColumnResolver {
    |oid: u32, col: i16| {
        let name = match (oid, col) {
            (CUSTOMERS, 1) => "id",
            (CUSTOMERS, 2) => "email",
            (CUSTOMERS, 3) => "card_number",
            _ => return None,
        };
        Some(("public".into(), "customers".into(), name.into()))
    }
}

fn frame(out: BytesMut) -> Frame {
    let mut b = out;
    let f = decode_frame(&mut b, 1 << 20).unwrap().unwrap();
    assert!(b.is_empty(), "one message");
    f
}

fn build(f: impl FnOnce(&mut BytesMut)) -> Frame {
    let mut out = BytesMut::new();
    f(&mut out);
    frame(out)
}

fn client(i: &mut Inspector, f: Frame) -> Action {
    i.on_client(&f, &resolver())
}

fn server(i: &mut Inspector, f: Frame) -> Action {
    i.on_server(&f, &resolver())
}

fn query(sql: &str) -> Frame {
    build(|o| encode_query(o, sql))
}

fn parse(name: &str, sql: &str) -> Frame {
    build(|o| pg::encode_parse(o, name.as_bytes(), sql))
}

fn bind(portal: &str, statement: &str, formats: &[i16]) -> Frame {
    build(|o| {
        o.put_u8(b'B');
        let at = o.len();
        o.put_i32(0);
        for s in [portal, statement] {
            o.put_slice(s.as_bytes());
            o.put_u8(0);
        }
        o.put_i16(0);
        o.put_i16(0);
        o.put_i16(formats.len() as i16);
        for f in formats {
            o.put_i16(*f);
        }
        let len = (o.len() - at) as i32;
        o[at..at + 4].copy_from_slice(&len.to_be_bytes());
    })
}

fn execute(portal: &str) -> Frame {
    build(|o| {
        o.put_u8(b'E');
        o.put_i32(4 + portal.len() as i32 + 1 + 4);
        o.put_slice(portal.as_bytes());
        o.put_u8(0);
        o.put_i32(0);
    })
}

fn describe_statement(name: &str) -> Frame {
    build(|o| pg::encode_describe(o, pg::Target::Statement, name.as_bytes()))
}

fn sync() -> Frame {
    build(encode_sync)
}

fn tagged(tag: u8) -> Frame {
    build(|o| {
        o.put_u8(tag);
        o.put_i32(4);
    })
}

fn error(code: &str, message: &str) -> Frame {
    build(|o| encode_error(o, "ERROR", code, message))
}

fn ready(status: TransactionStatus) -> Frame {
    build(|o| encode_ready_for_query(o, status))
}

fn row_description(columns: &[(&str, u32, i16)], format: i16) -> Frame {
    let fields: Vec<FieldDescription<'_>> = columns
        .iter()
        .map(|&(name, table_oid, column)| FieldDescription {
            name: name.as_bytes(),
            table_oid,
            column,
            type_oid: TEXT,
            type_size: -1,
            type_modifier: -1,
            format,
        })
        .collect();
    build(|o| encode_row_description(o, &fields))
}

fn data_row(values: &[&str]) -> Frame {
    build(|o| encode_data_row(o, values.iter().map(|v| Some(v.as_bytes()))))
}

fn complete(tag: &str) -> Frame {
    build(|o| encode_command_complete(o, tag))
}

fn replaced(action: Action) -> Bytes {
    match action {
        Action::Replace(b) => b,
        other => panic!("expected a replacement, got {other:?}"),
    }
}

fn error_of(bytes: Bytes) -> (String, String) {
    let f = frame(BytesMut::from(&bytes[..]));
    let e = ErrorNotice::decode(&f).unwrap();
    (e.code().unwrap().into(), e.message().unwrap().into())
}

fn values(bytes: &Bytes) -> Vec<String> {
    let f = frame(BytesMut::from(&bytes[..]));
    DataRow::decode(&f)
        .unwrap()
        .values()
        .map(|v| String::from_utf8(v.unwrap().to_vec()).unwrap())
        .collect()
}

fn forwarded(action: Action) {
    assert!(matches!(action, Action::Forward), "{action:?}");
}

#[test]
fn a_blocked_query_reaches_the_upstream_as_a_syntax_error_and_returns_as_42501() {
    let mut i = inspector();
    let sent = replaced(client(&mut i, query("DELETE FROM customers")));
    assert_eq!(sent, query(BLOCKED_SQL).bytes);
    let (code, message) = error_of(replaced(server(
        &mut i,
        error(SYNTAX_ERROR, "syntax error at or near \"sluice_blocked\""),
    )));
    assert_eq!(code, INSUFFICIENT_PRIVILEGE);
    assert!(message.starts_with("sluice: DELETE blocked"), "{message}");
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
    assert!(i.expect.is_empty());
    assert_eq!(i.blocked, 1);
    // Inside a failed transaction the upstream answers 25P02 for the stand-in, exactly as it
    // would have for the statement: that error goes through unchanged.
    client(&mut i, query("DROP TABLE customers"));
    forwarded(server(
        &mut i,
        error("25P02", "current transaction is aborted"),
    ));
}

#[test]
fn an_error_of_an_allowed_statement_is_not_rewritten() {
    let mut i = inspector();
    forwarded(client(&mut i, query("SELECT 1/0")));
    forwarded(server(&mut i, error("22012", "division by zero")));
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
    // Even a syntax error: only the stand-in's is the gateway's to replace.
    forwarded(client(&mut i, query("SELECT 1")));
    forwarded(server(&mut i, error(SYNTAX_ERROR, "syntax error")));
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
    // Text the classifier cannot read is blocked (fail closed), the server never sees it.
    assert!(matches!(
        client(&mut i, query("SELEC 1")),
        Action::Replace(_)
    ));
}

#[test]
fn a_pipeline_behind_a_blocked_parse_fails_cleanly_and_the_name_stays_blocked() {
    let mut i = inspector();
    let p = replaced(client(
        &mut i,
        parse("s1", "UPDATE customers SET email = ''"),
    ));
    assert_eq!(p, parse("s1", BLOCKED_SQL).bytes);
    let b = replaced(client(&mut i, bind("p1", "s1", &[])));
    assert_eq!(b, parse("sluice_blocked", BLOCKED_SQL).bytes);
    replaced(client(&mut i, execute("p1")));
    forwarded(client(&mut i, sync()));
    // The upstream fails the first Parse and skips to Sync.
    let (code, _) = error_of(replaced(server(&mut i, error(SYNTAX_ERROR, "x"))));
    assert_eq!(code, INSUFFICIENT_PRIVILEGE);
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
    assert!(i.expect.is_empty());
    // Later uses of the name fail the same way.
    replaced(client(&mut i, describe_statement("s1")));
    replaced(client(&mut i, bind("", "s1", &[])));
}

#[test]
fn rows_of_an_execute_are_masked_with_the_statement_description() {
    let mut i = inspector();
    forwarded(client(
        &mut i,
        parse("s", "SELECT id, email, card_number FROM customers"),
    ));
    forwarded(client(&mut i, describe_statement("s")));
    forwarded(client(&mut i, sync()));
    forwarded(server(&mut i, tagged(be::PARSE_COMPLETE)));
    forwarded(server(&mut i, tagged(be::PARAMETER_DESCRIPTION)));
    let desc = row_description(
        &[
            ("id", CUSTOMERS, 1),
            ("e", CUSTOMERS, 2),
            ("card_number", CUSTOMERS, 3),
        ],
        FORMAT_TEXT,
    );
    assert_eq!(i.tables_to_resolve(&desc), vec![CUSTOMERS]);
    forwarded(server(&mut i, desc));
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));

    // Bound and executed without Describe, as tokio-postgres does. The first Bind needs the
    // table's names; once planned, a Bind of the same statement and formats needs nothing.
    assert_eq!(i.tables_for_bind(&bind("", "s", &[])), vec![CUSTOMERS]);
    forwarded(client(&mut i, bind("", "s", &[])));
    assert!(i.tables_for_bind(&bind("", "s", &[])).is_empty());
    forwarded(client(&mut i, execute("")));
    forwarded(client(&mut i, sync()));
    forwarded(server(&mut i, tagged(be::BIND_COMPLETE)));
    let row = replaced(server(
        &mut i,
        data_row(&["1", "ann@example.com", "4111 1111 1111 1111"]),
    ));
    assert_eq!(values(&row), ["1", "****", "****1111"]);
    forwarded(server(&mut i, complete("SELECT 1")));
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
    assert!(i.expect.is_empty());
}

#[test]
fn an_undescribed_portal_is_described_out_of_sight_before_its_rows() {
    let mut i = inspector();
    forwarded(client(&mut i, parse("", "SELECT email FROM customers")));
    forwarded(client(&mut i, bind("", "", &[])));
    let prefix = match client(&mut i, execute("")) {
        Action::Prefix(b) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(prefix[0], b'D');
    forwarded(client(&mut i, sync()));
    forwarded(server(&mut i, tagged(be::PARSE_COMPLETE)));
    forwarded(server(&mut i, tagged(be::BIND_COMPLETE)));
    let hidden = server(
        &mut i,
        row_description(&[("email", CUSTOMERS, 2)], FORMAT_TEXT),
    );
    assert!(matches!(hidden, Action::Drop), "{hidden:?}");
    let row = replaced(server(&mut i, data_row(&["bob@example.org"])));
    assert_eq!(values(&row), ["****"]);
    forwarded(server(&mut i, complete("SELECT 1")));
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
}

#[test]
fn binary_results_of_masked_columns_are_refused_at_bind() {
    let mut i = inspector();
    client(&mut i, parse("s", "SELECT id FROM customers"));
    client(&mut i, describe_statement("s"));
    client(&mut i, sync());
    server(&mut i, tagged(be::PARSE_COMPLETE));
    server(&mut i, tagged(be::PARAMETER_DESCRIPTION));
    server(
        &mut i,
        row_description(&[("id", CUSTOMERS, 1), ("note", 0, 0)], FORMAT_TEXT),
    );
    server(&mut i, ready(TransactionStatus::Idle));
    // The described statement's columns are text, whose binary form is text: allowed.
    forwarded(client(&mut i, bind("", "s", &[FORMAT_BINARY])));
    // A statement nobody described cannot be checked in time: its binary Bind is refused.
    client(&mut i, parse("u", "SELECT email FROM customers"));
    let refused = replaced(client(&mut i, bind("", "u", &[FORMAT_BINARY])));
    assert_eq!(refused, parse("sluice_blocked", BLOCKED_SQL).bytes);
}

#[test]
fn rows_past_max_rows_are_cut_and_the_tag_says_so() {
    let mut i = inspector();
    forwarded(client(&mut i, query("SELECT id FROM customers")));
    forwarded(server(
        &mut i,
        row_description(&[("id", CUSTOMERS, 1)], FORMAT_TEXT),
    ));
    forwarded(server(&mut i, data_row(&["1"])));
    forwarded(server(&mut i, data_row(&["2"])));
    assert!(matches!(server(&mut i, data_row(&["3"])), Action::Drop));
    let tail = replaced(server(&mut i, complete("SELECT 3")));
    assert_eq!(tail[0], b'N', "a notice first");
    let mut rest = BytesMut::from(&tail[..]);
    let notice = decode_frame(&mut rest, 1 << 20).unwrap().unwrap();
    assert!(ErrorNotice::decode(&notice)
        .unwrap()
        .message()
        .unwrap()
        .contains("cut to 2 rows"));
    let done = decode_frame(&mut rest, 1 << 20).unwrap().unwrap();
    assert_eq!(pg::CommandComplete::decode(&done).unwrap().tag, "SELECT 2");
    forwarded(server(&mut i, ready(TransactionStatus::Idle)));
}

#[test]
fn function_calls_and_non_utf8_encodings_are_refused() {
    let mut i = inspector();
    let sent = replaced(client(&mut i, tagged(pg::tag::frontend::FUNCTION_CALL)));
    assert_eq!(sent, query(BLOCKED_SQL).bytes);
    let (code, _) = error_of(replaced(server(&mut i, error(SYNTAX_ERROR, "x"))));
    assert_eq!(code, INSUFFICIENT_PRIVILEGE);
    let status = build(|o| encode_parameter_status(o, "client_encoding", "SJIS"));
    assert!(matches!(server(&mut i, status), Action::Fatal(..)));
    let scs = build(|o| encode_parameter_status(o, "standard_conforming_strings", "off"));
    forwarded(server(&mut i, scs));
    assert!(!i.standard_strings);
}

#[test]
fn detectors_mask_errors_and_notices() {
    let mut i = inspector();
    client(&mut i, query("SELECT email::int FROM customers"));
    let e = replaced(server(
        &mut i,
        error(
            "22P02",
            "invalid input syntax for type integer: \"ann@example.com\"",
        ),
    ));
    let (_, message) = error_of(e);
    assert!(!message.contains("ann@example.com"), "{message}");
}

#[test]
fn the_tally_counts_statements_by_class_and_action_and_masked_values() {
    use crate::metrics::{action_slot, class_slot};
    use crate::sql::StatementClass;
    let mut i = inspector();
    let slot = |class, action| (class_slot(class), action_slot(action));
    // Two reads in one message, then a message whose write blocks the read beside it too.
    forwarded(client(&mut i, query("SELECT 1; SELECT 2")));
    replaced(client(&mut i, query("SELECT 1; DELETE FROM customers")));
    replaced(client(&mut i, parse("s", "DROP TABLE customers")));
    let t = &i.tally;
    let count = |(c, a): (usize, usize)| t.statements[c][a];
    use crate::config::Action as A;
    assert_eq!(count(slot(StatementClass::Read, A::Allow)), 2);
    assert_eq!(count(slot(StatementClass::Read, A::Block)), 1);
    assert_eq!(count(slot(StatementClass::Write, A::Block)), 1);
    assert_eq!(count(slot(StatementClass::Ddl, A::Block)), 1);
    assert_eq!(t.statements.iter().flatten().sum::<u64>(), 5);
    assert!(t.dirty);

    // A masked row: email and card number are replaced, the id is not.
    let mut i = inspector();
    forwarded(client(
        &mut i,
        query("SELECT id, email, card_number FROM customers"),
    ));
    forwarded(server(
        &mut i,
        row_description(
            &[
                ("id", CUSTOMERS, 1),
                ("email", CUSTOMERS, 2),
                ("card_number", CUSTOMERS, 3),
            ],
            FORMAT_TEXT,
        ),
    ));
    replaced(server(
        &mut i,
        data_row(&["1", "a@example.com", "4111111111111111"]),
    ));
    assert_eq!(i.tally.masked, 2);
}
