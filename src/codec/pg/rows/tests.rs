//! Tests for the result-data messages: round trips, recorded sessions, malformed bodies and
//! arbitrary bytes.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::codec::pg::decode_frame;
use crate::codec::pg::tag::backend as be;

use crate::codec::pg::testutil::{frame, handmade};

fn field(
    name: &'static [u8],
    table_oid: u32,
    column: i16,
    type_oid: u32,
) -> FieldDescription<'static> {
    FieldDescription {
        name,
        table_oid,
        column,
        type_oid,
        type_size: -1,
        type_modifier: -1,
        format: FORMAT_TEXT,
    }
}

/// Every tagged message of a recorded server stream.
fn backend_frames(wire: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(wire);
    let mut frames = Vec::new();
    while let Some(f) = decode_frame(&mut buf, 1 << 20).unwrap() {
        frames.push(f);
    }
    assert!(buf.is_empty());
    frames
}

#[test]
fn row_description_round_trips_every_field() {
    let fields = [
        field(b"id", 16_384, 1, 23),
        FieldDescription {
            name: b"card_number",
            table_oid: u32::MAX,
            column: i16::MIN,
            type_oid: 25,
            type_size: 4,
            type_modifier: 68,
            format: FORMAT_BINARY,
        },
        field(b"", 0, 0, 705),
    ];
    let mut out = BytesMut::new();
    encode_row_description(&mut out, &fields);
    let f = frame(&mut out);
    let rd = RowDescription::decode(&f).unwrap();
    assert_eq!(rd.len(), 3);
    assert_eq!(rd.fields().collect::<Vec<_>>(), fields);
}

#[test]
fn empty_row_description_and_row() {
    let mut out = BytesMut::new();
    encode_row_description(&mut out, &[]);
    encode_data_row(&mut out, []);
    let t = frame(&mut out);
    assert!(RowDescription::decode(&t).unwrap().is_empty());
    let d = frame(&mut out);
    assert_eq!(d.body(), [0, 0]);
    assert!(DataRow::decode(&d).unwrap().is_empty());
}

#[test]
fn row_description_rejects_short_long_and_negative() {
    let mut good = BytesMut::new();
    encode_row_description(&mut good, &[field(b"a", 1, 1, 25)]);
    let good = frame(&mut good);
    let body = good.body();
    for cut in 0..body.len() {
        assert!(
            RowDescription::decode(&handmade(b'T', &body[..cut])).is_err(),
            "cut {cut}"
        );
    }
    let mut long = body.to_vec();
    long.push(0);
    assert!(RowDescription::decode(&handmade(b'T', &long)).is_err());
    assert!(RowDescription::decode(&handmade(b'T', &[0xff, 0xff])).is_err());
    assert!(RowDescription::decode(&handmade(b'D', body)).is_err());
}

#[test]
fn data_row_round_trips_nulls_and_empty_values() {
    let values: [Option<&[u8]>; 4] = [Some(b"42"), None, Some(b""), Some(b"\0\xff tab\t")];
    let mut out = BytesMut::new();
    encode_data_row(&mut out, values);
    let f = frame(&mut out);
    let row = DataRow::decode(&f).unwrap();
    assert_eq!(row.len(), 4);
    assert_eq!(row.values().collect::<Vec<_>>(), values);
}

#[test]
fn data_row_encoder_matches_encode_data_row() {
    let mut a = BytesMut::from(&b"prefix"[..]);
    let mut enc = DataRowEncoder::begin(&mut a);
    enc.value(Some(b"x"));
    enc.value(None);
    enc.finish();
    let mut b = BytesMut::from(&b"prefix"[..]);
    encode_data_row(&mut b, [Some(&b"x"[..]), None]);
    assert_eq!(a, b);
    let _ = a.split_to(6);
    let row = frame(&mut a);
    assert_eq!(DataRow::decode(&row).unwrap().len(), 2);
}

#[test]
fn data_row_rejects_lying_lengths() {
    for body in [
        &b""[..],
        b"\0",
        b"\0\x01",
        b"\0\x01\0\0\0\x05abcd",
        b"\0\x01\0\0\0\x03abcd",
        b"\0\x01\xff\xff\xff\xfe",
        b"\0\x01\x80\0\0\0",
        b"\xff\xff",
        b"\0\0x",
        b"\0\x02\xff\xff\xff\xff",
    ] {
        assert!(
            matches!(
                DataRow::decode(&handmade(b'D', body)),
                Err(CodecError::Malformed(_))
            ),
            "body {body:?}"
        );
    }
}

#[test]
fn command_complete_splits_command_and_rows() {
    for (tag, command, rows) in [
        ("SELECT 3", "SELECT", Some(3)),
        ("INSERT 0 5", "INSERT", Some(5)),
        ("UPDATE 0", "UPDATE", Some(0)),
        ("COPY 12", "COPY", Some(12)),
        ("CREATE TABLE", "CREATE TABLE", None),
        ("BEGIN", "BEGIN", None),
        ("FETCH 18446744073709551616", "FETCH", None),
    ] {
        let mut out = BytesMut::new();
        encode_command_complete(&mut out, tag);
        let f = frame(&mut out);
        let c = CommandComplete::decode(&f).unwrap();
        assert_eq!((c.tag, c.rows()), (tag, rows), "{tag}");
        if rows.is_some() {
            assert_eq!(c.command(), command, "{tag}");
        }
    }
    assert!(CommandComplete::decode(&handmade(b'C', b"SELECT 1")).is_err());
    assert!(CommandComplete::decode(&handmade(b'C', b"SELECT 1\0x")).is_err());
}

