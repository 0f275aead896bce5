//! Lexer and splitter tests, one per PostgreSQL lexical construct.

use crate::sql::{
    decode_unicode_escapes, split_statements, split_statements_with, LexError, LexOptions, Lexer,
    StrKind, TokenKind,
};

fn lex_with(src: &str, scs: bool) -> Result<Vec<(TokenKind, &str)>, LexError> {
    let opts = LexOptions {
        standard_conforming_strings: scs,
    };
    Lexer::new(src, opts)
        .map(|t| t.map(|t| (t.kind, t.text(src))))
        .collect()
}

fn lex(src: &str) -> Vec<(TokenKind, &str)> {
    lex_with(src, true).expect("lexes")
}

fn texts(src: &str) -> Vec<&str> {
    lex(src).into_iter().map(|(_, t)| t).collect()
}

use StrKind::*;
use TokenKind::*;

#[test]
fn words_numbers_operators_and_punctuation() {
    assert_eq!(
        lex("SELECT a.b, 1.5e3, .5, 0x1F FROM t WHERE x>=$1::int;"),
        vec![
            (Word, "SELECT"),
            (Word, "a"),
            (Dot, "."),
            (Word, "b"),
            (Comma, ","),
            (Number, "1.5e3"),
            (Comma, ","),
            (Number, ".5"),
            (Comma, ","),
            (Number, "0x1F"),
            (Word, "FROM"),
            (Word, "t"),
            (Word, "WHERE"),
            (Word, "x"),
            (Operator, ">="),
            (Param, "$1"),
            (Operator, "::"),
            (Word, "int"),
            (Semicolon, ";"),
        ]
    );
}

#[test]
fn line_comment_ends_at_lf_or_cr() {
    assert_eq!(
        texts("SELECT 1 -- hidden\nFROM t"),
        ["SELECT", "1", "FROM", "t"]
    );
    assert_eq!(
        texts("SELECT 1 -- hidden\rDELETE"),
        ["SELECT", "1", "DELETE"]
    );
    assert_eq!(texts("SELECT 1 -- ; DROP TABLE t"), ["SELECT", "1"]);
}

#[test]
fn block_comments_nest() {
    assert_eq!(
        texts("SELECT /* a /* b */ still comment */ 1"),
        ["SELECT", "1"]
    );
    assert_eq!(texts("SELECT /*/ x */ 1"), ["SELECT", "1"]);
    assert_eq!(texts("SELECT /* **/ 1"), ["SELECT", "1"]);
    assert!(matches!(
        lex_with("SELECT /* a /* b */ 1", true),
        Err(LexError::UnterminatedComment(7))
    ));
}

#[test]
fn operator_stops_before_comment_start() {
    assert_eq!(texts("SELECT 2*--c\n3"), ["SELECT", "2", "*", "3"]);
    assert_eq!(texts("SELECT 2+/*c*/3"), ["SELECT", "2", "+", "3"]);
    // A trailing minus is split off: `<-1` is `<` and `-`.
    assert_eq!(texts("a<-1"), ["a", "<", "-", "1"]);
    assert_eq!(texts("a@-1"), ["a", "@-", "1"]);
}

#[test]
fn standard_strings_double_quotes_and_keep_backslashes() {
    assert_eq!(lex("'it''s'"), vec![(Str(Standard), "'it''s'")]);
    // One backslash, then the quote closes the string.
    assert_eq!(lex(r"'\' x"), vec![(Str(Standard), r"'\'"), (Word, "x")]);
}

#[test]
fn escape_strings_honor_backslash() {
    assert_eq!(lex(r"E'\'' x"), vec![(Str(Escape), r"E'\''"), (Word, "x")]);
    assert_eq!(
        lex(r"e'a\\' x"),
        vec![(Str(Escape), r"e'a\\'"), (Word, "x")]
    );
    assert!(lex_with(r"E'\'", true).is_err());
}

#[test]
fn standard_conforming_strings_off_makes_plain_strings_escape_strings() {
    let src = r"SELECT '\'; DROP TABLE t; --'";
    assert_eq!(
        lex_with(src, false).unwrap(),
        vec![(Word, "SELECT"), (Str(Escape), r"'\'; DROP TABLE t; --'")]
    );
    let on = lex_with(src, true).unwrap();
    assert!(on.contains(&(Word, "DROP")));
}

