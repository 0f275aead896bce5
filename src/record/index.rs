//! The session index, `index.jsonl`: one line per session start, naming the segment and
//! offset of its first record, so that a reader finds a session without scanning every
//! segment. It is a shortcut, not the truth: the writer appends it after the records it points
//! to, rewrites it without the lines of deleted segments on start and after retention, and a
//! reader that finds no line for a session scans the segments instead.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::format::StartInfo;
use crate::audit::rfc3339_micros;

/// The index file's name in the recording directory.
pub const INDEX_FILE: &str = "index.jsonl";

/// One link of an identity chain: a token id and the subject it was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexLink {
    pub token: String,
    pub name: String,
}

/// Where a recorded session starts, and who it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub session: u64,
    /// The segment file holding the session's first record.
    pub segment: String,
    /// That record's offset in the segment.
    pub offset: u64,
    /// Start time, RFC 3339 UTC.
    pub time: String,
    /// Start time in microseconds since the Unix epoch (negative before it).
    pub unix_us: i64,
    /// The identity chain, root first, ending with the session's own token.
    pub chain: Vec<IndexLink>,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub resource: String,
    pub client: String,
    pub tls: bool,
}

impl IndexEntry {
    /// The entry for a session that starts with `start` at `offset` of `segment`.
    pub fn new(session: u64, segment: &str, offset: u64, start: &StartInfo) -> IndexEntry {
        let mut time = String::with_capacity(27);
        rfc3339_micros(start.time, &mut time);
        let id = &start.identity;
        IndexEntry {
            session,
            segment: segment.to_owned(),
            offset,
            time,
            unix_us: unix_micros(start.time),
            chain: id
                .chain
                .iter()
                .map(|l| IndexLink {
                    token: l.jti.clone(),
                    name: l.name.clone(),
                })
                .chain([IndexLink {
                    token: id.token.clone(),
                    name: id.subject.clone(),
                }])
                .collect(),
            roles: id.roles.clone(),
            user: id.user.clone(),
            resource: start.resource.clone(),
            client: start.client.to_string(),
            tls: start.tls,
        }
    }
}

/// Microseconds since the Unix epoch, negative before it.
pub fn unix_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// Every readable entry of the index in `dir`, in file order, and the number of lines that
/// could not be read (a line torn by a crash, or edited by hand). No index is no entries.
pub fn load(dir: &Path) -> io::Result<(Vec<IndexEntry>, usize)> {
    let file = match File::open(dir.join(INDEX_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut bad = 0;
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<IndexEntry>(&line) {
            Ok(e) => entries.push(e),
            Err(_) => bad += 1,
        }
    }
    Ok((entries, bad))
}

/// Rewrites the index keeping the entries `keep` accepts, through a temporary file and a
/// rename, so a crash leaves the old index or the new one.
pub fn rewrite(dir: &Path, keep: impl Fn(&IndexEntry) -> bool) -> io::Result<()> {
    let (entries, _) = load(dir)?;
    let tmp = dir.join(format!("{INDEX_FILE}.tmp"));
    let mut out = BufWriter::new(File::create(&tmp)?);
    for e in entries.iter().filter(|e| keep(e)) {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    std::fs::rename(&tmp, dir.join(INDEX_FILE))?;
    sync_dir(dir);
    Ok(())
}

/// The index opened for appending.
pub struct IndexFile {
    out: BufWriter<File>,
    dirty: bool,
}

impl IndexFile {
    pub fn open(dir: &Path) -> io::Result<IndexFile> {
        let path = dir.join(INDEX_FILE);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(IndexFile {
            out: BufWriter::with_capacity(16 * 1024, file),
            dirty: false,
        })
    }

    /// Appends one entry (buffered until [`IndexFile::sync`]).
    pub fn append(&mut self, e: &IndexEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(e)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.dirty = true;
        Ok(())
    }

    /// Flushes and syncs what was appended.
    pub fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.dirty = false;
        Ok(())
    }
}

/// Makes renames and new files durable. Best effort: some file systems refuse to sync a
/// directory, and the records themselves are synced.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
