//! Fuzzes the PostgreSQL codec: arbitrary bytes go through the startup decoder, then the frame
//! decoder, then every typed decoder; decoders must never panic and re-encoding a decoded
//! message must give back its bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::codec::pg::{
    decode_frame, decode_startup, encode_startup, tag, Authentication, BackendKeyData, ErrorNotice,
    Frame, ParameterStatus, PasswordMessage, Query, ReadyForQuery, SaslInitialResponse,
    SaslResponse, StartupPacket,
};

const MAX_LEN: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    match decode_startup(&mut buf, MAX_LEN) {
        Ok(Some(StartupPacket::Startup(m))) => {
            let params: Vec<(&str, &str)> = m.params().collect();
            let _ = (m.user(), m.database());
            let mut again = BytesMut::new();
            encode_startup(&params, &mut again);
            assert_eq!(
                &again[..],
                &m.as_bytes()[..],
                "startup re-encodes to its bytes"
            );
        }
        Ok(_) => {}
        // Not a startup packet: read the same bytes as tagged messages instead, so the frame
        // decoders see every input.
        Err(_) => buf = BytesMut::from(data),
    }
    let mut consumed = data.len() - buf.len();
    while let Ok(Some(frame)) = decode_frame(&mut buf, MAX_LEN) {
        assert_eq!(frame.bytes.first(), Some(&frame.tag));
        assert_eq!(&frame.bytes[..], &data[consumed..consumed + frame.len()]);
        consumed += frame.len();
        typed(&frame);
    }
});

/// Runs every typed decoder over the frame's bytes under the tag it expects.
fn typed(frame: &Frame) {
    let as_tag = |t: u8| Frame {
        tag: t,
        bytes: frame.bytes.clone(),
    };
    let same = |encode: &dyn Fn(&mut BytesMut)| {
        let mut out = BytesMut::new();
        encode(&mut out);
        assert_eq!(
            &out[1..],
            &frame.bytes[1..],
            "re-encoding gives the same bytes"
        );
    };
    if let Ok(a) = Authentication::decode(&as_tag(tag::backend::AUTHENTICATION)) {
        // Unknown codes keep only the code, not their payload.
        if !matches!(a, Authentication::Other(_)) {
            same(&|out| a.encode(out));
        }
    }
    if let Ok(k) = BackendKeyData::decode(&as_tag(tag::backend::BACKEND_KEY_DATA)) {
        same(&|out| k.encode(out));
    }
    if let Ok(r) = ReadyForQuery::decode(&as_tag(tag::backend::READY_FOR_QUERY)) {
        same(&|out| r.encode(out));
    }
    let ps = as_tag(tag::backend::PARAMETER_STATUS);
    if let Ok(p) = ParameterStatus::decode(&ps) {
        same(&|out| p.encode(out));
    }
    let en = as_tag(tag::backend::ERROR_RESPONSE);
    if let Ok(e) = ErrorNotice::decode(&en) {
        let _ = (e.severity(), e.code(), e.message(), e.detail(), e.hint());
        let _ = e.fields().count();
    }
    let p = as_tag(tag::frontend::PASSWORD_MESSAGE);
    let _ = PasswordMessage::decode(&p);
    let _ = SaslInitialResponse::decode(&p);
    let _ = SaslResponse::decode(&p);
    let q = as_tag(tag::frontend::QUERY);
    if let Ok(q) = Query::decode(&q) {
        let _ = q.as_str();
    }
}
