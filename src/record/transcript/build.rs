//! From recorded entries to a [`Transcript`]: the client's and the server's byte streams are
//! framed with the codec, and every server message is matched to the client message it
//! answers, the way a PostgreSQL server answers them (in order; after an error in an
//! extended-protocol pipeline, nothing until Sync).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::time::Duration;

use bytes::BytesMut;

use super::{Decision, Event, Header, Link, Notice, Output, Param, Statement, Transcript};
use crate::audit::rfc3339_micros;
use crate::codec::pg::{
    self, decode_frame, tag, Bind, CommandComplete, CopyData, CopyResponse, DataRow, Describe,
    ErrorNotice, Execute, Frame, NotificationResponse, Parse, Query, RowDescription, Target,
    FORMAT_BINARY,
};
use crate::record::format::Entry;
use crate::record::reader::SessionRecording;

/// The largest message the transcript frames; anything claiming more is unreadable.
const MAX_MESSAGE: usize = 1 << 30;

/// Builds the transcript of a session read back from disk.
pub fn build(rec: &SessionRecording) -> Transcript {
    let mut b = Builder::default();
    for entry in &rec.entries {
        let at_us = micros(entry.at());
        match entry {
            Entry::Start(_) => {}
            Entry::FromClient { bytes, .. } => {
                b.fe.extend_from_slice(bytes);
                b.client_frames(at_us);
            }
            Entry::ToClient { bytes, .. } => {
                b.be.extend_from_slice(bytes);
                b.server_frames(at_us);
            }
            Entry::Decision {
                fingerprint,
                decision,
                rule,
                ..
            } => b.decision(
                at_us,
                Decision {
                    decision: decision.clone(),
                    rule: rule.clone(),
                    fingerprint: fingerprint.clone(),
                },
            ),
            Entry::Truncated { bytes, rows, .. } => b.output(Output::Truncated {
                rows: *rows,
                bytes: *bytes,
            }),
            Entry::End { reason, .. } => {
                b.events.push(Event::End {
                    at_us,
                    reason: reason.clone(),
                });
            }
        }
    }
    while let Some((at_us, decision)) = b.decisions.pop_front() {
        b.events.push(Event::Decision { at_us, decision });
    }
    for (from, buf) in [("client", &b.fe), ("server", &b.be)] {
        if !buf.is_empty() {
            let what = format!("{} bytes of an incomplete message", buf.len());
            b.events.push(Event::Unreadable {
                at_us: rec.entries.last().map_or(0, |e| micros(e.at())),
                from,
                what,
            });
        }
    }
    Transcript {
        header: header(rec),
        events: b.events,
    }
}

fn header(rec: &SessionRecording) -> Header {
    let Some(s) = &rec.start else {
        return Header {
            session: rec.session,
            chain: Vec::new(),
            roles: Vec::new(),
            user: None,
            resource: String::new(),
            client: String::new(),
            tls: false,
            start: "(start not recorded)".into(),
        };
    };
    let id = &s.identity;
    let mut start = String::new();
    rfc3339_micros(s.time, &mut start);
    Header {
        session: rec.session,
        chain: id
            .chain
            .iter()
            .map(|l| Link {
                token: l.jti.clone(),
                name: l.name.clone(),
            })
            .chain([Link {
                token: id.token.clone(),
                name: id.subject.clone(),
            }])
            .collect(),
        roles: id.roles.clone(),
        user: id.user.clone(),
        resource: s.resource.clone(),
        client: s.client.to_string(),
        tls: s.tls,
        start,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A result column: its name and whether its values are binary.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    binary: bool,
}

/// What a client message makes the server send, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaits {
    /// A simple Query or FunctionCall: everything up to ReadyForQuery.
    Query,
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
}

#[derive(Debug)]
struct Expect {
    awaits: Awaits,
    /// The statement in `events` the answer belongs to.
    stmt: Option<usize>,
    /// The portal (Execute, Describe of a portal) or statement (Describe of a statement).
    name: Option<(Target, Vec<u8>)>,
}

