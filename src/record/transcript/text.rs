//! The transcript as psql-like text: a header, then each statement with its time offset,
//! text, parameters and decision, followed by what the client got back. Every recorded string
//! is escaped, so a recording cannot send control sequences to the reader's terminal.

use std::fmt::Write;

use super::{Event, Notice, Output, Statement, Transcript};
use crate::identity::escape_controls;

/// Appends the transcript to `out`.
pub fn render(t: &Transcript, out: &mut String) {
    let h = &t.header;
    let _ = writeln!(out, "session {}", h.session);
    let chain: Vec<String> = h
        .chain
        .iter()
        .map(|l| format!("{} ({})", esc(&l.name), esc(&l.token)))
        .collect();
    let _ = writeln!(out, "identity: {}", chain.join(" -> "));
    if !h.roles.is_empty() {
        let _ = writeln!(out, "roles:    {}", esc(&h.roles.join(", ")));
    }
    if let Some(user) = &h.user {
        let _ = writeln!(out, "user:     {}", esc(user));
    }
    let _ = writeln!(out, "resource: {}", esc(&h.resource));
    let _ = writeln!(
        out,
        "client:   {} ({})",
        esc(&h.client),
        if h.tls { "TLS" } else { "no TLS" }
    );
    let _ = writeln!(out, "started:  {}", esc(&h.start));
    for e in &t.events {
        out.push('\n');
        match e {
            Event::Statement(s) => statement(s, out),
            Event::Notice { at_us, notice: n } => {
                let _ = write!(out, "[{}] ", offset(*at_us));
                notice(n, out);
            }
            Event::Notification {
                at_us,
                channel,
                payload,
            } => {
                let _ = writeln!(
                    out,
                    "[{}] notification on {}: {}",
                    offset(*at_us),
                    esc(channel),
                    esc(payload)
                );
            }
            Event::Unreadable { at_us, from, what } => {
                let _ = writeln!(
                    out,
                    "[{}] unreadable message from the {from}: {}",
                    offset(*at_us),
                    esc(what)
                );
            }
            Event::Decision { at_us, decision: d } => {
                let _ = writeln!(
                    out,
                    "[{}] decision without a statement: {}{}",
                    offset(*at_us),
                    esc(&d.decision),
                    d.rule
                        .as_ref()
                        .map(|r| format!(" (rule {})", esc(r)))
                        .unwrap_or_default()
                );
            }
            Event::End { at_us, reason } => {
                let _ = writeln!(out, "[{}] session ended: {}", offset(*at_us), esc(reason));
            }
        }
    }
}

fn statement(s: &Statement, out: &mut String) {
    let name = s
        .name
        .as_ref()
        .map(|n| format!(" (prepared as {})", esc(n)))
        .unwrap_or_default();
    let _ = writeln!(out, "[{}] {} query{name}:", offset(s.at_us), s.protocol);
    for line in s.sql.lines() {
        let _ = writeln!(out, "  {}", esc(line));
    }
    for (i, p) in s.params.iter().enumerate() {
        match &p.value {
            None => {
                let _ = writeln!(out, "  ${} = NULL", i + 1);
            }
            Some(v) if p.binary => {
                let _ = writeln!(out, "  ${} = {} (binary)", i + 1, esc(v));
            }
            Some(v) => {
                let _ = writeln!(out, "  ${} = '{}'", i + 1, esc(&v.replace('\'', "''")));
            }
        }
    }
    match &s.decision {
        Some(d) => {
            let _ = write!(out, "  decision: {}", esc(&d.decision));
            if let Some(rule) = &d.rule {
                let _ = write!(out, " (rule {})", esc(rule));
            }
            out.push('\n');
        }
        None => out.push_str("  decision: (none recorded)\n"),
    }
    for o in &s.outputs {
        output(o, out);
    }
}

fn output(o: &Output, out: &mut String) {
    match o {
        Output::Rows { columns, rows } => table(columns, rows, out),
        Output::Complete { tag } => {
            let _ = writeln!(out, "{}", esc(tag));
        }
        Output::EmptyQuery => out.push_str("(empty query)\n"),
        Output::Suspended => out.push_str("(portal suspended at the row limit)\n"),
        Output::Error(n) | Output::Notice(n) => notice(n, out),
        Output::Copy {
            direction,
            binary,
            data,
        } => {
            let _ = writeln!(
                out,
                "COPY data {} the client{}:",
                if *direction == "to_client" {
                    "to"
                } else {
                    "from"
                },
                if *binary { " (binary, hex)" } else { "" }
            );
            for line in data.lines() {
                let _ = writeln!(out, "  {}", esc(line));
            }
        }
        Output::CopyFail { reason } => {
            let _ = writeln!(out, "COPY aborted by the client: {}", esc(reason));
        }
        Output::FunctionResult { value } => {
            let _ = writeln!(
                out,
                "function result: {}",
                value.as_deref().map_or("NULL".into(), esc)
            );
        }
        Output::Truncated { rows, bytes } => {
            let _ = writeln!(out, "({rows} rows, {bytes} bytes not kept)");
        }
        Output::Unreadable { from, what } => {
            let _ = writeln!(out, "unreadable message from the {from}: {}", esc(what));
        }
    }
}

fn notice(n: &Notice, out: &mut String) {
    let _ = writeln!(
        out,
        "{}:  {} {}",
        esc(&n.severity),
        esc(&n.code),
        esc(&n.message)
    );
    if let Some(d) = &n.detail {
        let _ = writeln!(out, "DETAIL:  {}", esc(d));
    }
    if let Some(h) = &n.hint {
        let _ = writeln!(out, "HINT:  {}", esc(h));
    }
}

/// A psql-style aligned table: ` a | b `, a rule, the rows, and the row count.
fn table(columns: &[String], rows: &[Vec<Option<String>>], out: &mut String) {
    let width = rows
        .iter()
        .map(Vec::len)
        .chain([columns.len()])
        .max()
        .unwrap_or(0);
    let cell = |v: Option<&Option<String>>| -> String {
        match v {
            Some(Some(s)) => esc(s),
            // psql prints NULL as nothing.
            _ => String::new(),
        }
    };
    let header: Vec<String> = (0..width)
        .map(|i| {
            columns
                .get(i)
                .map_or_else(|| format!("?column{}?", i + 1), |c| esc(c))
        })
        .collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| (0..width).map(|i| cell(r.get(i))).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String], out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        let _ = writeln!(out, "{}", parts.join("|").trim_end());
    };
    line(&header, out);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    let _ = writeln!(out, "{}", rule.join("+"));
    for r in &body {
        line(r, out);
    }
    let _ = writeln!(
        out,
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
}

/// Seconds since the session started, to the microsecond.
fn offset(at_us: u64) -> String {
    format!("+{}.{:06}s", at_us / 1_000_000, at_us % 1_000_000)
}

fn esc(s: &str) -> String {
    escape_controls(s)
}
