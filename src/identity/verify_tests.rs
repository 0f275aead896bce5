//! Tests for token issuing and verification, including hand-crafted hostile tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use ring::signature::Ed25519KeyPair;

use super::*;
use crate::identity::{IssueRequest, TokenIssuer};

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn settings() -> TokenSettings {
    TokenSettings {
        issuer: "sluice-test".into(),
        audience: "sluice".into(),
        leeway: Duration::ZERO,
    }
}

fn request() -> IssueRequest {
    IssueRequest {
        subject: "ci-job-42".into(),
        roles: vec!["reader".into()],
        resources: vec!["orders".into()],
        ttl: Duration::from_secs(60),
        chain: vec![],
    }
}

struct Fixture {
    key: SigningKey,
    issuer: TokenIssuer,
    verifier: TokenVerifier,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate().unwrap();
    Fixture {
        issuer: TokenIssuer::new(&key, &settings()),
        verifier: TokenVerifier::new(&key, &settings()),
        key,
    }
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// A token with the given header and payload JSON, signed by `sign` over the signing input.
fn craft(header: &str, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn ed_signer(key: &SigningKey) -> impl Fn(&[u8]) -> Vec<u8> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.pkcs8_der()).unwrap();
    move |msg| pair.sign(msg).as_ref().to_vec()
}

fn payload(extra: &str) -> String {
    format!(
        r#"{{"iss":"sluice-test","sub":"x","exp":{},"nbf":{T0},"iat":{T0},"jti":"j1","roles":["admin"],"resources":["*"]{extra}}}"#,
        T0 + 60
    )
}

#[test]
fn valid_round_trip() {
    let f = fixture();
    let mut req = request();
    req.chain = vec![ChainLink {
        jti: "root-jti".into(),
        name: "planner".into(),
    }];
    let (token, issued) = f.issuer.issue(&req, at(T0)).unwrap();
    let claims = f.verifier.verify(&token, at(T0 + 1)).unwrap();
    assert_eq!(claims, issued);
    assert_eq!(claims.sub, "ci-job-42");
    assert_eq!(claims.iss, "sluice-test");
    assert_eq!(claims.aud, "sluice");
    assert_eq!((claims.iat, claims.nbf, claims.exp), (T0, T0, T0 + 60));
    assert_eq!(claims.chain[0].name, "planner");
    assert!(claims.allows_resource("orders"));
    assert!(!claims.allows_resource("billing"));
    assert_eq!(claims.expires_at(), at(T0 + 60));
}

#[test]
fn jti_is_128_random_bits() {
    let f = fixture();
    let (_, a) = f.issuer.issue(&request(), at(T0)).unwrap();
    let (_, b) = f.issuer.issue(&request(), at(T0)).unwrap();
    assert_ne!(a.jti, b.jti);
    assert_eq!(URL_SAFE_NO_PAD.decode(&a.jti).unwrap().len(), 16);
}

#[test]
fn issued_header_is_eddsa_jwt_with_our_kid() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    let head = token.split('.').next().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    assert_eq!(json["alg"], "EdDSA");
    assert_eq!(json["typ"], "JWT");
    assert_eq!(json["kid"], f.key.key_id());
}

#[test]
fn issue_rejects_bad_requests() {
    let f = fixture();
    let mut req = request();
    req.subject.clear();
    assert!(f.issuer.issue(&req, at(T0)).is_err());
    let mut req = request();
    req.ttl = Duration::from_millis(500);
    assert!(f.issuer.issue(&req, at(T0)).is_err());
    let mut req = request();
    req.ttl = Duration::from_secs(u64::MAX);
    assert!(f.issuer.issue(&req, at(T0)).is_err());
    assert!(f
        .issuer
        .issue(&request(), UNIX_EPOCH - Duration::from_secs(1))
        .is_err());
}

