//! Token exchange through the real gateway: a CI job's identity token, signed by a provider
//! whose key set the test serves on a loopback port, becomes a session token whose rights come
//! from the claim rules; the three-level chain CI job -> agent -> sub-agent narrows at each
//! step; hostile identity tokens are refused with a reason; a rotated-out key stops working
//! once the key set is refreshed; and an identity token cannot be exchanged again once the
//! session token it became was revoked.

mod common;

use std::time::Duration;

use common::admin::{error_code, http_json, HttpReply};
use common::idp::{
    add_provider, chain_roles, ci_claims, now, IdpKey, JwksServer, AUDIENCE, ISSUER,
};
use common::{connect, eventually, gateway_config, GatewaySetup, Stack, DB, LABEL};
use serde_json::{json, Value};

fn configure(setup: &GatewaySetup, jwks_url: &str) {
    chain_roles(setup, DB);
    add_provider(setup, jwks_url, DB);
}

struct Idp {
    key: IdpKey,
    jwks: JwksServer,
}

fn start() -> (Stack, Idp) {
    let key = IdpKey::generate("k1");
    let jwks = JwksServer::start(&[&key]);
    let url = jwks.url();
    let stack = Stack::start_with(|setup| configure(setup, &url));
    (stack, Idp { key, jwks })
}

fn post(stack: &Stack, path: &str, bearer: Option<&str>, body: Value) -> HttpReply {
    http_json(
        stack.gateway.admin_addr(),
        "POST",
        path,
        bearer,
        &body.to_string(),
    )
}

fn exchange(stack: &Stack, id_token: &str) -> HttpReply {
    post(
        stack,
        "/v1/token/exchange",
        None,
        json!({ "id_token": id_token }),
    )
}

