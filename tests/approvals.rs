//! Statements held for a human's approval, through the real gateway and a real PostgreSQL: a
//! held DELETE approved by an approver runs and its rows are gone; a denied one and a timed-out
//! one leave the table unchanged and the session usable; an approver cannot approve its own
//! chain's request; a client that hangs up withdraws its request; an approval window lets the
//! same statement through again; the webhook is told; psql shows the notice.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::admin::{error_code, http_json, HttpReply};
use common::client::LivePsql;
use common::idp::chain_roles;
use common::{connect, eventually, gateway_config, GatewaySetup, Stack, DB, LABEL};
use serde_json::{json, Value};

fn configure(setup: &GatewaySetup) {
    chain_roles(setup, DB);
    // The agent's writes need a human's approval.
    setup.set("role.agent.rules.*.write", "review");
    setup.set("role.oncall.resources", vec![DB]);
    setup.set("role.oncall.approver", true);
    setup.set("approvals.timeout", "30s");
}

struct Fixture {
    stack: Stack,
    oncall: String,
    agent: String,
}

async fn start(extra: impl FnOnce(&GatewaySetup)) -> Fixture {
    let stack = Stack::start_with(|s| {
        configure(s);
        extra(s);
    });
    let oncall = stack
        .setup
        .issue_token("oncall-human", &["oncall"], &[DB], "1h");
    let agent = stack.setup.issue_token("agent-7", &["agent"], &[DB], "1h");
    let direct = stack.direct().await;
    direct
        .batch_execute(
            "CREATE TABLE jobs (id int primary key, note text);
             INSERT INTO jobs SELECT g, 'n' || g FROM generate_series(1, 10) g;
             GRANT ALL ON jobs TO PUBLIC;",
        )
        .await
        .unwrap();
    Fixture {
        stack,
        oncall,
        agent,
    }
}

impl Fixture {
    fn api(&self, method: &str, path: &str, token: &str, body: Value) -> HttpReply {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        http_json(
            self.stack.gateway.admin_addr(),
            method,
            path,
            Some(token),
            &body,
        )
    }

