//! Value detectors: find card numbers, emails, US SSNs and secret-looking tokens inside any
//! text value and replace each finding with a fixed mask.
//!
//! They are the net under the column rules: they catch sensitive data wherever it shows up in
//! its natural format (computed columns, JSON documents, error text, COPY lines), not a value an
//! agent has deliberately re-encoded; stopping derived expressions over masked columns is the
//! statement classifier's job. A clean value must cost almost nothing, so each detector starts
//! with a vectorised pre-scan (digit count, `memchr` for `@`, a packed multi-literal search for
//! token prefixes) and looks closer only where that pre-scan hits.

mod digits;
mod email;
mod secret;

#[cfg(test)]
mod tests;

/// Replacement for a card number; the last four digits are appended (as on a receipt).
pub const CARD_MASK: &[u8] = b"****-****-****-";
/// Replacement for an email address: neither the mailbox nor the domain survives.
pub const EMAIL_MASK: &[u8] = b"****@****";
/// Replacement for a US SSN: nothing survives (the last four digits are an authenticator).
pub const SSN_MASK: &[u8] = b"***-**-****";
/// Replacement for a secret token or private key, and for overlapping findings.
pub const SECRET_MASK: &[u8] = b"****";

/// Which detectors run. Every role with any masking turns all of them on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detectors {
    /// Card numbers: 13–19 digits, Luhn-valid, issued-by-a-network prefix.
    pub cards: bool,
    /// Email addresses.
    pub emails: bool,
    /// US social security numbers written `ddd-dd-dddd`.
    pub ssns: bool,
    /// JWTs, API keys with well-known prefixes, PEM private keys.
    pub secrets: bool,
}

/// What a finding was, which decides its replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Card,
    Email,
    Ssn,
    Secret,
}

/// A byte range of the value to replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Finding {
    start: usize,
    end: usize,
    kind: Kind,
}

impl Detectors {
    /// Every detector on.
    pub const ALL: Self = Self {
        cards: true,
        emails: true,
        ssns: true,
        secrets: true,
    };

    /// Every detector off.
    pub const NONE: Self = Self {
        cards: false,
        emails: false,
        ssns: false,
        secrets: false,
    };

    /// Whether any detector is on.
    pub fn any(&self) -> bool {
        self.cards || self.emails || self.ssns || self.secrets
    }

    /// Scans `value` (any bytes; text is expected but nothing is assumed) and, if something was
    /// found, appends the masked value to `out` and returns true. Returns false and leaves `out`
    /// untouched when the value is clean, so callers can forward the original bytes.
    pub fn mask(&self, value: &[u8], out: &mut Vec<u8>) -> bool {
        // Stays unallocated for a clean value.
        let mut found = Vec::new();
        if self.cards || self.ssns {
            digits::find(value, self.cards, self.ssns, &mut found);
        }
        if self.emails {
            email::find(value, &mut found);
        }
        if self.secrets {
            secret::find(value, &mut found);
        }
        if found.is_empty() {
            return false;
        }
        write_masked(value, &mut found, out);
        true
    }

    /// Whether [`Detectors::mask`] would change `value`.
    pub fn finds(&self, value: &[u8]) -> bool {
        let mut sink = Vec::new();
        self.mask(value, &mut sink)
    }
}

/// Copies `value` to `out` with every finding replaced; overlapping findings are merged into
/// one range replaced by [`SECRET_MASK`], so no part of either survives.
fn write_masked(value: &[u8], found: &mut [Finding], out: &mut Vec<u8>) {
    found.sort_unstable_by_key(|f| (f.start, f.end));
    out.reserve(value.len());
    let mut pos = 0;
    let mut i = 0;
    while let Some(&first) = found.get(i) {
        let mut cur = first;
        i += 1;
        while let Some(next) = found.get(i).filter(|n| n.start < cur.end) {
            cur = Finding {
                start: cur.start,
                end: cur.end.max(next.end),
                kind: Kind::Secret,
            };
            i += 1;
        }
        out.extend_from_slice(value.get(pos..cur.start).unwrap_or_default());
        let range = value.get(cur.start..cur.end).unwrap_or_default();
        match cur.kind {
            Kind::Card => {
                out.extend_from_slice(CARD_MASK);
                out.extend_from_slice(&last_four_digits(range));
            }
            Kind::Email => out.extend_from_slice(EMAIL_MASK),
            Kind::Ssn => out.extend_from_slice(SSN_MASK),
            Kind::Secret => out.extend_from_slice(SECRET_MASK),
        }
        pos = cur.end;
    }
    out.extend_from_slice(value.get(pos..).unwrap_or_default());
}

fn last_four_digits(range: &[u8]) -> [u8; 4] {
    let mut last = *b"****";
    let mut digits = range.iter().rev().filter(|b| b.is_ascii_digit());
    for slot in last.iter_mut().rev() {
        if let Some(&d) = digits.next() {
            *slot = d;
        }
    }
    last
}
