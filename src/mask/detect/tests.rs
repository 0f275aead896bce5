//! Detector tests: true positives in many layouts, the look-alikes that must stay untouched,
//! and properties over arbitrary input.

use proptest::prelude::*;

use super::*;

fn masked(v: &str) -> String {
    let mut out = Vec::new();
    if Detectors::ALL.mask(v.as_bytes(), &mut out) {
        String::from_utf8(out).unwrap()
    } else {
        assert!(out.is_empty(), "out must stay untouched for a clean value");
        v.to_string()
    }
}

fn only(d: Detectors, v: &str) -> bool {
    d.finds(v.as_bytes())
}

const CARDS_ONLY: Detectors = Detectors {
    cards: true,
    ..Detectors::NONE
};

#[test]
fn cards_in_every_printed_layout_keep_only_the_last_four() {
    for (input, want) in [
        ("4111111111111111", "****-****-****-1111"),
        ("4111 1111 1111 1111", "****-****-****-1111"),
        ("4111-1111-1111-1111", "****-****-****-1111"),
        ("card: 5500 0000 0000 0004.", "card: ****-****-****-0004."),
        ("3782 822463 10005", "****-****-****-0005"),
        ("378282246310005", "****-****-****-0005"),
        ("3056 930902 5904", "****-****-****-5904"),
        ("6011000990139424", "****-****-****-9424"),
        ("2223000048400011", "****-****-****-0011"),
        ("4222222222222", "****-****-****-2222"),
        ("6304 0000 0000 0000 018", "****-****-****-0018"),
        ("CC4111111111111111exp", "CC****-****-****-1111exp"),
        (
            "{\"pan\":\"4012888888881881\",\"n\":2}",
            "{\"pan\":\"****-****-****-1881\",\"n\":2}",
        ),
        (
            "a 4111111111111111 b 5105105105105100",
            "a ****-****-****-1111 b ****-****-****-5100",
        ),
        ("qty 2 4111 1111 1111 1111", "qty 2 ****-****-****-1111"),
    ] {
        assert_eq!(masked(input), want, "{input}");
    }
}

#[test]
fn number_look_alikes_are_not_cards() {
    for v in [
        "4111111111111112",        // Luhn fails
        "411111111111",            // 12 digits
        "41111111111111111111",    // 20 digits
        "41111111111111111114111", // a longer run holding a valid card
        "20240501123456",          // compact timestamp, Luhn-valid, no network prefix
        "1714567890123",           // epoch milliseconds
        "2024-05-01 12:34:56.123456+00",
        "550e8400-e29b-41d4-a716-446655440000",
        "+1 (555) 123-4567",
        "+44 20 7946 0958",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
        "v4.1.1.1.1111.1111.1111",
        "3.4111111111111111",  // a fraction
        "9111111111111111",    // no network starts with 9
        "0004111111111111111", // 19 digits starting 0
        "4111.1111.1111.1111",
        "4111  1111  1111  1111", // double spaces
    ] {
        assert!(!only(CARDS_ONLY, v), "{v}");
    }
}

#[test]
fn emails_are_masked_whole() {
    for (input, want) in [
        ("ann@example.com", "****@****"),
        (
            "Contact: Ann.Lee+news@mail.example.co.uk.",
            "Contact: ****@****.",
        ),
        (
            "\"email\":\"x_y-z%1@sub.domain.io\"",
            "\"email\":\"****@****\"",
        ),
        (
            "<bob@example.org>, carol@example.net",
            "<****@****>, ****@****",
        ),
        ("josé@exämple.com", "****@****"),
        ("email='ann@example.com'", "email='****@****'"),
    ] {
        assert_eq!(masked(input), want, "{input}");
    }
}

#[test]
fn at_signs_that_are_not_emails_stay() {
    let d = Detectors {
        emails: true,
        ..Detectors::NONE
    };
    for v in [
        "@handle",
        "user@localhost",
        "a@b",
        "a@b.c",
        "meet @ 5pm",
        "x@.com",
        "x@a..com",
        "x@123.456",
        "@@@@",
        "git@github",
    ] {
        assert!(!only(d, v), "{v}");
    }
}

#[test]
fn dashed_ssns_are_masked_fully() {
    for (input, want) in [
        ("123-45-6789", "***-**-****"),
        ("ssn 078-05-1120;", "ssn ***-**-****;"),
        ("a 123-45-6789 7", "a ***-**-**** 7"),
    ] {
        assert_eq!(masked(input), want, "{input}");
    }
}

#[test]
fn ssn_look_alikes_stay() {
    let d = Detectors {
        ssns: true,
        ..Detectors::NONE
    };
    for v in [
        "123456789",
        "000-12-3456",
        "666-12-3456",
        "912-34-5678",
        "123-00-4567",
        "123-45-0000",
        "1-123-45-6789",
        "123-45-6789-1",
        "2023-45-6789",
        "123-456-7890",
        "12-345-6789",
        "123 45 6789",
    ] {
        assert!(!only(d, v), "{v}");
    }
}

