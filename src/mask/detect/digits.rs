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
    // One pass turns the value into a bit per byte (digit or not); the walk below then finds
    // digit runs with bit operations instead of reading bytes.
    let mut stack = [0u64; STACK_WORDS];
    let mut heap = Vec::new();
    let bits = DigitBits::new(v, &mut stack, &mut heap);
    // Too few digits in the whole value means nothing to look at.
    let need = if ssns { 9 } else { 13 };
    if bits.count() < need {
        return;
    }
    // Only a chain of at least 11 bytes (digit groups joined by single spaces or dashes) can
    // hold an SSN (11) or a card (13 or more); bit operations over whole blocks find where such
    // chains start, and only those are walked.
    let mut chains = [0u64; STACK_WORDS];
    let mut chains_heap = Vec::new();
    for start in bits.long_chain_starts(v, &mut chains, &mut chains_heap) {
        let mut g = bits.group_at(start);
        let mut total = g.len();
        let mut ssn_shape = false;
        // The group before `g` and whether a dash joins it to `g`.
        let (mut before_len, mut before_dash) = (0, false);
        loop {
            let sep = byte(v, g.end);
            if !matches!(sep, Some(b' ' | b'-')) || !bits.is_digit(g.end + 1) {
                break;
            }
            let n = bits.group_at(g.end + 1);
            let dash = sep == Some(b'-');
            ssn_shape |= before_dash && before_len == 3 && g.len() == 2 && dash && n.len() == 4;
            (before_len, before_dash) = (g.len(), dash);
            total += n.len();
            g = n;
        }
        if (cards && total >= 13) || (ssns && ssn_shape) {
            find_in_chain(v, start, cards, ssns, found);
        }
    }
}

/// One bit per byte of block `w` of `v`: set where the byte is a space or a dash.
fn separators(v: &[u8], w: usize) -> u64 {
    let Some(block) = v.get(w * 64..) else {
        return 0;
    };
    let block = &block[..block.len().min(64)];
    let mut bits = 0u64;
    let mut eights = block.chunks_exact(8);
    for (k, chunk) in eights.by_ref().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found = (byte_mask(word, b' ') | byte_mask(word, b'-')) & HIGHS;
        bits |= pack(found) << (8 * k);
    }
    let done = block.len() - eights.remainder().len();
    for (k, &b) in eights.remainder().iter().enumerate() {
        bits |= u64::from(b == b' ' || b == b'-') << (done + k);
    }
    bits
}

/// Bit 7 of each byte of `word` that equals `c`, exactly per byte (no carry crosses bytes).
fn byte_mask(word: u64, c: u8) -> u64 {
    let y = word ^ (ONES * u64::from(c));
    !((((y & !HIGHS) + ONES * 0x7F) | y) & HIGHS) & HIGHS
}

/// Bit 7 of each byte gathered into one byte: byte k to bit k.
fn pack(high_bits: u64) -> u64 {
    ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Values up to this many 64-byte blocks keep their digit bits on the stack.
const STACK_WORDS: usize = 64;

/// One bit per byte of a value: set where the byte is an ASCII digit.
struct DigitBits<'a> {
    words: &'a [u64],
    len: usize,
}

