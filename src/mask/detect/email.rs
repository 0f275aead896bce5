//! Email addresses: `local@domain.tld`, found from each `@`.
//!
//! The local part is the practical set (letters, digits, `.`, `+`, `_`, `%`, `-`, and any
//! non-ASCII byte for internationalised addresses); the rarer RFC 5322 characters would glue
//! the address to the text around it (`email='ann@x.org'`). The domain needs at least one dot
//! and a top-level label of two or more characters starting with a letter. Scans stop at the
//! neighbouring `@`, so the work stays linear however many `@` a value holds.

use super::{Finding, Kind};

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'_' | b'%' | b'-') || b >= 0x80
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b >= 0x80
}

/// Appends the email addresses found in `v`.
pub(super) fn find(v: &[u8], found: &mut Vec<Finding>) {
    for at in memchr::memchr_iter(b'@', v) {
        if let Some((start, end)) = address_around(v, at) {
            found.push(Finding {
                start,
                end,
                kind: Kind::Email,
            });
        }
    }
}

fn address_around(v: &[u8], at: usize) -> Option<(usize, usize)> {
    let before = v.get(..at)?;
    let local_len = before
        .iter()
        .rev()
        .take(MAX_LOCAL + 1)
        .take_while(|&&b| is_local(b))
        .count();
    let mut start = at - local_len;
    while v.get(start) == Some(&b'.') {
        start += 1;
    }
    if start == at {
        return None;
    }
    let after = v.get(at + 1..)?;
    let mut domain_len = after
        .iter()
        .take(MAX_DOMAIN + 1)
        .take_while(|&&b| is_domain(b))
        .count();
    // A sentence may end right after the address.
    while domain_len > 0 && matches!(after.get(domain_len - 1), Some(b'.' | b'-')) {
        domain_len -= 1;
    }
    let domain = after.get(..domain_len)?;
    let (labels, tld) = match memchr::memrchr(b'.', domain) {
        Some(dot) => (domain.get(..dot)?, domain.get(dot + 1..)?),
        None => return None,
    };
    let tld_ok = tld.len() >= 2
        && tld
            .first()
            .is_some_and(|&b| b.is_ascii_alphabetic() || b >= 0x80);
    let labels_ok = !labels.is_empty() && labels.split(|&b| b == b'.').all(|l| !l.is_empty());
    (tld_ok && labels_ok).then_some((start, at + 1 + domain_len))
}