struct Prepared {
    stmt: usize,
    bound: bool,
    columns: Option<Vec<Column>>,
}

struct Portal {
    stmt: usize,
    /// Result formats the Bind asked for.
    formats: Vec<i16>,
    columns: Option<Vec<Column>>,
}

#[derive(Default)]
struct Builder {
    events: Vec<Event>,
    fe: BytesMut,
    be: BytesMut,
    /// Whether the client's first bytes were looked at (a startup packet is skipped).
    fe_started: bool,
    prepared: HashMap<Vec<u8>, Prepared>,
    portals: HashMap<Vec<u8>, Portal>,
    expect: VecDeque<Expect>,
    /// Statements waiting for a decision, oldest first, and decisions waiting for a statement.
    undecided: VecDeque<usize>,
    decisions: VecDeque<(u64, Decision)>,
    /// The latest statement, for answers that match no expectation.
    last: Option<usize>,
    /// The statement whose result set is being received, if one is open.
    open_rows: Option<usize>,
    /// That result set's columns.
    columns: Vec<Column>,
}

impl Builder {
    fn stmt(&mut self, i: usize) -> Option<&mut Statement> {
        match self.events.get_mut(i) {
            Some(Event::Statement(s)) => Some(s),
            _ => None,
        }
    }

    /// The statement the next server message belongs to.
    fn target(&self) -> Option<usize> {
        self.expect.front().and_then(|e| e.stmt).or(self.last)
    }

    fn output(&mut self, out: Output) {
        if !matches!(out, Output::Rows { .. }) {
            self.open_rows = None;
        }
        match self.target() {
            Some(i) => {
                if let Some(s) = self.stmt(i) {
                    s.outputs.push(out);
                }
            }
            None => {
                if let Output::Unreadable { from, what } = out {
                    self.events.push(Event::Unreadable {
                        at_us: 0,
                        from,
                        what,
                    });
                }
            }
        }
    }

    fn new_statement(&mut self, s: Statement, decided: bool) -> usize {
        let i = self.events.len();
        self.events.push(Event::Statement(s));
        self.last = Some(i);
        if !decided {
            match self.decisions.pop_front() {
                Some((_, d)) => {
                    if let Some(s) = self.stmt(i) {
                        s.decision = Some(d);
                    }
                }
                None => self.undecided.push_back(i),
            }
        }
        i
    }

    /// A decision goes to the oldest statement without one; if there is none, it waits for
    /// the next statement (the data path may record it before or after the text).
    fn decision(&mut self, at_us: u64, d: Decision) {
        match self.undecided.pop_front() {
            Some(i) => {
                if let Some(s) = self.stmt(i) {
                    s.decision = Some(d);
                }
            }
            None => self.decisions.push_back((at_us, d)),
        }
    }

    fn client_frames(&mut self, at_us: u64) {
        if !self.fe_started && !self.fe.is_empty() {
            self.fe_started = true;
            // A startup packet has no tag: its length's first byte is zero. Nothing in it is
            // shown (it is the connection's parameters).
            if self.fe[0] == 0 && self.fe.len() >= 4 {
                let len = u32::from_be_bytes([self.fe[0], self.fe[1], self.fe[2], self.fe[3]]);
                let len = (len as usize).min(self.fe.len());
                let _ = self.fe.split_to(len);
            }
        }
        loop {
            match decode_frame(&mut self.fe, MAX_MESSAGE) {
                Ok(Some(frame)) => self.client(at_us, &frame),
                Ok(None) => return,
                Err(e) => {
                    self.events.push(Event::Unreadable {
                        at_us,
                        from: "client",
                        what: format!("{e}; {} bytes skipped", self.fe.len()),
                    });
                    self.fe.clear();
                    return;
                }
            }
        }
    }

