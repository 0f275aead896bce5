//! Word lists and name matching for the masked-use check: functions and catalog views that
//! expose column values behind the gateway's back, PostgreSQL's reserved words, and matching
//! of identifiers against the masked column names.

use crate::mask::glob_match;
use crate::sql::ident::{ident_name, MAX_IDENT_BYTES};
use crate::sql::lexer::{Token, TokenKind};
use std::borrow::Cow;

/// Functions that run SQL given as text or read whole tables, schemas or cursors by name, so
/// their results carry column values the gateway never sees as result columns. A trailing `*`
/// is a prefix pattern.
pub const QUERY_TEXT_FUNCTIONS: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    // Full-text search helpers whose argument is a query to run.
    "ts_stat",
    "ts_rewrite",
    // tablefunc and xml2 extensions: run a query string or read a table by name.
    "crosstab",
    "crosstab2",
    "crosstab3",
    "crosstab4",
    "connectby",
    "xpath_table",
    "dblink*",
];

/// Functions that turn a whole row into one value and can be called in attribute notation
/// (`c.to_jsonb` is `to_jsonb(c)`), which hides the whole-row reference behind what looks like
/// a column: every built-in taking `record`, `anyelement`, `"any"` or a compatible pseudo-type
/// as its only argument, plus `hstore`.
pub const ROW_FUNCTIONS: &[&str] = &[
    "array_agg",
    "concat",
    "hash_record",
    "hash_record_extended",
    "hstore",
    "json_agg",
    "json_build_array",
    "json_build_object",
    "jsonb_agg",
    "jsonb_build_array",
    "jsonb_build_object",
    "num_nonnulls",
    "num_nulls",
    "pg_column_size",
    "quote_literal",
    "quote_nullable",
    "record_out",
    "record_send",
    "row_to_json",
    "to_json",
    "to_jsonb",
];

/// Catalog relations holding sampled column values (most common values, histogram bounds).
pub const STATISTICS_RELATIONS: &[&str] = &[
    "pg_statistic",
    "pg_statistic_ext_data",
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
];

/// Relations a rule, trigger or `ON CONFLICT` clause can name without declaring them.
pub(super) const IMPLICIT_RELATIONS: &[&str] = &["new", "old", "excluded"];

/// PostgreSQL's reserved and type/function-name keywords: as unquoted words they can never be
/// a column reference or a relation alias (the grammar's `ColId` excludes them).
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// Words after which the next name declares a relation or alias.
const DECLARING: &[&str] = &[
    "from",
    "join",
    "into",
    "only",
    "using",
    "table",
    "with",
    "recursive",
    "as",
    "lateral",
    "update",
];

/// What a word is, as bit flags (one word can be on several lists).
pub(super) mod flag {
    /// Reserved or type/function-name keyword.
    pub const RESERVED: u8 = 1;
    /// A relation name or alias follows it.
    pub const DECLARES: u8 = 2;
    /// On [`super::QUERY_TEXT_FUNCTIONS`].
    pub const QUERY_TEXT: u8 = 4;
    /// On [`super::STATISTICS_RELATIONS`].
    pub const STATISTICS: u8 = 8;
    /// On [`super::ROW_FUNCTIONS`].
    pub const ROW_FUNCTION: u8 = 16;
    /// An implicitly declared relation (`new`, `old`, `excluded`).
    pub const IMPLICIT: u8 = 32;
}

/// Longest word in any list.
const MAX_WORD: usize = 32;

/// Every listed word bucketed by length and first letter, so a lookup compares one or two
/// strings instead of walking a hundred (a `match` on strings compares arm by arm).
struct Table {
    buckets: Vec<Vec<(&'static str, u8)>>,
}

fn bucket(w: &[u8]) -> usize {
    w.len() * 32 + (w[0] & 31) as usize
}

/// Every word list and the flag it sets.
const LISTS: [(&[&str], u8); 6] = [
    (RESERVED, flag::RESERVED),
    (DECLARING, flag::DECLARES),
    (QUERY_TEXT_FUNCTIONS, flag::QUERY_TEXT),
    (STATISTICS_RELATIONS, flag::STATISTICS),
    (ROW_FUNCTIONS, flag::ROW_FUNCTION),
    (IMPLICIT_RELATIONS, flag::IMPLICIT),
];

fn table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut buckets: Vec<Vec<(&'static str, u8)>> = vec![Vec::new(); (MAX_WORD + 1) * 32];
        for (list, f) in LISTS {
            // Prefix patterns (`dblink*`) are checked apart, in `flags`.
            for w in list.iter().filter(|w| !w.ends_with('*')) {
                let b = &mut buckets[bucket(w.as_bytes())];
                match b.iter_mut().find(|(x, _)| x == w) {
                    Some((_, flags)) => *flags |= f,
                    None => b.push((w, f)),
                }
            }
        }
        Table { buckets }
    })
}

