//! Delegation chains and revocation through the real gateway and a real PostgreSQL: a root
//! token hands a narrower token to an agent, the agent to a sub-agent; each level can do less;
//! a child asking for more than its parent is refused with a reason; revoking the middle link
//! ends the sub-agent's live psql session and the agent's, leaves the root's untouched, and
//! stays in force after a restart.

mod common;

use std::time::Duration;

use common::admin::{error_code, http_json, HttpReply};
use common::client::LivePsql;
use common::idp::chain_roles;
use common::{closes_within, connect, eventually, gateway_config, GatewaySetup, Stack, DB, LABEL};
use serde_json::{json, Value};

fn configure(setup: &GatewaySetup) {
    chain_roles(setup, DB);
    setup.set("identity.max_delegation_depth", 2);
}

fn api(stack: &Stack, method: &str, path: &str, bearer: Option<&str>, body: Value) -> HttpReply {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    http_json(stack.gateway.admin_addr(), method, path, bearer, &body)
}

/// Delegates from `parent`; returns the response's JSON (status 200 asserted).
fn delegate(stack: &Stack, parent: &str, body: Value) -> Value {
    let reply = api(stack, "POST", "/v1/token/delegate", Some(parent), body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

fn refused(stack: &Stack, parent: &str, body: Value) -> (u16, String) {
    let reply = api(stack, "POST", "/v1/token/delegate", Some(parent), body);
    (reply.status, error_code(&reply))
}

async fn client(
    stack: &Stack,
    token: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect(&gateway_config(stack.gateway.addr(), DB, LABEL, token)).await
}

fn sessions(stack: &Stack) -> Vec<Value> {
    let reply = api(
        stack,
        "GET",
        "/v1/sessions",
        Some(&stack.token),
        Value::Null,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    v["sessions"].as_array().unwrap().clone()
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| format!("{} {}", d.code().code(), d.message()))
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_narrows_and_revoking_its_middle_ends_the_sub_agent() {
    let mut stack = Stack::start_with(configure);
    let root = stack
        .setup
        .issue_token("ci-job", &["deployer"], &[DB], "1h");

    let agent = delegate(
        &stack,
        &root,
        json!({"name": "agent", "roles": ["agent"], "resources": [DB], "ttl": "30m"}),
    );
    let agent_token = agent["token"].as_str().unwrap().to_string();
    assert_eq!(agent["subject"], "agent");
    assert_eq!(agent["chain"][0]["name"], "ci-job");
    let sub = delegate(
        &stack,
        &agent_token,
        json!({"name": "sub-agent", "roles": ["reader"], "resources": [DB], "ttl": "10m"}),
    );
    let sub_token = sub["token"].as_str().unwrap().to_string();
    let names: Vec<&str> = sub["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci-job", "agent"]);
    assert_eq!(sub["chain"][1]["jti"], agent["token_id"]);

    // Asking for more than the parent holds is refused, with the reason.
    let wider = [
        (
            json!({"name": "x", "roles": ["deployer"], "resources": [DB]}),
            "role_too_strong",
        ),
        (
            json!({"name": "x", "roles": ["admin"], "resources": [DB]}),
            "role_too_strong",
        ),
        (
            json!({"name": "x", "roles": ["reader"], "resources": ["other"]}),
            "resource_not_held",
        ),
        (
            json!({"name": "x", "roles": ["reader"], "resources": ["*"]}),
            "resource_not_held",
        ),
        (
            json!({"name": "x", "roles": ["reader"], "resources": [DB], "ttl": "2h"}),
            "outlives_parent",
        ),
    ];
    for (body, code) in wider {
        assert_eq!(
            refused(&stack, &agent_token, body.clone()),
            (403, code.to_string()),
            "{body}"
        );
    }
    let deeper = json!({"name": "x", "roles": ["reader"], "resources": [DB]});
    assert_eq!(
        refused(&stack, &sub_token, deeper.clone()),
        (403, "chain_too_deep".into())
    );
    let r = api(&stack, "POST", "/v1/token/delegate", None, deeper.clone());
    assert_eq!((r.status, error_code(&r)), (401, "unauthenticated".into()));
    let r = api(
        &stack,
        "POST",
        "/v1/token/delegate",
        Some("not.a.token"),
        deeper.clone(),
    );
    assert_eq!((r.status, error_code(&r)), (401, "invalid_token".into()));
    let r = http_json(
        stack.gateway.admin_addr(),
        "POST",
        "/v1/token/delegate",
        Some(&agent_token),
        "{\"name\":",
    );
    assert_eq!((r.status, error_code(&r)), (400, "invalid_request".into()));

    // Each level can do less than the one above it.
    let root_client = client(&stack, &root).await.unwrap();
    root_client
        .batch_execute("CREATE TABLE jobs (id int, note text)")
        .await
        .unwrap();
    let agent_client = client(&stack, &agent_token).await.unwrap();
    agent_client
        .batch_execute("INSERT INTO jobs VALUES (1, 'from the agent')")
        .await
        .unwrap();
    let e = agent_client
        .batch_execute("CREATE TABLE nope (id int)")
        .await
        .unwrap_err();
    assert!(sqlstate(&e).starts_with("42501"), "{e:?}");
    let sub_client = client(&stack, &sub_token).await.unwrap();
    let rows = sub_client
        .query("SELECT note FROM jobs", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let e = sub_client
        .batch_execute("INSERT INTO jobs VALUES (2, 'x')")
        .await
        .unwrap_err();
    assert!(sqlstate(&e).starts_with("42501"), "{e:?}");
    drop(sub_client);

    // The sub-agent's live psql session.
    let mut psql = LivePsql::start(stack.gateway.addr(), DB, "sub-agent", &sub_token);
    let mut seen = Vec::new();
    psql.send("SELECT 'alive-' || count(*) FROM jobs;");
    assert!(psql.wait_for("alive-1", &mut seen).is_some(), "{seen:?}");

    // The listing shows every live session with its chain; only admins may see it.
    let sub_jti = sub["token_id"].as_str().unwrap().to_string();
    let agent_jti = agent["token_id"].as_str().unwrap().to_string();
    let live = sessions(&stack);
    let listed = live
        .iter()
        .find(|s| s["token_id"] == sub_jti.as_str())
        .expect("psql listed");
    assert_eq!(listed["chain"].as_array().unwrap().len(), 2);
    assert_eq!(listed["resource"], DB);
    assert_eq!(listed["user"], "sub-agent");
    let r = api(&stack, "GET", "/v1/sessions", Some(&root), Value::Null);
    assert_eq!((r.status, error_code(&r)), (403, "not_admin".into()));

    // A child may not revoke its ancestors; an ancestor may revoke its descendants.
    let r = api(
        &stack,
        "POST",
        "/v1/token/revoke",
        Some(&sub_token),
        json!({"token_id": agent_jti}),
    );
    assert_eq!((r.status, error_code(&r)), (403, "not_allowed".into()));
    let r = api(
        &stack,
        "POST",
        "/v1/token/revoke",
        Some(&root),
        json!({"token_id": agent_jti}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // The sub-agent's and the agent's sessions end; the root's stays.
    let gone = eventually(Duration::from_secs(5), || async {
        !sessions(&stack)
            .iter()
            .any(|s| s["token_id"] == sub_jti.as_str() || s["token_id"] == agent_jti.as_str())
    })
    .await;
    assert!(gone, "{:?}", sessions(&stack));
    psql.send("SELECT 'still-here';");
    assert!(psql.wait_for("revoked", &mut seen).is_some(), "{seen:?}");
    assert!(agent_client.simple_query("SELECT 1").await.is_err());
    let rows = root_client
        .query("SELECT count(*) FROM jobs", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 1);

    // Revoked tokens cannot connect or delegate; the root still can.
    for token in [&sub_token, &agent_token] {
        let e = client(&stack, token).await.expect_err("refused");
        assert!(sqlstate(&e).contains("revoked"), "{e:?}");
    }
    let r = api(
        &stack,
        "POST",
        "/v1/token/delegate",
        Some(&agent_token),
        deeper.clone(),
    );
    assert_eq!((r.status, error_code(&r)), (401, "token_revoked".into()));

    // Revocations survive a restart.
    drop(root_client);
    drop(agent_client);
    stack.gateway.kill();
    stack.gateway = stack.setup.start();
    for token in [&sub_token, &agent_token] {
        let e = client(&stack, token)
            .await
            .expect_err("refused after restart");
        assert!(sqlstate(&e).contains("revoked"), "{e:?}");
    }
    let root_client = client(&stack, &root).await.unwrap();
    root_client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn token_requests_are_rate_limited_per_tree() {
    let stack = Stack::start_with(|setup| {
        configure(setup);
        setup.set("admin.token_burst", 2);
        setup.set("admin.token_rate_per_minute", 1);
    });
    let root = stack
        .setup
        .issue_token("ci-job", &["deployer"], &[DB], "1h");
    let body = json!({"name": "a", "roles": ["reader"], "resources": [DB]});
    let child = delegate(&stack, &root, body.clone());
    // The child shares its root's budget.
    delegate(&stack, child["token"].as_str().unwrap(), body.clone());
    let r = api(
        &stack,
        "POST",
        "/v1/token/delegate",
        Some(&root),
        body.clone(),
    );
    assert_eq!((r.status, error_code(&r)), (429, "rate_limited".into()));
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another tree has its own budget.
    let other = stack
        .setup
        .issue_token("other-job", &["deployer"], &[DB], "1h");
    delegate(&stack, &other, body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_commands_drive_the_api_over_https() {
    let stack = Stack::start_with(|setup| {
        configure(setup);
        setup.set("admin.tls_cert", "tls.crt");
        setup.set("admin.tls_key", "tls.key");
    });
    let gateway = format!("https://{}", stack.gateway.admin_addr());
    let ca = stack.setup.dir().join("tls.crt");
    let ca = ca.to_str().unwrap();
    let env = stack.setup.env();
    let root = stack
        .setup
        .issue_token("ci-job", &["deployer"], &[DB], "1h");
    let run = |args: &[&str]| common::sluice(args, env);

    // The child token alone on stdout, ready for `CHILD=$(...)`.
    let out = run(&[
        "token",
        "delegate",
        "--gateway",
        &gateway,
        "--ca-file",
        ca,
        "--token",
        &root,
        "--name",
        "agent",
        "--role",
        "agent",
        "--resource",
        DB,
        "--ttl",
        "10m",
    ]);
    assert!(out.success(), "{}", out.stderr);
    let child = out.stdout.trim().to_string();
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert_eq!(child.split('.').count(), 3, "{child}");

    // Inspect needs no gateway: it shows the chain and the rights.
    let out = run(&["token", "inspect", &child]);
    assert!(out.success(), "{}", out.stderr);
    for word in ["ci-job", "agent", DB, "expires in"] {
        assert!(out.stdout.contains(word), "{word}: {}", out.stdout);
    }

    let session = client(&stack, &child).await.unwrap();
    session.simple_query("SELECT 1").await.unwrap();
    let out = run(&[
        "sessions",
        "--gateway",
        &gateway,
        "--ca-file",
        ca,
        "--token",
        &stack.token,
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("ci-job > agent"), "{}", out.stdout);

    // A refusal names its reason and fails the command.
    let out = run(&[
        "token",
        "delegate",
        "--gateway",
        &gateway,
        "--ca-file",
        ca,
        "--token",
        &child,
        "--name",
        "x",
        "--role",
        "deployer",
        "--resource",
        DB,
    ]);
    assert!(!out.success());
    assert!(out.stderr.contains("role_too_strong"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let inspect = run(&["token", "inspect", "--json", &child]);
    let claims: Value = serde_json::from_str(&inspect.stdout).unwrap();
    let jti = claims["jti"].as_str().unwrap();
    let out = run(&[
        "token",
        "revoke",
        "--gateway",
        &gateway,
        "--ca-file",
        ca,
        "--token",
        &root,
        "--id",
        jti,
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("revoked {jti}"));
    assert!(closes_within(&session, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_errors_are_json_with_stable_codes() {
    let stack = Stack::start_with(configure);
    let addr = stack.gateway.admin_addr();
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(100_000));
    let r = http_json(addr, "POST", "/v1/token/delegate", Some(&stack.token), &big);
    assert_eq!((r.status, error_code(&r)), (413, "body_too_large".into()));
    let r = http_json(addr, "GET", "/v1/token/delegate", Some(&stack.token), "");
    assert_eq!(
        (r.status, error_code(&r)),
        (405, "method_not_allowed".into())
    );
    let r = http_json(addr, "POST", "/v1/token/nothing", Some(&stack.token), "{}");
    assert_eq!((r.status, error_code(&r)), (404, "not_found".into()));
    let r = http_json(
        addr,
        "POST",
        "/v1/token/exchange",
        None,
        "{\"id_token\":\"x\"}",
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (404, "exchange_disabled".into())
    );
    let r = http_json(
        addr,
        "POST",
        "/v1/token/revoke",
        Some(&stack.token),
        "{\"token_id\":\"x\",\"extra\":1}",
    );
    assert_eq!((r.status, error_code(&r)), (400, "invalid_request".into()));
    // A basic-auth header is not a bearer token.
    let raw =
        format!("GET /v1/sessions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic YTpi\r\n\r\n");
    let r = common::admin::http_raw(addr, raw.as_bytes()).unwrap();
    assert_eq!((r.status, error_code(&r)), (401, "unauthenticated".into()));
    // After all that, the API still answers.
    assert_eq!(sessions(&stack).len(), 0);
}
