//! Unit tests for the startup-phase codec.

use super::*;

fn packet(code: u32, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32((body.len() + 8) as u32);
    out.put_u32(code);
    out.put_slice(body);
    out
}

fn decode_all(mut buf: BytesMut) -> Result<Option<StartupPacket>, CodecError> {
    decode_startup(&mut buf, MAX_STARTUP_LEN)
}

fn startup(buf: BytesMut) -> StartupMessage {
    match decode_all(buf) {
        Ok(Some(StartupPacket::Startup(m))) => m,
        other => panic!("expected a StartupMessage, got {other:?}"),
    }
}

#[test]
fn startup_round_trip_keeps_wire_order() {
    let mut out = BytesMut::new();
    let params = [
        ("user", "ci-job"),
        ("database", "orders"),
        ("application_name", ""),
    ];
    encode_startup(&params, &mut out);
    let m = startup(out.clone());
    assert_eq!(m.params().collect::<Vec<_>>(), params);
    assert_eq!(m.user(), Some("ci-job"));
    assert_eq!(m.database(), Some("orders"));
    assert_eq!(m.param("application_name"), Some(""));
    assert_eq!(m.param("User"), None, "names match exactly");
    assert_eq!(m.as_bytes(), &out.freeze());
}

#[test]
fn database_defaults_to_user_when_absent_or_empty() {
    let mut out = BytesMut::new();
    encode_startup(&[("user", "alice")], &mut out);
    assert_eq!(startup(out).database(), Some("alice"));
    let mut out = BytesMut::new();
    encode_startup(&[("database", ""), ("user", "bob")], &mut out);
    assert_eq!(startup(out).database(), Some("bob"));
    let mut out = BytesMut::new();
    encode_startup(&[], &mut out);
    let m = startup(out);
    assert_eq!(
        (m.user(), m.database(), m.params().count()),
        (None, None, 0)
    );
}

#[test]
fn encoder_cuts_interior_nul_and_skips_empty_names() {
    let mut out = BytesMut::new();
    encode_startup(
        &[("user", "a\0database\0x"), ("", "v"), ("\0n", "v")],
        &mut out,
    );
    let m = startup(out);
    assert_eq!(m.params().collect::<Vec<_>>(), [("user", "a")]);
}

#[test]
fn ssl_gss_and_cancel_round_trip() {
    let mut out = BytesMut::new();
    encode_ssl_request(&mut out);
    encode_cancel_request(
        CancelRequest {
            pid: 4242,
            secret: -7,
        },
        &mut out,
    );
    out.extend_from_slice(&packet(GSSENC_REQUEST_CODE, b""));
    assert_eq!(
        decode_startup(&mut out, 16),
        Ok(Some(StartupPacket::SslRequest))
    );
    assert_eq!(
        decode_startup(&mut out, 16),
        Ok(Some(StartupPacket::Cancel(CancelRequest {
            pid: 4242,
            secret: -7
        })))
    );
    assert_eq!(
        decode_startup(&mut out, 16),
        Ok(Some(StartupPacket::GssEncRequest))
    );
    assert_eq!(decode_startup(&mut out, 16), Ok(None));
}

#[test]
fn every_prefix_waits_without_consuming() {
    let mut whole = BytesMut::new();
    encode_startup(&[("user", "u"), ("database", "d")], &mut whole);
    for cut in 0..whole.len() {
        let mut buf = BytesMut::from(&whole[..cut]);
        assert_eq!(
            decode_startup(&mut buf, MAX_STARTUP_LEN),
            Ok(None),
            "prefix {cut}"
        );
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn leaves_following_bytes_in_the_buffer() {
    let mut buf = BytesMut::new();
    encode_startup(&[("user", "u")], &mut buf);
    buf.extend_from_slice(b"Q\0\0\0\x05;\0");
    assert!(matches!(
        decode_all(buf.clone()),
        Ok(Some(StartupPacket::Startup(_)))
    ));
    decode_startup(&mut buf, MAX_STARTUP_LEN).unwrap();
    assert_eq!(&buf[..], b"Q\0\0\0\x05;\0");
}

#[test]
fn length_below_eight_is_malformed() {
    for len in [0u32, 4, 7] {
        let mut buf = BytesMut::new();
        buf.put_u32(len);
        buf.put_u32(PROTOCOL_3_0);
        assert_eq!(
            decode_startup(&mut buf, MAX_STARTUP_LEN),
            Err(CodecError::Malformed("startup length below 8"))
        );
    }
}

#[test]
fn oversized_length_is_rejected_before_buffering() {
    // An HTTP request sent to the PostgreSQL port reads as a huge length.
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    let cap = buf.capacity();
    let err = decode_startup(&mut buf, MAX_STARTUP_LEN).unwrap_err();
    assert_eq!(
        err,
        CodecError::TooLarge {
            len: 0x4745_5420,
            max: MAX_STARTUP_LEN
        }
    );
    assert_eq!(buf.capacity(), cap);
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    assert_eq!(decode_startup(&mut buf, usize::MAX - 1), Ok(None));
}

#[test]
fn other_versions_are_unsupported() {
    assert_eq!(
        decode_all(packet(2 << 16, b"\0")),
        Err(CodecError::UnsupportedProtocol(2 << 16))
    );
    let v3_2 = (3 << 16) | 2;
    assert_eq!(
        decode_all(packet(v3_2, b"\0")),
        Err(CodecError::UnsupportedProtocol(v3_2))
    );
    assert_eq!(
        CodecError::UnsupportedProtocol(v3_2).to_string(),
        "unsupported protocol version 3.2"
    );
}

#[test]
fn bad_parameter_layouts_are_malformed() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "startup packet without final terminator"),
        (b"user\0u\0", "startup packet without final terminator"),
        (b"user\0", "startup packet without final terminator"),
        (b"user\0\0", "startup parameter without a value"),
        (b"\0user\0u\0\0", "empty startup parameter name"),
        (b"user\0a\0user\0b\0\0", "duplicate startup parameter"),
        (b"user\0\xff\xfe\0\0", "startup parameter is not UTF-8"),
    ];
    for (body, reason) in cases {
        assert_eq!(
            decode_all(packet(PROTOCOL_3_0, body)),
            Err(CodecError::Malformed(reason)),
            "body {body:?}"
        );
    }
}

#[test]
fn fixed_size_requests_with_wrong_lengths_are_malformed() {
    assert!(matches!(
        decode_all(packet(SSL_REQUEST_CODE, b"xxxx")),
        Err(CodecError::Malformed(_))
    ));
    assert!(matches!(
        decode_all(packet(GSSENC_REQUEST_CODE, b"x")),
        Err(CodecError::Malformed(_))
    ));
    assert!(matches!(
        decode_all(packet(CANCEL_REQUEST_CODE, b"1234")),
        Err(CodecError::Malformed("CancelRequest length is not 16"))
    ));
}

#[test]
fn debug_lists_parameters() {
    let mut out = BytesMut::new();
    encode_startup(&[("user", "u")], &mut out);
    assert_eq!(format!("{:?}", startup(out)), r#"{"user": "u"}"#);
}
