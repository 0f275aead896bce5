//! One event as one JSON line. Runs on the writer thread only.
//!
//! Fields in a fixed order, absent ones omitted. `chain` lists the ancestors root first and
//! ends with the acting token itself, so the last link always names the subject. `added_us` is
//! the gateway-added time in microseconds with nanosecond resolution (`12.345`): sluice often
//! adds less than a microsecond, which an integer would round away.

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use super::event::{Event, Identity};
use super::time::rfc3339_micros;

/// Appends `event` to `out` as one `\n`-terminated JSON object. `scratch` is reused for the
/// timestamp. Strings are escaped by serde_json, so no field can break the line.
pub fn write_line(
    event: &Event,
    scratch: &mut String,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    scratch.clear();
    rfc3339_micros(event.time, scratch);
    let id = event.identity.as_deref();
    let line = Line {
        time: scratch,
        kind: event.kind.as_str(),
        session: event.session,
        token: id.map(|i| i.token.as_str()),
        chain: id.map(Chain),
        subject: id.map(|i| i.subject.as_str()),
        roles: id.map(|i| i.roles.as_slice()),
        user: id.and_then(|i| i.user.as_deref()),
        resource: event.resource.as_deref(),
        client: event.client.map(Display),
        fingerprint: event.fingerprint.as_deref(),
        decision: event.decision,
        rule: event.rule.as_deref(),
        added_us: event.added.map(|d| d.as_nanos() as f64 / 1000.0),
        detail: event.detail.as_deref(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.push(b'\n');
    Ok(())
}

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<Chain<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<Display<std::net::SocketAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    added_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// The identity chain: each ancestor, then the acting token.
struct Chain<'a>(&'a Identity);

impl Serialize for Chain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let id = self.0;
        let mut seq = s.serialize_seq(Some(id.chain.len() + 1))?;
        for link in &id.chain {
            seq.serialize_element(&Link {
                token: &link.jti,
                name: &link.name,
            })?;
        }
        seq.serialize_element(&Link {
            token: &id.token,
            name: &id.subject,
        })?;
        seq.end()
    }
}

#[derive(Serialize)]
struct Link<'a> {
    token: &'a str,
    name: &'a str,
}

/// Serializes through `Display` (addresses as `127.0.0.1:5555` and `[::1]:5555`).
struct Display<T>(T);

impl<T: std::fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event::Kind;
    use crate::identity::ChainLink;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn line(e: &Event) -> String {
        let mut out = Vec::new();
        write_line(e, &mut String::new(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn identity() -> Arc<Identity> {
        Arc::new(Identity {
            token: "child-jti".into(),
            subject: "report-subagent".into(),
            chain: vec![
                ChainLink {
                    jti: "root-jti".into(),
                    name: "ci-job".into(),
                },
                ChainLink {
                    jti: "mid-jti".into(),
                    name: "agent".into(),
                },
            ],
            roles: vec!["reader".into()],
            user: Some("report".into()),
        })
    }

    #[test]
    fn a_full_statement_event_has_every_field_in_order() {
        let mut e = Event::at(
            UNIX_EPOCH + Duration::from_micros(1_795_453_200_123_456),
            Kind::Statement,
        );
        e.session = Some(42);
        e.identity = Some(identity());
        e.client = Some("127.0.0.1:5555".parse().unwrap());
        e.resource = Some("orders".into());
        e.fingerprint = Some("select * from t where id = ?".into());
        e.decision = Some("block");
        e.rule = Some("role.reader.rules.orders.write".into());
        e.added = Some(Duration::from_nanos(12_345));
        e.detail = Some("42501".into());
        assert_eq!(
            line(&e),
            concat!(
                r#"{"time":"2026-11-23T17:00:00.123456Z","kind":"statement","session":42,"#,
                r#""token":"child-jti","chain":[{"token":"root-jti","name":"ci-job"},"#,
                r#"{"token":"mid-jti","name":"agent"},{"token":"child-jti","name":"report-subagent"}],"#,
                r#""subject":"report-subagent","roles":["reader"],"user":"report","resource":"orders","#,
                r#""client":"127.0.0.1:5555","fingerprint":"select * from t where id = ?","#,
                r#""decision":"block","rule":"role.reader.rules.orders.write","added_us":12.345,"#,
                r#""detail":"42501"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn absent_fields_are_omitted() {
        let e = Event::at(UNIX_EPOCH, Kind::TokenRevocation);
        assert_eq!(
            line(&e),
            "{\"time\":\"1970-01-01T00:00:00.000000Z\",\"kind\":\"token_revocation\"}\n"
        );
        // A root token: the chain is the token alone; no user label, no user field.
        let mut e = Event::at(UNIX_EPOCH, Kind::Authentication);
        e.identity = Some(Arc::new(Identity {
            token: "j".into(),
            subject: "ci".into(),
            chain: vec![],
            roles: vec![],
            user: None,
        }));
        e.client = Some("[::1]:6432".parse().unwrap());
        e.decision = Some("success");
        let v: serde_json::Value = serde_json::from_str(&line(&e)).unwrap();
        assert_eq!(
            v["chain"],
            serde_json::json!([{"token": "j", "name": "ci"}])
        );
        assert_eq!(v["client"], "[::1]:6432");
        assert_eq!(v["roles"], serde_json::json!([]));
        assert!(v.get("user").is_none() && v.get("session").is_none());
    }

    #[test]
    fn every_kind_is_snake_case() {
        let kinds = [
            (Kind::Connection, "connection"),
            (Kind::Authentication, "authentication"),
            (Kind::Statement, "statement"),
            (Kind::SessionEnd, "session_end"),
            (Kind::TokenExchange, "token_exchange"),
            (Kind::TokenDelegation, "token_delegation"),
            (Kind::TokenRevocation, "token_revocation"),
            (Kind::Approval, "approval"),
        ];
        for (kind, name) in kinds {
            let v: serde_json::Value = serde_json::from_str(&line(&Event::new(kind))).unwrap();
            assert_eq!(v["kind"], name);
        }
    }

    #[test]
    fn hostile_text_stays_on_one_line() {
        let mut e = Event::at(UNIX_EPOCH, Kind::Connection);
        e.detail = Some("a\nb\"}\r\n{\"kind\":\"forged\"\u{2028}\0".into());
        let text = line(&e);
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["detail"], e.detail.as_deref().unwrap());
        assert_eq!(v["kind"], "connection");
    }
}