#[test]
fn copy_data_and_response_round_trip() {
    let mut out = BytesMut::new();
    encode_copy_response(&mut out, be::COPY_OUT_RESPONSE, 0, &[0, 0, 1]);
    encode_copy_data(&mut out, b"1\tann@example.com\n");
    let h = frame(&mut out);
    let c = CopyResponse::decode(&h).unwrap();
    assert!(!c.is_binary());
    assert_eq!((c.tag, c.len()), (b'H', 3));
    assert_eq!(c.column_formats().collect::<Vec<_>>(), [0, 0, 1]);
    let d = frame(&mut out);
    assert_eq!(CopyData::decode(&d).unwrap().data, b"1\tann@example.com\n");
    assert!(CopyResponse::decode(&handmade(b'H', b"\0\0\x02\0\0")).is_err());
    assert!(CopyResponse::decode(&handmade(b'H', b"\0\xff\xff")).is_err());
    assert!(CopyResponse::decode(&handmade(b'd', b"\0\0\0")).is_err());
}

#[test]
fn notification_round_trips_and_rejects_garbage() {
    let n = NotificationResponse {
        pid: 4242,
        channel: b"jobs",
        payload: b"card 4111 1111 1111 1111",
    };
    let mut out = BytesMut::new();
    n.encode(&mut out);
    let f = frame(&mut out);
    assert_eq!(NotificationResponse::decode(&f), Ok(n));
    for body in [&b"\0\0\0\x01jobs\0"[..], b"\0\0\0\x01jobs\0x\0y", b"\0\0"] {
        assert!(NotificationResponse::decode(&handmade(b'A', body)).is_err());
    }
}

#[test]
fn recorded_sessions_decode_with_the_typed_decoders() {
    let copy = backend_frames(include_bytes!("../testdata/copy.be.bin"));
    let simple = backend_frames(include_bytes!("../testdata/simple.be.bin"));
    let listen = backend_frames(include_bytes!("../testdata/listen_notify.be.bin"));
    let extended = backend_frames(include_bytes!("../testdata/extended_prepared.be.bin"));
    let mut seen = [0usize; 6];
    for f in copy.iter().chain(&simple).chain(&listen).chain(&extended) {
        match f.tag {
            be::ROW_DESCRIPTION => {
                let rd = RowDescription::decode(f).unwrap();
                assert_eq!(rd.fields().count(), rd.len());
                seen[0] += 1;
            }
            be::DATA_ROW => {
                let row = DataRow::decode(f).unwrap();
                assert_eq!(row.values().count(), row.len());
                let mut again = BytesMut::new();
                encode_data_row(&mut again, row.values());
                assert_eq!(again.freeze(), f.bytes);
                seen[1] += 1;
            }
            be::COMMAND_COMPLETE => {
                CommandComplete::decode(f).unwrap();
                seen[2] += 1;
            }
            be::COPY_DATA => {
                CopyData::decode(f).unwrap();
                seen[3] += 1;
            }
            be::COPY_OUT_RESPONSE | be::COPY_IN_RESPONSE => {
                CopyResponse::decode(f).unwrap();
                seen[4] += 1;
            }
            be::NOTIFICATION_RESPONSE => {
                let n = NotificationResponse::decode(f).unwrap();
                let mut again = BytesMut::new();
                n.encode(&mut again);
                assert_eq!(again.freeze(), f.bytes);
                seen[5] += 1;
            }
            _ => {}
        }
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "every message kind was recorded: {seen:?}"
    );
}

fn as_tag(tag: u8, bytes: &Bytes) -> Frame {
    Frame {
        tag,
        bytes: bytes.clone(),
    }
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let f = handmade(b'X', &body);
        let b = &f.bytes;
        if let Ok(rd) = RowDescription::decode(&as_tag(b'T', b)) {
            prop_assert_eq!(rd.fields().count(), rd.len());
        }
        if let Ok(row) = DataRow::decode(&as_tag(b'D', b)) {
            prop_assert_eq!(row.values().count(), row.len());
        }
        if let Ok(c) = CommandComplete::decode(&as_tag(b'C', b)) {
            let _ = (c.command(), c.rows());
        }
        let _ = CopyData::decode(&as_tag(b'd', b));
        if let Ok(c) = CopyResponse::decode(&as_tag(b'H', b)) {
            prop_assert_eq!(c.column_formats().count(), c.len());
        }
        let _ = NotificationResponse::decode(&as_tag(b'A', b));
    }

    #[test]
    fn data_rows_round_trip(values in proptest::collection::vec(
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)), 0..16)
    ) {
        let mut out = BytesMut::new();
        encode_data_row(&mut out, values.iter().map(|v| v.as_deref()));
        let f = frame(&mut out);
        let row = DataRow::decode(&f).unwrap();
        let back: Vec<Option<Vec<u8>>> = row.values().map(|v| v.map(<[u8]>::to_vec)).collect();
        prop_assert_eq!(back, values);
    }
}
