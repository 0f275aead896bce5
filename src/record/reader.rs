//! Reading a recorded session back: find its first record through the index (or, failing
//! that, by scanning), then read that segment from there and every later one, keeping the
//! session's records, until its end. Damage is reported, never fatal: a torn tail ends its
//! segment's readable part and reading goes on with the next segment.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{Entry, StartInfo};
use super::index;
use super::segment::{self, Segment};

/// One session as read from the recording directory.
#[derive(Debug, Clone, Default)]
pub struct SessionRecording {
    pub session: u64,
    pub start: Option<StartInfo>,
    /// Everything after the start, in order.
    pub entries: Vec<Entry>,
    /// Whether the session's end was recorded.
    pub ended: bool,
    /// What could not be read, one line each (torn tails, unreadable segments).
    pub warnings: Vec<String>,
}

/// Why a session could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the recording directory {}: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error("session {session} is not in the recordings in {}", dir.display())]
    NotFound { session: u64, dir: PathBuf },
}

/// Reads `session` from the recordings in `dir`.
pub fn read_session(dir: &Path, session: u64) -> Result<SessionRecording, ReadError> {
    let dir_err = |source| ReadError::Dir {
        dir: dir.to_owned(),
        source,
    };
    let segments = segment::list(dir).map_err(dir_err)?;
    let (entries, bad) = index::load(dir).map_err(dir_err)?;
    let mut out = SessionRecording {
        session,
        ..SessionRecording::default()
    };
    if bad > 0 {
        out.warnings.push(format!(
            "{}: {bad} unreadable line(s) skipped",
            dir.join(index::INDEX_FILE).display()
        ));
    }
    // Session ids are unique across restarts; the last line wins if an index was copied.
    let found = entries.iter().rev().find(|e| e.session == session);
    let (first, offset) = match found.and_then(|e| {
        segments
            .iter()
            .position(|s| s.file == e.segment)
            .map(|i| (i, e.offset))
    }) {
        Some((i, offset)) => (i, usize::try_from(offset).ok()),
        None => {
            if found.is_some() {
                out.warnings.push(format!(
                    "the index names a segment that is gone for session {session}; scanning every segment"
                ));
            }
            (0, None)
        }
    };
    for (i, seg) in segments.iter().enumerate().skip(first) {
        let path = dir.join(&seg.file);
        let segment = match Segment::read(&path) {
            Ok(s) => s,
            Err(e) => {
                out.warnings.push(format!("{e}; skipped"));
                continue;
            }
        };
        let (records, torn) = segment.records(if i == first { offset } else { None });
        for (_, record) in records {
            if record.session != session {
                continue;
            }
            match record.entry {
                Entry::Start(start) => out.start = Some(*start),
                entry => {
                    let end = matches!(entry, Entry::End { .. });
                    out.entries.push(entry);
                    if end {
                        out.ended = true;
                    }
                }
            }
            if out.ended {
                break;
            }
        }
        if let Some(t) = torn {
            out.warnings.push(format!(
                "{}: {} at offset {}; the rest of this segment is unreadable",
                path.display(),
                t.error,
                t.offset
            ));
        }
        if out.ended {
            break;
        }
    }
    if out.start.is_none() && out.entries.is_empty() {
        return Err(ReadError::NotFound {
            session,
            dir: dir.to_owned(),
        });
    }
    Ok(out)
}