fn ok(reply: HttpReply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

fn main_branch(idp: &Idp) -> String {
    idp.key
        .sign(&ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/main"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ci_job_exchanges_its_token_and_hands_narrower_ones_down() {
    let (stack, idp) = start();

    // The main branch's job gets `deployer`; a feature branch only `reader`.
    let root = ok(exchange(&stack, &main_branch(&idp)));
    assert_eq!(root["roles"], json!(["deployer"]));
    assert_eq!(root["subject"], "ci:repo:acme/api:ref:refs/heads/main");
    assert!(root["chain"].as_array().unwrap().is_empty());
    let left = root["expires_at"].as_u64().unwrap() - now();
    assert!(
        left <= 600,
        "never beyond the identity token's own expiry: {left}"
    );
    let feature = idp
        .key
        .sign(&ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/x"));
    assert_eq!(ok(exchange(&stack, &feature))["roles"], json!(["reader"]));
    let other = idp
        .key
        .sign(&ci_claims(ISSUER, AUDIENCE, "acme/web", "refs/heads/main"));
    let r = exchange(&stack, &other);
    assert_eq!((r.status, error_code(&r)), (401, "no_mapping".into()));

    let root_token = root["token"].as_str().unwrap();
    let agent = ok(post(
        &stack,
        "/v1/token/delegate",
        Some(root_token),
        json!({"name": "agent", "roles": ["agent"], "resources": [DB], "ttl": "5m"}),
    ));
    let agent_token = agent["token"].as_str().unwrap();
    let sub = ok(post(
        &stack,
        "/v1/token/delegate",
        Some(agent_token),
        json!({"name": "sub-agent", "roles": ["reader"], "resources": [DB], "ttl": "2m"}),
    ));
    let sub_token = sub["token"].as_str().unwrap();
    let r = post(
        &stack,
        "/v1/token/delegate",
        Some(sub_token),
        json!({"name": "x", "roles": ["agent"], "resources": [DB]}),
    );
    assert_eq!((r.status, error_code(&r)), (403, "role_too_strong".into()));

    let session = |token: &str| {
        let config = gateway_config(stack.gateway.addr(), DB, LABEL, token);
        async move { connect(&config).await.unwrap() }
    };
    let ci = session(root_token).await;
    ci.batch_execute("CREATE TABLE deploys (id int)")
        .await
        .unwrap();
    let a = session(agent_token).await;
    a.batch_execute("INSERT INTO deploys VALUES (1)")
        .await
        .unwrap();
    assert!(a.batch_execute("DROP TABLE deploys").await.is_err());
    let s = session(sub_token).await;
    assert_eq!(
        s.query("SELECT id FROM deploys", &[]).await.unwrap().len(),
        1
    );
    assert!(s.batch_execute("DELETE FROM deploys").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_identity_tokens_are_refused_with_a_reason() {
    let (stack, idp) = start();
    let good = ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/main");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        idp.key.sign(&c)
    };
    let stranger = IdpKey::generate("k1");
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "unsupported_algorithm"),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://evil.test")),
            "unknown_issuer",
        ),
        (
            "no issuer",
            with(&|c| drop(c.as_object_mut().unwrap().remove("iss"))),
            "missing_claim",
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("other")),
            "wrong_audience",
        ),
        (
            "audience list without ours",
            with(&|c| c["aud"] = json!(["a", "b"])),
            "wrong_audience",
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 120)),
            "expired",
        ),
        (
            "not yet valid",
            with(&|c| c["nbf"] = json!(now() + 3600)),
            "not_yet_valid",
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(now() + 3600)),
            "issued_in_future",
        ),
        (
            "no expiry",
            with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            "missing_claim",
        ),
        (
            "unknown kid",
            idp.key.sign_with_header(json!({"kid": "nope"}), &good),
            "unknown_key",
        ),
        (
            "jku header",
            idp.key
                .sign_with_header(json!({"jku": "http://127.0.0.1:1/"}), &good),
            "key_in_header",
        ),
        (
            "crit header",
            idp.key.sign_with_header(json!({"crit": ["exp"]}), &good),
            "critical_header",
        ),
        ("another key", stranger.sign(&good), "bad_signature"),
        ("oversized", "a".repeat(20_000), "token_too_large"),
        ("garbage", "not-a-jwt".into(), "malformed_token"),
    ];
    for (what, token, code) in cases {
        let r = exchange(&stack, &token);
        assert_eq!(
            (r.status, error_code(&r)),
            (401, code.to_string()),
            "{what}: {}",
            r.body
        );
    }
    // The gateway keeps serving.
    ok(exchange(&stack, &main_branch(&idp)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_out_key_stops_working_after_the_refresh() {
    let (stack, idp) = start();
    let old_token = main_branch(&idp);
    ok(exchange(&stack, &old_token));

    let new_key = IdpKey::generate("k2");
    idp.jwks.publish(&[&new_key]);
    let fresh = new_key.sign(&ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/main"));
    let rotated = eventually(Duration::from_secs(10), || async {
        exchange(&stack, &fresh).status == 200
    })
    .await;
    assert!(rotated, "the new key was never fetched");
    let another_old = idp
        .key
        .sign(&ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/main"));
    let r = exchange(&stack, &another_old);
    assert_eq!((r.status, error_code(&r)), (401, "unknown_key".into()));

    // A failed refresh keeps the last good keys.
    drop(idp.jwks);
    std::thread::sleep(Duration::from_millis(1500));
    let later = new_key.sign(&ci_claims(ISSUER, AUDIENCE, "acme/api", "refs/heads/main"));
    ok(exchange(&stack, &later));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_token_is_not_exchanged_again_after_revocation() {
    let (mut stack, idp) = start();
    let id_token = main_branch(&idp);
    let root = ok(exchange(&stack, &id_token));
    let root_token = root["token"].as_str().unwrap().to_string();
    // Exchanging the same identity token twice is allowed while nothing is revoked.
    ok(exchange(&stack, &id_token));
    let r = post(
        &stack,
        "/v1/token/revoke",
        Some(&root_token),
        json!({"token_id": root["token_id"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exchange(&stack, &id_token);
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "identity_token_revoked".into())
    );

    // Also after a restart; another job's token still works.
    stack.gateway.kill();
    stack.gateway = stack.setup.start();
    let r = exchange(&stack, &id_token);
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "identity_token_revoked".into())
    );
    ok(exchange(&stack, &main_branch(&idp)));

    // The CLI prints the session token alone.
    let gateway = format!("http://{}", stack.gateway.admin_addr());
    let out = common::sluice(
        &[
            "token",
            "exchange",
            "--gateway",
            &gateway,
            "--id-token",
            &main_branch(&idp),
        ],
        stack.setup.env(),
    );
    assert!(out.success(), "{}", out.stderr);
    let token = out.stdout.trim();
    assert_eq!(token.split('.').count(), 3, "{}", out.stdout);
    let config = gateway_config(stack.gateway.addr(), DB, LABEL, token);
    connect(&config)
        .await
        .unwrap()
        .simple_query("SELECT 1")
        .await
        .unwrap();
}
