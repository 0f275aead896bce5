//! Exchange of provider tokens minted here with the tests' own keys: an RSA-2048 key made with
//! `openssl genpkey` (testdata/), and P-256 and Ed25519 keys generated with ring.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Value};

use super::*;
use crate::config::IdentitySection;
use crate::http_client::test_server::{ok, status, Reply, TestServer};

const NOW_SECS: u64 = 1_700_000_000;
const GH_ISS: &str = "https://token.actions.githubusercontent.com";
const EC_ISS: &str = "https://ec.example";
const ED_ISS: &str = "https://ed.example";
const AUD: &str = "sluice-test";
const RSA_PEM: &[u8] = include_bytes!("testdata/rs256.key.pem");
const RSA_JWKS: &str = include_str!("testdata/rs256.jwks.json");

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// A signing key and the public JWK that goes with it.
struct TestKey {
    alg: Algorithm,
    kid: &'static str,
    key: EncodingKey,
    jwk: Value,
}

fn rsa_key() -> TestKey {
    let set: Value = serde_json::from_str(RSA_JWKS).unwrap();
    TestKey {
        alg: Algorithm::RS256,
        kid: "rsa-1",
        key: EncodingKey::from_rsa_pem(RSA_PEM).unwrap(),
        jwk: set["keys"][0].clone(),
    }
}

fn ec_key(kid: &'static str) -> TestKey {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    TestKey {
        alg: Algorithm::ES256,
        kid,
        key: EncodingKey::from_ec_der(doc.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65])}),
    }
}

fn ed_key(kid: &'static str) -> TestKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    TestKey {
        alg: Algorithm::EdDSA,
        kid,
        key: EncodingKey::from_ed_der(doc.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
    }
}

