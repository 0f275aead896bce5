//! The recorder's series in the Prometheus text exposition (format 0.0.4), appended to the
//! gateway's `/metrics` page. Gateway-wide: there is one writer, so no `shard` label.

use super::RecordCounters;

/// Appends every recorder series to `out`.
pub fn render(c: &RecordCounters, out: &mut String) {
    let series: [(&str, &str, &str, u64); 7] = [
        (
            "sluice_record_batches_written_total",
            "counter",
            "Session recording batches written to a segment.",
            c.batches,
        ),
        (
            "sluice_record_bytes_written_total",
            "counter",
            "Session recording bytes written to segments.",
            c.bytes,
        ),
        (
            "sluice_record_batches_refused_total",
            "counter",
            "Recording batches refused to their session on a full queue (overflow = \"fail\") or after shutdown.",
            c.refused,
        ),
        (
            "sluice_record_batches_blocked_total",
            "counter",
            "Recording batches that waited for room in a full queue (overflow = \"block\").",
            c.blocked,
        ),
        (
            "sluice_record_write_errors_total",
            "counter",
            "Failed segment writes, syncs, index updates and deletions.",
            c.write_errors,
        ),
        (
            "sluice_record_batches_lost_total",
            "counter",
            "Recording batches the writer took but could not write after retrying.",
            c.lost,
        ),
        (
            "sluice_record_queue_depth",
            "gauge",
            "Recording batches waiting for the writer.",
            c.queued,
        ),
    ];
    crate::metrics::prometheus::scalars(out, &series);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_has_help_type_and_its_value() {
        let c = RecordCounters {
            batches: 10,
            bytes: 2,
            refused: 3,
            blocked: 4,
            write_errors: 5,
            lost: 6,
            queued: 7,
        };
        let mut out = String::from("sluice_shard_up{shard=\"0\"} 1\n");
        render(&c, &mut out);
        assert!(out.starts_with("sluice_shard_up"), "appends, never clears");
        for (name, kind, value) in [
            ("sluice_record_batches_written_total", "counter", 10),
            ("sluice_record_bytes_written_total", "counter", 2),
            ("sluice_record_batches_refused_total", "counter", 3),
            ("sluice_record_batches_blocked_total", "counter", 4),
            ("sluice_record_write_errors_total", "counter", 5),
            ("sluice_record_batches_lost_total", "counter", 6),
            ("sluice_record_queue_depth", "gauge", 7),
        ] {
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
            assert!(out.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert!(out.contains(&format!("\n{name} {value}\n")), "{name}");
        }
    }
}
