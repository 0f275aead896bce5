//! The audit trail through the real gateway: a CI job exchanges its identity token, hands a
//! narrower token to an agent and the agent to a sub-agent; every statement each of them runs
//! is one event carrying the whole chain, the decision and the rule, with literals replaced;
//! exchanges, delegations, revocations, refusals and sessions are events too. A gateway killed
//! with SIGKILL loses at most the events of the last flush interval.

mod common;

use std::time::Duration;

use common::admin::http_json;
use common::idp::{add_provider, chain_roles, ci_claims, IdpKey, JwksServer, AUDIENCE, ISSUER};
use common::{connect, eventually, gateway_config, GatewaySetup, Stack, DB, LABEL};
use serde_json::{json, Value};

fn configure(setup: &GatewaySetup, jwks_url: &str) {
    chain_roles(setup, DB);
    add_provider(setup, jwks_url, DB);
    setup.set("audit.file", "audit/events.jsonl");
    setup.set("audit.flush_interval", "1s");
    std::fs::create_dir_all(setup.dir().join("audit")).unwrap();
}

fn events(setup: &GatewaySetup) -> Vec<Value> {
    let text = std::fs::read_to_string(setup.dir().join("audit/events.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn chain_names(e: &Value) -> Vec<String> {
    e["chain"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .map(|l| l["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn post(stack: &Stack, path: &str, bearer: Option<&str>, body: Value) -> Value {
    let r = http_json(
        stack.gateway.admin_addr(),
        "POST",
        path,
        bearer,
        &body.to_string(),
    );
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_statement_of_a_chain_is_audited_with_the_whole_chain() {
    let key = IdpKey::generate("k1");
    let jwks = JwksServer::start(&[&key]);
    let mut stack = Stack::start_with(|s| configure(s, &jwks.url()));
    let id_token = key.sign(&ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/main"));

    let root = post(
        &stack,
        "/v1/token/exchange",
        None,
        json!({"id_token": id_token}),
    );
    let root_token = root["token"].as_str().unwrap().to_string();
    let agent = post(
        &stack,
        "/v1/token/delegate",
        Some(&root_token),
        json!({"name": "agent", "roles": ["agent"], "resources": [DB]}),
    );
    let agent_token = agent["token"].as_str().unwrap().to_string();
    let sub = post(
        &stack,
        "/v1/token/delegate",
        Some(&agent_token),
        json!({"name": "sub-agent", "roles": ["reader"], "resources": [DB]}),
    );
    let sub_token = sub["token"].as_str().unwrap().to_string();
    // A refused delegation and a refused exchange.
    post(
        &stack,
        "/v1/token/delegate",
        Some(&sub_token),
        json!({"name": "x", "roles": ["deployer"], "resources": [DB]}),
    );
    post(
        &stack,
        "/v1/token/exchange",
        None,
        json!({"id_token": "not-a-jwt"}),
    );

    let session = |token: String| {
        let config = gateway_config(stack.gateway.addr(), DB, LABEL, &token);
        async move { connect(&config).await.unwrap() }
    };
    let ci = session(root_token.clone()).await;
    ci.batch_execute("CREATE TABLE notes (id int, body text)")
        .await
        .unwrap();
    let a = session(agent_token.clone()).await;
    a.batch_execute("INSERT INTO notes VALUES (1, 'card 4111111111111111')")
        .await
        .unwrap();
    let s = session(sub_token.clone()).await;
    s.query(
        "SELECT body FROM notes WHERE body <> $1",
        &[&"secret-literal-77"],
    )
    .await
    .unwrap();
    assert!(s
        .batch_execute("DELETE FROM notes WHERE id = 424242")
        .await
        .is_err());
    // Each execution of a prepared statement is one event, judged or relayed untouched.
    let prepared = s
        .prepare("SELECT id FROM notes WHERE id > $1")
        .await
        .unwrap();
    for i in 0..3i32 {
        s.query(&prepared, &[&i]).await.unwrap();
    }
    let unrestricted = session(stack.token.clone()).await;
    let prepared = unrestricted
        .prepare("SELECT count(*) FROM notes WHERE id < $1")
        .await
        .unwrap();
    for i in 0..4i32 {
        unrestricted.query(&prepared, &[&i]).await.unwrap();
    }
    let bad = gateway_config(stack.gateway.addr(), DB, LABEL, "not.a.token");
    assert!(connect(&bad).await.is_err());
    post(
        &stack,
        "/v1/token/revoke",
        Some(&root_token),
        json!({"token_id": agent["token_id"]}),
    );
    drop((ci, a, s, unrestricted));

    // A graceful stop writes everything queued.
    stack.gateway.sigterm();
    assert!(stack.gateway.wait_exit(Duration::from_secs(20)).is_some());
    let all = events(&stack.setup);
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "connection",
        "authentication",
        "statement",
        "session_end",
        "token_exchange",
        "token_delegation",
        "token_revocation",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }

    let statements: Vec<&Value> = all.iter().filter(|e| e["kind"] == "statement").collect();
    let by = |subject: &str| -> Vec<&Value> {
        statements
            .iter()
            .copied()
            .filter(|e| e["subject"] == subject)
            .collect()
    };
    let root_subject = root["subject"].as_str().unwrap();
    let create = by(root_subject);
    assert!(create.iter().any(|e| e["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("create table notes")));
    // The chain runs from the root to the acting token itself.
    assert_eq!(chain_names(create[0]), [root_subject]);

    let insert = by("agent");
    let insert = insert
        .iter()
        .find(|e| e["fingerprint"].as_str().unwrap().starts_with("insert"))
        .expect("the agent's insert");
    assert_eq!(chain_names(insert), [root_subject, "agent"]);
    assert_eq!(insert["decision"], "allow");
    assert!(
        insert["rule"].as_str().unwrap().contains("role.agent"),
        "{insert}"
    );

    let sub_events = by("sub-agent");
    assert!(sub_events.len() >= 2, "{sub_events:?}");
    for e in &sub_events {
        assert_eq!(chain_names(e), [root_subject, "agent", "sub-agent"], "{e}");
        assert_eq!(e["token"], sub["token_id"]);
        assert_eq!(e["resource"], DB);
        assert_eq!(e["user"], LABEL);
        assert!(e["client"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(e["added_us"].as_f64().is_some(), "{e}");
    }
    let delete = sub_events
        .iter()
        .find(|e| e["fingerprint"].as_str().unwrap().starts_with("delete"))
        .expect("the sub-agent's delete");
    assert_eq!(delete["decision"], "block");
    assert!(
        delete["rule"].as_str().unwrap().ends_with(".write"),
        "{delete}"
    );

    let executions = |fp: &str| statements.iter().filter(|e| e["fingerprint"] == fp).count();
    assert_eq!(executions("select id from notes where id > $1"), 3);
    let relayed: Vec<&Value> = statements
        .iter()
        .copied()
        .filter(|e| e["rule"] == "unrestricted")
        .collect();
    assert_eq!(
        executions("select count ( * ) from notes where id < $1"),
        4,
        "{relayed:?}"
    );

    // Literal values never reach the trail.
    let text = std::fs::read_to_string(stack.setup.dir().join("audit/events.jsonl")).unwrap();
    for secret in [
        "4111111111111111",
        "secret-literal-77",
        "424242",
        id_token.as_str(),
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the audit trail"
        );
    }
    for token in [&root_token, &agent_token, &sub_token] {
        assert!(
            !text.contains(token.as_str()),
            "a session token leaked into the trail"
        );
    }

    let decided = |kind: &str, decision: &str| {
        all.iter()
            .any(|e| e["kind"] == kind && e["decision"] == decision)
    };
    assert!(decided("authentication", "success"));
    assert!(decided("authentication", "failure"));
    assert!(decided("token_exchange", "success"));
    assert!(decided("token_exchange", "refuse"));
    assert!(decided("token_delegation", "success"));
    assert!(decided("token_delegation", "refuse"));
    assert!(decided("token_revocation", "success"));
    let delegation = all
        .iter()
        .find(|e| e["kind"] == "token_delegation" && e["subject"] == "sub-agent")
        .unwrap();
    assert_eq!(
        chain_names(delegation),
        [root_subject, "agent", "sub-agent"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_loses_at_most_one_flush_interval() {
    let key = IdpKey::generate("k1");
    let jwks = JwksServer::start(&[&key]);
    let mut stack = Stack::start_with(|s| configure(s, &jwks.url()));
    let token = stack
        .setup
        .issue_token("ci-job", &["deployer"], &[DB], "1h");
    let config = gateway_config(stack.gateway.addr(), DB, LABEL, &token);
    let client = connect(&config).await.unwrap();
    const N: usize = 200;
    for i in 0..N {
        client
            .simple_query(&format!("SELECT {i} AS n"))
            .await
            .unwrap();
    }
    // Everything recorded before the last flush tick is on disk; wait out two intervals so
    // that every statement above is, then kill without warning.
    std::thread::sleep(Duration::from_millis(2500));
    stack.gateway.kill();
    let statements = events(&stack.setup)
        .into_iter()
        .filter(|e| e["kind"] == "statement" && e["subject"] == "ci-job")
        .count();
    assert_eq!(statements, N, "statement events on disk after SIGKILL");
    // Not waiting loses what was recorded after the last tick, and no more than that: the
    // file never holds a torn or duplicated event.
    let restarted = stack.setup.start();
    let config = gateway_config(restarted.addr(), DB, LABEL, &token);
    let client = connect(&config).await.unwrap();
    client.simple_query("SELECT 'after restart'").await.unwrap();
    let on_disk = eventually(Duration::from_secs(5), || async {
        events(&stack.setup)
            .iter()
            .any(|e| e["kind"] == "statement" && e["fingerprint"] == "select ?")
    })
    .await;
    assert!(on_disk);
}
