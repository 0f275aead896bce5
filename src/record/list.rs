//! `sluice sessions --config`: the recorded sessions, from the index, newest last.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::index::{self, unix_micros, IndexEntry};
use crate::identity::escape_controls;

/// The sessions that started at or after `since` (all when `None`), oldest first, and the
/// number of index lines that could not be read.
pub fn recorded_sessions(
    dir: &Path,
    since: Option<SystemTime>,
) -> io::Result<(Vec<IndexEntry>, usize)> {
    let (mut entries, bad) = index::load(dir)?;
    if let Some(since) = since {
        let since = unix_micros(since);
        entries.retain(|e| e.unix_us >= since);
    }
    entries.sort_by_key(|e| (e.unix_us, e.session));
    Ok((entries, bad))
}

const HEADERS: [&str; 6] = [
    "session", "started", "identity", "resource", "client", "tls",
];

/// The table: a header line, then one line per session. Every value is escaped: subjects and
/// user names are whatever a token or a client said.
pub fn render(entries: &[IndexEntry]) -> String {
    let mut rows: Vec<[String; 6]> = vec![HEADERS.map(str::to_owned)];
    for e in entries {
        let chain: Vec<&str> = e.chain.iter().map(|l| l.name.as_str()).collect();
        rows.push([
            e.session.to_string(),
            escape_controls(&e.time),
            escape_controls(&chain.join(" > ")),
            escape_controls(&e.resource),
            escape_controls(&e.client),
            if e.tls { "yes" } else { "no" }.to_owned(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
