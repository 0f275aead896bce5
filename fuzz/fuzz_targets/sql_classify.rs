//! Fuzzes the SQL lexer and classifier: arbitrary UTF-8 is lexed, split, normalized,
//! fingerprinted and classified under both `standard_conforming_strings` settings. Nothing may
//! panic, splitting must be lossless, token spans must be ordered and inside the text, and
//! every classified statement's span must lie inside the text. The masked-column check runs
//! on the same text and must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::sql::{
    check_masked_uses, classify, fingerprint_with, normalize, split_statements_with,
    ClassifyOptions, LexOptions, Lexer,
};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    for scs in [true, false] {
        let lex = LexOptions {
            standard_conforming_strings: scs,
        };
        let mut last = 0;
        for t in Lexer::new(sql, lex).flatten() {
            assert!(t.start() >= last && t.end() > t.start() && t.end() <= sql.len());
            let _ = t.text(sql);
            last = t.end();
        }
        let pieces = split_statements_with(sql, lex);
        assert_eq!(pieces.join(";"), sql, "split must be lossless");
        let _ = normalize(sql, lex);
        let _ = fingerprint_with(sql, lex);
        let opts = ClassifyOptions {
            standard_conforming_strings: scs,
            ..ClassifyOptions::default()
        };
        let c = classify(sql, &opts);
        for s in &c.statements {
            assert!(s.span.start <= s.span.end && s.span.end <= sql.len());
        }
        let _ = c.strongest();
        let masked = ["card_number".to_string(), "e*".to_string()];
        let _ = check_masked_uses(sql, &masked, lex);
    }
});
