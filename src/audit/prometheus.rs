//! The audit trail's series in the Prometheus text exposition (format 0.0.4), appended to the
//! gateway's `/metrics` page. Gateway-wide: there is one writer, so no `shard` label.

use super::AuditCounters;

/// Appends every audit series to `out`.
pub fn render(c: &AuditCounters, out: &mut String) {
    let series: [(&str, &str, &str, u64); 6] = [
        (
            "sluice_audit_events_written_total",
            "counter",
            "Audit events written to the outputs.",
            c.written,
        ),
        (
            "sluice_audit_events_dropped_total",
            "counter",
            "Audit events dropped on a full queue (overflow = \"drop\") or after shutdown.",
            c.dropped,
        ),
        (
            "sluice_audit_events_refused_total",
            "counter",
            "Audit events refused to their request on a full queue (overflow = \"fail\") or after shutdown.",
            c.refused,
        ),
        (
            "sluice_audit_events_blocked_total",
            "counter",
            "Audit events that waited for room in a full queue (overflow = \"block\").",
            c.blocked,
        ),
        (
            "sluice_audit_write_errors_total",
            "counter",
            "Failed audit writes, syncs, rotations and syslog sends.",
            c.write_errors,
        ),
        (
            "sluice_audit_queue_depth",
            "gauge",
            "Audit events waiting for the writer.",
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
        let c = AuditCounters {
            written: 10,
            dropped: 2,
            refused: 3,
            blocked: 4,
            write_errors: 5,
            queued: 6,
        };
        let mut out = String::from("sluice_shard_up{shard=\"0\"} 1\n");
        render(&c, &mut out);
        assert!(out.starts_with("sluice_shard_up"), "appends, never clears");
        for (name, kind, value) in [
            ("sluice_audit_events_written_total", "counter", 10),
            ("sluice_audit_events_dropped_total", "counter", 2),
            ("sluice_audit_events_refused_total", "counter", 3),
            ("sluice_audit_events_blocked_total", "counter", 4),
            ("sluice_audit_write_errors_total", "counter", 5),
            ("sluice_audit_queue_depth", "gauge", 6),
        ] {
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
            assert!(out.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert!(out.contains(&format!("\n{name} {value}\n")), "{name}");
        }
        // Every sample line is `name value`.
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split(' ');
            assert!(parts.next().is_some());
            assert!(parts.next().unwrap().parse::<u64>().is_ok(), "{line}");
            assert!(parts.next().is_none(), "{line}");
        }
    }
}
