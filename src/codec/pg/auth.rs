//! Authentication requests and results (backend `R` messages).

use bytes::{BufMut, Bytes, BytesMut};

use super::tag::backend::AUTHENTICATION;
use super::wire::{begin, finish, put_cstr, Reader};
use super::{CodecError, Frame, HEADER_LEN};

const OK: i32 = 0;
const CLEARTEXT_PASSWORD: i32 = 3;
const MD5_PASSWORD: i32 = 5;
const SASL: i32 = 10;
const SASL_CONTINUE: i32 = 11;
const SASL_FINAL: i32 = 12;

/// An Authentication message: what the server asks of the client, or that it is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Authentication succeeded.
    Ok,
    /// Send the password in clear text.
    CleartextPassword,
    /// Send the MD5 hash of the password with this salt.
    Md5Password {
        /// Salt mixed into the hash.
        salt: [u8; 4],
    },
    /// Start SASL with one of these mechanisms, in the server's order of preference.
    Sasl {
        /// Mechanism names such as `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// Server-side SASL data for the next step (zero-copy slice of the frame).
    SaslContinue(Bytes),
    /// Final server-side SASL data (zero-copy slice of the frame).
    SaslFinal(Bytes),
    /// A request the gateway does not speak (Kerberos, GSSAPI, SSPI), by its code.
    Other(i32),
}

impl Authentication {
    /// Decodes an `R` frame.
    pub fn decode(frame: &Frame) -> Result<Self, CodecError> {
        let mut r = Reader::new(frame.expect(AUTHENTICATION)?);
        let auth = match r.i32()? {
            OK => Self::Ok,
            CLEARTEXT_PASSWORD => Self::CleartextPassword,
            MD5_PASSWORD => Self::Md5Password { salt: r.array()? },
            SASL => Self::Sasl {
                mechanisms: decode_mechanisms(&mut r)?,
            },
            SASL_CONTINUE => Self::SaslContinue(rest(frame, &mut r)),
            SASL_FINAL => Self::SaslFinal(rest(frame, &mut r)),
            // Their payloads (if any) are opaque here; the code is all a caller needs to refuse.
            other => return Ok(Self::Other(other)),
        };
        r.finish()?;
        Ok(auth)
    }

    /// Appends this message.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Ok => encode_auth_ok(out),
            Self::CleartextPassword => encode_auth_cleartext(out),
            Self::Md5Password { salt } => encode_auth_md5(out, *salt),
            Self::Sasl { mechanisms } => encode_auth_sasl(out, mechanisms),
            Self::SaslContinue(data) => encode_auth_sasl_continue(out, data),
            Self::SaslFinal(data) => encode_auth_sasl_final(out, data),
            Self::Other(code) => encode_code(out, *code, &[]),
        }
    }
}

/// The mechanism list: strings ending with an empty one.
fn decode_mechanisms(r: &mut Reader<'_>) -> Result<Vec<String>, CodecError> {
    let mut mechanisms = Vec::new();
    loop {
        let name = r.cstr_utf8()?;
        if name.is_empty() {
            return Ok(mechanisms);
        }
        mechanisms.push(name.to_owned());
    }
}

/// The rest of the body as a slice of the frame's own buffer.
fn rest(frame: &Frame, r: &mut Reader<'_>) -> Bytes {
    let from = HEADER_LEN + r.position();
    let data = if from <= frame.bytes.len() {
        frame.bytes.slice(from..)
    } else {
        Bytes::new()
    };
    let _ = r.bytes(r.remaining().len());
    data
}

fn encode_code(out: &mut BytesMut, code: i32, data: &[u8]) {
    let at = begin(out, AUTHENTICATION);
    out.put_i32(code);
    out.put_slice(data);
    finish(out, at);
}

/// Appends AuthenticationOk.
pub fn encode_auth_ok(out: &mut BytesMut) {
    encode_code(out, OK, &[]);
}

/// Appends AuthenticationCleartextPassword.
pub fn encode_auth_cleartext(out: &mut BytesMut) {
    encode_code(out, CLEARTEXT_PASSWORD, &[]);
}

