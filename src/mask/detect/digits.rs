//! Card numbers and US SSNs: runs of digit groups joined by single spaces or dashes.
//!
//! A value is split into chains of digit groups (`4111 1111-1111 1111`); candidates are whole
//! groups, so a match never starts or ends inside a longer digit run. Cards are one group of
//! 13–19 digits, or a first group of four followed by groups of three to six (the printed
//! layouts 4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3), starting like a number issued by the big networks
//! (2221–2720, 3, 4, 5, 6) and Luhn-valid. That prefix rule is what keeps compact timestamps
//! (`20240501123456`) and epoch milliseconds (`1714567890123`) out; numbers starting 0, 1, 7, 8
//! or 9 are not cards here.
//!
//! SSNs are only the dashed `ddd-dd-dddd` form with the numbers the SSA never issues left out
//! (area 000, 666, 900–999; group 00; serial 0000). Nine bare digits are not matched: they are
//! as often zip+4 codes, phone numbers or ids, and a column that stores SSNs that way is covered
//! by a column rule instead.

use super::{Finding, Kind};

#[derive(Clone, Copy, Debug)]
struct Group {
    start: usize,
    end: usize,
}

impl Group {
    fn len(self) -> usize {
        self.end - self.start
    }
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn byte(v: &[u8], i: usize) -> Option<u8> {
    v.get(i).copied()
}

/// The digit run starting at `start` (a digit), eight bytes at a time: a run ends where the
/// first non-digit is, found with one mask instead of a branch per byte.
fn group_at(v: &[u8], start: usize) -> Group {
    let mut end = start;
    while let Some(word) = word_at(v, end) {
        let non_digits = non_digit_mask(word);
        if non_digits != 0 {
            end += (non_digits.trailing_zeros() / 8) as usize;
            return Group { start, end };
        }
        end += 8;
    }
    while byte(v, end).is_some_and(is_digit) {
        end += 1;
    }
    Group { start, end }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `i`, little-endian, if there are eight.
fn word_at(v: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = v.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The high bit of each byte of `word` that is not an ASCII digit, exactly per byte: XOR maps
/// the digits to 0..=9; adding 118 to the low seven bits sets bit 7 of a byte from 10 up,
/// without a carry into the next byte; bytes from 128 up keep their own bit 7.
fn non_digit_mask(word: u64) -> u64 {
    let x = word ^ (ONES * u64::from(b'0'));
    (((x & !HIGHS) + ONES * 118) | x) & HIGHS
}

/// The next group of the chain: one separator, then a digit.
fn next_in_chain(v: &[u8], g: Group) -> Option<Group> {
    let sep = byte(v, g.end)?;
    if (sep == b' ' || sep == b'-') && byte(v, g.end + 1).is_some_and(is_digit) {
        Some(group_at(v, g.end + 1))
    } else {
        None
    }
}

/// Appends the cards and SSNs found in `v`.
pub(super) fn find(v: &[u8], cards: bool, ssns: bool, found: &mut Vec<Finding>) {
    // Vectorised pre-scan: too few digits in the whole value means nothing to look at.
    let need = if ssns { 9 } else { 13 };
    if count_digits(v) < need {
        return;
    }
    let mut i = 0;
    while let Some(start) = next_digit(v, i) {
        // Walk the chain cheaply; only a chain that could hold a card (13 digits or more) or
        // has the dashed 3-2-4 shape of an SSN is looked at closely. Timestamps, phone
        // numbers, UUIDs and prices are passed over here.
        let mut g = group_at(v, start);
        let mut total = g.len();
        let mut ssn_shape = false;
        // The group before `g` and whether a dash joins it to `g`.
        let (mut before_len, mut before_dash) = (0, false);
        while let Some(n) = next_in_chain(v, g) {
            let dash = byte(v, g.end) == Some(b'-');
            ssn_shape |= before_dash && before_len == 3 && g.len() == 2 && dash && n.len() == 4;
            (before_len, before_dash) = (g.len(), dash);
            total += n.len();
            g = n;
        }
        i = g.end;
        if (cards && total >= 13) || (ssns && ssn_shape) {
            find_in_chain(v, start, cards, ssns, found);
        }
    }
}

/// Digits in `v`, counted in byte-wide lanes (255 bytes cannot overflow a `u8` lane), which
/// vectorises far better than a `usize` count.
fn count_digits(v: &[u8]) -> usize {
    v.chunks(255)
        .map(|chunk| {
            let n: u8 = chunk
                .iter()
                .map(|&b| u8::from(b.wrapping_sub(b'0') < 10))
                .fold(0u8, u8::wrapping_add);
            usize::from(n)
        })
        .sum()
}

/// The first digit at or after `from`, eight bytes at a time.
fn next_digit(v: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(word) = word_at(v, i) {
        let digits = !non_digit_mask(word) & HIGHS;
        if digits != 0 {
            return Some(i + (digits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    v.get(i..)?.iter().position(|&b| is_digit(b)).map(|p| i + p)
}

/// Cards and SSNs in the chain of digit groups starting at `start`.
fn find_in_chain(v: &[u8], start: usize, cards: bool, ssns: bool, found: &mut Vec<Finding>) {
    let mut g = group_at(v, start);
    if cards && !ssns && after_decimal_point(v, g.start) {
        // A fractional part, not the start of a number.
        return;
    }
    let mut prev_sep = None;
    loop {
        let mut last = g;
        let card = (cards && !after_decimal_point(v, g.start))
            .then(|| card_window(v, g))
            .flatten();
        if let Some(end) = card {
            found.push(Finding {
                start: g.start,
                end: end.end,
                kind: Kind::Card,
            });
            last = end;
        } else if let Some(end) = ssns.then(|| ssn_window(v, g, prev_sep)).flatten() {
            found.push(Finding {
                start: g.start,
                end: end.end,
                kind: Kind::Ssn,
            });
            last = end;
        }
        match next_in_chain(v, last) {
            Some(n) => {
                prev_sep = byte(v, last.end);
                g = n;
            }
            None => return,
        }
    }
}

fn after_decimal_point(v: &[u8], start: usize) -> bool {
    start >= 2 && byte(v, start - 1) == Some(b'.') && byte(v, start - 2).is_some_and(is_digit)
}

/// The last group of the longest card number starting at group `g`, if any.
fn card_window(v: &[u8], g: Group) -> Option<Group> {
    if (13..=19).contains(&g.len()) {
        return is_card(v, g.start, g.end).then_some(g);
    }
    if g.len() != 4 {
        return None;
    }
    let mut best = None;
    let mut total = g.len();
    let mut cur = g;
    while let Some(n) = next_in_chain(v, cur) {
        if !(3..=6).contains(&n.len()) {
            break;
        }
        total += n.len();
        if total > 19 {
            break;
        }
        cur = n;
        if total >= 13 && is_card(v, g.start, cur.end) {
            best = Some(cur);
        }
    }
    best
}

/// Network prefix and Luhn check over the digits of `v[start..end]`.
fn is_card(v: &[u8], start: usize, end: usize) -> bool {
    let mut digits = [0u8; 19];
    let mut n = 0;
    for &b in v.get(start..end).unwrap_or_default() {
        if is_digit(b) {
            let Some(slot) = digits.get_mut(n) else {
                return false;
            };
            *slot = b - b'0';
            n += 1;
        }
    }
    let digits = &digits[..n];
    let prefix = match digits {
        [3..=6, ..] => true,
        [2, a, b, c, ..] => (2221..=2720)
            .contains(&(2000 + u32::from(*a) * 100 + u32::from(*b) * 10 + u32::from(*c))),
        _ => false,
    };
    prefix && luhn(digits)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// `ddd-dd-dddd` starting at group `g`, not glued by dashes to more digits on either side.
fn ssn_window(v: &[u8], g: Group, prev_sep: Option<u8>) -> Option<Group> {
    if g.len() != 3 || prev_sep == Some(b'-') {
        return None;
    }
    let g2 = next_in_chain(v, g).filter(|n| n.len() == 2 && byte(v, g.end) == Some(b'-'))?;
    let g3 = next_in_chain(v, g2).filter(|n| n.len() == 4 && byte(v, g2.end) == Some(b'-'))?;
    if next_in_chain(v, g3).is_some() && byte(v, g3.end) == Some(b'-') {
        return None;
    }
    let num = |g: Group| {
        v.get(g.start..g.end)
            .unwrap_or_default()
            .iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
    };
    let (area, group, serial) = (num(g), num(g2), num(g3));
    let issued = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    issued.then_some(g3)
}

#[cfg(test)]
pub(super) fn luhn_for_tests(digits: &[u8]) -> bool {
    luhn(digits)
}

#[cfg(test)]
mod swar_tests {
    use super::*;

    #[test]
    fn the_masks_agree_with_a_byte_at_a_time_check_on_every_byte() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'5'; 8];
                bytes[pos] = b;
                let mask = non_digit_mask(u64::from_le_bytes(bytes));
                let expected = if b.is_ascii_digit() {
                    0
                } else {
                    0x80u64 << (8 * pos)
                };
                assert_eq!(mask, expected, "byte {b:#x} at {pos}");
            }
        }
        let v = b"ab12345678901x 9";
        assert_eq!(next_digit(v, 0), Some(2));
        assert_eq!(next_digit(v, 13), Some(15));
        assert_eq!(next_digit(b"abc", 0), None);
        let g = group_at(v, 2);
        assert_eq!((g.start, g.end), (2, 13));
        let g = group_at(v, 15);
        assert_eq!((g.start, g.end), (15, 16));
    }
}
