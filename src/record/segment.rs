//! Segment files: their names, their order, and reading their records up to a torn tail.
//!
//! Names are `seg-<unix seconds>-<seq>.rec`; `seq` grows across restarts (a new run starts
//! above the highest one on disk), so segments are ordered by `seq`, whatever the clock did.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::format::{check_header, read_record, FormatError, Record, HEADER_LEN};

/// A segment file in the recording directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName {
    pub file: String,
    pub secs: u64,
    pub seq: u64,
}

impl SegmentName {
    /// The name of the segment numbered `seq`, opened at `secs`.
    pub fn new(secs: u64, seq: u64) -> SegmentName {
        SegmentName {
            file: format!("seg-{secs}-{seq}.rec"),
            secs,
            seq,
        }
    }

    /// Parses a file name; `None` for anything that is not a segment.
    pub fn parse(file: &str) -> Option<SegmentName> {
        let rest = file.strip_prefix("seg-")?.strip_suffix(".rec")?;
        let (secs, seq) = rest.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(secs) || !digits(seq) {
            return None;
        }
        Some(SegmentName {
            file: file.to_owned(),
            secs: secs.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// The segments in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<SegmentName>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str().and_then(SegmentName::parse) {
            out.push(name);
        }
    }
    out.sort_by_key(|s| (s.seq, s.secs));
    Ok(out)
}

/// Where and why the readable part of a segment ends before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    pub offset: usize,
    pub error: FormatError,
}

/// A segment read into memory; records are zero-copy slices of it.
pub struct Segment {
    data: Bytes,
}

impl Segment {
    /// Reads the whole file and checks its header.
    pub fn read(path: &Path) -> Result<Segment, SegmentError> {
        let data = std::fs::read(path).map_err(|source| SegmentError::Read {
            path: path.to_owned(),
            source,
        })?;
        check_header(&data).map_err(|error| SegmentError::Header {
            path: path.to_owned(),
            error,
        })?;
        Ok(Segment {
            data: Bytes::from(data),
        })
    }

    /// The records from `offset` on (`None`: from the first), each with its offset, and the
    /// torn tail if the segment does not end cleanly.
    pub fn records(&self, offset: Option<usize>) -> (Vec<(usize, Record)>, Option<Torn>) {
        let mut at = offset.unwrap_or(HEADER_LEN).max(HEADER_LEN);
        let mut out = Vec::new();
        while at < self.data.len() {
            match read_record(&self.data.slice(at..)) {
                Ok((record, len)) => {
                    out.push((at, record));
                    at += len;
                }
                Err(error) => return (out, Some(Torn { offset: at, error })),
            }
        }
        (out, None)
    }
}

/// A segment that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {error}", path.display())]
    Header { path: PathBuf, error: FormatError },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_order_by_sequence() {
        let n = SegmentName::new(1_700_000_000, 7);
        assert_eq!(n.file, "seg-1700000000-7.rec");
        assert_eq!(SegmentName::parse(&n.file), Some(n));
        for bad in [
            "seg-1-2.rec.tmp",
            "seg--2.rec",
            "seg-1-.rec",
            "seg-1-x.rec",
            "index.jsonl",
            "seg-+1-2.rec",
        ] {
            assert_eq!(SegmentName::parse(bad), None, "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        for f in ["seg-9-1.rec", "seg-5-2.rec", "seg-7-10.rec", "other.txt"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let seqs: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [1, 2, 10]);
    }
}
