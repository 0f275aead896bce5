//! Denylist, normalization and fingerprint tests.

use crate::sql::{fingerprint, normalize, Denylist, DenylistError, LexOptions};

fn deny() -> Denylist {
    Denylist::new(&[
        "drop table",
        "truncate",
        "alter system",
        "delete from users",
        "pg_read_file",
    ])
    .unwrap()
}

fn hit(sql: &str) -> Option<String> {
    deny()
        .find(&normalize(sql, LexOptions::default()))
        .map(str::to_string)
}

#[test]
fn comments_case_spacing_and_quoting_cannot_hide_a_denied_command() {
    assert_eq!(hit("DROP TABLE x").as_deref(), Some("drop table"));
    assert_eq!(
        hit("dRoP\n\t/* x */ TaBlE x").as_deref(),
        Some("drop table")
    );
    assert_eq!(hit("drop--c\rtable x").as_deref(), Some("drop table"));
    assert_eq!(hit("SELECT 1; TRUNCATE t").as_deref(), Some("truncate"));
    assert_eq!(
        hit("ALTER /**/ SYSTEM SET x = 1").as_deref(),
        Some("alter system")
    );
    assert_eq!(
        hit("DELETE FROM \"users\" WHERE true").as_deref(),
        Some("delete from users")
    );
    assert_eq!(
        hit("DELETE FROM U&\"\\0075sers\"").as_deref(),
        Some("delete from users")
    );
    assert_eq!(
        hit("SELECT pg_catalog.pg_read_file('x')").as_deref(),
        Some("pg_read_file")
    );
}

#[test]
fn literals_and_other_names_never_match() {
    assert_eq!(hit("SELECT 'drop table x'"), None);
    assert_eq!(hit("SELECT $$drop table x$$"), None);
    assert_eq!(hit("SELECT E'truncate'"), None);
    assert_eq!(hit("SELECT 1 -- drop table x"), None);
    assert_eq!(hit("SELECT \"drop table\" FROM t"), None);
    assert_eq!(hit("DELETE FROM \"Users\""), None);
    assert_eq!(hit("SELECT drop_table FROM t"), None);
    assert_eq!(hit("SELECT \"DROP\" FROM t"), None);
    assert_eq!(hit("DELETE FROM users_archive"), None);
}

#[test]
fn bad_patterns_are_rejected() {
    assert!(matches!(Denylist::new(&[""]), Err(DenylistError::Empty(_))));
    assert!(matches!(
        Denylist::new(&["/* x */"]),
        Err(DenylistError::Empty(_))
    ));
    assert!(matches!(
        Denylist::new(&["drop 'x'"]),
        Err(DenylistError::Literal(_))
    ));
    assert!(matches!(
        Denylist::new(&["drop \"x"]),
        Err(DenylistError::Lex(..))
    ));
    let empty = Denylist::new(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        empty.find(&normalize("DROP TABLE x", LexOptions::default())),
        None
    );
}

#[test]
fn normalized_tokens_fold_words_and_hide_literals() {
    let n = normalize("SELECT \"A\", b, 'x', 1, $1 FROM T", LexOptions::default());
    assert_eq!(
        n.words(),
        ["select", "A", ",", "b", ",", "'?'", ",", "?", ",", "$?", "from", "t"]
    );
    assert!(n.error().is_none());
    assert!(normalize("SELECT 'x", LexOptions::default())
        .error()
        .is_some());
}

#[test]
fn fingerprints_never_carry_literal_values() {
    assert_eq!(
        fingerprint("SELECT * FROM Users WHERE email = 'a@b.c' AND id = 42 -- hi"),
        "select * from users where email = ? and id = ?"
    );
    assert_eq!(
        fingerprint("select \"Weird\"\"Name\" from t where x = $1"),
        "select \"Weird\"\"Name\" from t where x = $1"
    );
    assert_eq!(
        fingerprint("SELECT $tag$secret$tag$, E'\\x41', B'101'"),
        "select ? , ? , ?"
    );
    assert_eq!(fingerprint("SELECT 'secret"), "select ?");
    assert_eq!(fingerprint("SELECT a$b"), "select \"a$b\"");
}
