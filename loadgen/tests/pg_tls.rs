//! TLS towards PostgreSQL: verified against a CA file, unverified with `require`, a wrong CA
//! refused; a new TLS connection per request.

mod common;

use common::{loadgen, num, pg_run, start_pg, url, SharedFile};

#[test]
fn tls_runs_verify_the_server_and_reconnect_per_request() {
    let (cert, key) = sluice::tls::certgen::self_signed(&[]).expect("certificate");
    let (other_ca, _) = sluice::tls::certgen::self_signed(&[]).expect("certificate");
    let cert = SharedFile::new("server.crt", &cert, false);
    let key = SharedFile::new("server.key", &key, true);
    let other = SharedFile::new("other.crt", &other_ca, false);
    let pg = start_pg(&[
        ("ssl", "on"),
        ("ssl_cert_file", &cert.arg()),
        ("ssl_key_file", &key.arg()),
    ]);
    let env = [("PGPASSWORD", pg.password())];
    let u = url(&pg);
    let script = SharedFile::new("one.sql", "SELECT {rand 1 1000}", false);

    // Verified, a new TLS connection (handshake and SCRAM) for each request.
    let run = pg_run(
        &u,
        &[
            "--tls",
            "verify-full",
            "--tls-ca",
            &cert.arg(),
            "-f",
            &script.arg(),
            "-C",
            "-n",
            "12",
            "-c",
            "3",
            "-M",
            "prepared",
        ],
        &env,
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let j = run.json();
    assert_eq!(num(&j, "successes"), 12, "{j}");
    assert_eq!(num(&j, "connections_opened"), 12, "{j}");
    assert_eq!(j["workload"]["tls"], true);

    // sslmode=require in the URL: encrypted, not verified.
    let run = loadgen(
        &[
            "pg",
            "--url",
            &format!("{u}?sslmode=require"),
            "-f",
            &script.arg(),
            "-n",
            "100",
            "-c",
            "2",
            "--json",
        ],
        &env,
    );
    assert_eq!(num(&run.json(), "successes"), 100, "{}", run.stderr);

    // A CA that did not sign the server's certificate: a TLS error per connection.
    let run = pg_run(
        &u,
        &[
            "--tls",
            "require",
            "--tls-ca",
            &other.arg(),
            "-f",
            &script.arg(),
            "-n",
            "10",
            "-c",
            "2",
        ],
        &env,
    );
    assert_eq!(run.code(), Some(3));
    let j = run.json();
    assert_eq!(num(&j, "errors.tls"), 2, "{j}");
    assert!(
        j["error_samples"]["tls"]
            .as_str()
            .is_some_and(|m| m.contains("certificate")),
        "{j}"
    );
}