#[test]
fn secrets_are_masked() {
    let jwt = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaS1ib3QifQ.c2lnbmF0dXJlLWJ5dGVz";
    for (input, want) in [
        (format!("token={jwt}"), "token=****".to_string()),
        (format!("Bearer {jwt}."), "Bearer ****.".to_string()),
        ("AKIAIOSFODNN7EXAMPLE".into(), "****".into()),
        ("key ASIAY34FZKBOKMUTVV7A,".into(), "key ****,".into()),
        (format!("ghp_{}", "a1B2".repeat(9)), "****".into()),
        (
            format!("github_pat_11ABCDEFG_{}", "x".repeat(40)),
            "****".into(),
        ),
        ("glpat-xxxxxxxxxxxxxxxxxxxx".into(), "****".into()),
        ("xoxb-1234567890-abcdefghij".into(), "****".into()),
        (
            format!("sk_live_{}", "4eC39HqLyjWDarjtT1zdp7dc"),
            "****".into(),
        ),
        (
            format!("OPENAI=sk-proj-{}", "A".repeat(40)),
            "OPENAI=****".into(),
        ),
        (format!("sk-ant-api03-{}", "b".repeat(30)), "****".into()),
        (
            format!("AIza{}", "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
            "****".into(),
        ),
        (format!("npm_{}", "Z".repeat(36)), "****".into()),
    ] {
        assert_eq!(masked(&input), want, "{input}");
    }
}

#[test]
fn pem_private_keys_are_masked_through_the_end_line() {
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z\nabc=\n-----END RSA PRIVATE KEY-----";
    assert_eq!(masked(&format!("key:\n{pem}\nrest")), "key:\n****\nrest");
    let openssh =
        "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk\\n-----END OPENSSH PRIVATE KEY-----";
    assert_eq!(masked(&format!("{openssh}\tnext")), "****\tnext");
    // Cut off before its END line: the rest is key material.
    assert_eq!(
        masked("x -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN"),
        "x ****"
    );
    // Certificates and public keys are not secrets.
    for v in [
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----",
    ] {
        assert_eq!(masked(v), v);
    }
}

#[test]
fn token_look_alikes_stay() {
    for v in [
        "task-scheduler-configuration-value",
        "desk-lamp sk-short",
        "eyJhbGciOiJIUzI1NiJ9 no dots",
        "AKIA too short",
        "AKIAIOSFODNN7EXAMPL",
        "ghp_short",
        "the sky-blue kite",
        "version 1.2.3-rc.1+build.5",
        "550e8400-e29b-41d4-a716-446655440000",
    ] {
        assert_eq!(masked(v), v, "{v}");
    }
}

#[test]
fn clean_values_are_left_alone() {
    for v in [
        "",
        "Ann Lee",
        "2024-05-01T12:34:56Z",
        "Order #12345 shipped to 221B Baker Street, London NW1 6XE on 2024-05-01.",
        "{\"id\": 123456789012, \"price\": 19.99, \"tags\": [\"a\", \"b\"]}",
        "PostgreSQL 15.18 on x86_64-pc-linux-gnu",
    ] {
        assert_eq!(masked(v), v);
    }
}

#[test]
fn overlapping_findings_merge_into_one_mask() {
    assert_eq!(masked("4111111111111111@example.com"), "****");
    assert_eq!(masked("a@b.cc@d.ee"), "****");
}

#[test]
fn disabled_detectors_find_nothing() {
    let all = "4111111111111111 ann@example.com 123-45-6789 AKIAIOSFODNN7EXAMPLE";
    assert!(!Detectors::NONE.finds(all.as_bytes()));
    assert!(!Detectors::default().any());
    assert_eq!(
        masked(all),
        "****-****-****-1111 ****@**** ***-**-**** ****"
    );
}

#[test]
fn non_utf8_input_is_masked_bytewise() {
    let mut out = Vec::new();
    assert!(Detectors::ALL.mask(b"\xff\xfe 4111111111111111 \x80", &mut out));
    assert_eq!(out, b"\xff\xfe ****-****-****-1111 \x80");
}

/// A Luhn-valid 16-digit Visa-like number built from 15 arbitrary digits.
fn card_from(body: &[u8]) -> String {
    let mut digits: Vec<u8> = std::iter::once(4)
        .chain(body.iter().map(|d| d % 10))
        .take(15)
        .collect();
    for check in 0..10 {
        digits.push(check);
        let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        if super::digits::luhn_for_tests(&digits) {
            return s;
        }
        digits.pop();
    }
    unreachable!("one check digit always satisfies Luhn")
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        let _ = Detectors::ALL.mask(&v, &mut out);
    }

    #[test]
    fn detector_alphabet_soup_never_panics(v in "[0-9 \\-@.a-zA-Z_eyJAKI]{0,200}") {
        let mut out = Vec::new();
        if Detectors::ALL.mask(v.as_bytes(), &mut out) {
            // Masking again finds nothing new to hide.
            let mut again = Vec::new();
            prop_assert!(!Detectors::ALL.mask(&out, &mut again) || again.len() <= out.len());
        }
    }

    #[test]
    fn masked_cards_never_survive(
        body in proptest::collection::vec(0u8..10, 15),
        sep in prop_oneof![Just(""), Just(" "), Just("-")],
        before in "[a-z :=,\"]{0,12}",
        after in "[a-z :=,\"]{0,12}",
    ) {
        let card = card_from(&body);
        let printed: Vec<&str> = (0..4).map(|i| &card[i * 4..i * 4 + 4]).collect();
        let printed = printed.join(sep);
        let v = format!("{before}{printed}{after}");
        let out = masked(&v);
        prop_assert!(!out.contains(&printed), "{} -> {}", v, out);
        prop_assert!(!out.replace(['-', ' '], "").contains(&card[..12]));
        let tail = format!("{}{}", &card[12..], after);
        prop_assert!(out.ends_with(&tail));
    }

    #[test]
    fn masked_emails_never_survive(
        local in "[a-z0-9][a-z0-9._+-]{0,20}",
        domain in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,8}){0,2}\\.[a-z]{2,6}",
        before in "[ ,;:<(\"]{0,3}",
        after in "[ ,;:>)\"]{0,3}",
    ) {
        let email = format!("{local}@{domain}");
        let out = masked(&format!("{before}{email}{after}"));
        prop_assert_eq!(out, format!("{before}****@****{after}"));
    }
}