#[test]
fn string_continuation_across_newline_keeps_the_mode() {
    // PostgreSQL joins 'a' <newline> 'b' into one literal, lexed in the first part's mode.
    let src = "SELECT E'x'\n'\\'; DROP TABLE t; --'";
    assert_eq!(lex(src), vec![(Word, "SELECT"), (Str(Escape), &src[7..])]);
    let src = "SELECT 'a' -- note\n  'b' x";
    assert_eq!(lex(src)[1], (Str(Standard), "'a' -- note\n  'b'"));
    // Without a newline they are two literals.
    assert_eq!(texts("SELECT 'a' 'b'"), ["SELECT", "'a'", "'b'"]);
}

#[test]
fn prefixed_strings() {
    assert_eq!(lex("B'1010'"), vec![(Str(Bit), "B'1010'")]);
    assert_eq!(lex("x'1F'"), vec![(Str(Hex), "x'1F'")]);
    assert_eq!(lex("N'abc'"), vec![(Str(Standard), "N'abc'")]);
    assert_eq!(lex("U&'d\\0061t'"), vec![(Str(Unicode), "U&'d\\0061t'")]);
    // Bit strings have no doubled quotes: B'1''0' is B'1' then '0'.
    assert_eq!(texts("B'1''0'"), ["B'1'", "'0'"]);
    // Only a single-letter prefix: `ab'x'` is a word then a string.
    assert_eq!(texts("ab'x'"), ["ab", "'x'"]);
}

#[test]
fn dollar_quotes_match_their_own_tag() {
    assert_eq!(
        lex("$a$ x $b$ ; $b$ y $a$ z"),
        vec![(Str(Dollar), "$a$ x $b$ ; $b$ y $a$"), (Word, "z")]
    );
    assert_eq!(lex("$$;$$"), vec![(Str(Dollar), "$$;$$")]);
    // Tags are case-sensitive.
    assert!(matches!(
        lex_with("$A$ x $a$", true),
        Err(LexError::UnterminatedDollar(0))
    ));
    // `$xa$` inside does not close `$a$`.
    assert_eq!(lex("$a$ $xa$ $a$").len(), 1);
}

#[test]
fn dollar_parameters_and_identifiers_with_dollars() {
    assert_eq!(lex("$1 $23"), vec![(Param, "$1"), (Param, "$23")]);
    // `$` inside an identifier is part of it; `a$$` does not start a dollar quote.
    assert_eq!(lex("a$b"), vec![(Word, "a$b")]);
    assert_eq!(
        lex("a$$ ; b"),
        vec![(Word, "a$$"), (Semicolon, ";"), (Word, "b")]
    );
    // ... while a `$$` on its own opens one (here never closed).
    assert!(matches!(
        lex_with("a$$ ; $$", true),
        Err(LexError::UnterminatedDollar(6))
    ));
    assert_eq!(
        lex("a $$ ; $$"),
        vec![(Word, "a"), (Str(Dollar), "$$ ; $$")]
    );
    // A tag cannot start with a digit.
    assert_eq!(texts("$1$"), ["$1", "$"]);
    // `$abc` with no closing `$` is a lone `$` then a word.
    assert_eq!(
        lex("$abc x"),
        vec![(Other, "$"), (Word, "abc"), (Word, "x")]
    );
}

