//! The table `sluice sessions` prints: one line per live session, oldest first, with the
//! identity chain that opened it.

use std::time::{SystemTime, UNIX_EPOCH};

use super::api::SessionEntry;
use crate::identity::{escape_controls, format_span};

const HEADERS: [&str; 10] = [
    "session", "shard", "identity", "roles", "resource", "user", "client", "age", "stmts", "token",
];

/// The table as text: a header line, then one line per session (oldest first). `identity` is
/// the chain from its root to the token's subject; `age` is measured at `now`. Every value is
/// escaped, since user names are whatever the client sent.
pub fn render(sessions: &[SessionEntry], now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut sorted: Vec<&SessionEntry> = sessions.iter().collect();
    sorted.sort_by(|a, b| {
        a.started_at
            .total_cmp(&b.started_at)
            .then(a.session.cmp(&b.session))
    });
    let mut rows: Vec<[String; 10]> = vec![HEADERS.map(str::to_owned)];
    for s in sorted {
        let identity: Vec<&str> = s
            .chain
            .iter()
            .map(|l| l.name.as_str())
            .chain([s.subject.as_str()])
            .collect();
        // A clock ahead of ours reads as age 0, not as a negative span.
        let age = (now - s.started_at).max(0.0) as u64;
        rows.push([
            s.session.to_string(),
            s.shard.to_string(),
            escape_controls(&identity.join(" > ")),
            escape_controls(&s.roles.join(",")),
            escape_controls(&s.resource),
            escape_controls(&s.user),
            escape_controls(&s.client),
            format_span(age),
            s.statements.to_string(),
            escape_controls(&s.token_id),
        ]);
    }
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c > 0 {
                line.push_str("  ");
            }
            // Numbers right-aligned, text left-aligned.
            if matches!(c, 0 | 1 | 8) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if sessions.is_empty() {
        out.push_str("(no live sessions)\n");
    }
    out
}

/// The list `sluice approvals list` prints: each pending request with who asks, where, for
/// how long, and the full statement; then recent outcomes. Every value is escaped.
pub fn approvals(answer: &super::api::ApprovalsResponse) -> String {
    use crate::approvals::{status_name, Status};
    let mut out = String::new();
    if answer.pending.is_empty() {
        out.push_str("(no statement awaits approval)\n");
    }
    for r in &answer.pending {
        let identity: Vec<&str> = r
            .chain
            .iter()
            .map(|l| l.name.as_str())
            .chain([r.subject.as_str()])
            .collect();
        out.push_str(&format!(
            "{}  waiting {}  {} on {} (session {}, rule {})\n    {}\n",
            escape_controls(&r.id),
            format_span(r.waiting_seconds as u64),
            escape_controls(&identity.join(" > ")),
            escape_controls(&r.resource),
            r.session,
            escape_controls(&r.rule),
            escape_controls(&r.statement),
        ));
    }
    if !answer.recent.is_empty() {
        out.push_str("recent:\n");
    }
    for r in &answer.recent {
        let by = match &r.status {
            Status::Approved { by, .. } | Status::Denied { by, .. } => format!(" by {by}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{}  {}{}  {} on {}: {}\n",
            escape_controls(&r.id),
            status_name(&r.status),
            escape_controls(&by),
            escape_controls(&r.subject),
            escape_controls(&r.resource),
            escape_controls(&r.fingerprint),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::identity::ChainLink;

    fn entry(session: u64, started_at: f64, user: &str) -> SessionEntry {
        SessionEntry {
            session,
            shard: 1,
            token_id: "J3".into(),
            subject: "report-subagent".into(),
            chain: vec![ChainLink {
                jti: "J1".into(),
                name: "ci-root".into(),
            }],
            roles: vec!["reader".into()],
            resource: "orders".into(),
            user: user.into(),
            client: "127.0.0.1:50412".into(),
            started_at,
            statements: 42,
        }
    }

    #[test]
    fn one_line_per_session_oldest_first() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let text = render(&[entry(7, 990.5, "bob"), entry(3, 748.0, "alice")], now);
        let expected = "\
session  shard  identity                   roles   resource  user   client           age     stmts  token
      3      1  ci-root > report-subagent  reader  orders    alice  127.0.0.1:50412  4m 12s     42  J3
      7      1  ci-root > report-subagent  reader  orders    bob    127.0.0.1:50412  9s         42  J3
";
        assert_eq!(text, expected);
    }

    #[test]
    fn escapes_what_clients_chose_and_says_when_empty() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let text = render(&[entry(1, 2_000.0, "x\u{1b}]0;owned\u{7}")], now);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("x\\u{1b}]0;owned\\u{7}"), "{text}");
        assert!(text.contains(" 0s "), "future start reads as age 0: {text}");
        assert!(render(&[], now).ends_with("(no live sessions)\n"));
    }
}