/// Appends AuthenticationMD5Password.
pub fn encode_auth_md5(out: &mut BytesMut, salt: [u8; 4]) {
    encode_code(out, MD5_PASSWORD, &salt);
}

/// Appends AuthenticationSASL with the given mechanisms.
pub fn encode_auth_sasl<S: AsRef<str>>(out: &mut BytesMut, mechanisms: &[S]) {
    let at = begin(out, AUTHENTICATION);
    out.put_i32(SASL);
    for m in mechanisms {
        put_cstr(out, m.as_ref().as_bytes());
    }
    out.put_u8(0);
    finish(out, at);
}

/// Appends AuthenticationSASLContinue.
pub fn encode_auth_sasl_continue(out: &mut BytesMut, data: &[u8]) {
    encode_code(out, SASL_CONTINUE, data);
}

/// Appends AuthenticationSASLFinal.
pub fn encode_auth_sasl_final(out: &mut BytesMut, data: &[u8]) {
    encode_code(out, SASL_FINAL, data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::pg::decode_frame;

    fn frame(out: &mut BytesMut) -> Frame {
        decode_frame(out, 1 << 16).unwrap().unwrap()
    }

    fn round_trip(auth: Authentication) {
        let mut out = BytesMut::new();
        auth.encode(&mut out);
        assert_eq!(Authentication::decode(&frame(&mut out)), Ok(auth));
        assert!(out.is_empty());
    }

    #[test]
    fn every_variant_round_trips() {
        round_trip(Authentication::Ok);
        round_trip(Authentication::CleartextPassword);
        round_trip(Authentication::Md5Password {
            salt: [1, 2, 3, 255],
        });
        round_trip(Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
        });
        round_trip(Authentication::Sasl { mechanisms: vec![] });
        round_trip(Authentication::SaslContinue(Bytes::from_static(
            b"r=abc,s=c2FsdA==,i=4096",
        )));
        round_trip(Authentication::SaslFinal(Bytes::from_static(b"v=xyz")));
        round_trip(Authentication::SaslFinal(Bytes::new()));
        round_trip(Authentication::Other(7));
    }

    #[test]
    fn free_encoders_match_the_documented_bytes() {
        let mut out = BytesMut::new();
        encode_auth_ok(&mut out);
        encode_auth_cleartext(&mut out);
        assert_eq!(&out[..], b"R\0\0\0\x08\0\0\0\0R\0\0\0\x08\0\0\0\x03");
    }

    #[test]
    fn sasl_data_is_a_slice_of_the_frame() {
        let mut out = BytesMut::new();
        encode_auth_sasl_continue(&mut out, b"server-first");
        let f = frame(&mut out);
        let Ok(Authentication::SaslContinue(data)) = Authentication::decode(&f) else {
            panic!("not SaslContinue");
        };
        assert_eq!(data.as_ptr(), f.body()[4..].as_ptr());
    }

    #[test]
    fn malformed_bodies_are_rejected() {
        let cases: [&[u8]; 6] = [
            b"",                          // no code
            b"\0\0",                      // short code
            b"\0\0\0\0x",                 // Ok with trailing bytes
            b"\0\0\0\x05\x01\x02",        // short salt
            b"\0\0\0\x0aSCRAM-SHA-256\0", // mechanism list without final terminator
            b"\0\0\0\x0aSCRAM\xff\0\0",   // mechanism not UTF-8
        ];
        for body in cases {
            let mut wire = BytesMut::new();
            let at = begin(&mut wire, b'R');
            wire.put_slice(body);
            finish(&mut wire, at);
            assert!(
                matches!(
                    Authentication::decode(&frame(&mut wire)),
                    Err(CodecError::Malformed(_))
                ),
                "body {body:?}"
            );
        }
    }

    #[test]
    fn wrong_tag_is_rejected() {
        let mut out = BytesMut::new();
        encode_auth_ok(&mut out);
        let mut f = frame(&mut out);
        f.tag = b'Z';
        assert_eq!(
            Authentication::decode(&f),
            Err(CodecError::Malformed("unexpected message tag"))
        );
    }
}
