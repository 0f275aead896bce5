//! Upstream-to-client hooks: match each answer to the request it belongs to, mask what leaves,
//! cap rows, and replace the errors provoked for blocked statements.

use bytes::BytesMut;

use super::{
    refusal_error, Action, Copy, Described, Expect, Inspector, Rows, PROTOCOL_VIOLATION,
    SYNTAX_ERROR,
};
use crate::codec::pg::{self, tag::backend as be, Frame};
use crate::mask::{mask_error_fields, mask_notification, ColumnResolver, CopyFormat, CopyPlan};

/// FATAL when the gateway can no longer tell which request an answer belongs to; masking
/// could not be guaranteed after that, so the session ends.
const LOST_TRACK: &str =
    "sluice: lost track of the protocol; the session is closed to protect masked data";

impl Inspector {
    /// Decides what happens to one complete upstream message. For a RowDescription, the
    /// caller has first resolved [`Inspector::tables_to_resolve`] in the catalog.
    pub fn on_server(&mut self, frame: &Frame, resolver: &dyn ColumnResolver) -> Action {
        let outcome = match frame.tag {
            be::PARSE_COMPLETE | be::BIND_COMPLETE | be::CLOSE_COMPLETE => {
                self.expect.pop_front();
                Ok(self.unless_skipping())
            }
            be::PARAMETER_DESCRIPTION => Ok(match self.expect.front() {
                Some(Expect::Describe { hidden: true, .. }) => Action::Drop,
                _ => self.unless_skipping(),
            }),
            be::ROW_DESCRIPTION => self.on_row_description(frame, resolver),
            be::NO_DATA => Ok(match self.expect.pop_front() {
                Some(Expect::Describe { hidden: true, .. }) => Action::Drop,
                _ => self.unless_skipping(),
            }),
            be::DATA_ROW => self.on_data_row(frame),
            be::COMMAND_COMPLETE | be::EMPTY_QUERY_RESPONSE | be::PORTAL_SUSPENDED => {
                self.on_complete(frame)
            }
            be::ERROR_RESPONSE => self.on_error(frame),
            be::NOTICE_RESPONSE => self.mask_fields(frame),
            be::NOTIFICATION_RESPONSE => self.mask_notification(frame),
            be::PARAMETER_STATUS => self.on_parameter_status(frame),
            be::READY_FOR_QUERY => Ok(self.on_ready()),
            be::COPY_OUT_RESPONSE => self.on_copy_out(frame),
            be::COPY_DATA => self.on_copy_data(frame),
            be::COPY_DONE => Ok(match self.copy {
                Copy::Refused => Action::Drop,
                _ => Action::Forward,
            }),
            be::COPY_BOTH_RESPONSE => Ok(Action::Fatal(
                PROTOCOL_VIOLATION,
                "sluice: replication streams are not relayed for this role".into(),
            )),
            _ => Ok(Action::Forward),
        };
        outcome.unwrap_or_else(|e| {
            Action::Fatal(
                PROTOCOL_VIOLATION,
                format!("sluice: malformed message from the upstream: {e}"),
            )
        })
    }

    /// After the gateway refused part of an extended batch, the client expects nothing more
    /// until ReadyForQuery, exactly as after a server error.
    fn unless_skipping(&self) -> Action {
        if self.skipping {
            Action::Drop
        } else {
            Action::Forward
        }
    }