/// The flags of a word given in lower case.
pub(super) fn flags(lower: &[u8]) -> u8 {
    let b = lower;
    let mut f = 0;
    if b.starts_with(b"dblink") {
        f |= flag::QUERY_TEXT;
    }
    if b.is_empty() || b.len() > MAX_WORD {
        return f;
    }
    for (w, wf) in &table().buckets[bucket(b)] {
        if w.as_bytes() == b {
            f |= wf;
        }
    }
    f
}

/// Longest word a [`key`] holds.
const KEY_BYTES: usize = 16;

/// A case-folded key of a word of 1 to 16 bytes: every byte with bit 5 set, bytes past the
/// word zero. For the bytes an unquoted word can hold (letters, digits, `_`, `$`, non-ASCII)
/// the fold maps two bytes to one value only for an upper- and lower-case letter, so two
/// words have equal keys exactly when they are equal ASCII case-insensitively.
pub(super) const fn key(kw: &str) -> u128 {
    let b = kw.as_bytes();
    assert!(!b.is_empty() && b.len() <= KEY_BYTES);
    let mut k = 0u128;
    let mut i = 0;
    while i < b.len() {
        k |= ((b[i] | 0x20) as u128) << (8 * i);
        i += 1;
    }
    k
}

/// The [`key`] of an unquoted word token of at most 16 bytes; 0 for any other token.
#[inline]
pub(super) fn token_key(src: &str, t: &Token) -> u128 {
    let len = t.len();
    if !matches!(t.kind, TokenKind::Word) || len == 0 || len > KEY_BYTES {
        return 0;
    }
    let b = src.as_bytes();
    let start = t.start();
    let raw = match b.get(start..start + KEY_BYTES) {
        Some(w) => {
            let mut a = [0u8; KEY_BYTES];
            a.copy_from_slice(w);
            u128::from_le_bytes(a)
        }
        None => {
            let mut a = [0u8; KEY_BYTES];
            a[..len].copy_from_slice(&b[start..start + len]);
            u128::from_le_bytes(a)
        }
    };
    (raw | 0x2020_2020_2020_2020_2020_2020_2020_2020) & KEY_MASKS[len]
}

/// `KEY_MASKS[n]` keeps the low `n` bytes (a load is cheaper than a 128-bit shift).
static KEY_MASKS: [u128; KEY_BYTES + 1] = {
    let mut m = [0u128; KEY_BYTES + 1];
    let mut n = 1;
    while n <= KEY_BYTES {
        m[n] = u128::MAX >> (8 * (KEY_BYTES - n));
        n += 1;
    }
    m
};

/// Slots of the keyed table (a power of two, about four times the listed words).
const SLOTS: usize = 512;

/// The listed words of at most [`KEY_BYTES`] bytes by key, open addressing, built at compile
/// time: a word's flags cost one multiply and, nearly always, one comparison.
struct Keyed {
    keys: [u128; SLOTS],
    flags: [u8; SLOTS],
}

const fn slot(k: u128) -> usize {
    let x = (k as u64) ^ ((k >> 64) as u64).rotate_left(29);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 55) as usize & (SLOTS - 1)
}

static KEYED: Keyed = {
    let mut t = Keyed {
        keys: [0; SLOTS],
        flags: [0; SLOTS],
    };
    let lists = LISTS;
    let mut l = 0;
    while l < lists.len() {
        let (list, f) = lists[l];
        let mut i = 0;
        while i < list.len() {
            let w = list[i].as_bytes();
            // Prefix patterns (`dblink*`) are checked apart; long words go to `table`.
            if w.len() <= KEY_BYTES && w[w.len() - 1] != b'*' {
                let k = key(list[i]);
                let mut s = slot(k);
                while t.keys[s] != 0 && t.keys[s] != k {
                    s = (s + 1) & (SLOTS - 1);
                }
                t.keys[s] = k;
                t.flags[s] |= f;
            }
            i += 1;
        }
        l += 1;
    }
    t
};

/// The flags of an unquoted word token, `wkey` being its [`token_key`]. Same as [`flags`] of
/// its text in lower case, without folding it: most words are ruled out by their length or
/// by one probe of the keyed table.
#[inline]
pub(super) fn word_flags(src: &str, t: &Token, wkey: u128) -> u8 {
    const DBLINK: u128 = key("dblink");
    let len = t.len();
    // No listed word has one letter.
    if len < 2 {
        return 0;
    }
    if len <= KEY_BYTES {
        let mut f = 0;
        if len >= 6 && wkey & 0xffff_ffff_ffff == DBLINK {
            f |= flag::QUERY_TEXT;
        }
        let table = &KEYED;
        let mut s = slot(wkey);
        loop {
            let k = table.keys[s];
            if k == wkey {
                return f | table.flags[s];
            }
            if k == 0 {
                return f;
            }
            s = (s + 1) & (SLOTS - 1);
        }
    }
    let text = t.text(src).as_bytes();
    let mut f = 0;
    if text[..6].eq_ignore_ascii_case(b"dblink") {
        f |= flag::QUERY_TEXT;
    }
    if len > MAX_WORD {
        return f;
    }
    for (w, wf) in &table().buckets[bucket(text)] {
        if w.as_bytes().eq_ignore_ascii_case(text) {
            f |= wf;
        }
    }
    f
}