    fn server_frames(&mut self, at_us: u64) {
        loop {
            match decode_frame(&mut self.be, MAX_MESSAGE) {
                Ok(Some(frame)) => self.server(at_us, &frame),
                Ok(None) => return,
                Err(e) => {
                    self.events.push(Event::Unreadable {
                        at_us,
                        from: "server",
                        what: format!("{e}; {} bytes skipped", self.be.len()),
                    });
                    self.be.clear();
                    return;
                }
            }
        }
    }

    fn expect(&mut self, awaits: Awaits, stmt: Option<usize>, name: Option<(Target, Vec<u8>)>) {
        self.expect.push_back(Expect { awaits, stmt, name });
    }

    fn client(&mut self, at_us: u64, f: &Frame) {
        use tag::frontend as t;
        let result = match f.tag {
            t::QUERY => Query::decode(f).map(|q| {
                let i = self.new_statement(statement(at_us, "simple", None, q.sql), false);
                self.expect(Awaits::Query, Some(i), None);
            }),
            t::PARSE => Parse::decode(f).map(|p| {
                let name = (!p.name.is_empty()).then(|| lossy(p.name));
                let i = self.new_statement(statement(at_us, "extended", name, p.sql), false);
                self.prepared.insert(
                    p.name.to_vec(),
                    Prepared {
                        stmt: i,
                        bound: false,
                        columns: None,
                    },
                );
                self.expect(Awaits::Parse, Some(i), None);
            }),
            t::BIND => Bind::decode(f).map(|b| self.bind(at_us, &b)),
            t::DESCRIBE => Describe::decode(f).map(|d| {
                let stmt = match d.target {
                    Target::Statement => self.prepared.get(d.name).map(|p| p.stmt),
                    Target::Portal => self.portals.get(d.name).map(|p| p.stmt),
                };
                self.expect(Awaits::Describe, stmt, Some((d.target, d.name.to_vec())));
            }),
            t::EXECUTE => Execute::decode(f).map(|e| {
                let stmt = self.portals.get(e.portal).map(|p| p.stmt);
                self.expect(
                    Awaits::Execute,
                    stmt,
                    Some((Target::Portal, e.portal.to_vec())),
                );
            }),
            t::SYNC => {
                self.expect(Awaits::Sync, None, None);
                Ok(())
            }
            t::CLOSE => {
                self.expect(Awaits::Close, None, None);
                Ok(())
            }
            t::FUNCTION_CALL => {
                let oid = f
                    .body()
                    .get(..4)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let sql = format!("-- function call, function oid {oid}");
                let i = self.new_statement(
                    statement(at_us, "function_call", None, sql.as_bytes()),
                    false,
                );
                self.expect(Awaits::Query, Some(i), None);
                Ok(())
            }
            t::COPY_DATA => {
                self.copy_from_client(f.body());
                Ok(())
            }
            t::COPY_FAIL => {
                let reason = lossy(f.body().strip_suffix(b"\0").unwrap_or(f.body()));
                self.output(Output::CopyFail { reason });
                Ok(())
            }
            // The password message carries the session token: never shown.
            t::PASSWORD_MESSAGE | t::FLUSH | t::COPY_DONE | t::TERMINATE => Ok(()),
            other => {
                self.events.push(Event::Unreadable {
                    at_us,
                    from: "client",
                    what: format!("unknown message type {}", printable(other)),
                });
                Ok(())
            }
        };
        if let Err(e) = result {
            self.unreadable_client(at_us, f.tag, &e);
        }
    }

    fn unreadable_client(&mut self, at_us: u64, tag: u8, e: &pg::CodecError) {
        let name = tag::frontend::name(tag).unwrap_or("message");
        self.events.push(Event::Unreadable {
            at_us,
            from: "client",
            what: format!("{name} ({}): {e}", printable(tag)),
        });
    }