    fn on_row_description(
        &mut self,
        frame: &Frame,
        resolver: &dyn ColumnResolver,
    ) -> Result<Action, pg::CodecError> {
        match self.expect.front() {
            Some(Expect::Describe {
                of: Described::Statement(_),
                ..
            }) => {
                if let Some(Expect::Describe {
                    of: Described::Statement(name),
                    ..
                }) = self.expect.pop_front()
                {
                    self.statements.entry(name).or_default().columns = Some(frame.clone());
                }
                Ok(self.unless_skipping())
            }
            Some(Expect::Describe {
                of: Described::Portal(_),
                ..
            }) => {
                let plan = match self.masking {
                    true => Some(self.plan(frame, None, resolver)?),
                    false => None,
                };
                let Some(Expect::Describe {
                    of: Described::Portal(name),
                    hidden,
                }) = self.expect.pop_front()
                else {
                    return Ok(Action::Forward);
                };
                self.portals.entry(&name).plan = plan;
                Ok(if hidden {
                    Action::Drop
                } else {
                    self.unless_skipping()
                })
            }
            Some(Expect::Simple { .. }) => {
                self.simple_rows = 0;
                if !self.masking {
                    return Ok(Action::Forward);
                }
                let plan = self.plan(frame, None, resolver)?;
                if let Some((i, reason)) = plan.refusal() {
                    self.rows = Rows::Refused;
                    return Ok(Action::Replace(refusal_error(&format!(
                        "sluice: result column {} refused: {}",
                        i + 1,
                        reason.message()
                    ))));
                }
                self.rows = Rows::Plan(plan);
                Ok(Action::Forward)
            }
            _ if self.masking => Ok(Action::Fatal(PROTOCOL_VIOLATION, LOST_TRACK.into())),
            _ => Ok(Action::Forward),
        }
    }

    fn on_data_row(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        if self.skipping {
            return Ok(Action::Drop);
        }
        let max = self.policy.max_rows();
        let (plan, count) = match self.expect.front() {
            Some(Expect::Simple { .. }) => match &self.rows {
                Rows::Refused => return Ok(Action::Drop),
                Rows::Plan(p) => (Some(p.clone()), &mut self.simple_rows),
                Rows::None => (None, &mut self.simple_rows),
            },
            Some(Expect::Execute { portal }) => match self.portals.get_mut(portal) {
                Some(p) => (p.plan.clone(), &mut p.rows),
                None => (None, &mut self.simple_rows),
            },
            _ => (None, &mut self.simple_rows),
        };
        *count += 1;
        if max.is_some_and(|m| *count > m) {
            self.cut = true;
            return Ok(Action::Drop);
        }
        if !self.masking {
            return Ok(Action::Forward);
        }
        let Some(plan) = plan else {
            return Ok(Action::Fatal(PROTOCOL_VIOLATION, LOST_TRACK.into()));
        };
        if let Some((i, reason)) = plan.refusal() {
            // Found only now (a portal described after its Bind): no value leaves, the client
            // gets the error, and the rest of the batch is swallowed like after a server error.
            self.rows = Rows::Refused;
            self.skipping = true;
            return Ok(Action::Replace(refusal_error(&format!(
                "sluice: result column {} refused: {}",
                i + 1,
                reason.message()
            ))));
        }
        // Room for the row as it came, so writing a masked copy does not grow the buffer
        // value by value (masks are about as long as what they replace).
        let mut out = BytesMut::with_capacity(frame.bytes.len() + 64);
        let masked = plan.rewrite_data_row_counted(frame, &mut out)?;
        self.tally.masked(u64::from(masked));
        Ok(if masked > 0 {
            Action::Replace(out.freeze())
        } else {
            Action::Forward
        })
    }

    fn on_complete(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let execute = matches!(self.expect.front(), Some(Expect::Execute { .. }));
        if execute {
            self.expect.pop_front();
        }
        let refused = matches!(self.rows, Rows::Refused) || matches!(self.copy, Copy::Refused);
        self.rows = Rows::None;
        self.copy = Copy::None;
        let cut = std::mem::take(&mut self.cut);
        if refused || self.skipping {
            return Ok(Action::Drop);
        }
        if !cut {
            return Ok(Action::Forward);
        }
        let max = self.policy.max_rows().unwrap_or(0);
        let mut out = BytesMut::new();
        pg::encode_notice(
            &mut out,
            "WARNING",
            "01000",
            &format!("sluice: result cut to {max} rows by policy (max_rows)"),
        );
        if frame.tag == be::COMMAND_COMPLETE {
            let tag = pg::CommandComplete::decode(frame)?.tag;
            pg::encode_command_complete(&mut out, &with_row_count(tag, max));
        } else {
            out.extend_from_slice(&frame.bytes);
        }
        Ok(Action::Replace(out.freeze()))
    }