#[test]
fn quoted_identifiers() {
    assert_eq!(
        lex(r#""a""b" x"#),
        vec![(QuotedIdent, r#""a""b""#), (Word, "x")]
    );
    assert_eq!(lex(r#""select;""#), vec![(QuotedIdent, r#""select;""#)]);
    assert!(matches!(
        lex_with(r#"SELECT """#, true),
        Err(LexError::EmptyIdent(7))
    ));
    assert!(matches!(
        lex_with(r#"SELECT "abc"#, true),
        Err(LexError::UnterminatedIdent(7))
    ));
    assert_eq!(lex(r#""""""#), vec![(QuotedIdent, r#""""""#)]);
}

#[test]
fn unicode_identifiers_and_escapes() {
    assert_eq!(
        lex(r#"U&"d\0061t\+000061""#),
        vec![(UnicodeIdent, r#"U&"d\0061t\+000061""#)]
    );
    assert_eq!(
        decode_unicode_escapes(r"d\0061t\+000061", '\\').as_deref(),
        Some("data")
    );
    assert_eq!(
        decode_unicode_escapes(r"pg!005fread", '!').as_deref(),
        Some("pg_read")
    );
    assert_eq!(
        decode_unicode_escapes(r"a\\b", '\\').as_deref(),
        Some(r"a\b")
    );
    assert_eq!(
        decode_unicode_escapes(r"\D83D\DE00", '\\').as_deref(),
        Some("😀")
    );
    assert_eq!(decode_unicode_escapes(r"\00g1", '\\'), None);
    assert_eq!(decode_unicode_escapes(r"\D83D", '\\'), None);
    assert_eq!(decode_unicode_escapes(r"\0000", '\\'), None);
}

#[test]
fn unterminated_constructs_are_errors() {
    for src in [
        "SELECT 'abc",
        "SELECT E'abc\\'",
        "SELECT $t$ abc",
        "SELECT \"abc",
        "/* x",
    ] {
        assert!(lex_with(src, true).is_err(), "{src}");
    }
    // An unterminated -- comment is fine: it ends at the end of the text.
    assert_eq!(texts("SELECT 1 -- tail"), ["SELECT", "1"]);
}

#[test]
fn non_ascii_identifiers_and_other_characters() {
    assert_eq!(
        lex("SELECT café, 名前"),
        vec![
            (Word, "SELECT"),
            (Word, "café"),
            (Comma, ","),
            (Word, "名前")
        ]
    );
    assert_eq!(texts("a \\ {"), ["a", "\\", "{"]);
}

#[test]
fn numbers_stop_before_range_dots_and_letters() {
    assert_eq!(texts("1..5"), ["1", "..", "5"]);
    assert_eq!(texts("1_000_000"), ["1_000_000"]);
    assert_eq!(texts("1e'x'"), ["1", "e'x'"]);
    assert_eq!(texts("0x'AF'"), ["0", "x'AF'"]);
}

#[test]
fn split_is_lossless_and_respects_every_quote() {
    let src = "SELECT ';' ; SELECT $$;$$; /* ; */ SELECT \"a;b\" -- ;\r; E'\\';'";
    let pieces = split_statements(src);
    assert_eq!(pieces.join(";"), src);
    assert_eq!(
        pieces,
        vec![
            "SELECT ';' ",
            " SELECT $$;$$",
            " /* ; */ SELECT \"a;b\" -- ;\r",
            " E'\\';'"
        ]
    );
}

#[test]
fn split_keeps_trailing_and_empty_pieces() {
    assert_eq!(split_statements("a;;b;"), vec!["a", "", "b", ""]);
    assert_eq!(split_statements(""), vec![""]);
    assert_eq!(split_statements("SELECT 'x;"), vec!["SELECT 'x;"]);
    assert_eq!(
        split_statements("a; SELECT 'x; y"),
        vec!["a", " SELECT 'x; y"]
    );
}

#[test]
fn split_depends_on_standard_conforming_strings() {
    let src = r"SELECT 'a\'; DELETE FROM t; SELECT '";
    assert_eq!(
        split_statements_with(
            src,
            LexOptions {
                standard_conforming_strings: true
            }
        )
        .len(),
        3
    );
    assert_eq!(
        split_statements_with(
            src,
            LexOptions {
                standard_conforming_strings: false
            }
        )
        .len(),
        1
    );
}

#[test]
fn split_keeps_begin_atomic_bodies_whole() {
    let src = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; DELETE FROM t";
    let pieces = split_statements(src);
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    assert_eq!(pieces[1], " DELETE FROM t");
    let src =
        "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END; SELECT 1";
    assert_eq!(split_statements(src).len(), 2);
    // Outside CREATE FUNCTION/PROCEDURE, BEGIN ATOMIC means nothing.
    assert_eq!(
        split_statements("SELECT begin atomic; DELETE FROM t").len(),
        2
    );
}