    fn bind(&mut self, at_us: u64, b: &Bind<'_>) {
        let params: Vec<Param> = b
            .parameters()
            .map(|(format, v)| Param {
                binary: format == FORMAT_BINARY,
                value: v.map(|v| value(v, format == FORMAT_BINARY)),
            })
            .collect();
        let first = match self.prepared.get_mut(b.statement) {
            Some(p) => {
                let again = p.bound;
                p.bound = true;
                Some((p.stmt, again))
            }
            None => None,
        };
        let i = match first {
            Some((i, false)) => {
                if let Some(s) = self.stmt(i) {
                    s.params = params;
                }
                i
            }
            // Another execution of a prepared statement: a statement of its own, with the
            // text and decision of its Parse.
            Some((i, true)) => match self.events.get(i) {
                Some(Event::Statement(s)) => {
                    let mut again = s.clone();
                    again.at_us = at_us;
                    again.params = params;
                    again.outputs.clear();
                    self.new_statement(again, true)
                }
                _ => i,
            },
            None => {
                let name = lossy(b.statement);
                let sql = format!("-- statement {name:?}, prepared before the recording");
                let mut s = statement(at_us, "extended", Some(name), sql.as_bytes());
                s.params = params;
                self.new_statement(s, true)
            }
        };
        let columns = self
            .prepared
            .get(b.statement)
            .and_then(|p| p.columns.clone())
            .map(|cols| with_formats(cols, &b.result_formats));
        self.portals.insert(
            b.portal.to_vec(),
            Portal {
                stmt: i,
                formats: b.result_formats.clone(),
                columns,
            },
        );
        self.expect(Awaits::Bind, Some(i), None);
    }

    fn copy_from_client(&mut self, data: &[u8]) {
        let binary = false;
        self.append_copy("from_client", binary, data);
    }

    fn append_copy(&mut self, direction: &'static str, binary: bool, data: &[u8]) {
        let Some(i) = self.target() else { return };
        let Some(s) = self.stmt(i) else { return };
        let text = if binary { hex(data) } else { lossy(data) };
        if let Some(Output::Copy {
            direction: d,
            data: existing,
            ..
        }) = s.outputs.last_mut()
        {
            if *d == direction {
                existing.push_str(&text);
                return;
            }
        }
        s.outputs.push(Output::Copy {
            direction,
            binary,
            data: text,
        });
    }

    /// Pops expectations up to and including the first one `until` accepts; none if no
    /// expectation does (the answer is then kept with the latest statement).
    fn pop_through(&mut self, until: impl Fn(Awaits) -> bool) {
        if let Some(pos) = self.expect.iter().position(|e| until(e.awaits)) {
            self.expect.drain(..=pos);
        }
    }