/// The flags of a name in any case.
pub(super) fn flags_any_case(name: &str) -> u8 {
    if name.len() > MAX_WORD {
        return flags(name.to_ascii_lowercase().as_bytes());
    }
    let mut buf = [0u8; MAX_WORD];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    flags(lower)
}

/// Whether `name` is in `list` (exact, or by a `prefix*` entry), ASCII case-insensitively.
pub(super) fn in_list(list: &[&str], name: &str) -> bool {
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => {
            name.len() >= prefix.len()
                && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        }
        None => p.eq_ignore_ascii_case(name),
    })
}

/// The name an identifier token denotes (case folded, escapes decoded, truncated like the
/// server does). `None` for other tokens; an undecodable `U&` name (which the server rejects)
/// is kept as its raw text so it still compares to something.
#[inline]
pub(super) fn name_of<'a>(src: &'a str, tokens: &[Token], i: usize) -> Option<Cow<'a, str>> {
    let t = tokens.get(i)?;
    match t.kind {
        TokenKind::Word => {
            // Compared ASCII case-insensitively everywhere, so no need to fold (or allocate).
            let text = t.text(src);
            Some(Cow::Borrowed(truncate(text)))
        }
        TokenKind::QuotedIdent | TokenKind::UnicodeIdent => Some(quoted_name(src, tokens, i)),
        _ => None,
    }
}

/// [`name_of`] a quoted identifier: rare, kept out of line.
#[inline(never)]
fn quoted_name<'a>(src: &'a str, tokens: &[Token], i: usize) -> Cow<'a, str> {
    ident_name(src, tokens, i).unwrap_or(Cow::Borrowed(tokens[i].text(src)))
}

/// Whether the identifier tokens at `a` and `b` denote the same name (ASCII case-insensitive,
/// like [`name_of`] compared with `eq_ignore_ascii_case`).
#[inline]
pub(super) fn same_name(src: &str, tokens: &[Token], a: usize, b: usize) -> bool {
    let (ta, tb) = (&tokens[a], &tokens[b]);
    if matches!(ta.kind, TokenKind::Word)
        && matches!(tb.kind, TokenKind::Word)
        && ta.len() <= MAX_IDENT_BYTES
        && tb.len() <= MAX_IDENT_BYTES
    {
        // Neither is truncated: equal names have equal lengths.
        return ta.len() == tb.len()
            && ta
                .text(src)
                .as_bytes()
                .eq_ignore_ascii_case(tb.text(src).as_bytes());
    }
    match (name_of(src, tokens, a), name_of(src, tokens, b)) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y),
        _ => false,
    }
}

fn truncate(name: &str) -> &str {
    if name.len() <= MAX_IDENT_BYTES {
        return name;
    }
    let mut end = MAX_IDENT_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The masked column names of one check, with their glob-ness worked out once.
pub(super) struct Masked<'a> {
    names: &'a [String],
    /// Bit `k` set: entry `k` is a glob (entries past 64 are looked at each time).
    globs: u64,
    /// Bit `n` set: some name could match a name of `n` bytes (every bit when a glob or a
    /// name of 64 bytes or more is in the set), so most names are ruled out by their length.
    lens: u64,
}

impl<'a> Masked<'a> {
    pub(super) fn new(names: &'a [String]) -> Self {
        let globs = names
            .iter()
            .take(64)
            .enumerate()
            .filter(|(_, m)| is_glob(m))
            .fold(0u64, |acc, (k, _)| acc | 1 << k);
        let lens = names.iter().fold(0u64, |acc, m| match m.len() {
            n if n < 64 && !is_glob(m) => acc | 1 << n,
            _ => u64::MAX,
        });
        Masked { names, globs, lens }
    }

    /// The names as given.
    pub(super) fn names(&self) -> &'a [String] {
        self.names
    }

    /// Whether `name` is one of the masked columns. Matching ignores ASCII case, like column
    /// rules do: masking (and refusing) a differently-cased twin is the safe mistake.
    #[inline]
    pub(super) fn matches(&self, name: &str) -> bool {
        if self.lens != u64::MAX && (name.len() >= 64 || self.lens & (1 << name.len()) == 0) {
            return false;
        }
        self.compare(name)
    }

    fn compare(&self, name: &str) -> bool {
        self.names.iter().enumerate().any(|(k, m)| {
            let glob = if k < 64 {
                self.globs & (1 << k) != 0
            } else {
                is_glob(m)
            };
            if glob {
                glob_match(m.as_bytes(), name.as_bytes())
            } else {
                m.eq_ignore_ascii_case(name)
            }
        })
    }
}

fn is_glob(m: &str) -> bool {
    m.bytes().any(|b| b == b'*' || b == b'?')
}

/// [`Masked::matches`] for the slow path.
pub(super) fn is_masked(masked: &[String], name: &str) -> bool {
    Masked::new(masked).matches(name)
}