fn jwks(keys: &[&Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// A compact JWS over exactly these header and payload bytes.
fn sign_raw(header: &str, payload: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let msg = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key, alg).unwrap();
    format!("{msg}.{sig}")
}

/// A token signed by `k` with the usual header (typ, alg, kid) and `claims`.
fn sign(k: &TestKey, claims: &Value) -> String {
    let header = json!({"typ": "JWT", "alg": alg::name(k.alg), "kid": k.kid});
    sign_raw(&header.to_string(), &claims.to_string(), &k.key, k.alg)
}

/// GitHub-Actions-like claims for `iss`, valid at `NOW_SECS` for five minutes.
fn claims(iss: &str) -> Value {
    json!({
        "iss": iss, "aud": AUD, "sub": "repo:acme/api:ref:refs/heads/main",
        "repository": "acme/api", "ref": "refs/heads/main", "run_id": "77",
        "iat": NOW_SECS - 10, "nbf": NOW_SECS - 10, "exp": NOW_SECS + 300,
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(key.into(), value);
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

/// Three file providers: `github` (RS256; its set also holds an EC key `gh-ec`), `ec` (ES256)
/// and `ed` (EdDSA, one key, a 2h rule ttl and the default 24h token lifetime).
struct Fixture {
    _dir: tempfile::TempDir,
    providers: Providers,
    rsa: TestKey,
    gh_ec: TestKey,
    ec: TestKey,
    ed: TestKey,
}

fn identity(dir: &Path, providers: &str) -> IdentitySection {
    let text = format!(
        r#"
issuer = "sluice"
audience = "sluice"
signing_key = "{}"
leeway = "5s"
default_ttl = "15m"
max_ttl = "1h"
{providers}"#,
        dir.join("unused.key").display()
    );
    toml::from_str(&text).unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (rsa, gh_ec, ec, ed) = (rsa_key(), ec_key("gh-ec"), ec_key("ec-1"), ed_key("ed-1"));
    let write = |name: &str, keys: &[&Value]| {
        let path = dir.path().join(name);
        std::fs::write(&path, jwks(keys)).unwrap();
        path.display().to_string()
    };
    let gh_file = write("github.json", &[&rsa.jwk, &gh_ec.jwk]);
    let ec_file = write("ec.json", &[&ec.jwk]);
    let ed_file = write("ed.json", &[&ed.jwk]);
    let text = format!(
        r#"
[[provider]]
name = "github"
issuer = "{GH_ISS}"
audience = "{AUD}"
jwks_file = "{gh_file}"
algorithms = ["RS256"]
max_token_lifetime = "1h"
[[provider.map]]
when = 'repository == "acme/api" and ref == "refs/heads/main"'
roles = ["deployer"]
resources = ["orders"]
ttl = "10m"
[[provider.map]]
when = 'repository == "acme/api"'
roles = ["reader"]
resources = ["*"]

[[provider]]
name = "ec"
issuer = "{EC_ISS}"
audience = "{AUD}"
jwks_file = "{ec_file}"
algorithms = ["ES256"]
[[provider.map]]
when = 'sub != ""'
roles = ["reader"]
resources = ["orders"]

[[provider]]
name = "ed"
issuer = "{ED_ISS}"
audience = "{AUD}"
jwks_file = "{ed_file}"
algorithms = ["EdDSA"]
subject_claim = "repository"
[[provider.map]]
when = 'run_id == "77"'
roles = ["reader"]
resources = ["orders"]
ttl = "2h"
"#
    );
    let providers = Providers::start(&identity(dir.path(), &text)).unwrap();
    Fixture {
        _dir: dir,
        providers,
        rsa,
        gh_ec,
        ec,
        ed,
    }
}

impl Fixture {
    /// The refusal code for `token`, checking that its message does not echo the token.
    fn refuse(&self, token: &str) -> &'static str {
        let err = self.providers.exchange(token, now()).unwrap_err();
        let msg = err.to_string();
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!msg.contains(part), "{msg}");
        }
        assert!(!msg.contains("acme"), "{msg}");
        err.code()
    }
}

#[test]
fn each_provider_exchanges_its_tokens() {
    let f = fixture();
    let token = sign(&f.rsa, &claims(GH_ISS));
    let g = f.providers.exchange(&token, now()).unwrap();
    assert_eq!(g.provider, "github");
    assert_eq!(g.subject, "repo:acme/api:ref:refs/heads/main");
    assert_eq!(
        (g.roles, g.resources, g.rule),
        (vec!["deployer".to_owned()], vec!["orders".to_owned()], 0)
    );
    // The rule says 10m, but the provider token has only 300 s left.
    assert_eq!(g.ttl, Duration::from_secs(300));
    assert_eq!(g.token_exp, NOW_SECS + 300);
    assert_eq!(g.token_hash, token_hash(&token));
    assert_eq!(URL_SAFE_NO_PAD.decode(&g.token_hash).unwrap().len(), 16);

    let g = f
        .providers
        .exchange(&sign(&f.ec, &claims(EC_ISS)), now())
        .unwrap();
    assert_eq!((g.provider.as_str(), g.rule), ("ec", 0));
    let g = f
        .providers
        .exchange(&sign(&f.ed, &claims(ED_ISS)), now())
        .unwrap();
    assert_eq!(
        (g.provider.as_str(), g.subject.as_str()),
        ("ed", "acme/api")
    );
}

#[test]
fn the_first_matching_rule_decides_and_ttls_are_clamped() {
    let f = fixture();
    let long = |iss: &str| with(claims(iss), "exp", json!(NOW_SECS + 3000));
    // Rule 0: its own ttl.
    let g = f
        .providers
        .exchange(&sign(&f.rsa, &long(GH_ISS)), now())
        .unwrap();
    assert_eq!((g.rule, g.ttl), (0, Duration::from_secs(600)));
    // Rule 1 (another ref): identity.default_ttl.
    let other_ref = with(long(GH_ISS), "ref", json!("refs/heads/dev"));
    let g = f
        .providers
        .exchange(&sign(&f.rsa, &other_ref), now())
        .unwrap();
    assert_eq!(
        (g.rule, g.roles.as_slice(), g.ttl),
        (1, &["reader".to_owned()][..], Duration::from_secs(900))
    );
    // A 2h rule ttl is clamped to identity.max_ttl.
    let day = with(claims(ED_ISS), "exp", json!(NOW_SECS + 20_000));
    let g = f.providers.exchange(&sign(&f.ed, &day), now()).unwrap();
    assert_eq!(g.ttl, Duration::from_secs(3600));
    // A token expiring within the leeway still gets at least one second.
    let ending = with(claims(GH_ISS), "exp", json!(NOW_SECS - 2));
    let g = f.providers.exchange(&sign(&f.rsa, &ending), now()).unwrap();
    assert_eq!(g.ttl, Duration::from_secs(1));
}

#[test]
fn no_matching_rule_or_no_subject_is_refused() {
    let f = fixture();
    let other_repo = with(claims(GH_ISS), "repository", json!("acme/web"));
    assert_eq!(f.refuse(&sign(&f.rsa, &other_repo)), "no_mapping");
    let no_repo = without(claims(GH_ISS), "repository");
    assert_eq!(f.refuse(&sign(&f.rsa, &no_repo)), "no_mapping");
    assert_eq!(
        f.refuse(&sign(&f.rsa, &without(claims(GH_ISS), "sub"))),
        "missing_claim"
    );
    assert_eq!(
        f.refuse(&sign(&f.rsa, &with(claims(GH_ISS), "sub", json!(7)))),
        "missing_claim"
    );
    // `ed` takes its subject from `repository`.
    assert_eq!(
        f.refuse(&sign(&f.ed, &without(claims(ED_ISS), "repository"))),
        "missing_claim"
    );
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    let c = claims(GH_ISS).to_string();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(&c)
    );
    assert_eq!(f.refuse(&unsigned), "unsupported_algorithm");
    assert_eq!(
        f.refuse(&format!("{unsigned}AAAA")),
        "unsupported_algorithm"
    );
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    let f = fixture();
    let c = claims(GH_ISS).to_string();
    let header = r#"{"alg":"HS256","typ":"JWT","kid":"rsa-1"}"#;
    let pem_public = b"-----BEGIN PUBLIC KEY-----\n";
    for secret in [
        RSA_JWKS.as_bytes(),
        f.rsa.jwk.to_string().as_bytes(),
        pem_public,
    ] {
        let token = sign_raw(
            header,
            &c,
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        );
        assert_eq!(f.refuse(&token), "unsupported_algorithm");
    }
}

