//! A recorded session as a transcript: the protocol messages decoded with the PostgreSQL
//! codec and grouped by statement (its text and parameters, the policy's decision, and what
//! the client got back), rendered as psql-like text ([`text`]) or one JSON object per line.
//!
//! Recordings are read back from disk and may be damaged or hostile: a message that does not
//! decode becomes an "unreadable" line, never a panic, and text is escaped when printed.

mod build;
pub mod text;

use serde::Serialize;

pub use build::build;

/// A session's transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub header: Header,
    pub events: Vec<Event>,
}

/// Who, where and when.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub session: u64,
    /// The identity chain, root first, ending with the session's token.
    pub chain: Vec<Link>,
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub resource: String,
    pub client: String,
    pub tls: bool,
    /// RFC 3339 UTC.
    pub start: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub token: String,
    pub name: String,
}

/// One line of the JSON form; statements carry their results.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Statement(Statement),
    /// A notice that arrived while no statement was running.
    Notice {
        at_us: u64,
        notice: Notice,
    },
    /// A LISTEN notification.
    Notification {
        at_us: u64,
        channel: String,
        payload: String,
    },
    /// Bytes that did not decode as a protocol message.
    Unreadable {
        at_us: u64,
        from: &'static str,
        what: String,
    },
    /// A decision recorded with no statement to attach it to.
    Decision {
        at_us: u64,
        decision: Decision,
    },
    End {
        at_us: u64,
        reason: String,
    },
}

/// One statement the client sent, and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub at_us: u64,
    /// `simple`, `extended` or `function_call`.
    pub protocol: &'static str,
    /// The prepared statement's name (extended protocol, when named).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub sql: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub outputs: Vec<Output>,
}

/// A Bind parameter: text as text, binary as hex (`\x..`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub binary: bool,
    /// `None` is SQL NULL.
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub fingerprint: String,
}

/// An error or notice as the client received it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub severity: String,
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Something the client got back for a statement, in order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// A result set; binary values as hex.
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// CommandComplete.
    Complete {
        tag: String,
    },
    EmptyQuery,
    /// The portal stopped at Execute's row limit.
    Suspended,
    Error(Notice),
    Notice(Notice),
    /// COPY data in one direction (`to_client` for COPY TO, `from_client` for COPY FROM);
    /// binary COPY as hex.
    Copy {
        direction: &'static str,
        binary: bool,
        data: String,
    },
    /// The client aborted COPY FROM STDIN.
    CopyFail {
        reason: String,
    },
    /// A fast-path function call's result.
    FunctionResult {
        value: Option<String>,
    },
    /// Result bytes beyond `max_statement_bytes` that the recording did not keep.
    Truncated {
        rows: u64,
        bytes: u64,
    },
    Unreadable {
        from: &'static str,
        what: String,
    },
}

/// The transcript as JSON lines: the header, then one object per event.
pub fn to_json_lines(t: &Transcript, out: &mut String) -> Result<(), serde_json::Error> {
    #[derive(Serialize)]
    struct HeaderLine<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        header: &'a Header,
    }
    out.push_str(&serde_json::to_string(&HeaderLine {
        kind: "session",
        header: &t.header,
    })?);
    out.push('\n');
    for e in &t.events {
        out.push_str(&serde_json::to_string(e)?);
        out.push('\n');
    }
    Ok(())
}