    fn server(&mut self, at_us: u64, f: &Frame) {
        use tag::backend as t;
        let result: Result<(), pg::CodecError> = match f.tag {
            t::READY_FOR_QUERY => {
                self.open_rows = None;
                self.pop_through(|a| matches!(a, Awaits::Query | Awaits::Sync));
                Ok(())
            }
            t::PARSE_COMPLETE => {
                self.pop_through(|a| a == Awaits::Parse);
                Ok(())
            }
            t::BIND_COMPLETE => {
                self.pop_through(|a| a == Awaits::Bind);
                Ok(())
            }
            t::CLOSE_COMPLETE => {
                self.pop_through(|a| a == Awaits::Close);
                Ok(())
            }
            t::NO_DATA => {
                self.pop_through(|a| a == Awaits::Describe);
                Ok(())
            }
            t::ROW_DESCRIPTION => RowDescription::decode(f).map(|rd| self.row_description(&rd)),
            t::DATA_ROW => DataRow::decode(f).map(|row| self.data_row(&row)),
            t::COMMAND_COMPLETE => CommandComplete::decode(f).map(|c| {
                self.output(Output::Complete {
                    tag: c.tag.to_owned(),
                });
                self.finish_execute();
            }),
            t::EMPTY_QUERY_RESPONSE => {
                self.output(Output::EmptyQuery);
                self.finish_execute();
                Ok(())
            }
            t::PORTAL_SUSPENDED => {
                self.output(Output::Suspended);
                self.finish_execute();
                Ok(())
            }
            t::ERROR_RESPONSE => ErrorNotice::decode(f).map(|e| {
                self.output(Output::Error(notice(&e)));
                // After an error in a pipeline the server skips everything up to Sync.
                if self
                    .expect
                    .front()
                    .is_some_and(|e| e.awaits != Awaits::Query)
                {
                    while self
                        .expect
                        .front()
                        .is_some_and(|e| !matches!(e.awaits, Awaits::Sync | Awaits::Query))
                    {
                        self.expect.pop_front();
                    }
                }
            }),
            t::NOTICE_RESPONSE => ErrorNotice::decode(f).map(|n| {
                let n = notice(&n);
                match self.expect.front().and_then(|e| e.stmt) {
                    Some(i) => {
                        if let Some(s) = self.stmt(i) {
                            s.outputs.push(Output::Notice(n));
                        }
                    }
                    None => self.events.push(Event::Notice { at_us, notice: n }),
                }
            }),
            t::NOTIFICATION_RESPONSE => NotificationResponse::decode(f).map(|n| {
                self.events.push(Event::Notification {
                    at_us,
                    channel: lossy(n.channel),
                    payload: lossy(n.payload),
                });
            }),
            t::COPY_IN_RESPONSE | t::COPY_OUT_RESPONSE | t::COPY_BOTH_RESPONSE => {
                CopyResponse::decode(f).map(|c| {
                    let direction = if c.tag == t::COPY_IN_RESPONSE {
                        "from_client"
                    } else {
                        "to_client"
                    };
                    if let Some(s) = self.target().and_then(|i| self.stmt(i)) {
                        s.outputs.push(Output::Copy {
                            direction,
                            binary: c.is_binary(),
                            data: String::new(),
                        });
                    }
                })
            }
            t::COPY_DATA => CopyData::decode(f).map(|d| {
                let binary = matches!(
                    self.target().and_then(|i| match self.events.get(i) {
                        Some(Event::Statement(s)) => s.outputs.last(),
                        _ => None,
                    }),
                    Some(Output::Copy { binary: true, .. })
                );
                self.append_copy("to_client", binary, d.data);
            }),
            t::FUNCTION_CALL_RESPONSE => {
                let body = f.body();
                let value = match body
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                {
                    Some(-1) => Ok(None),
                    Some(n) if n >= 0 && body.len() == 4 + n as usize => {
                        Ok(Some(lossy(&body[4..])))
                    }
                    _ => Err(pg::CodecError::Malformed("function result length")),
                };
                value.map(|value| self.output(Output::FunctionResult { value }))
            }
            t::AUTHENTICATION
            | t::BACKEND_KEY_DATA
            | t::PARAMETER_STATUS
            | t::PARAMETER_DESCRIPTION
            | t::NEGOTIATE_PROTOCOL_VERSION
            | t::COPY_DONE => Ok(()),
            other => Err(pg::CodecError::Malformed(
                if tag::backend::name(other).is_some() {
                    "unexpected message"
                } else {
                    "unknown message type"
                },
            )),
        };
        if let Err(e) = result {
            let name = tag::backend::name(f.tag).unwrap_or("message");
            self.output(Output::Unreadable {
                from: "server",
                what: format!("{name} ({}): {e}", printable(f.tag)),
            });
        }
    }

