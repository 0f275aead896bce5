//! The audit file: appended through a buffer, flushed and synced on the writer's tick, rotated
//! by size (`audit.jsonl` -> `audit.jsonl.1` -> `audit.jsonl.2` ..., `.1` newest).
//!
//! A line is never split across files: the file rotates before a line that would take it past
//! `max_bytes`, so no file exceeds the limit unless a single line does.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Buffer between the events and the file: one write system call per 64 KiB or per tick.
const BUFFER: usize = 64 * 1024;

pub struct AuditFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// `None` after a failed reopen (rotation); retried on the next tick.
    out: Option<BufWriter<File>>,
    /// Bytes in the current file, written or buffered.
    size: u64,
    /// Written since the last sync.
    dirty: bool,
    /// A rotation failed; don't retry it for every line, only after the next tick.
    rotation_failed: bool,
}

impl AuditFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<AuditFile> {
        let (out, size) = open_append(path)?;
        Ok(AuditFile {
            path: path.to_owned(),
            max_bytes,
            keep,
            out: Some(out),
            size,
            dirty: false,
            rotation_failed: false,
        })
    }

    /// Appends one line, rotating first when it would not fit. `Err` means the line was lost
    /// (the file stays usable); `Ok(Some(e))` means the line was written but the rotation before
    /// it failed, so it went to the current file and rotation is tried again after the tick.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<Option<io::Error>> {
        let len = line.len() as u64;
        let mut rotation = None;
        if self.size > 0 && self.size + len > self.max_bytes && !self.rotation_failed {
            if let Err(e) = self.rotate() {
                self.rotation_failed = true;
                rotation = Some(e);
            }
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the audit file is not open"))?;
        out.write_all(line)?;
        self.size += len;
        self.dirty = true;
        Ok(rotation)
    }

    /// The tick: everything buffered goes to the file and to the disk (`fdatasync`), so a
    /// crash after this loses nothing written before it.
    pub fn sync(&mut self) -> io::Result<()> {
        self.rotation_failed = false;
        let Some(out) = &mut self.out else {
            let (out, size) = open_append(&self.path)?;
            self.out = Some(out);
            self.size = size;
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        out.flush()?;
        out.get_ref().sync_data()?;
        self.dirty = false;
        Ok(())
    }

    /// Closes the current file (synced), shifts the rotated ones up by one, dropping the
    /// oldest, and starts an empty file. Until the current file is renamed, a failure leaves
    /// everything as it was.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(out) = &mut self.out {
            // Sync before the rename, so the rotated file is complete on disk.
            out.flush()?;
            out.get_ref().sync_data()?;
            self.dirty = false;
        }
        for i in (1..self.keep).rev() {
            match std::fs::rename(self.numbered(i), self.numbered(i + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        sync_dir(&self.path);
        // The old file is complete; should the new one not open, lines fail until a tick
        // manages to open it.
        self.out = None;
        let (out, size) = open_append(&self.path)?;
        self.out = Some(out);
        self.size = size;
        Ok(())
    }

    fn numbered(&self, i: usize) -> PathBuf {
        let mut name = OsString::from(self.path.as_os_str());
        name.push(format!(".{i}"));
        PathBuf::from(name)
    }
}

fn open_append(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(BUFFER, file), size))
}

/// Makes the renames durable. Best effort: some file systems refuse to sync a directory, and
/// the events themselves are already synced.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        // 10-byte lines, 35-byte files: three lines per file.
        let mut f = AuditFile::open(&path, 35, 2).unwrap();
        for i in 0..10 {
            assert!(f
                .write_line(format!("line {i:04}\n").as_bytes())
                .unwrap()
                .is_none());
        }
        f.sync().unwrap();
        assert_eq!(lines(&path), ["line 0009"]);
        assert_eq!(lines(&dir.path().join("audit.jsonl.1")).len(), 3);
        assert_eq!(lines(&dir.path().join("audit.jsonl.2"))[0], "line 0003");
        assert!(!dir.path().join("audit.jsonl.3").exists());
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "old 00000\nold 00001\nold 00002\n").unwrap();
        let mut f = AuditFile::open(&path, 35, 3).unwrap();
        f.write_line(b"new 00000\n").unwrap();
        f.sync().unwrap();
        assert_eq!(lines(&path), ["new 00000"]);
        assert_eq!(lines(&dir.path().join("audit.jsonl.1")).len(), 3);
    }

    #[test]
    fn a_line_longer_than_the_limit_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut f = AuditFile::open(&path, 8, 3).unwrap();
        f.write_line(b"a very long line\n").unwrap();
        f.write_line(b"short\n").unwrap();
        f.sync().unwrap();
        assert_eq!(
            lines(&dir.path().join("audit.jsonl.1")),
            ["a very long line"]
        );
        assert_eq!(lines(&path), ["short"]);
    }

    #[test]
    fn a_failed_rotation_is_reported_and_retried_after_the_tick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut f = AuditFile::open(&path, 10, 1).unwrap();
        f.write_line(b"line 0000\n").unwrap();
        // A directory where the rotated file must go: the rename fails.
        std::fs::create_dir(dir.path().join("audit.jsonl.1")).unwrap();
        std::fs::write(dir.path().join("audit.jsonl.1").join("x"), "x").unwrap();
        // The line is kept in the current file, the failure reported once until the tick.
        assert!(f.write_line(b"line 0001\n").unwrap().is_some());
        assert!(f.write_line(b"line 0002\n").unwrap().is_none());
        f.sync().unwrap();
        assert_eq!(lines(&path), ["line 0000", "line 0001", "line 0002"]);
        std::fs::remove_dir_all(dir.path().join("audit.jsonl.1")).unwrap();
        f.write_line(b"line 0003\n").unwrap();
        f.sync().unwrap();
        assert_eq!(lines(&path), ["line 0003"]);
        assert_eq!(
            lines(&dir.path().join("audit.jsonl.1")),
            ["line 0000", "line 0001", "line 0002"]
        );
    }
}
