//! Client-to-upstream hooks: judge each statement before the upstream sees it, and keep the
//! statement and portal names consistent with what was judged.

use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::info;

use super::super::audit::{Judged, JudgedKind};
use super::{
    Action, Described, Expect, Held, HeldMessage, Inspector, Portal, Refusal, Statement,
    BLOCKED_NAME, BLOCKED_SQL, PROTOCOL_VIOLATION,
};
use crate::codec::pg::{self, tag::frontend as fe, Frame, Target, FORMAT_TEXT};
use crate::config::Action as PolicyAction;
use crate::mask::{ColumnResolver, RowPlan};
use crate::metrics;
use crate::policy::Verdict;
use crate::sql::StatementClass;

/// Refusal of the fast-path function call interface, which names functions by OID and so
/// bypasses every SQL check.
const FUNCTION_CALL_REFUSED: &str =
    "sluice: the FunctionCall protocol message is not allowed for this role; call the function from SQL";

impl Inspector {
    /// Decides what happens to one complete client message. `resolver` answers from the
    /// catalog cache, which the caller filled for [`Inspector::tables_for_bind`].
    pub fn on_client(&mut self, frame: &Frame, resolver: &dyn ColumnResolver) -> Action {
        let outcome = match frame.tag {
            fe::QUERY => self.on_query(frame),
            fe::PARSE => self.on_parse(frame),
            fe::BIND => self.on_bind(frame, resolver),
            fe::DESCRIBE => self.on_describe(frame),
            fe::EXECUTE => self.on_execute(frame),
            fe::CLOSE => self.on_close(frame),
            fe::SYNC => {
                self.expect.push_back(Expect::Sync);
                Ok(Action::Forward)
            }
            fe::FUNCTION_CALL => Ok(self.on_function_call()),
            _ => Ok(Action::Forward),
        };
        outcome.unwrap_or_else(|e| {
            Action::Fatal(
                PROTOCOL_VIOLATION,
                format!("sluice: malformed message from the client: {e}"),
            )
        })
    }

    /// Judges SQL text: it runs, it must not run, or it waits for a human.
    /// With `defer_allowed` (a Parse), an allowed statement's audit record is kept for its
    /// executions instead of being written now.
    fn judge(&mut self, sql: &[u8], defer_allowed: bool) -> Judgement {
        let started = Instant::now();
        let unknown = metrics::class_slot(StatementClass::Unknown);
        let Ok(text) = std::str::from_utf8(sql) else {
            self.blocked += 1;
            self.tally.statements(unknown, PolicyAction::Block, 1);
            self.audit_refused("<not valid UTF-8>", started);
            return Judgement::Refuse("sluice: statement text is not valid UTF-8".into());
        };
        // Every statement of a message shares the message's fate: one blocked statement
        // blocks them all, so they are all counted with the message's action.
        let mut classes = [0u64; metrics::CLASS_SLOTS];
        let verdict = self
            .policy
            .judge_each(text, self.standard_strings, |class| {
                classes[metrics::class_slot(class)] += 1;
            });
        if self.policy.unrestricted() {
            // A masked but unrestricted role: nothing is classified.
            classes[metrics::UNCLASSIFIED] = 1;
        }
        let action = match &verdict {
            Verdict::Allow => PolicyAction::Allow,
            Verdict::Block(b) if b.review => PolicyAction::Review,
            Verdict::Block(_) => PolicyAction::Block,
        };
        for (class, &n) in classes.iter().enumerate() {
            if n > 0 {
                self.tally.statements(class, action, n);
            }
        }
        if self.judging {
            let rule = match &verdict {
                Verdict::Allow => self.policy.rule_path().map(str::to_owned),
                Verdict::Block(b) => Some(b.rule.clone()),
            };
            if defer_allowed && action == PolicyAction::Allow {
                let took = started.elapsed();
                let mut judged = self.judged_of(text, "allow", rule, took);
                judged.kind = JudgedKind::Decision;
                self.judged.push(judged.clone());
                judged.kind = JudgedKind::Execution;
                self.deferred = Some(judged);
            } else {
                self.audit_judged(text, action.as_str(), rule, started);
            }
        }
        match verdict {
            Verdict::Allow => Judgement::Allow,
            Verdict::Block(b) if b.review => Judgement::Review(Box::new(Held {
                sql: text.to_owned(),
                fingerprint: crate::sql::fingerprint_with(
                    text,
                    crate::sql::LexOptions {
                        standard_conforming_strings: self.standard_strings,
                    },
                ),
                rule: b.rule,
            })),
            Verdict::Block(b) => {
                self.blocked += 1;
                info!(rule = %b.rule, "statement blocked: {}", b.message);
                Judgement::Refuse(b.message.into())
            }
        }
    }

    /// The record of a judged statement text; fingerprinted only when the audit trail wants
    /// it (a recording keeps the text itself).
    fn judged_of(
        &self,
        text: &str,
        decision: &'static str,
        rule: Option<String>,
        took: std::time::Duration,
    ) -> Judged {
        if self.fingerprints {
            Judged::new(text, self.standard_strings, decision, rule, took)
        } else {
            Judged {
                kind: JudgedKind::Statement,
                fingerprint: String::new(),
                decision,
                rule,
                took,
            }
        }
    }

