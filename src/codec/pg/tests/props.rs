//! Property tests: arbitrary bytes never panic a decoder, encoders round-trip, and how reads
//! are split never changes what is decoded.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use crate::codec::pg::{
    decode_frame, decode_startup, encode_error_with_detail, encode_parameter_status, encode_query,
    encode_startup, peek_header, tag, Authentication, BackendKeyData, CodecError, ErrorNotice,
    Frame, ParameterStatus, PasswordMessage, Query, ReadyForQuery, SaslInitialResponse,
    SaslResponse, StartupPacket, PROTOCOL_3_0,
};

const MAX_LEN: usize = 4096;

/// Runs every typed decoder over a frame's bytes, each under the tag it expects.
fn decode_typed(f: &Frame) {
    let as_tag = |t: u8| Frame {
        tag: t,
        bytes: f.bytes.clone(),
    };
    let _ = Authentication::decode(&as_tag(tag::backend::AUTHENTICATION));
    let _ = BackendKeyData::decode(&as_tag(tag::backend::BACKEND_KEY_DATA));
    let _ = ReadyForQuery::decode(&as_tag(tag::backend::READY_FOR_QUERY));
    let _ = ParameterStatus::decode(&as_tag(tag::backend::PARAMETER_STATUS));
    if let Ok(e) = ErrorNotice::decode(&as_tag(tag::backend::ERROR_RESPONSE)) {
        let _ = (e.severity(), e.code(), e.message(), e.fields().count());
    }
    let _ = PasswordMessage::decode(&as_tag(tag::frontend::PASSWORD_MESSAGE));
    let _ = SaslInitialResponse::decode(&as_tag(tag::frontend::SASL_INITIAL_RESPONSE));
    let _ = SaslResponse::decode(&as_tag(tag::frontend::SASL_RESPONSE));
    if let Ok(q) = Query::decode(&as_tag(tag::frontend::QUERY)) {
        let _ = q.as_str();
    }
}

/// A frame with the given tag around an arbitrary body.
fn framed(tag: u8, body: &[u8]) -> Frame {
    let mut out = BytesMut::new();
    out.put_u8(tag);
    out.put_i32(body.len() as i32 + 4);
    out.put_slice(body);
    decode_frame(&mut out, usize::MAX).unwrap().unwrap()
}

fn arbitrary_message() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(t, body)| {
        let mut out = BytesMut::new();
        out.put_u8(t);
        out.put_i32(body.len() as i32 + 4);
        out.put_slice(&body);
        out.to_vec()
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&data[..]);
        if let Ok(Some(StartupPacket::Startup(m))) = decode_startup(&mut buf, MAX_LEN) {
            let _ = (m.user(), m.database(), m.params().count(), format!("{m:?}"));
        }
        // The same bytes as the parameters of a well-framed 3.0 StartupMessage.
        let mut buf = BytesMut::new();
        buf.put_u32(data.len() as u32 + 8);
        buf.put_u32(PROTOCOL_3_0);
        buf.put_slice(&data);
        match decode_startup(&mut buf, MAX_LEN) {
            Ok(Some(StartupPacket::Startup(m))) => {
                prop_assert!(buf.is_empty());
                let _ = (m.user(), m.database(), m.params().count(), format!("{m:?}"));
            }
            other => prop_assert!(matches!(other, Err(CodecError::Malformed(_))), "{:?}", other),
        }
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(f)) = decode_frame(&mut buf, MAX_LEN) {
            prop_assert_eq!(f.bytes.len(), f.body().len() + 5);
            decode_typed(&f);
        }
        // The same bytes as the body of each typed message.
        decode_typed(&framed(0, &data));
    }

    #[test]
    fn frames_never_exceed_the_limit_or_the_input(data in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..300) {
        let mut buf = BytesMut::from(&data[..]);
        let mut taken = 0;
        loop {
            match decode_frame(&mut buf, max) {
                Ok(Some(f)) => {
                    prop_assert!(f.len() <= max + 1);
                    prop_assert_eq!(&f.bytes[..], &data[taken..taken + f.len()]);
                    taken += f.len();
                }
                Ok(None) => {
                    prop_assert_eq!(taken + buf.len(), data.len());
                    if let Ok(Some((_, total))) = peek_header(&buf, max) {
                        prop_assert!(total > buf.len());
                    }
                    break;
                }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn split_points_do_not_change_the_frames(
        msgs in proptest::collection::vec(arbitrary_message(), 0..12),
        cuts in proptest::collection::vec(1usize..40, 0..40),
    ) {
        let wire: Vec<u8> = msgs.concat();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(f) = decode_frame(&mut buf, MAX_LEN).unwrap() {
                got.push(f.bytes);
            }
        }
        prop_assert!(buf.is_empty());
        let want: Vec<Bytes> = msgs.into_iter().map(Bytes::from).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn startup_params_round_trip(params in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,16}", 0..8)) {
        let list: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut out = BytesMut::new();
        encode_startup(&list, &mut out);
        let Ok(Some(StartupPacket::Startup(m))) = decode_startup(&mut out, usize::MAX) else {
            return Err(TestCaseError::fail("not a StartupMessage"));
        };
        let cut = |s: &str| s.split('\0').next().unwrap_or_default().to_owned();
        let got: Vec<(String, String)> = m.params().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let want: Vec<(String, String)> = params.iter().map(|(k, v)| (k.clone(), cut(v))).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn strings_round_trip_up_to_the_first_nul(a in "\\PC{0,24}", b in "(\\PC|\\x00){0,24}", c in "\\PC{0,8}") {
        let cut = |s: &str| s.split('\0').next().unwrap_or_default().to_owned();
        let mut out = BytesMut::new();
        encode_error_with_detail(&mut out, &a, &c, &b, Some(&b), None);
        encode_parameter_status(&mut out, &a, &b);
        encode_query(&mut out, &b);
        let e = decode_frame(&mut out, MAX_LEN).unwrap().unwrap();
        let e = ErrorNotice::decode(&e).unwrap();
        prop_assert_eq!(e.severity(), Some(a.as_str()));
        prop_assert_eq!(e.message().map(str::to_owned), Some(cut(&b)));
        prop_assert_eq!(e.detail().map(str::to_owned), Some(cut(&b)));
        let p = decode_frame(&mut out, MAX_LEN).unwrap().unwrap();
        let p = ParameterStatus::decode(&p).unwrap();
        prop_assert_eq!((p.name, p.value.to_owned()), (a.as_str(), cut(&b)));
        let q = decode_frame(&mut out, MAX_LEN).unwrap().unwrap();
        prop_assert_eq!(Query::decode(&q).unwrap().as_str().map(str::to_owned), Ok(cut(&b)));
    }
}