    fn approvals(&self) -> Value {
        let r = self.api("GET", "/v1/approvals", &self.oncall, Value::Null);
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    /// Waits for one pending request and returns it.
    async fn pending(&self) -> Value {
        let mut found = Value::Null;
        let seen = eventually(Duration::from_secs(10), || {
            let list = self.approvals();
            let first = list["pending"].get(0).cloned();
            if let Some(f) = &first {
                found = f.clone();
            }
            async move { first.is_some() }
        })
        .await;
        assert!(seen, "no pending approval: {}", self.approvals());
        found
    }

    fn decide(&self, id: &str, verb: &str, token: &str, body: Value) -> HttpReply {
        self.api("POST", &format!("/v1/approvals/{id}/{verb}"), token, body)
    }

    async fn count(&self) -> i64 {
        let direct = self.stack.direct().await;
        direct
            .query_one("SELECT count(*) FROM jobs", &[])
            .await
            .unwrap()
            .get(0)
    }

    async fn client(&self, token: &str) -> tokio_postgres::Client {
        let config = gateway_config(self.stack.gateway.addr(), DB, LABEL, token);
        connect(&config).await.unwrap()
    }
}

fn db_error(e: &tokio_postgres::Error) -> (String, String) {
    let d = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    (d.code().code().to_string(), d.message().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_delete_runs_and_a_denied_one_does_not() {
    let f = start(|_| {}).await;
    let agent = Arc::new(f.client(&f.agent).await);

    // Approved: the rows are gone.
    let a = agent.clone();
    let held = tokio::spawn(async move { a.execute("DELETE FROM jobs WHERE id <= 3", &[]).await });
    let request = f.pending().await;
    assert_eq!(request["statement"], "DELETE FROM jobs WHERE id <= 3");
    assert_eq!(request["subject"], "agent-7");
    assert_eq!(request["resource"], DB);
    assert!(
        request["rule"].as_str().unwrap().contains("write"),
        "{request}"
    );
    assert!(request["waiting_seconds"].as_f64().is_some());
    assert_eq!(f.count().await, 10, "nothing runs before the approval");
    let id = request["id"].as_str().unwrap();
    let r = f.decide(id, "approve", &f.oncall, json!({"comment": "looks fine"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(held.await.unwrap().unwrap(), 3);
    assert_eq!(f.count().await, 7);
    // Deciding twice is refused.
    let r = f.decide(id, "deny", &f.oncall, Value::Null);
    assert_eq!((r.status, error_code(&r)), (409, "already_decided".into()));

    // Denied, with the extended protocol: nothing changes, the session stays usable.
    let a = agent.clone();
    let held =
        tokio::spawn(async move { a.execute("DELETE FROM jobs WHERE id = $1", &[&5i32]).await });
    let request = f.pending().await;
    let id = request["id"].as_str().unwrap();
    let r = f.decide(id, "deny", &f.oncall, json!({"comment": "not in prod"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let (code, message) = db_error(&held.await.unwrap().unwrap_err());
    assert_eq!(code, "42501");
    assert!(
        message.contains("denied by oncall-human") && message.contains("not in prod"),
        "{message}"
    );
    assert_eq!(f.count().await, 7);
    let rows = agent.query("SELECT count(*) FROM jobs", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 7);

    let recent = f.approvals()["recent"].as_array().unwrap().clone();
    let states: Vec<&str> = recent
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["denied", "approved"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_statement_fails_and_the_session_goes_on() {
    let f = start(|s| s.set("approvals.timeout", "1s")).await;
    let agent = f.client(&f.agent).await;
    let e = agent
        .batch_execute("UPDATE jobs SET note = 'x'")
        .await
        .unwrap_err();
    let (code, message) = db_error(&e);
    assert_eq!(code, "42501");
    assert!(message.contains("timed out"), "{message}");
    agent.batch_execute("SELECT 1").await.unwrap();
    let direct = f.stack.direct().await;
    let changed: i64 = direct
        .query_one("SELECT count(*) FROM jobs WHERE note = 'x'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(changed, 0);
    assert_eq!(f.approvals()["recent"][0]["state"], "timed_out");
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_approves_their_own_chain() {
    let f = start(|_| {}).await;
    // A root that is also an approver hands the agent role to a child.
    let root = f
        .stack
        .setup
        .issue_token("ci-job", &["deployer", "oncall"], &[DB], "1h");
    let child = f.api(
        "POST",
        "/v1/token/delegate",
        &root,
        json!({"name": "sub", "roles": ["agent"], "resources": [DB]}),
    );
    let child: Value = serde_json::from_str(&child.body).unwrap();
    let child_token = child["token"].as_str().unwrap().to_string();
    let agent = Arc::new(f.client(&child_token).await);
    let a = agent.clone();
    let held = tokio::spawn(async move { a.execute("DELETE FROM jobs", &[]).await });
    let id = f.pending().await["id"].as_str().unwrap().to_string();
    let r = f.decide(&id, "approve", &root, Value::Null);
    assert_eq!((r.status, error_code(&r)), (403, "own_chain".into()));
    // A token without the approver role may not decide at all.
    let r = f.decide(&id, "approve", &f.agent, Value::Null);
    assert_eq!((r.status, error_code(&r)), (403, "not_approver".into()));
    let r = f.api("GET", "/v1/approvals", &f.agent, Value::Null);
    assert_eq!((r.status, error_code(&r)), (403, "not_approver".into()));
    // Someone else may.
    let r = f.decide(&id, "deny", &f.oncall, Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(held.await.unwrap().is_err());
    assert_eq!(f.count().await, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_withdraws_its_request_and_psql_sees_the_notice() {
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let posted = Arc::new(Mutex::new(String::new()));
    let sink = posted.clone();
    std::thread::spawn(move || {
        let (mut conn, _) = hook.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        *sink.lock().unwrap() = String::from_utf8_lossy(&got).into_owned();
        let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    });
    let f = start(|s| s.set("approvals.webhook_url", hook_url.as_str())).await;

    let mut psql = LivePsql::start(f.stack.gateway.addr(), DB, "agent-7", &f.agent);
    psql.send("DELETE FROM jobs WHERE id = 9;");
    let mut seen = Vec::new();
    let notice = psql.wait_for("awaits approval", &mut seen);
    let notice = notice.unwrap_or_else(|| panic!("no notice: {seen:?}"));
    let id = f.pending().await["id"].as_str().unwrap().to_string();
    assert!(
        notice.contains(&id) && notice.contains("sluice approvals approve"),
        "{notice}"
    );
    let told = eventually(Duration::from_secs(10), || {
        let body = posted.lock().unwrap().clone();
        async move { body.contains("DELETE FROM jobs WHERE id = 9") }
    })
    .await;
    assert!(told, "the webhook got: {}", posted.lock().unwrap());
    assert!(posted.lock().unwrap().starts_with("POST /hook HTTP/1.1"));

    drop(psql);
    let withdrawn = eventually(Duration::from_secs(10), || {
        let state = f.approvals()["recent"][0]["state"].clone();
        async move { state == "withdrawn" }
    })
    .await;
    assert!(withdrawn, "{}", f.approvals());
    assert_eq!(f.count().await, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_window_lets_the_same_statement_through_and_the_cli_decides() {
    let f = start(|_| {}).await;
    let agent = Arc::new(f.client(&f.agent).await);
    let a = agent.clone();
    let held = tokio::spawn(async move { a.execute("DELETE FROM jobs WHERE id = 1", &[]).await });
    let id = f.pending().await["id"].as_str().unwrap().to_string();

    let gateway = format!("http://{}", f.stack.gateway.admin_addr());
    let env = f.stack.setup.env();
    let out = common::sluice(
        &[
            "approvals",
            "list",
            "--gateway",
            &gateway,
            "--token",
            &f.oncall,
        ],
        env,
    );
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains(&id) && out.stdout.contains("DELETE FROM jobs WHERE id = 1"),
        "{}",
        out.stdout
    );
    let out = common::sluice(
        &[
            "approvals",
            "approve",
            &id,
            "--gateway",
            &gateway,
            "--token",
            &f.oncall,
            "--window",
            "10m",
        ],
        env,
    );
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!("approved {id}")),
        "{}",
        out.stdout
    );
    assert_eq!(held.await.unwrap().unwrap(), 1);

    // The same statement (another literal) by the same identity runs at once in the window.
    assert_eq!(
        agent
            .execute("DELETE FROM jobs WHERE id = 2", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(f.count().await, 8);
    // Another identity with the same role still waits.
    let other = f
        .stack
        .setup
        .issue_token("agent-8", &["agent"], &[DB], "1h");
    let b = Arc::new(f.client(&other).await);
    let b2 = b.clone();
    let held = tokio::spawn(async move { b2.execute("DELETE FROM jobs WHERE id = 3", &[]).await });
    let id = f.pending().await["id"].as_str().unwrap().to_string();
    let r = f.decide(&id, "deny", &f.oncall, Value::Null);
    assert_eq!(r.status, 200);
    assert!(held.await.unwrap().is_err());
    assert_eq!(f.count().await, 8);
}
