//! The segment format: a header, then records.
//!
//! ```text
//! segment := MAGIC (8 bytes) | version (u32 LE) | record*
//! record  := length (u32 LE) | CRC-32 of the payload (u32 LE) | payload (length bytes)
//! payload := session (u64 LE) | kind (u8) | fields of the kind
//! ```
//!
//! Fields are little-endian integers and length-prefixed strings and byte strings (`u32`
//! length); an optional string is a presence byte and the string. A record whose length runs
//! past the end of the file, or whose checksum does not match, is a torn tail: nothing after
//! it in that segment is read (the writer never appends after one). Decoding never panics on
//! bad bytes: it returns a [`FormatError`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes};

use super::Item;
use crate::audit::Identity;
use crate::identity::ChainLink;

/// The first bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"SLUICREC";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the first record.
pub const HEADER_LEN: usize = MAGIC.len() + 4;
/// Bytes before a record's payload.
pub const RECORD_HEADER_LEN: usize = 8;
/// The largest payload a reader accepts; a larger length is corruption, not a record.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// Byte items longer than this are split over several records (a reader concatenates a
/// direction's bytes anyway), so no record comes near [`MAX_PAYLOAD`].
pub const MAX_CHUNK: usize = 16 << 20;

const START: u8 = 1;
const FROM_CLIENT: u8 = 2;
const TO_CLIENT: u8 = 3;
const DECISION: u8 = 4;
const TRUNCATED: u8 = 5;
const END: u8 = 6;

/// Why a payload or segment could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a segment file (bad magic)")]
    Magic,
    #[error("segment format version {0} is not supported (this build reads {VERSION})")]
    Version(u32),
    #[error("record length {0} exceeds the limit")]
    TooLong(usize),
    #[error("record runs past the end of the file")]
    Short,
    #[error("record checksum mismatch")]
    Checksum,
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// A session's start as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInfo {
    pub time: SystemTime,
    pub identity: Identity,
    pub resource: String,
    pub client: SocketAddr,
    pub tls: bool,
}

/// An [`Item`] as read back (owned strings instead of shared and static ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Start(Box<StartInfo>),
    FromClient {
        at: Duration,
        bytes: Bytes,
    },
    ToClient {
        at: Duration,
        bytes: Bytes,
    },
    Decision {
        at: Duration,
        fingerprint: String,
        decision: String,
        rule: Option<String>,
    },
    Truncated {
        at: Duration,
        bytes: u64,
        rows: u64,
    },
    End {
        at: Duration,
        reason: String,
    },
}

impl Entry {
    /// The item this entry stands for, as a reader would see it.
    pub fn from_item(item: &Item) -> Entry {
        match item {
            Item::Start {
                time,
                identity,
                resource,
                client,
                tls,
            } => Entry::Start(Box::new(StartInfo {
                time: *time,
                identity: Identity::clone(identity),
                resource: resource.to_string(),
                client: *client,
                tls: *tls,
            })),
            Item::FromClient { at, bytes } => Entry::FromClient {
                at: *at,
                bytes: bytes.clone(),
            },
            Item::ToClient { at, bytes } => Entry::ToClient {
                at: *at,
                bytes: bytes.clone(),
            },
            Item::Decision {
                at,
                fingerprint,
                decision,
                rule,
            } => Entry::Decision {
                at: *at,
                fingerprint: fingerprint.clone(),
                decision: (*decision).to_owned(),
                rule: rule.clone(),
            },
            Item::Truncated { at, bytes, rows } => Entry::Truncated {
                at: *at,
                bytes: *bytes,
                rows: *rows,
            },
            Item::End { at, reason } => Entry::End {
                at: *at,
                reason: (*reason).to_owned(),
            },
        }
    }

    /// Time since the session started (zero for the start itself).
    pub fn at(&self) -> Duration {
        match self {
            Entry::Start(_) => Duration::ZERO,
            Entry::FromClient { at, .. }
            | Entry::ToClient { at, .. }
            | Entry::Decision { at, .. }
            | Entry::Truncated { at, .. }
            | Entry::End { at, .. } => *at,
        }
    }
}

/// Appends the segment header.
pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.put_u32_le(VERSION);
}