#[test]
fn token_from_another_key_is_refused() {
    let f = fixture();
    let other = SigningKey::generate().unwrap();
    // Issued normally by the other key: its kid gives it away.
    let (token, _) = TokenIssuer::new(&other, &settings())
        .issue(&request(), at(T0))
        .unwrap();
    assert_eq!(
        f.verifier.verify(&token, at(T0)),
        Err(TokenError::UnknownKey)
    );
    // Forged without kid, or claiming our kid: the signature itself fails.
    let no_kid = craft(
        r#"{"alg":"EdDSA","typ":"JWT"}"#,
        &payload(r#","aud":"sluice""#),
        ed_signer(&other),
    );
    assert_eq!(
        f.verifier.verify(&no_kid, at(T0)),
        Err(TokenError::InvalidSignature)
    );
    let our_kid = craft(
        &format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, f.key.key_id()),
        &payload(r#","aud":"sluice""#),
        ed_signer(&other),
    );
    assert_eq!(
        f.verifier.verify(&our_kid, at(T0)),
        Err(TokenError::InvalidSignature)
    );
}

#[test]
fn hand_crafted_token_with_our_key_verifies() {
    // Guards the crafting helper itself, so the rejections below mean something.
    let f = fixture();
    let token = craft(
        r#"{"alg":"EdDSA"}"#,
        &payload(r#","aud":"sluice""#),
        ed_signer(&f.key),
    );
    assert_eq!(f.verifier.verify(&token, at(T0)).unwrap().roles, ["admin"]);
}

#[test]
fn tampered_payload_is_refused() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = serde_json::json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        f.verifier.verify(&forged, at(T0)),
        Err(TokenError::InvalidSignature)
    );
}

#[test]
fn tampered_signature_is_refused() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[10] ^= 1;
    let forged = format!("{input}.{}", b64(&sig));
    assert_eq!(
        f.verifier.verify(&forged, at(T0)),
        Err(TokenError::InvalidSignature)
    );
    let truncated = format!("{input}.{}", b64(&sig[..63]));
    assert_eq!(
        f.verifier.verify(&truncated, at(T0)),
        Err(TokenError::InvalidSignature)
    );
    let not_b64 = format!("{input}.$$$$");
    assert_eq!(
        f.verifier.verify(&not_b64, at(T0)),
        Err(TokenError::Malformed)
    );
}

#[test]
fn expiry_honours_now_and_leeway() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    assert!(f.verifier.verify(&token, at(T0 + 59)).is_ok());
    assert_eq!(
        f.verifier.verify(&token, at(T0 + 60)),
        Err(TokenError::Expired)
    );
    let lenient = TokenVerifier::new(
        &f.key,
        &TokenSettings {
            leeway: Duration::from_secs(30),
            ..settings()
        },
    );
    assert!(lenient.verify(&token, at(T0 + 89)).is_ok());
    assert_eq!(
        lenient.verify(&token, at(T0 + 90)),
        Err(TokenError::Expired)
    );
}