    /// Notes a judged statement text for the audit trail (when auditing).
    fn audit_judged(
        &mut self,
        text: &str,
        decision: &'static str,
        rule: Option<String>,
        started: Instant,
    ) {
        if self.judging {
            let took = started.elapsed();
            let judged = self.judged_of(text, decision, rule, took);
            self.judged.push(judged);
        }
    }

    /// Notes a refused message without statement text (`what` stands for it in the trail).
    fn audit_refused(&mut self, what: &'static str, started: Instant) {
        if self.judging {
            self.judged.push(Judged {
                kind: JudgedKind::Statement,
                fingerprint: what.to_owned(),
                decision: "block",
                rule: None,
                took: started.elapsed(),
            });
        }
    }

    fn on_query(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let query = pg::Query::decode(frame)?;
        let blocked = match self.judge(query.sql, false) {
            Judgement::Allow => None,
            Judgement::Refuse(r) => Some(r),
            Judgement::Review(held) => {
                self.held = Some(HeldMessage::Query);
                return Ok(Action::Hold(held));
            }
        };
        Ok(self.finish_query(blocked))
    }

    fn finish_query(&mut self, blocked: Option<Refusal>) -> Action {
        let action = match &blocked {
            None => Action::Forward,
            Some(_) => {
                let mut out = BytesMut::with_capacity(32);
                pg::encode_query(&mut out, BLOCKED_SQL);
                Action::Replace(out.freeze())
            }
        };
        self.expect.push_back(Expect::Simple { blocked });
        action
    }

    fn on_function_call(&mut self) -> Action {
        // An unrestricted, unmasked role never gets here (it has no inspector). Anyone else
        // could reach any function, or read values no detector sees, through it.
        self.blocked += 1;
        let unknown = metrics::class_slot(StatementClass::Unknown);
        self.tally.statements(unknown, PolicyAction::Block, 1);
        self.audit_refused("<function call>", Instant::now());
        let mut out = BytesMut::with_capacity(32);
        pg::encode_query(&mut out, BLOCKED_SQL);
        self.expect.push_back(Expect::Simple {
            blocked: Some(FUNCTION_CALL_REFUSED.into()),
        });
        Action::Replace(out.freeze())
    }

    fn on_parse(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let parse = pg::Parse::decode(frame)?;
        let blocked = match self.judge(parse.sql, true) {
            Judgement::Allow => None,
            Judgement::Refuse(r) => Some(r),
            Judgement::Review(held) => {
                self.held = Some(HeldMessage::Parse {
                    name: parse.name.to_vec(),
                    fingerprint: held.fingerprint.clone(),
                    rule: held.rule.clone(),
                });
                return Ok(Action::Hold(held));
            }
        };
        Ok(self.finish_parse(parse.name, blocked))
    }

    /// Ends the hold of the held message: `Ok` when approved (it is sent as the client sent
    /// it), otherwise the refusal the client gets in its place.
    pub fn release(&mut self, outcome: Result<(), Refusal>) -> Action {
        let refusal = outcome.err();
        if refusal.is_some() {
            self.blocked += 1;
        }
        match self.held.take() {
            Some(HeldMessage::Query) => self.finish_query(refusal),
            Some(HeldMessage::Parse {
                name,
                fingerprint,
                rule,
            }) => {
                if self.judging && refusal.is_none() {
                    self.deferred = Some(Judged {
                        kind: JudgedKind::Execution,
                        fingerprint,
                        decision: "allow",
                        rule: Some(rule),
                        took: std::time::Duration::ZERO,
                    });
                }
                self.finish_parse(&name, refusal)
            }
            None => Action::Fatal(
                PROTOCOL_VIOLATION,
                "sluice: internal error: no statement is held".into(),
            ),
        }
    }

    fn finish_parse(&mut self, name: &[u8], blocked: Option<Refusal>) -> Action {
        let parse_name = name;
        self.statements.insert(
            parse_name.to_vec(),
            Statement {
                blocked: blocked.clone(),
                columns: None,
                audit: self.deferred.take().map(Rc::new),
            },
        );
        match blocked {
            None => {
                self.expect.push_back(Expect::Parse { blocked: None });
                Action::Forward
            }
            // The same name, so that an unnamed statement is dropped just as PostgreSQL drops
            // it when a new unnamed Parse fails.
            Some(refusal) => self.fail_with(parse_name, refusal),
        }
    }