/// Checks a segment's header.
pub fn check_header(file: &[u8]) -> Result<(), FormatError> {
    let Some(head) = file.get(..HEADER_LEN) else {
        return Err(FormatError::Magic);
    };
    if &head[..MAGIC.len()] != MAGIC {
        return Err(FormatError::Magic);
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    Ok(())
}

/// Appends `item` of `session` as one record, or several when its bytes exceed
/// [`MAX_CHUNK`]. Returns the offset in `out` of the first record.
pub fn encode_item(session: u64, item: &Item, out: &mut Vec<u8>) -> usize {
    let first = out.len();
    match item {
        Item::FromClient { at, bytes } | Item::ToClient { at, bytes }
            if bytes.len() > MAX_CHUNK =>
        {
            let kind = if matches!(item, Item::FromClient { .. }) {
                FROM_CLIENT
            } else {
                TO_CLIENT
            };
            for chunk in bytes.chunks(MAX_CHUNK) {
                record(out, |p| {
                    head(p, session, kind);
                    p.put_u64_le(nanos(*at));
                    put_bytes(p, chunk);
                });
            }
        }
        _ => record(out, |p| encode_payload(session, item, p)),
    }
    first
}

/// Writes one record around the payload `fill` appends.
fn record(out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    fill(out);
    let payload = &out[at + RECORD_HEADER_LEN..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

fn head(p: &mut Vec<u8>, session: u64, kind: u8) {
    p.put_u64_le(session);
    p.put_u8(kind);
}

fn encode_payload(session: u64, item: &Item, p: &mut Vec<u8>) {
    match item {
        Item::Start {
            time,
            identity,
            resource,
            client,
            tls,
        } => {
            head(p, session, START);
            let (secs, sub) = match time.duration_since(UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
                Err(e) => {
                    let d = e.duration();
                    match d.subsec_nanos() {
                        0 => (-(d.as_secs() as i64), 0),
                        n => (-(d.as_secs() as i64) - 1, 1_000_000_000 - n),
                    }
                }
            };
            p.put_i64_le(secs);
            p.put_u32_le(sub);
            put_str(p, &identity.token);
            put_str(p, &identity.subject);
            put_count(p, identity.chain.len());
            for link in &identity.chain {
                put_str(p, &link.jti);
                put_str(p, &link.name);
            }
            put_count(p, identity.roles.len());
            for role in &identity.roles {
                put_str(p, role);
            }
            put_opt(p, identity.user.as_deref());
            put_str(p, resource);
            match client.ip() {
                IpAddr::V4(ip) => {
                    p.put_u8(4);
                    p.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    p.put_u8(6);
                    p.extend_from_slice(&ip.octets());
                }
            }
            p.put_u16_le(client.port());
            p.put_u8(u8::from(*tls));
        }
        Item::FromClient { at, bytes } => {
            head(p, session, FROM_CLIENT);
            p.put_u64_le(nanos(*at));
            put_bytes(p, bytes);
        }
        Item::ToClient { at, bytes } => {
            head(p, session, TO_CLIENT);
            p.put_u64_le(nanos(*at));
            put_bytes(p, bytes);
        }
        Item::Decision {
            at,
            fingerprint,
            decision,
            rule,
        } => {
            head(p, session, DECISION);
            p.put_u64_le(nanos(*at));
            put_str(p, fingerprint);
            put_str(p, decision);
            put_opt(p, rule.as_deref());
        }
        Item::Truncated { at, bytes, rows } => {
            head(p, session, TRUNCATED);
            p.put_u64_le(nanos(*at));
            p.put_u64_le(*bytes);
            p.put_u64_le(*rows);
        }
        Item::End { at, reason } => {
            head(p, session, END);
            p.put_u64_le(nanos(*at));
            put_str(p, reason);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A chain or role list longer than `u16::MAX` is cut there (no token carries one).
fn put_count(p: &mut Vec<u8>, n: usize) {
    p.put_u16_le(u16::try_from(n).unwrap_or(u16::MAX));
}

fn put_bytes(p: &mut Vec<u8>, b: &[u8]) {
    // Callers keep byte strings under MAX_CHUNK and strings are far smaller.
    p.put_u32_le(u32::try_from(b.len()).unwrap_or(u32::MAX));
    p.extend_from_slice(b);
}

fn put_str(p: &mut Vec<u8>, s: &str) {
    put_bytes(p, s.as_bytes());
}

fn put_opt(p: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => p.put_u8(0),
        Some(s) => {
            p.put_u8(1);
            put_str(p, s);
        }
    }
}

/// One record read from a segment at a known offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub session: u64,
    pub entry: Entry,
}

/// Reads the record at the start of `buf` (a slice of a segment): the record and its whole
/// length, or why the readable part of the segment ends here.
pub fn read_record(buf: &Bytes) -> Result<(Record, usize), FormatError> {
    let Some(header) = buf.get(..RECORD_HEADER_LEN) else {
        return Err(FormatError::Short);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_PAYLOAD {
        return Err(FormatError::TooLong(len));
    }
    let end = RECORD_HEADER_LEN + len;
    if buf.len() < end {
        return Err(FormatError::Short);
    }
    let payload = buf.slice(RECORD_HEADER_LEN..end);
    if crc32fast::hash(&payload) != crc {
        return Err(FormatError::Checksum);
    }
    Ok((decode_payload(payload)?, end))
}

/// Decodes one payload whose checksum has been verified.
pub fn decode_payload(payload: Bytes) -> Result<Record, FormatError> {
    let mut r = Payload(payload);
    let session = r.u64()?;
    let kind = r.u8()?;
    let entry = match kind {
        START => {
            let secs = r.u64()? as i64;
            let sub = r.u32()?;
            if sub >= 1_000_000_000 {
                return Err(FormatError::Malformed("start time nanoseconds"));
            }
            let time = if secs >= 0 {
                UNIX_EPOCH.checked_add(Duration::new(secs as u64, sub))
            } else {
                UNIX_EPOCH
                    .checked_sub(Duration::from_secs(secs.unsigned_abs()))
                    .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(sub))))
            }
            .ok_or(FormatError::Malformed("start time out of range"))?;
            let token = r.string()?;
            let subject = r.string()?;
            let mut chain = Vec::new();
            for _ in 0..r.u16()? {
                chain.push(ChainLink {
                    jti: r.string()?,
                    name: r.string()?,
                });
            }
            let mut roles = Vec::new();
            for _ in 0..r.u16()? {
                roles.push(r.string()?);
            }
            let user = r.opt()?;
            let resource = r.string()?;
            let ip = match r.u8()? {
                4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                _ => return Err(FormatError::Malformed("client address family")),
            };
            let port = r.u16()?;
            let tls = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(FormatError::Malformed("tls flag")),
            };
            Entry::Start(Box::new(StartInfo {
                time,
                identity: Identity {
                    token,
                    subject,
                    chain,
                    roles,
                    user,
                },
                resource,
                client: SocketAddr::new(ip, port),
                tls,
            }))
        }
        FROM_CLIENT => Entry::FromClient {
            at: r.at()?,
            bytes: r.bytes()?,
        },
        TO_CLIENT => Entry::ToClient {
            at: r.at()?,
            bytes: r.bytes()?,
        },
        DECISION => Entry::Decision {
            at: r.at()?,
            fingerprint: r.string()?,
            decision: r.string()?,
            rule: r.opt()?,
        },
        TRUNCATED => Entry::Truncated {
            at: r.at()?,
            bytes: r.u64()?,
            rows: r.u64()?,
        },
        END => Entry::End {
            at: r.at()?,
            reason: r.string()?,
        },
        _ => return Err(FormatError::Malformed("unknown item kind")),
    };
    if r.0.has_remaining() {
        return Err(FormatError::Malformed("trailing bytes"));
    }
    Ok(Record { session, entry })
}

/// A cursor over a payload; every read checks the length first.
struct Payload(Bytes);

impl Payload {
    fn need(&self, n: usize) -> Result<(), FormatError> {
        if self.0.remaining() < n {
            Err(FormatError::Malformed("field runs past the record"))
        } else {
            Ok(())
        }
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        self.need(2)?;
        Ok(self.0.get_u16_le())
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        self.need(4)?;
        Ok(self.0.get_u32_le())
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        self.need(8)?;
        Ok(self.0.get_u64_le())
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        self.need(N)?;
        let mut a = [0; N];
        self.0.copy_to_slice(&mut a);
        Ok(a)
    }
    fn at(&mut self) -> Result<Duration, FormatError> {
        Ok(Duration::from_nanos(self.u64()?))
    }
    fn bytes(&mut self) -> Result<Bytes, FormatError> {
        let n = self.u32()? as usize;
        self.need(n)?;
        Ok(self.0.split_to(n))
    }
    fn string(&mut self) -> Result<String, FormatError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| FormatError::Malformed("string is not UTF-8"))
    }
    fn opt(&mut self) -> Result<Option<String>, FormatError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(FormatError::Malformed("optional field flag")),
        }
    }
}
