//! HTTP/1.1 workloads against a small real server on loopback: statuses by class, bodies,
//! chunked responses, keep-alive or a connection per request.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::{closed_port, loadgen, num};

/// Counts of what the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// Serves HTTP/1.1 on a loopback port until the test process exits; one thread per connection.
fn serve() -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            thread::spawn(move || {
                let _ = connection(stream, &counts);
            });
        }
    });
    (port, seen)
}

fn connection(stream: TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (mut length, mut close) = (0usize, false);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            close |= lower == "connection: close";
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let conn = if close { "Connection: close\r\n" } else { "" };
        let response = match target.as_str() {
            "/ok" => format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n{conn}\r\nhello"),
            "/chunked" => format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{conn}\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
            ),
            "/echo" if body == b"ping" => format!("HTTP/1.1 201 Created\r\nContent-Length: 4\r\n{conn}\r\npong"),
            "/echo" => format!("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n{conn}\r\n"),
            "/fail" => format!("HTTP/1.1 503 Unavailable\r\nContent-Length: 4\r\n{conn}\r\nbusy"),
            _ => format!("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n{conn}\r\n"),
        };
        out.write_all(response.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

#[test]
fn statuses_bodies_and_keep_alive() {
    let (port, seen) = serve();
    let base = format!("http://127.0.0.1:{port}");

    let run = loadgen(
        &[
            "http",
            &format!("{base}/ok"),
            "-n",
            "100",
            "-c",
            "4",
            "-j",
            "2",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let j = run.json();
    assert_eq!(num(&j, "successes"), 100, "{j}");
    assert_eq!(num(&j, "http_status.2xx"), 100);
    assert_eq!(num(&j, "connections_opened"), 4, "kept alive: {j}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 4);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 100);

    let run = loadgen(
        &[
            "http",
            &format!("{base}/chunked"),
            "-n",
            "30",
            "-c",
            "2",
            "--json",
        ],
        &[],
    );
    let j = run.json();
    assert_eq!(num(&j, "http_status.2xx"), 30, "{j}");
    assert_eq!(
        num(&j, "connections_opened"),
        2,
        "chunked bodies keep the connection: {j}"
    );

    let run = loadgen(
        &[
            "http",
            &format!("{base}/missing"),
            "-n",
            "10",
            "-c",
            "2",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code(), Some(3));
    let j = run.json();
    assert_eq!(num(&j, "http_status.4xx"), 10, "{j}");
    assert_eq!(num(&j, "errors.http.4xx"), 10);
    assert_eq!(num(&j, "successes"), 0);

    let run = loadgen(
        &[
            "http",
            &format!("{base}/fail"),
            "-n",
            "10",
            "-c",
            "2",
            "--json",
        ],
        &[],
    );
    let j = run.json();
    assert_eq!(num(&j, "http_status.5xx"), 10, "{j}");
    assert_eq!(num(&j, "errors.http.5xx"), 10);

    // POST with a body (the method defaults to POST when there is one).
    let run = loadgen(
        &[
            "http",
            &format!("{base}/echo"),
            "--body",
            "ping",
            "-n",
            "10",
            "-c",
            "2",
            "--json",
        ],
        &[],
    );
    let j = run.json();
    assert_eq!(num(&j, "http_status.2xx"), 10, "{j}");
    assert_eq!(j["workload"]["method"], "POST");
    let run = loadgen(
        &[
            "http",
            &format!("{base}/echo"),
            "--body",
            "pong",
            "-n",
            "5",
            "-c",
            "1",
            "--json",
        ],
        &[],
    );
    assert_eq!(num(&run.json(), "http_status.4xx"), 5);
}

#[test]
fn no_keepalive_opens_a_connection_per_request() {
    let (port, seen) = serve();
    let url = format!("http://127.0.0.1:{port}/ok");
    let run = loadgen(
        &[
            "http",
            &url,
            "--no-keepalive",
            "-n",
            "20",
            "-c",
            "2",
            "--json",
        ],
        &[],
    );
    let j = run.json();
    assert_eq!(num(&j, "successes"), 20, "{j}");
    assert_eq!(num(&j, "connections_opened"), 20, "{j}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 20);
    assert_eq!(j["workload"]["keep_alive"], false);

    // Open loop at a low rate: 50 scheduled, answered or reported unsent (generous lower bound).
    let run = loadgen(
        &["http", &url, "-R", "50", "-T", "1s", "-c", "2", "--json"],
        &[],
    );
    let j = run.json();
    let n = num(&j, "requests");
    assert_eq!(n + num(&j, "load.unsent"), 50, "{j}");
    assert!(n >= 25, "{n} of 50 scheduled requests answered: {j}");
}

#[test]
fn unreachable_http_server_is_counted() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let run = loadgen(&["http", &url, "-n", "10", "-c", "2", "--json"], &[]);
    assert_eq!(run.code(), Some(3));
    assert_eq!(num(&run.json(), "errors.connect"), 2);
}