#[test]
fn keys_are_chosen_by_kid_within_the_issuers_set_only() {
    let f = fixture();
    let c = claims(GH_ISS).to_string();
    let signed = |k: &TestKey, alg: &str, kid: &str| {
        let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
        sign_raw(&header, &c, &k.key, k.alg)
    };
    assert_eq!(f.refuse(&signed(&f.rsa, "RS256", "rsa-2")), "unknown_key");
    // `ec-1` and `ed-1` exist, but in other providers' sets.
    assert_eq!(f.refuse(&signed(&f.rsa, "RS256", "ec-1")), "unknown_key");
    assert_eq!(f.refuse(&signed(&f.rsa, "RS256", "ed-1")), "unknown_key");
    let ed_claims = claims(ED_ISS).to_string();
    let header = r#"{"alg":"EdDSA","kid":"rsa-1"}"#;
    assert_eq!(
        f.refuse(&sign_raw(header, &ed_claims, &f.ed.key, Algorithm::EdDSA)),
        "unknown_key"
    );
    // An RS256 header naming the provider's own EC key.
    assert_eq!(
        f.refuse(&signed(&f.gh_ec, "RS256", "gh-ec")),
        "key_mismatch"
    );
    // Without kid: `github` holds one RSA key, `ed` one Ed25519 key.
    let no_kid = sign_raw(r#"{"alg":"RS256"}"#, &c, &f.rsa.key, Algorithm::RS256);
    assert!(f.providers.exchange(&no_kid, now()).is_ok());
    let no_kid = sign_raw(
        r#"{"alg":"EdDSA"}"#,
        &ed_claims,
        &f.ed.key,
        Algorithm::EdDSA,
    );
    assert!(f.providers.exchange(&no_kid, now()).is_ok());
}

#[test]
fn algorithms_outside_the_providers_list_are_refused() {
    let f = fixture();
    // The `github` set holds an ES256 key, but the provider accepts RS256 only.
    assert_eq!(
        f.refuse(&sign(&f.gh_ec, &claims(GH_ISS))),
        "algorithm_not_allowed"
    );
    assert_eq!(
        f.refuse(&sign(&f.ed, &claims(GH_ISS))),
        "algorithm_not_allowed"
    );
    assert_eq!(
        f.refuse(&sign(&f.rsa, &claims(ED_ISS))),
        "algorithm_not_allowed"
    );
}

#[test]
fn issuer_picks_the_provider_and_must_be_known() {
    let f = fixture();
    assert_eq!(
        f.refuse(&sign(&f.rsa, &without(claims(GH_ISS), "iss"))),
        "missing_claim"
    );
    assert_eq!(
        f.refuse(&sign(&f.rsa, &claims("https://evil.example"))),
        "unknown_issuer"
    );
    assert_eq!(
        f.refuse(&sign(&f.rsa, &claims(&format!("{GH_ISS}/")))),
        "unknown_issuer"
    );
    assert_eq!(
        f.refuse(&sign(&f.rsa, &with(claims(GH_ISS), "iss", json!([GH_ISS])))),
        "invalid_claim"
    );
    // Signed by `ec`'s key under `ec`'s kid, but claiming `ed`'s issuer: `ed`'s rules apply.
    assert_eq!(
        f.refuse(&sign(&f.ec, &claims(ED_ISS))),
        "algorithm_not_allowed"
    );
    // The same key under a kid of the claimed issuer's set: the signature does not verify.
    let header = r#"{"alg":"EdDSA","kid":"ed-1"}"#;
    let other = ed_key("ed-1");
    let forged = sign_raw(
        header,
        &claims(ED_ISS).to_string(),
        &other.key,
        Algorithm::EdDSA,
    );
    assert_eq!(f.refuse(&forged), "bad_signature");
}

#[test]
fn audience_must_be_ours() {
    let f = fixture();
    let t = |aud: Value| sign(&f.rsa, &with(claims(GH_ISS), "aud", aud));
    assert_eq!(
        f.refuse(&sign(&f.rsa, &without(claims(GH_ISS), "aud"))),
        "missing_claim"
    );
    assert_eq!(f.refuse(&t(json!("other"))), "wrong_audience");
    assert_eq!(f.refuse(&t(json!(["other", "more"]))), "wrong_audience");
    assert!(f
        .providers
        .exchange(&t(json!(["other", AUD])), now())
        .is_ok());
}

#[test]
fn time_claims_are_enforced() {
    let f = fixture();
    let t = |c: Value| sign(&f.rsa, &c);
    let base = claims(GH_ISS);
    assert_eq!(
        f.refuse(&t(with(base.clone(), "exp", json!(NOW_SECS - 5)))),
        "expired"
    );
    assert_eq!(
        f.refuse(&t(with(base.clone(), "nbf", json!(NOW_SECS + 60)))),
        "not_yet_valid"
    );
    let future = with(
        with(base.clone(), "iat", json!(NOW_SECS + 600)),
        "exp",
        json!(NOW_SECS + 900),
    );
    assert_eq!(f.refuse(&t(future)), "issued_in_future");
    assert_eq!(f.refuse(&t(without(base.clone(), "exp"))), "missing_claim");
    let long = with(
        with(base.clone(), "iat", json!(NOW_SECS - 100)),
        "exp",
        json!(NOW_SECS + 3600),
    );
    assert_eq!(f.refuse(&t(long)), "lifetime_too_long");
    assert_eq!(
        f.refuse(&t(with(base, "exp", json!("soon")))),
        "invalid_claim"
    );
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let f = fixture();
    assert_eq!(
        f.refuse(&"!".repeat(MAX_PROVIDER_TOKEN_LEN + 1)),
        "token_too_large"
    );
    let padded = with(
        claims(GH_ISS),
        "pad",
        json!("x".repeat(MAX_PROVIDER_TOKEN_LEN)),
    );
    assert_eq!(f.refuse(&sign(&f.rsa, &padded)), "token_too_large");
    // Just under the cap is fine.
    let fits = with(
        claims(GH_ISS),
        "pad",
        json!("x".repeat(MAX_PROVIDER_TOKEN_LEN / 2)),
    );
    assert!(f.providers.exchange(&sign(&f.rsa, &fits), now()).is_ok());
}

#[test]
fn header_parameters_are_policed() {
    let f = fixture();
    let c = claims(GH_ISS).to_string();
    let t = |extra: &str| {
        let header = format!(r#"{{"typ":"JWT","alg":"RS256","kid":"rsa-1",{extra}}}"#);
        sign_raw(&header, &c, &f.rsa.key, Algorithm::RS256)
    };
    assert_eq!(f.refuse(&t(r#""crit":["exp"]"#)), "critical_header");
    for extra in [
        r#""jku":"http://127.0.0.1:1/jwks""#,
        r#""x5u":"http://127.0.0.1:1/cert""#,
        r#""jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}"#,
        r#""x5c":["MIIB"]"#,
    ] {
        assert_eq!(f.refuse(&t(extra)), "key_in_header", "{extra}");
    }
    // GitHub sends certificate thumbprints; they are ignored.
    let gh = t(r#""x5t":"s0me","x5t#S256":"th1ng""#);
    assert!(f.providers.exchange(&gh, now()).is_ok());
}

#[test]
fn bad_signatures_are_refused() {
    let f = fixture();
    let token = sign(&f.rsa, &claims(GH_ISS));
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[10] ^= 1;
    let flipped = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    assert_eq!(f.refuse(&flipped), "bad_signature");
    // Claims changed after signing.
    let (head, _) = rest.split_once('.').unwrap();
    let changed = with(claims(GH_ISS), "repository", json!("acme/other"));
    let swapped = format!(
        "{head}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(changed.to_string())
    );
    assert_eq!(f.refuse(&swapped), "bad_signature");
    assert_eq!(f.refuse(&format!("{rest}.!!!!")), "malformed_token");
    assert_eq!(f.refuse(rest), "malformed_token");
    assert_eq!(f.refuse(&format!("{token}.x")), "malformed_token");
}

#[test]
fn duplicate_members_are_refused() {
    let f = fixture();
    let c = claims(GH_ISS).to_string();
    let dup_iss = format!(r#"{{"iss":"https://evil.example",{}"#, &c[1..]);
    let header = r#"{"alg":"RS256","kid":"rsa-1"}"#;
    assert_eq!(
        f.refuse(&sign_raw(header, &dup_iss, &f.rsa.key, Algorithm::RS256)),
        "duplicate_member"
    );
    let dup_sub = format!(r#"{{"sub":"other",{}"#, &c[1..]);
    assert_eq!(
        f.refuse(&sign_raw(header, &dup_sub, &f.rsa.key, Algorithm::RS256)),
        "duplicate_member"
    );
    let dup_kid = r#"{"alg":"RS256","kid":"rsa-1","kid":"rsa-1"}"#;
    assert_eq!(
        f.refuse(&sign_raw(dup_kid, &c, &f.rsa.key, Algorithm::RS256)),
        "duplicate_member"
    );
}

#[test]
fn start_refuses_bad_files_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, RSA_JWKS).unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\"keys\": [").unwrap();
    let small = dir.path().join("small.json");
    std::fs::write(&small, include_str!("testdata/rsa1024.jwks.json")).unwrap();
    let provider = |file: &Path, extra: &str| {
        format!(
            "[[provider]]\nname = \"p\"\nissuer = \"i\"\naudience = \"a\"\njwks_file = \"{}\"\n{extra}\n",
            file.display()
        )
    };
    let start = |text: String| Providers::start(&identity(dir.path(), &text)).map(|_| ());
    assert!(start(provider(&good, "")).is_ok());
    for (text, needle) in [
        (
            provider(&dir.path().join("missing.json"), ""),
            "missing.json",
        ),
        (provider(&bad_json, ""), "not a JSON object"),
        (provider(&small, ""), "2048"),
        (
            provider(&good, "algorithms = [\"HS256\"]"),
            "never accepted",
        ),
        (provider(&good, "algorithms = []"), "at least one"),
        (
            provider(
                &good,
                "[[provider.map]]\nwhen = 'a =='\nroles = []\nresources = []",
            ),
            "map[0].when: at column",
        ),
        (
            provider(&good, "jwks_url = \"https://127.0.0.1:1/\""),
            "exactly one",
        ),
    ] {
        let err = start(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    let http_remote = "[[provider]]\nname = \"p\"\nissuer = \"i\"\naudience = \"a\"\njwks_url = \"http://192.0.2.1/jwks\"\n";
    let err = start(http_remote.into()).unwrap_err().to_string();
    assert!(err.contains("loopback"), "{err}");
}

/// A provider `url` whose keys come from `server`, refreshed hourly (so only early refreshes
/// and explicit ones happen during a test).
fn url_providers(dir: &Path, server: &TestServer) -> Providers {
    let text = format!(
        r#"
[[provider]]
name = "url"
issuer = "{ED_ISS}"
audience = "{AUD}"
jwks_url = "{}"
jwks_refresh = "1h"
algorithms = ["EdDSA"]
[[provider.map]]
when = 'run_id == "77"'
roles = ["reader"]
resources = ["orders"]
"#,
        server.url("/.well-known/jwks")
    );
    Providers::start(&identity(dir, &text)).unwrap()
}

/// Waits (at most 20 s) until `done` holds; says whether it did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn a_rotated_out_key_stops_working_after_a_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (ed_key("k1"), ed_key("k2"));
    let server = TestServer::start(Reply::Raw(ok("application/json", &jwks(&[&k1.jwk]))));
    let providers = url_providers(dir.path(), &server);
    let c = claims(ED_ISS);
    assert!(providers.exchange(&sign(&k1, &c), now()).is_ok());

    // The provider rotates to k2. A k2 token is refused at first, and asks for an early refresh.
    server.set_reply(Reply::Raw(ok("application/json", &jwks(&[&k2.jwk]))));
    let err = providers.exchange(&sign(&k2, &c), now()).unwrap_err();
    assert_eq!(err.code(), "unknown_key");
    assert!(
        eventually(|| server.requests().len() >= 2),
        "no early refresh"
    );
    assert!(eventually(|| providers
        .exchange(&sign(&k2, &c), now())
        .is_ok()));
    assert_eq!(
        providers
            .exchange(&sign(&k1, &c), now())
            .unwrap_err()
            .code(),
        "unknown_key"
    );
    let seen = server.requests();
    assert!(
        seen[0].starts_with("GET /.well-known/jwks HTTP/1.1\r\n"),
        "{}",
        seen[0]
    );
    providers.stop();
}

#[test]
fn a_failed_refresh_keeps_the_last_good_keys() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = ed_key("k1");
    let server = TestServer::start(Reply::Raw(ok("application/json", &jwks(&[&k1.jwk]))));
    let providers = url_providers(dir.path(), &server);
    let token = sign(&k1, &claims(ED_ISS));
    for bad in [
        status(500, "down"),
        ok("application/json", "{\"keys\": "),
        ok("application/json", "{\"keys\": []}"),
        ok(
            "application/json",
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
        ),
    ] {
        server.set_reply(Reply::Raw(bad));
        assert!(providers.refresh("url").is_err());
        assert!(providers.exchange(&token, now()).is_ok());
    }
    assert!(matches!(
        providers.refresh("nope"),
        Err(OidcError::NoSuchProvider(_))
    ));
}

#[test]
fn keys_unavailable_until_the_first_fetch_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let k1 = ed_key("k1");
    let server = TestServer::start(Reply::Raw(status(503, "starting")));
    let providers = url_providers(dir.path(), &server);
    let token = sign(&k1, &claims(ED_ISS));
    let err = providers.exchange(&token, now()).unwrap_err();
    assert_eq!(
        (err.code(), err.is_gateway_side()),
        ("keys_unavailable", true)
    );
    server.set_reply(Reply::Raw(ok("application/json", &jwks(&[&k1.jwk]))));
    providers.refresh("url").unwrap();
    assert!(providers.exchange(&token, now()).is_ok());
}

#[test]
fn file_providers_are_not_refreshed() {
    let f = fixture();
    assert!(matches!(
        f.providers.refresh("github"),
        Err(OidcError::NotRefreshable(_))
    ));
    assert!(format!("{:?}", f.providers).contains("github"));
}

#[test]
fn providers_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Providers>();
    shared::<Grant>();
    shared::<ExchangeError>();
}