impl<'a> DigitBits<'a> {
    fn new(v: &[u8], stack: &'a mut [u64; STACK_WORDS], heap: &'a mut Vec<u64>) -> Self {
        let n = v.len().div_ceil(64);
        let words: &'a mut [u64] = if n <= STACK_WORDS {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            heap
        };
        for (w, block) in words.iter_mut().zip(v.chunks(64)) {
            let mut bits = 0u64;
            let mut eights = block.chunks_exact(8);
            for (k, chunk) in eights.by_ref().enumerate() {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let digits = !non_digit_mask(u64::from_le_bytes(word)) & HIGHS;
                bits |= pack(digits) << (8 * k);
            }
            let done = block.len() - eights.remainder().len();
            for (k, &b) in eights.remainder().iter().enumerate() {
                bits |= u64::from(is_digit(b)) << (done + k);
            }
            *w = bits;
        }
        DigitBits {
            words,
            len: v.len(),
        }
    }

    fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn is_digit(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// The first position at or after `from` whose bit is `set`; `len` if none.
    fn next(&self, from: usize, set: bool) -> usize {
        let mut w = from / 64;
        let flip = if set { 0 } else { u64::MAX };
        let Some(&first) = self.words.get(w) else {
            return self.len;
        };
        let mut m = (first ^ flip) & (u64::MAX << (from % 64));
        loop {
            if m != 0 {
                return (w * 64 + m.trailing_zeros() as usize).min(self.len);
            }
            w += 1;
            match self.words.get(w) {
                Some(&word) => m = word ^ flip,
                None => return self.len,
            }
        }
    }

    #[cfg(test)]
    fn next_digit(&self, from: usize) -> Option<usize> {
        let at = self.next(from, true);
        (at < self.len).then_some(at)
    }

    /// Where the chains of at least 11 bytes start, in order. A chain is a maximal run of
    /// digits and of single spaces or dashes with a digit on each side.
    fn long_chain_starts<'s>(
        &'s self,
        v: &'s [u8],
        chains: &'s mut [u64; STACK_WORDS],
        heap: &'s mut Vec<u64>,
    ) -> impl Iterator<Item = usize> + 's {
        let digits = |w: usize| self.words.get(w).copied().unwrap_or(0);
        // The chain bits of each block: its digits and its joining separators.
        let n = self.words.len();
        let table: &'s mut [u64] = if n <= STACK_WORDS {
            &mut chains[..n]
        } else {
            heap.resize(n, 0);
            heap
        };
        for (w, slot) in table.iter_mut().enumerate() {
            let d = digits(w);
            let before = (d << 1) | w.checked_sub(1).map_or(0, |p| digits(p) >> 63);
            let after = (d >> 1) | (digits(w + 1) << 63);
            *slot = d | (separators(v, w) & before & after);
        }
        let table: &'s [u64] = table;
        let chain = move |w: usize| table.get(w).copied().unwrap_or(0);
        (0..self.words.len()).flat_map(move |w| {
            let here = chain(w);
            let window = u128::from(here) | (u128::from(chain(w + 1)) << 64);
            // Bit p set: bits p..p+11 of the window are all set.
            let two = window & (window >> 1);
            let four = two & (two >> 2);
            let eight = four & (four >> 4);
            let eleven = eight & (window >> 8) & (window >> 9) & (window >> 10);
            let prev_last = w.checked_sub(1).map_or(0, |p| chain(p) >> 63);
            let run_starts = here & !((here << 1) | prev_last);
            let mut starts = (eleven as u64) & run_starts;
            std::iter::from_fn(move || {
                if starts == 0 {
                    return None;
                }
                let bit = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                Some(w * 64 + bit)
            })
        })
    }

    /// The digit run starting at `start` (a digit).
    fn group_at(&self, start: usize) -> Group {
        Group {
            start,
            end: self.next(start, false),
        }
    }
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
        let g = group_at(v, 2);
        assert_eq!((g.start, g.end), (2, 13));
        let g = group_at(v, 15);
        assert_eq!((g.start, g.end), (15, 16));
    }

    #[test]
    fn digit_bits_agree_with_the_bytes_across_blocks_and_tails() {
        let mut v = Vec::new();
        for i in 0..300u32 {
            v.push(if i % 7 < 3 || (60..140).contains(&i) {
                b'0' + (i % 10) as u8
            } else {
                b'x'
            });
        }
        for len in [0, 1, 7, 8, 63, 64, 65, 130, 300] {
            let v = &v[..len];
            let mut stack = [0u64; STACK_WORDS];
            let mut heap = Vec::new();
            let bits = DigitBits::new(v, &mut stack, &mut heap);
            assert_eq!(
                bits.count(),
                v.iter().filter(|b| b.is_ascii_digit()).count()
            );
            for i in 0..len + 2 {
                assert_eq!(bits.is_digit(i), v.get(i).is_some_and(u8::is_ascii_digit));
                let next = (i..len).find(|&j| v[j].is_ascii_digit());
                assert_eq!(bits.next_digit(i), next, "len {len} from {i}");
                if next == Some(i) {
                    let end = (i..len).find(|&j| !v[j].is_ascii_digit()).unwrap_or(len);
                    assert_eq!(bits.group_at(i).end, end, "len {len} at {i}");
                }
            }
        }
        // Past the stack's blocks the bits live on the heap.
        let long = vec![b'5'; STACK_WORDS * 64 + 10];
        let mut stack = [0u64; STACK_WORDS];
        let mut heap = Vec::new();
        let bits = DigitBits::new(&long, &mut stack, &mut heap);
        assert_eq!(bits.count(), long.len());
        assert_eq!(bits.group_at(0).end, long.len());
    }

    #[test]
    fn long_chains_are_found_wherever_they_start_and_short_ones_never() {
        let text = b"id 1048576, at 2024-05-01 12:34, call +44 20 7946 0958, ssn 078-05-1120, \
                     card 4111 1111 1111 1111 and 12 34 5.";
        let mut padded = vec![b'x'; 50];
        padded.extend_from_slice(text);
        for v in [&text[..], &padded[..]] {
            let mut stack = [0u64; STACK_WORDS];
            let mut heap = Vec::new();
            let bits = DigitBits::new(v, &mut stack, &mut heap);
            let (mut chains, mut chains_heap) = ([0u64; STACK_WORDS], Vec::new());
            let starts: Vec<&[u8]> = bits
                .long_chain_starts(v, &mut chains, &mut chains_heap)
                .map(|s| &v[s..(s + 11).min(v.len())])
                .collect();
            assert_eq!(
                starts,
                [
                    &b"2024-05-01 "[..],
                    b"44 20 7946 ",
                    b"078-05-1120",
                    b"4111 1111 1"
                ],
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        // A chain crossing a block boundary is found from its start.
        let mut v = vec![b'x'; 58];
        v.extend_from_slice(b" 4111 1111 1111 1111 ");
        let mut stack = [0u64; STACK_WORDS];
        let mut heap = Vec::new();
        let bits = DigitBits::new(&v, &mut stack, &mut heap);
        let (mut chains, mut chains_heap) = ([0u64; STACK_WORDS], Vec::new());
        let starts: Vec<usize> = bits
            .long_chain_starts(&v, &mut chains, &mut chains_heap)
            .collect();
        assert_eq!(starts, [59]);
    }
}