    fn on_error(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let code = pg::ErrorNotice::decode(frame)?.code().map(str::to_owned);
        let provoked = match self.expect.front() {
            Some(Expect::Simple { blocked: Some(r) })
            | Some(Expect::Parse { blocked: Some(r) })
                if code.as_deref() == Some(SYNTAX_ERROR) =>
            {
                Some(r.clone())
            }
            _ => None,
        };
        let simple = matches!(self.expect.front(), Some(Expect::Simple { .. }) | None);
        if !simple {
            // The upstream skips everything up to the batch's Sync.
            while !matches!(self.expect.front(), Some(Expect::Sync) | None) {
                self.expect.pop_front();
            }
        }
        self.rows = Rows::None;
        self.cut = false;
        if self.skipping {
            return Ok(Action::Drop);
        }
        if let Some(refusal) = provoked {
            return Ok(Action::Replace(refusal_error(&refusal)));
        }
        self.mask_fields(frame)
    }

    fn on_ready(&mut self) -> Action {
        while let Some(e) = self.expect.pop_front() {
            if matches!(e, Expect::Sync | Expect::Simple { .. }) {
                break;
            }
        }
        self.skipping = false;
        self.rows = Rows::None;
        self.copy = Copy::None;
        self.cut = false;
        Action::Forward
    }

    fn mask_fields(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let detectors = self.policy.mask().detectors();
        if !detectors.any() {
            return Ok(Action::Forward);
        }
        let mut out = BytesMut::new();
        Ok(if mask_error_fields(frame, &detectors, &mut out)? {
            self.tally.masked(1);
            Action::Replace(out.freeze())
        } else {
            Action::Forward
        })
    }

    fn mask_notification(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let detectors = self.policy.mask().detectors();
        if !detectors.any() {
            return Ok(Action::Forward);
        }
        let mut out = BytesMut::new();
        Ok(if mask_notification(frame, &detectors, &mut out)? {
            self.tally.masked(1);
            Action::Replace(out.freeze())
        } else {
            Action::Forward
        })
    }

    fn on_parameter_status(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let status = pg::ParameterStatus::decode(frame)?;
        match status.name {
            "standard_conforming_strings" => self.standard_strings = status.value == "on",
            // The lexer reads UTF-8; an encoding whose multi-byte characters can hold a quote
            // or backslash byte would let text mean one thing to the gateway and another to
            // the server.
            "client_encoding" if !is_utf8(status.value) => {
                return Ok(Action::Fatal(
                    PROTOCOL_VIOLATION,
                    "sluice: client_encoding must stay UTF8 under a restricted policy".into(),
                ))
            }
            _ => {}
        }
        Ok(Action::Forward)
    }

    fn on_copy_out(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        if !self.masking {
            return Ok(Action::Forward);
        }
        let response = pg::CopyResponse::decode(frame)?;
        // Text and CSV look alike on the wire; with no per-column rule in play (the policy
        // refuses COPY of masked columns) the detectors scan each line whole, which suits both.
        let format = if response.is_binary() {
            CopyFormat::Binary
        } else {
            CopyFormat::Csv
        };
        let styles = vec![None; response.len()];
        match CopyPlan::new(self.policy.mask(), format, &styles) {
            Ok(plan) => {
                self.copy = Copy::Mask(Box::new(plan));
                Ok(Action::Forward)
            }
            Err(e) => {
                self.copy = Copy::Refused;
                Ok(Action::Replace(refusal_error(&format!("sluice: {e}"))))
            }
        }
    }

    fn on_copy_data(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        match &self.copy {
            Copy::None => Ok(Action::Forward),
            Copy::Refused => Ok(Action::Drop),
            Copy::Mask(plan) => {
                let mut out = BytesMut::new();
                Ok(if plan.mask_copy_data(frame, &mut out)? {
                    self.tally.masked(1);
                    Action::Replace(out.freeze())
                } else {
                    Action::Forward
                })
            }
        }
    }
}

fn is_utf8(encoding: &str) -> bool {
    matches!(
        encoding
            .to_ascii_uppercase()
            .replace(['-', '_'], "")
            .as_str(),
        "UTF8" | "UNICODE"
    )
}

/// A command tag with its row count replaced (`SELECT 5000` -> `SELECT 100`).
fn with_row_count(tag: &str, rows: u64) -> String {
    match tag.rsplit_once(' ') {
        Some((head, n)) if n.bytes().all(|b| b.is_ascii_digit()) => format!("{head} {rows}"),
        _ => tag.to_string(),
    }
}
