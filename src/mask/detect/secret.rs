//! Secret-looking tokens: JWTs, API keys with well-known prefixes, PEM private keys.
//!
//! All of them start with a fixed literal, so one packed multi-literal search (SIMD where the
//! CPU has it) finds every candidate in a single pass over the value; each hit is then checked
//! against the shape of its token. Prefix-less secrets (an AWS secret access key, a random
//! password) cannot be told from other data and are left to column rules.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};

use super::{Finding, Kind};

/// What follows a literal.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A run of body characters at least this long.
    Run(fn(u8) -> bool, usize),
    /// `header.payload.signature` in base64url, header starting with the literal.
    Jwt,
    /// A PEM block whose label names a private key, through its END line.
    Pem,
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn alnum_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Literal, shape after it. The minimum lengths are well under each issuer's real length, so
/// a truncated key is still caught, and well over what ordinary words reach.
const PREFIXES: &[(&str, Shape)] = &[
    ("eyJ", Shape::Jwt),
    ("-----BEGIN ", Shape::Pem),
    // AWS access key ids: long-term and temporary.
    ("AKIA", Shape::Run(upper_alnum, 16)),
    ("ASIA", Shape::Run(upper_alnum, 16)),
    // GitHub: personal, OAuth, user-to-server, server-to-server, refresh; fine-grained.
    ("ghp_", Shape::Run(alnum, 30)),
    ("gho_", Shape::Run(alnum, 30)),
    ("ghu_", Shape::Run(alnum, 30)),
    ("ghs_", Shape::Run(alnum, 30)),
    ("ghr_", Shape::Run(alnum, 30)),
    ("github_pat_", Shape::Run(word, 22)),
    ("glpat-", Shape::Run(base64url, 20)),
    // Slack bot, user, app-level, refresh and legacy tokens.
    ("xoxb-", Shape::Run(alnum_dash, 10)),
    ("xoxp-", Shape::Run(alnum_dash, 10)),
    ("xoxa-", Shape::Run(alnum_dash, 10)),
    ("xoxe-", Shape::Run(alnum_dash, 10)),
    ("xoxr-", Shape::Run(alnum_dash, 10)),
    ("xoxs-", Shape::Run(alnum_dash, 10)),
    ("xapp-", Shape::Run(alnum_dash, 10)),
    // Stripe secret and restricted keys, webhook signing secrets.
    ("sk_live_", Shape::Run(alnum, 16)),
    ("rk_live_", Shape::Run(alnum, 16)),
    ("whsec_", Shape::Run(alnum, 24)),
    // OpenAI and Anthropic style keys (`sk-proj-...`, `sk-ant-...`).
    ("sk-", Shape::Run(base64url, 20)),
    // Google API keys.
    ("AIza", Shape::Run(base64url, 30)),
    // npm and PyPI tokens.
    ("npm_", Shape::Run(alnum, 30)),
    ("pypi-", Shape::Run(base64url, 50)),
];

static LITERALS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(PREFIXES.iter().map(|(lit, _)| lit))
        .expect("fixed literals always build")
});

/// Appends the secrets found in `v`.
/// The shortest text any shape can match: a JWT's 10-character header, a dot, a 2-character
/// payload and a dot. Shorter values (most column values) skip the literal search.
const MIN_LEN: usize = 14;

pub(super) fn find(v: &[u8], found: &mut Vec<Finding>) {
    if v.len() < MIN_LEN {
        return;
    }
    let mut pos = 0;
    while pos < v.len() {
        let Some(m) = LITERALS.find(Input::new(v).span(pos..v.len())) else {
            break;
        };
        let Some(&(lit, shape)) = PREFIXES.get(m.pattern().as_usize()) else {
            break;
        };
        match token_end(v, m.start(), lit.len(), shape) {
            Some(end) => {
                found.push(Finding {
                    start: m.start(),
                    end,
                    kind: Kind::Secret,
                });
                pos = end;
            }
            None => pos = m.start() + 1,
        }
    }
}

fn run(v: &[u8], from: usize, class: fn(u8) -> bool) -> usize {
    v.get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| class(b))
        .count()
}

/// Where the token starting at `start` ends, if it has the shape.
fn token_end(v: &[u8], start: usize, lit_len: usize, shape: Shape) -> Option<usize> {
    let prev = start.checked_sub(1).and_then(|i| v.get(i).copied());
    let body = start + lit_len;
    match shape {
        Shape::Run(class, min) => {
            // `task-...` is not `sk-...`: the literal must start a word.
            if prev.is_some_and(|b| base64url(b) || b == b'.') {
                return None;
            }
            let n = run(v, body, class);
            (n >= min).then_some(body + n)
        }
        Shape::Jwt => {
            if prev.is_some_and(|b| base64url(b) || b == b'.') {
                return None;
            }
            jwt_end(v, start)
        }
        Shape::Pem => pem_end(v, start, body),
    }
}

/// Base64url parts joined by dots: three for a JWS (the signature may be empty for `none`),
/// five for a JWE; all of it is masked.
fn jwt_end(v: &[u8], start: usize) -> Option<usize> {
    let header = run(v, start, base64url);
    if header < 10 || v.get(start + header) != Some(&b'.') {
        return None;
    }
    let p = start + header + 1;
    let payload = run(v, p, base64url);
    if payload < 2 || v.get(p + payload) != Some(&b'.') {
        return None;
    }
    let mut end = p + payload + 1;
    end += run(v, end, base64url);
    // More parts (JWE); a dot that ends a sentence is not one.
    while v.get(end) == Some(&b'.') {
        let part = run(v, end + 1, base64url);
        if part == 0 {
            break;
        }
        end += 1 + part;
    }
    Some(end)
}

/// `-----BEGIN <label>-----` where the label names a private key, through the matching
/// `-----END ...-----`; without an END the rest of the value is key material and is masked.
fn pem_end(v: &[u8], start: usize, label_start: usize) -> Option<usize> {
    const DASHES: &[u8] = b"-----";
    let rest = v.get(label_start..)?;
    let label_len = memchr::memmem::find(rest.get(..rest.len().min(64))?, DASHES)?;
    let label = rest.get(..label_len)?;
    if label.contains(&b'\n') || memchr::memmem::find(label, b"PRIVATE KEY").is_none() {
        return None;
    }
    let after_header = label_start + label_len + DASHES.len();
    let tail = v.get(after_header..)?;
    let Some(end_at) = memchr::memmem::find(tail, b"-----END ") else {
        return Some(v.len());
    };
    let end_label = after_header + end_at + b"-----END ".len();
    let close = v
        .get(end_label..)
        .and_then(|t| memchr::memmem::find(t.get(..t.len().min(64))?, DASHES))
        .map_or(v.len(), |n| end_label + n + DASHES.len());
    debug_assert!(close > start);
    Some(close)
}

#[cfg(test)]
mod min_len_tests {
    use super::*;

    #[test]
    fn no_shape_matches_anything_shorter_than_min_len() {
        for &(lit, shape) in PREFIXES {
            let shortest = match shape {
                Shape::Run(_, min) => lit.len() + min,
                Shape::Jwt => 14,
                Shape::Pem => lit.len() + "PRIVATE KEY-----".len(),
            };
            assert!(shortest >= MIN_LEN, "{lit}: {shortest}");
        }
        // The shortest JWT shape is found at exactly that length.
        let mut found = Vec::new();
        find(b"eyJhbGciOi.e1.", &mut found);
        assert_eq!(found.len(), 1);
    }
}
