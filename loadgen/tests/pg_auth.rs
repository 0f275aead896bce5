//! Authentication methods, wrong credentials and unreachable servers: counted and reported, never
//! a panic, and the run ends.

mod common;

use common::{closed_port, loadgen, num, pg_run, psql, start_pg, SharedFile};

/// pg_hba.conf with one role per method; the superuser keeps SCRAM.
const HBA: &str = "\
local all all scram-sha-256
host all lg_trust 127.0.0.1/32 trust
host all lg_clear 127.0.0.1/32 password
host all lg_md5 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
";

fn url_for(port: u16, user: &str) -> String {
    format!("postgres://{user}@127.0.0.1:{port}/postgres")
}

#[test]
fn every_auth_method_connects_and_wrong_passwords_are_auth_errors() {
    let hba = SharedFile::new("hba.conf", HBA, false);
    let pg = start_pg(&[("hba_file", &hba.arg())]);
    psql(
        &pg,
        "CREATE ROLE lg_trust LOGIN; \
         CREATE ROLE lg_clear LOGIN PASSWORD 'clear-pw'; \
         SET password_encryption = 'md5'; CREATE ROLE lg_md5 LOGIN PASSWORD 'md5-pw'; \
         SET password_encryption = 'scram-sha-256'; CREATE ROLE lg_scram LOGIN PASSWORD 'scram-pw';",
    );
    let script = SharedFile::new("one.sql", "SELECT {rand 1 10}", false);
    for (user, password) in [
        ("lg_trust", None),
        ("lg_clear", Some("clear-pw")),
        ("lg_md5", Some("md5-pw")),
        ("lg_scram", Some("scram-pw")),
    ] {
        let u = url_for(pg.port(), user);
        let mut args = vec![
            "pg",
            "--url",
            &u,
            "-f",
            script.path().to_str().unwrap(),
            "-n",
            "6",
            "-c",
            "2",
            "--json",
        ];
        if let Some(p) = password {
            args.extend(["--password", p]);
        }
        let run = loadgen(&args, &[]);
        assert_eq!(run.code(), Some(0), "{user}: {}", run.stderr);
        assert_eq!(num(&run.json(), "successes"), 6, "{user}");
    }
    // The password may also come from PGPASSWORD.
    let u = url_for(pg.port(), "lg_scram");
    let run = pg_run(
        &u,
        &["-f", &script.arg(), "-n", "3", "-c", "1"],
        &[("PGPASSWORD", "scram-pw")],
    );
    assert_eq!(num(&run.json(), "successes"), 3, "{}", run.stderr);

    for user in ["lg_scram", "lg_md5", "lg_clear"] {
        let u = url_for(pg.port(), user);
        let run = loadgen(
            &[
                "pg",
                "--url",
                &u,
                "--password",
                "wrong",
                "-f",
                &script.arg(),
                "-n",
                "30",
                "-c",
                "3",
                "--json",
            ],
            &[],
        );
        assert_eq!(run.code(), Some(3), "{user}: {}", run.stderr);
        let j = run.json();
        assert_eq!(
            num(&j, "errors.auth"),
            3,
            "one per connection for {user}: {j}"
        );
        assert_eq!(num(&j, "errors.total"), 3, "{user}: {j}");
        assert_eq!(num(&j, "successes"), 0);
        assert!(
            j["error_samples"]["auth"]
                .as_str()
                .is_some_and(|m| m.contains("authentication failed")),
            "{j}"
        );
    }
    // No password at all where one is required.
    let u = url_for(pg.port(), "lg_scram");
    let run = pg_run(&u, &["-f", &script.arg(), "-n", "4", "-c", "2"], &[]);
    let j = run.json();
    assert_eq!(num(&j, "errors.auth"), 2, "{j}");
    assert!(
        j["error_samples"]["auth"]
            .as_str()
            .is_some_and(|m| m.contains("none was given")),
        "{j}"
    );

    // This server has no TLS: asking for it is a TLS error, reported, not a hang.
    let run = pg_run(
        &u,
        &[
            "--password",
            "scram-pw",
            "--tls",
            "require",
            "-f",
            &script.arg(),
            "-n",
            "4",
            "-c",
            "2",
        ],
        &[],
    );
    let j = run.json();
    assert_eq!(num(&j, "errors.tls"), 2, "{j}");
}

#[test]
fn refused_connections_are_counted_and_the_run_ends() {
    let script = SharedFile::new("one.sql", "SELECT 1", false);
    let u = url_for(closed_port(), "postgres");
    // Persistent connections: each one that cannot be made is reported once.
    let run = pg_run(&u, &["-f", &script.arg(), "-n", "100", "-c", "4"], &[]);
    assert_eq!(run.code(), Some(3));
    let j = run.json();
    assert_eq!(num(&j, "errors.connect"), 4, "{j}");
    assert!(
        j["error_samples"]["connect"]
            .as_str()
            .is_some_and(|m| m.contains("refused")),
        "{j}"
    );
    // A connection per request: every attempt is a failed request.
    let run = loadgen(
        &[
            "pg",
            "--url",
            &u,
            "-f",
            &script.arg(),
            "-n",
            "20",
            "-c",
            "2",
            "-C",
            "--json",
        ],
        &[],
    );
    assert_eq!(num(&run.json(), "errors.connect"), 20);
    // Bounded by time, it ends at the deadline.
    let run = loadgen(
        &[
            "pg",
            "--url",
            &u,
            "-f",
            &script.arg(),
            "-T",
            "500ms",
            "-c",
            "2",
            "-C",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code(), Some(3));
    assert!(num(&run.json(), "errors.connect") > 0);
}

#[test]
fn bad_input_is_a_clear_error() {
    let script = SharedFile::new("bad.sql", "SELECT 1;\nSELECT {rand 9 1}", false);
    let cases: [(&[&str], &str); 6] = [
        (
            &["pg", "--url", "mysql://x/y", "-s", "point-select"],
            "postgres://",
        ),
        (
            &["pg", "--url", "postgres://h:99999/d", "-s", "point-select"],
            "invalid port",
        ),
        (
            &["pg", "-f", "/nonexistent/script.sql"],
            "cannot read /nonexistent/script.sql",
        ),
        (&["pg", "-f", &script.arg()], "line 2"),
        (&["pg", "-s", "point-select", "-c", "0"], "--connections"),
        (&["http", "ftp://127.0.0.1/"], "http://"),
    ];
    for (args, expected) in cases {
        let run = loadgen(args, &[]);
        assert_eq!(run.code(), Some(1), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    // clap's own usage errors.
    let run = loadgen(&["pg", "-s", "no-such-scenario"], &[]);
    assert_eq!(run.code(), Some(2));
    assert!(run.stderr.contains("point-select"), "{}", run.stderr);
}