    fn row_description(&mut self, rd: &RowDescription<'_>) {
        let columns: Vec<Column> = rd
            .fields()
            .map(|f| Column {
                name: lossy(f.name),
                binary: f.format == FORMAT_BINARY,
            })
            .collect();
        let front = self.expect.front();
        if let Some(Expect {
            awaits: Awaits::Describe,
            name: Some((target, name)),
            ..
        }) = front
        {
            // The columns of a later Execute: kept until rows arrive.
            let (target, name) = (*target, name.clone());
            match target {
                Target::Statement => {
                    if let Some(p) = self.prepared.get_mut(&name) {
                        p.columns = Some(columns);
                    }
                }
                Target::Portal => {
                    if let Some(p) = self.portals.get_mut(&name) {
                        p.columns = Some(with_formats(columns, &p.formats));
                    }
                }
            }
            self.expect.pop_front();
            return;
        }
        self.open_result(columns);
    }

    fn open_result(&mut self, columns: Vec<Column>) {
        let Some(i) = self.target() else { return };
        let names = columns.iter().map(|c| c.name.clone()).collect();
        if let Some(s) = self.stmt(i) {
            s.outputs.push(Output::Rows {
                columns: names,
                rows: Vec::new(),
            });
        }
        self.open_rows = Some(i);
        self.columns = columns;
    }

    fn data_row(&mut self, row: &DataRow<'_>) {
        if self.open_rows.is_none() || self.open_rows != self.target() {
            // Rows of an Execute: the columns come from the portal's Describe, if any.
            let columns = self
                .expect
                .front()
                .and_then(|e| e.name.as_ref())
                .and_then(|(_, name)| self.portals.get(name))
                .and_then(|p| p.columns.clone())
                .unwrap_or_default();
            self.open_result(columns);
        }
        let values: Vec<Option<String>> = row
            .values()
            .enumerate()
            .map(|(i, v)| {
                let binary = self.columns.get(i).is_some_and(|c| c.binary);
                v.map(|v| value(v, binary))
            })
            .collect();
        let Some(i) = self.open_rows else { return };
        if let Some(Output::Rows { rows, .. }) = self.stmt(i).and_then(|s| s.outputs.last_mut()) {
            rows.push(values);
        }
    }

    /// CommandComplete, EmptyQueryResponse and PortalSuspended end an Execute (a simple Query
    /// goes on until ReadyForQuery).
    fn finish_execute(&mut self) {
        self.open_rows = None;
        if self
            .expect
            .front()
            .is_some_and(|e| e.awaits == Awaits::Execute)
        {
            self.expect.pop_front();
        }
    }
}

fn statement(at_us: u64, protocol: &'static str, name: Option<String>, sql: &[u8]) -> Statement {
    Statement {
        at_us,
        protocol,
        name,
        sql: lossy(sql),
        params: Vec::new(),
        decision: None,
        outputs: Vec::new(),
    }
}

/// Applies a Bind's result formats (none: text; one: all; else one each) to described columns.
fn with_formats(mut columns: Vec<Column>, formats: &[i16]) -> Vec<Column> {
    for (i, c) in columns.iter_mut().enumerate() {
        c.binary = match formats {
            [] => false,
            [one] => *one == FORMAT_BINARY,
            many => many.get(i) == Some(&FORMAT_BINARY),
        };
    }
    columns
}

fn notice(e: &ErrorNotice<'_>) -> Notice {
    let field = |code| e.field(code).map(lossy);
    Notice {
        severity: e.severity().map(str::to_owned).unwrap_or_default(),
        code: field(pg::field::CODE).unwrap_or_default(),
        message: field(pg::field::MESSAGE).unwrap_or_default(),
        detail: field(pg::field::DETAIL),
        hint: field(pg::field::HINT),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A value as text, or as `\x` and hex when binary.
fn value(v: &[u8], binary: bool) -> String {
    if binary {
        hex(v)
    } else {
        lossy(v)
    }
}

fn hex(v: &[u8]) -> String {
    let mut s = String::with_capacity(2 + v.len() * 2);
    s.push_str("\\x");
    for b in v {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn printable(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}
