//! Property tests: the lexer and classifier never panic, and splitting is lossless.

use crate::sql::{
    classify, fingerprint, normalize, split_statements_with, ClassifyOptions, LexOptions, Lexer,
};
use proptest::prelude::*;

/// Text built from the characters that matter to PostgreSQL's lexer, so that random inputs
/// hit quotes, comments and dollar signs often.
fn sqlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "'",
        "\"",
        "$",
        "$$",
        "$a$",
        ";",
        "--",
        "/*",
        "*/",
        "\n",
        "\r",
        " ",
        "\\",
        "E'",
        "U&\"",
        "U&'",
        "B'",
        "select",
        "delete",
        "with",
        "(",
        ")",
        "a",
        "1",
        ".",
        "é",
        "uescape",
        "''",
        "into",
        "for",
        "update",
        "x",
        "pg_read_file",
        "begin",
        "atomic",
        "end",
        "create",
        "function",
        ",",
        "::",
        "copy",
        "to",
        "stdout",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lexer_never_panics_and_spans_are_in_order(src in any::<String>(), scs in any::<bool>()) {
        let mut last = 0;
        for t in Lexer::new(&src, LexOptions { standard_conforming_strings: scs }).flatten() {
            prop_assert!(t.start() >= last && t.end() > t.start() && t.end() <= src.len());
            let _ = t.text(&src);
            last = t.end();
        }
    }

    #[test]
    fn split_rejoins_to_the_input(src in sqlish(), scs in any::<bool>()) {
        let pieces = split_statements_with(&src, LexOptions { standard_conforming_strings: scs });
        prop_assert_eq!(pieces.join(";"), src);
    }

    #[test]
    fn split_rejoins_arbitrary_text(src in any::<String>()) {
        let pieces = split_statements_with(&src, LexOptions::default());
        prop_assert_eq!(pieces.join(";"), src);
    }

    #[test]
    fn classify_normalize_fingerprint_never_panic(src in sqlish(), scs in any::<bool>()) {
        let opts = ClassifyOptions { standard_conforming_strings: scs, ..ClassifyOptions::default() };
        let c = classify(&src, &opts);
        for s in &c.statements {
            prop_assert!(s.span.end <= src.len());
        }
        let _ = normalize(&src, opts.lex_options());
        let _ = fingerprint(&src);
    }
}