    fn on_bind(
        &mut self,
        frame: &Frame,
        resolver: &dyn ColumnResolver,
    ) -> Result<Action, pg::CodecError> {
        let bind = pg::Bind::decode(frame)?;
        let statement = self.statements.get(bind.statement);
        let blocked = statement.and_then(|s| s.blocked.clone());
        // A cheap clone of a shared frame, so the plan can be built while `self` is mutable.
        let columns = statement.and_then(|s| s.columns.clone());
        let audit = statement.and_then(|s| s.audit.clone());
        let refused = match blocked {
            Some(refusal) => Err(refusal),
            None => self.plan_for(columns.as_ref(), &bind, resolver),
        };
        match refused {
            Err(refusal) => {
                self.portals.insert(
                    bind.portal,
                    Portal {
                        blocked: Some(refusal.clone()),
                        ..Portal::default()
                    },
                );
                Ok(self.fail_with(BLOCKED_NAME, refusal))
            }
            Ok(plan) => {
                self.portals.insert(
                    bind.portal,
                    Portal {
                        plan,
                        audit,
                        ..Portal::default()
                    },
                );
                self.expect.push_back(Expect::Bind);
                Ok(Action::Forward)
            }
        }
    }

    /// The masking plan of a portal bound from a statement with `columns`, in the Bind's
    /// result formats; an error when the result could not be masked in those formats.
    fn plan_for(
        &mut self,
        columns: Option<&Frame>,
        bind: &pg::Bind<'_>,
        resolver: &dyn ColumnResolver,
    ) -> Result<Option<Rc<RowPlan>>, Refusal> {
        if !self.masking {
            return Ok(None);
        }
        let Some(columns) = columns else {
            // Not described yet: the rows' plan comes from a Describe before Execute, whose
            // RowDescription is always text unless the Bind asked otherwise, and then the
            // gateway cannot check the formats in time.
            return if bind.result_formats.iter().all(|&f| f == FORMAT_TEXT) {
                Ok(None)
            } else {
                Err(
                    "sluice: binary result formats need the statement described first \
                     (Describe before Bind) when results are masked"
                        .into(),
                )
            };
        };
        let plan = self
            .plan(columns, Some(&bind.result_formats), resolver)
            .map_err(|_| Refusal::from("sluice: the statement's description is malformed"))?;
        if let Some((i, reason)) = plan.refusal() {
            return Err(format!(
                "sluice: result column {} refused: {}",
                i + 1,
                reason.message()
            )
            .into());
        }
        Ok(Some(plan))
    }

    fn on_describe(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let d = pg::Describe::decode(frame)?;
        let (blocked, of) = match d.target {
            Target::Statement => (
                self.statements.get(d.name).and_then(|s| s.blocked.clone()),
                Described::Statement(d.name.to_vec()),
            ),
            Target::Portal => {
                let portal = self.portals.entry(d.name);
                portal.described = true;
                (portal.blocked.clone(), Described::Portal(d.name.to_vec()))
            }
        };
        if let Some(refusal) = blocked {
            return Ok(self.fail_with(BLOCKED_NAME, refusal));
        }
        self.expect
            .push_back(Expect::Describe { of, hidden: false });
        Ok(Action::Forward)
    }

    fn on_execute(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let e = pg::Execute::decode(frame)?;
        let portal = self.portals.get(e.portal);
        if let Some(refusal) = portal.and_then(|p| p.blocked.clone()) {
            return Ok(self.fail_with(BLOCKED_NAME, refusal));
        }
        if let Some(judged) = portal.and_then(|p| p.audit.as_deref()) {
            // Each execution of a prepared statement is one audited statement.
            let execution = Judged {
                kind: JudgedKind::Execution,
                fingerprint: judged.fingerprint.clone(),
                decision: judged.decision,
                rule: judged.rule.clone(),
                took: std::time::Duration::ZERO,
            };
            self.judged.push(execution);
        }
        // Rows of a portal nobody described would arrive without a plan: ask the upstream
        // for the description first, out of the client's sight.
        let describe = self.masking && portal.is_none_or(|p| p.plan.is_none() && !p.described);
        let action = if describe {
            self.portals.entry(e.portal).described = true;
            self.expect.push_back(Expect::Describe {
                of: Described::Portal(e.portal.to_vec()),
                hidden: true,
            });
            let mut out = BytesMut::with_capacity(16 + e.portal.len());
            pg::encode_describe(&mut out, Target::Portal, e.portal);
            Action::Prefix(out.freeze())
        } else {
            Action::Forward
        };
        self.expect.push_back(Expect::Execute {
            portal: e.portal.to_vec(),
        });
        Ok(action)
    }

    fn on_close(&mut self, frame: &Frame) -> Result<Action, pg::CodecError> {
        let c = pg::Close::decode(frame)?;
        match c.target {
            Target::Statement => {
                self.statements.remove(c.name);
            }
            Target::Portal => {
                self.portals.remove(c.name);
            }
        }
        self.expect.push_back(Expect::Close);
        Ok(Action::Forward)
    }

    /// Replaces the current message by a Parse that fails in the upstream's parser; its
    /// error is later replaced by `refusal`.
    fn fail_with(&mut self, name: &[u8], refusal: Refusal) -> Action {
        let mut out = BytesMut::with_capacity(32 + name.len());
        pg::encode_parse(&mut out, name, BLOCKED_SQL);
        self.expect.push_back(Expect::Parse {
            blocked: Some(refusal),
        });
        Action::Replace(Bytes::from(out))
    }
}

/// What the policy says of a message's statement text.
enum Judgement {
    Allow,
    Refuse(Refusal),
    Review(Box<Held>),
}