#[test]
fn not_yet_valid_is_refused() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    assert_eq!(
        f.verifier.verify(&token, at(T0 - 1)),
        Err(TokenError::NotYetValid)
    );
    // nbf in the future with iat in the past.
    let p = format!(
        r#"{{"iss":"sluice-test","aud":"sluice","sub":"x","exp":{},"nbf":{},"iat":{T0},"jti":"j","roles":[],"resources":[]}}"#,
        T0 + 600,
        T0 + 100
    );
    let token = craft(r#"{"alg":"EdDSA"}"#, &p, ed_signer(&f.key));
    assert_eq!(
        f.verifier.verify(&token, at(T0 + 50)),
        Err(TokenError::NotYetValid)
    );
    assert!(f.verifier.verify(&token, at(T0 + 100)).is_ok());
    // The clock handed in is what counts, even before 1970.
    assert_eq!(
        f.verifier
            .verify(&token, UNIX_EPOCH - Duration::from_secs(5)),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn wrong_issuer_and_audience_are_refused() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    let other_iss = TokenVerifier::new(
        &f.key,
        &TokenSettings {
            issuer: "someone-else".into(),
            ..settings()
        },
    );
    assert_eq!(
        other_iss.verify(&token, at(T0)),
        Err(TokenError::WrongIssuer)
    );
    let other_aud = TokenVerifier::new(
        &f.key,
        &TokenSettings {
            audience: "k8s".into(),
            ..settings()
        },
    );
    assert_eq!(
        other_aud.verify(&token, at(T0)),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn audience_arrays_must_be_exactly_ours() {
    let f = fixture();
    let verify = |aud: &str| {
        let token = craft(
            r#"{"alg":"EdDSA"}"#,
            &payload(&format!(r#","aud":{aud}"#)),
            ed_signer(&f.key),
        );
        f.verifier.verify(&token, at(T0))
    };
    assert!(verify(r#"["sluice"]"#).is_ok());
    assert_eq!(
        verify(r#"["sluice","k8s"]"#),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        verify(r#"["k8s","sluice"]"#),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(verify("[]"), Err(TokenError::WrongAudience));
    assert_eq!(verify(r#""Sluice""#), Err(TokenError::WrongAudience));
    assert_eq!(verify("7"), Err(TokenError::Malformed));
}

#[test]
fn required_claims_are_named_when_missing() {
    let f = fixture();
    let full = [
        ("iss", r#""sluice-test""#.to_string()),
        ("aud", r#""sluice""#.to_string()),
        ("sub", r#""x""#.to_string()),
        ("exp", (T0 + 60).to_string()),
        ("nbf", T0.to_string()),
        ("iat", T0.to_string()),
        ("jti", r#""j""#.to_string()),
        ("roles", "[]".to_string()),
        ("resources", "[]".to_string()),
    ];
    for (skip, _) in &full {
        let body: Vec<String> = full
            .iter()
            .filter(|(k, _)| k != skip)
            .map(|(k, v)| format!(r#""{k}":{v}"#))
            .collect();
        let token = craft(
            r#"{"alg":"EdDSA"}"#,
            &format!("{{{}}}", body.join(",")),
            ed_signer(&f.key),
        );
        assert_eq!(
            f.verifier.verify(&token, at(T0)),
            Err(TokenError::MissingClaim(skip)),
            "{skip}"
        );
    }
    let empty_sub = craft(
        r#"{"alg":"EdDSA"}"#,
        &payload(r#","aud":"sluice""#).replace(r#""sub":"x""#, r#""sub":"""#),
        ed_signer(&f.key),
    );
    assert_eq!(
        f.verifier.verify(&empty_sub, at(T0)),
        Err(TokenError::MissingClaim("sub"))
    );
}

#[test]
fn odd_claim_values_are_malformed() {
    let f = fixture();
    for p in [
        payload(r#","aud":"sluice""#).replace(&format!(r#""exp":{}"#, T0 + 60), r#""exp":1.7e9"#),
        payload(r#","aud":"sluice""#).replace(&format!(r#""exp":{}"#, T0 + 60), r#""exp":"soon""#),
        payload(r#","aud":"sluice""#).replace(&format!(r#""exp":{}"#, T0 + 60), r#""exp":-1"#),
        payload(r#","aud":"sluice""#).replace(
            &format!(r#""exp":{}"#, T0 + 60),
            &format!(r#""exp":{}"#, u64::MAX),
        ),
        payload(r#","aud":"sluice","sub":"dup""#),
        "[]".to_string(),
    ] {
        let token = craft(r#"{"alg":"EdDSA"}"#, &p, ed_signer(&f.key));
        assert_eq!(
            f.verifier.verify(&token, at(T0)),
            Err(TokenError::Malformed),
            "{p}"
        );
    }
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    let body = payload(r#","aud":"sluice""#);
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(body.as_bytes())
    );
    assert_eq!(
        f.verifier.verify(&unsigned, at(T0)),
        Err(TokenError::Malformed)
    );
    let with_sig = craft(r#"{"alg":"none","typ":"JWT"}"#, &body, |_| b"x".to_vec());
    assert_eq!(
        f.verifier.verify(&with_sig, at(T0)),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn hs256_with_public_key_as_secret_is_refused() {
    // Algorithm confusion: an attacker who knows the public key signs with HMAC over it.
    let f = fixture();
    let body = payload(r#","aud":"sluice""#);
    let raw = f.key.public_key_raw();
    let pem_like = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64(&raw)
    );
    for secret in [raw.to_vec(), pem_like.into_bytes()] {
        let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let token = craft(r#"{"alg":"HS256","typ":"JWT"}"#, &body, |m| {
            ring::hmac::sign(&hmac_key, m).as_ref().to_vec()
        });
        assert_eq!(
            f.verifier.verify(&token, at(T0)),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn crit_and_key_url_headers_are_refused() {
    let f = fixture();
    let body = payload(r#","aud":"sluice""#);
    for header in [
        r#"{"alg":"EdDSA","crit":["exp"],"exp":1}"#,
        r#"{"alg":"EdDSA","jku":"https://127.0.0.1:1/jwks.json"}"#,
        r#"{"alg":"EdDSA","x5u":"https://127.0.0.1:1/cert.pem"}"#,
        r#"{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"}}"#,
        r#"{"alg":"EdDSA","x5c":["MIIB"]}"#,
        r#"{"alg":"EdDSA","typ":"JOSE+JSON"}"#,
    ] {
        // Validly signed by our own key: the header alone must sink it.
        let token = craft(header, &body, ed_signer(&f.key));
        assert_eq!(
            f.verifier.verify(&token, at(T0)),
            Err(TokenError::UnsupportedHeader),
            "{header}"
        );
    }
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let f = fixture();
    let junk = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(f.verifier.verify(&junk, at(T0)), Err(TokenError::TooLarge));
    let mut req = request();
    req.resources = (0..1000).map(|i| format!("resource-{i}")).collect();
    let (token, _) = f.issuer.issue(&req, at(T0)).unwrap();
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(f.verifier.verify(&token, at(T0)), Err(TokenError::TooLarge));
}

#[test]
fn garbage_is_malformed() {
    let f = fixture();
    for junk in [
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "é.é.é",
        "eyJ.eyJ.sig",
        " eyJhbGciOiJFZERTQSJ9.e30.AA",
    ] {
        assert_eq!(
            f.verifier.verify(junk, at(T0)),
            Err(TokenError::Malformed),
            "{junk:?}"
        );
    }
}

#[test]
fn error_messages_do_not_echo_the_token() {
    let f = fixture();
    let (token, _) = f.issuer.issue(&request(), at(T0)).unwrap();
    let err = f.verifier.verify(&token, at(T0 + 1000)).unwrap_err();
    assert_eq!(err.to_string(), "token expired");
    for part in token.split('.') {
        assert!(!err.to_string().contains(part));
    }
}

proptest! {
    #[test]
    fn verify_never_panics_on_arbitrary_strings(s in ".{0,200}") {
        let f = fixture();
        let _ = f.verifier.verify(&s, at(T0));
    }

    #[test]
    fn verify_never_panics_on_jws_shaped_input(
        h in "[A-Za-z0-9_-]{0,60}",
        p in "[A-Za-z0-9_-]{0,200}",
        s in "[A-Za-z0-9_-]{0,90}",
    ) {
        let f = fixture();
        let token = format!("{h}.{p}.{s}");
        prop_assert!(f.verifier.verify(&token, at(T0)).is_err());
    }

    #[test]
    fn verify_never_panics_on_signed_arbitrary_json(header in ".{0,40}", body in ".{0,120}") {
        let f = fixture();
        let token = craft(&header, &body, ed_signer(&f.key));
        let _ = f.verifier.verify(&token, at(T0));
    }
}

#[test]
fn token_ids_never_begin_like_a_flag() {
    // One id in 32 would begin with `-` or `_` if drawn plainly; 500 draws miss none of them.
    let f = fixture();
    for _ in 0..500 {
        let (_, claims) = f.issuer.issue(&request(), at(T0)).unwrap();
        assert!(
            claims.jti.starts_with(|c: char| c.is_ascii_alphanumeric()),
            "{}",
            claims.jti
        );
        assert_eq!(claims.jti.len(), 22);
    }
}
