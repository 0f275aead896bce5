//! The audit trail in gateway targets: `sluice init` writes an enabled `[audit]` section, which
//! only `sluice-audit` keeps; the other gateway targets lose it so they measure what they
//! measured before the trail existed. After a run, what the trail wrote: its files on disk and
//! the gateway's own counters.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::toml_section;

/// The table init writes the audit trail's settings into.
const SECTION: &str = "audit";

/// What stands where the section was in a configuration without the trail.
const STRIPPED_NOTE: &str = "# [audit] removed by bench-harness: this target runs without the \
                             audit trail (target sluice-audit keeps it).\n";

/// A configuration from `sluice init` without its audit trail (the `[audit]` table and any
/// sub-table of it), otherwise unchanged.
pub fn without(text: &str) -> String {
    toml_section::strip(text, SECTION, STRIPPED_NOTE)
}

/// The `file` setting of the `[audit]` table.
fn file_setting(text: &str) -> Option<String> {
    toml_section::setting(text, SECTION, "file")
}

/// Where the trail of a configuration in `dir` goes: the `file` setting, which must stay
/// inside `dir` (a relative path without `..`), so the trail lands in the run's scratch space.
pub fn file_in(dir: &Path, text: &str) -> Result<PathBuf, String> {
    let file = file_setting(text)
        .ok_or("the configuration from `sluice init` has no [audit] file setting")?;
    let path = Path::new(&file);
    let inside = path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside || file.is_empty() {
        return Err(format!(
            "[audit] file = `{file}` from `sluice init` is not a path inside the gateway's directory"
        ));
    }
    Ok(dir.join(path))
}

/// The trail's files on disk: the current one and the rotated `.1`, `.2`, ...
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OnDisk {
    /// Files found.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// Their total number of lines (one event each).
    pub lines: u64,
}

/// Measures the trail whose current file is `path`.
pub fn on_disk(path: &Path) -> Result<OnDisk, String> {
    let mut total = OnDisk::default();
    let mut n = 0;
    loop {
        let file = if n == 0 {
            path.to_path_buf()
        } else {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let f = match File::open(&file) {
            Ok(f) => f,
            // Rotation numbers are contiguous: the first gap is the end. A missing current
            // file with rotated ones present cannot happen, and one without is an empty trail.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let mut reader = BufReader::with_capacity(1 << 20, f);
        loop {
            let chunk = reader
                .fill_buf()
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            total.lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            total.bytes += len as u64;
            reader.consume(len);
        }
        total.files += 1;
        n += 1;
    }
    Ok(total)
}

/// The trail's counters from the gateway's `/metrics` page.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Events written to the outputs.
    pub written: u64,
    /// Events that waited for room in a full queue.
    pub blocked: u64,
    /// Events dropped.
    pub dropped: u64,
    /// Events refused to their request.
    pub refused: u64,
    /// Failed writes, syncs and rotations.
    pub write_errors: u64,
    /// Events waiting for the writer.
    pub queued: u64,
}

impl Counters {
    /// Events the trail has taken so far: written or waiting for the writer.
    pub fn taken(&self) -> u64 {
        self.written + self.queued
    }
}

/// Reads [`Counters`] from a Prometheus text page; `None` when the page has no audit series
/// (the gateway runs without the trail).
pub fn counters(metrics: &str) -> Option<Counters> {
    let value = |name: &str| {
        metrics.lines().find_map(|line| {
            let (n, v) = line.split_once(' ')?;
            (n == name).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    Some(Counters {
        written: value("sluice_audit_events_written_total")?,
        blocked: value("sluice_audit_events_blocked_total").unwrap_or(0),
        dropped: value("sluice_audit_events_dropped_total").unwrap_or(0),
        refused: value("sluice_audit_events_refused_total").unwrap_or(0),
        write_errors: value("sluice_audit_write_errors_total").unwrap_or(0),
        queued: value("sluice_audit_queue_depth").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_configurations_lose_the_trail() {
        let text = "[identity]\nissuer = \"sluice\"\n\n[audit]\nfile = \"audit.jsonl\"\n\n\
                    [[resource]]\nname = \"bench\"\n";
        let stripped = without(text);
        assert_eq!(
            stripped,
            format!(
                "[identity]\nissuer = \"sluice\"\n\n{STRIPPED_NOTE}[[resource]]\nname = \"bench\"\n"
            )
        );
        assert!(file_setting(&stripped).is_none());
        assert_eq!(file_setting(text).as_deref(), Some("audit.jsonl"));
    }

    #[test]
    fn the_trail_file_must_stay_in_the_gateway_directory() {
        let dir = Path::new("/scratch/sluice-audit");
        let conf = |file: &str| format!("[audit]\nfile = \"{file}\"\n");
        assert_eq!(
            file_in(dir, &conf("audit.jsonl")).unwrap(),
            dir.join("audit.jsonl")
        );
        assert_eq!(
            file_in(dir, &conf("trail/a.jsonl")).unwrap(),
            dir.join("trail/a.jsonl")
        );
        for bad in ["../audit.jsonl", "/var/log/audit.jsonl", "./a/../../b", ""] {
            let e = file_in(dir, &conf(bad)).unwrap_err();
            assert!(e.contains("not a path inside"), "{bad}: {e}");
        }
        assert!(file_in(dir, "[gateway]\nworkers = 1\n")
            .unwrap_err()
            .contains("no [audit] file setting"));
    }

    #[test]
    fn on_disk_counts_the_current_and_rotated_files() {
        let dir =
            std::env::temp_dir().join(format!("bench-harness-audit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let none = on_disk(&path);
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n").unwrap();
        std::fs::write(dir.join("audit.jsonl.1"), "{\"b\":1}\n").unwrap();
        std::fs::write(
            dir.join("audit.jsonl.2"),
            "{\"c\":1}\n{\"c\":2}\n{\"c\":3}\n",
        )
        .unwrap();
        // After a gap: not part of this trail.
        std::fs::write(dir.join("audit.jsonl.4"), "{\"d\":1}\n").unwrap();
        let measured = on_disk(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(none.unwrap(), OnDisk::default(), "no trail yet");
        assert_eq!(
            measured.unwrap(),
            OnDisk {
                files: 3,
                bytes: 16 + 8 + 24,
                lines: 6
            }
        );
    }

    #[test]
    fn counters_come_from_the_metrics_page() {
        let page = "# HELP sluice_audit_events_written_total Audit events written.\n\
                    # TYPE sluice_audit_events_written_total counter\n\
                    sluice_audit_events_written_total 1234\n\
                    sluice_audit_events_written_total_x 9\n\
                    sluice_audit_events_dropped_total 0\n\
                    sluice_audit_events_refused_total 1\n\
                    sluice_audit_events_blocked_total 56\n\
                    sluice_audit_write_errors_total 2\n\
                    sluice_audit_queue_depth 3\n";
        assert_eq!(
            counters(page),
            Some(Counters {
                written: 1234,
                blocked: 56,
                dropped: 0,
                refused: 1,
                write_errors: 2,
                queued: 3
            })
        );
        assert_eq!(counters(page).unwrap().taken(), 1237);
        assert_eq!(counters("sluice_shard_up{shard=\"0\"} 1\n"), None);
    }
}
