//! PostgreSQL workloads against a real server: exact counts when bounded by requests, errors by
//! SQLSTATE, open loop, the HDR log.

mod common;

use common::{loadgen, num, pg_run, psql, start_pg_trusting, url, SharedFile};

fn pw(pg: &common::TempPostgres) -> [(&'static str, &str); 1] {
    [("PGPASSWORD", pg.password())]
}

/// Every scenario and a two-statement script, bounded by request count, in one protocol: exactly
/// that many successes, rows and (for small-insert) inserted rows.
fn request_bound_runs_count_exactly(protocol: &str) {
    let (pg, _hba) = start_pg_trusting();
    let u = url(&pg);
    let init = loadgen(
        &["init", "--url", &u, "--rows", "1000", "--customers", "100"],
        &pw(&pg),
    );
    assert_eq!(init.code(), Some(0), "{}", init.stderr);
    assert_eq!(psql(&pg, "SELECT count(*) FROM loadgen_accounts"), "1000");

    let cases = [
        ("point-select", "200", 200),
        ("read-100", "20", 2000),
        ("mask-row", "50", 50),
        ("small-insert", "150", 0),
    ];
    for (scenario, n, rows) in cases {
        let run = pg_run(
            &u,
            &[
                "-s", scenario, "-M", protocol, "-n", n, "-c", "4", "-j", "2",
            ],
            &pw(&pg),
        );
        assert_eq!(run.code(), Some(0), "{scenario}: {}", run.stderr);
        let j = run.json();
        let n: u64 = n.parse().unwrap();
        assert_eq!(num(&j, "successes"), n, "{scenario}: {j}");
        assert_eq!(num(&j, "requests"), n, "{scenario}");
        assert_eq!(num(&j, "errors.total"), 0, "{scenario}: {j}");
        assert_eq!(num(&j, "rows"), rows, "{scenario}");
        assert_eq!(num(&j, "latency_us.count"), n, "{scenario}");
        assert_eq!(num(&j, "connections_opened"), 4, "{scenario}");
        assert_eq!(j["workload"]["protocol"], protocol);
    }
    // Every insert landed, no more, no fewer.
    assert_eq!(psql(&pg, "SELECT count(*) FROM loadgen_events"), "150");

    // A script of two statements with placeholders: one request runs both.
    let script = SharedFile::new(
        "two.sql",
        "-- two statements per request\nSELECT abalance FROM loadgen_accounts WHERE aid = {rand 1 1000};\n\
         SELECT {rand -5 5} AS x, 'a;b' AS y;\n",
        false,
    );
    let run = pg_run(
        &u,
        &["-f", &script.arg(), "-M", protocol, "-n", "77", "-c", "3"],
        &pw(&pg),
    );
    let j = run.json();
    assert_eq!(num(&j, "successes"), 77, "{j}");
    assert_eq!(num(&j, "rows"), 154);
    assert_eq!(j["workload"]["statements"], 2);
}

#[test]
fn request_bound_runs_count_exactly_simple() {
    request_bound_runs_count_exactly("simple");
}

#[test]
fn request_bound_runs_count_exactly_prepared() {
    request_bound_runs_count_exactly("prepared");
}

#[test]
fn failing_statements_are_counted_by_sqlstate() {
    let (pg, _hba) = start_pg_trusting();
    let u = url(&pg);
    let missing = SharedFile::new("missing.sql", "SELECT * FROM no_such_table", false);
    let run = pg_run(&u, &["-f", &missing.arg(), "-n", "30", "-c", "2"], &pw(&pg));
    assert_eq!(run.code(), Some(3), "nothing succeeded: {}", run.stderr);
    let j = run.json();
    assert_eq!(num(&j, "errors.server.42P01"), 30, "{j}");
    assert_eq!(num(&j, "successes"), 0);
    assert!(j["error_samples"]["server 42P01"]
        .as_str()
        .is_some_and(|m| m.contains("no_such_table")));

    // Prepared: the division by zero happens at execution, once per request.
    let divide = SharedFile::new("divide.sql", "SELECT 1 / {rand 0 0}", false);
    let run = pg_run(
        &u,
        &["-f", &divide.arg(), "-M", "prepared", "-n", "25", "-c", "5"],
        &pw(&pg),
    );
    let j = run.json();
    assert_eq!(num(&j, "errors.server.22012"), 25, "{j}");
    assert_eq!(num(&j, "errors.total"), 25);

    // A statement that cannot be prepared stops each connection once, not in a loop.
    let run = pg_run(
        &u,
        &[
            "-f",
            &missing.arg(),
            "-M",
            "prepared",
            "-n",
            "25",
            "-c",
            "5",
        ],
        &pw(&pg),
    );
    let j = run.json();
    assert_eq!(num(&j, "errors.server.42P01"), 5, "{j}");

    // A failure inside an explicit transaction is rolled back, so the next request starts
    // clean: only division by zero, never 25P02 (current transaction is aborted).
    let txn = SharedFile::new("txn.sql", "BEGIN; SELECT 1 / {rand 0 0}; COMMIT;", false);
    for protocol in ["simple", "prepared"] {
        let run = pg_run(
            &u,
            &["-f", &txn.arg(), "-M", protocol, "-n", "12", "-c", "2"],
            &pw(&pg),
        );
        let j = run.json();
        assert_eq!(num(&j, "errors.server.22012"), 12, "{protocol}: {j}");
        assert_eq!(num(&j, "errors.total"), 12, "{protocol}: {j}");
    }
    // A request that outlives --timeout is a timeout; the connection is replaced.
    let slow = SharedFile::new("slow.sql", "SELECT pg_sleep(5)", false);
    let run = pg_run(
        &u,
        &[
            "-f",
            &slow.arg(),
            "--timeout",
            "200ms",
            "-n",
            "3",
            "-c",
            "1",
        ],
        &pw(&pg),
    );
    let j = run.json();
    assert_eq!(num(&j, "errors.timeout"), 3, "{j}");
    assert_eq!(num(&j, "connections_opened"), 3, "{j}");

    // A backend that is terminated mid-request: its FATAL error is counted, then a new
    // connection carries on.
    let kill = SharedFile::new(
        "kill.sql",
        "SELECT pg_terminate_backend(pg_backend_pid())",
        false,
    );
    let run = pg_run(&u, &["-f", &kill.arg(), "-n", "5", "-c", "1"], &pw(&pg));
    let j = run.json();
    assert_eq!(num(&j, "errors.server.57P01"), 5, "{j}");
    assert_eq!(num(&j, "connections_opened"), 5, "{j}");

    // The same transaction succeeding works too.
    let ok = SharedFile::new("ok.sql", "BEGIN; SELECT {rand 1 9}; COMMIT;", false);
    let run = pg_run(&u, &["-f", &ok.arg(), "-n", "12", "-c", "2"], &pw(&pg));
    assert_eq!(num(&run.json(), "successes"), 12);
}

#[test]
fn open_loop_sends_about_the_requested_rate() {
    let (pg, _hba) = start_pg_trusting();
    let u = url(&pg);
    let select = SharedFile::new("one.sql", "SELECT {rand 1 100}", false);
    // 40 requests/s for 2 s from 2 connections: the schedule holds exactly 80 requests, each
    // either answered in time or reported unsent (a loaded machine moves requests from one to the
    // other, never the sum; the lower bound is generous).
    let run = loadgen(
        &[
            "pg",
            "--url",
            &u,
            "-f",
            &select.arg(),
            "-R",
            "40",
            "-T",
            "2s",
            "-c",
            "2",
            "--json",
        ],
        &pw(&pg),
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let j = run.json();
    let n = num(&j, "requests");
    assert_eq!(n + num(&j, "load.unsent"), 80, "{j}");
    assert!(n >= 40, "{n} of 80 scheduled requests answered: {j}");
    assert_eq!(j["load"]["mode"], "open");
    assert!(j["service_time_us"].is_object(), "{j}");
    assert!(j["load"]["max_send_lag_us"].is_number());

    // Bounded by count, open loop still sends exactly that many.
    let run = pg_run(
        &u,
        &[
            "-f",
            &select.arg(),
            "-R",
            "500",
            "-n",
            "60",
            "-c",
            "3",
            "-M",
            "prepared",
        ],
        &pw(&pg),
    );
    assert_eq!(num(&run.json(), "successes"), 60);

    // A server that takes 100 ms per request at a schedule of one every 20 ms falls behind: the
    // requests it kept waiting are charged for the wait (coordinated omission corrected), so
    // latency far exceeds service time, and the schedule's unsent requests are reported.
    let slow = SharedFile::new("slow.sql", "SELECT pg_sleep(0.1)", false);
    let run = loadgen(
        &[
            "pg",
            "--url",
            &u,
            "-f",
            &slow.arg(),
            "-R",
            "50",
            "-T",
            "1s",
            "-c",
            "1",
            "--json",
        ],
        &pw(&pg),
    );
    let j = run.json();
    let latency = j["latency_us"]["p50"].as_f64().unwrap();
    let service = j["service_time_us"]["p50"].as_f64().unwrap();
    assert!(
        latency > 2.0 * service,
        "latency {latency} µs vs service {service} µs: {j}"
    );
    assert!(num(&j, "load.unsent") > 20, "{j}");
}

#[test]
fn time_bound_run_with_warmup_and_hdr_log() {
    let (pg, _hba) = start_pg_trusting();
    let u = url(&pg);
    let select = SharedFile::new("one.sql", "SELECT 1", false);
    let log = std::env::temp_dir().join(format!("loadgen-{}.hlog", common::random_hex(6)));
    let log_arg = log.display().to_string();
    let run = pg_run(
        &u,
        &[
            "-f",
            &select.arg(),
            "-T",
            "1s",
            "--warmup",
            "300ms",
            "-c",
            "2",
            "--hdr-log",
            &log_arg,
            "--hdr-interval",
            "250ms",
        ],
        &pw(&pg),
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let j = run.json();
    let successes = num(&j, "successes");
    assert!(successes > 0, "{j}");
    assert_eq!(j["load"]["warmup_s"].as_f64(), Some(0.3));

    // The interval log holds exactly the counted requests.
    let text = std::fs::read(&log).expect("HDR log written");
    let _ = std::fs::remove_file(&log);
    let mut deserializer = hdrhistogram::serialization::Deserializer::new();
    let mut total = 0;
    let mut intervals = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&text) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(h) =
            entry.expect("log entry")
        {
            let decoded = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> = deserializer
                .deserialize(&mut &decoded[..])
                .expect("histogram");
            total += hist.len();
            intervals += 1;
        }
    }
    assert_eq!(total, successes);
    assert!(intervals >= 2, "{intervals} intervals");
}

/// Standard base64 (the interval log's histogram encoding), without padding checks.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn scenarios_without_their_tables_say_to_run_init() {
    let (pg, _hba) = start_pg_trusting();
    let run = loadgen(
        &["pg", "--url", &url(&pg), "-s", "point-select", "-n", "5"],
        &pw(&pg),
    );
    assert_eq!(run.code(), Some(1));
    assert!(run.stderr.contains("sluice-loadgen init"), "{}", run.stderr);
    // --init creates them and the run goes ahead.
    let run = loadgen(
        &[
            "pg",
            "--url",
            &url(&pg),
            "-s",
            "point-select",
            "-n",
            "5",
            "--init",
            "--rows",
            "500",
            "--json",
        ],
        &pw(&pg),
    );
    assert_eq!(num(&run.json(), "successes"), 5, "{}", run.stderr);
    assert_eq!(psql(&pg, "SELECT max(aid) FROM loadgen_accounts"), "500");
}
