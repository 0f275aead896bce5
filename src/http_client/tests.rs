//! The client against a real loopback server.

use std::time::Duration;

use super::test_server::{chunked, close_delimited, ok, status, Reply, TestServer};
use super::*;

fn get(client: &Client, url: &str) -> Result<Response, HttpClientError> {
    let url = Url::parse(url).unwrap();
    client.send(&Request::get(&url, &[("Accept", "application/json")]))
}

#[test]
fn reads_each_body_framing_from_a_real_server() {
    let client = Client::new(None).unwrap();
    let body = r#"{"keys":[{"kty":"OKP"}]}"#;
    for reply in [
        ok("application/json", body),
        chunked(body),
        close_delimited(body),
    ] {
        let server = TestServer::start(Reply::Raw(reply));
        let resp = get(&client, &server.url("/jwks?x=1")).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, body.as_bytes());
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].starts_with("GET /jwks?x=1 HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].contains(&format!("Host: {}\r\n", server.addr)),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("Accept: application/json\r\n"));
    }
}

#[test]
fn sends_a_body_with_its_length() {
    let server = TestServer::start(Reply::Raw(status(201, "made")));
    let client = Client::new(None).unwrap();
    let url = Url::parse(&server.url("/v1/x")).unwrap();
    let req = Request {
        method: "POST",
        url: &url,
        headers: &[("Content-Type", "application/json")],
        body: b"{}",
    };
    let resp = client.send(&req).unwrap();
    assert_eq!((resp.status, resp.body_excerpt().as_str()), (201, "made"));
    assert!(server.requests()[0].contains("Content-Length: 2\r\n"));
}

#[test]
fn refuses_header_injection_and_reserved_headers() {
    let client = Client::new(None).unwrap();
    let url = Url::parse("http://127.0.0.1:1/").unwrap();
    for headers in [
        &[("X-A", "b\r\nEvil: 1")][..],
        &[("Bad Name", "v")],
        &[("Host", "elsewhere")],
        &[("Content-Length", "3")],
    ] {
        assert!(matches!(
            client.send(&Request::get(&url, headers)),
            Err(HttpClientError::Request(_))
        ));
    }
}

#[test]
fn caps_the_response_size() {
    let big = "x".repeat(4096);
    let server = TestServer::start(Reply::Raw(ok("text/plain", &big)));
    let mut client = Client::new(None).unwrap();
    client.max_response = 1024;
    assert!(matches!(
        get(&client, &server.url("/")),
        Err(HttpClientError::TooLarge(1024))
    ));
}

#[test]
fn a_silent_server_times_out() {
    let server = TestServer::start(Reply::Silent);
    let mut client = Client::new(None).unwrap();
    client.timeout = Duration::from_millis(200);
    assert!(matches!(
        get(&client, &server.url("/")),
        Err(HttpClientError::Timeout)
    ));
}

#[test]
fn plaintext_can_be_held_to_loopback() {
    let mut client = Client::new(None).unwrap();
    client.plaintext_loopback_only = true;
    // Refused before any connection is attempted.
    assert!(matches!(
        get(&client, "http://192.0.2.1:9/"),
        Err(HttpClientError::NotLoopback(_))
    ));
    let server = TestServer::start(Reply::Raw(ok("text/plain", "hi")));
    assert_eq!(get(&client, &server.url("/")).unwrap().body, b"hi");
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::new(None).unwrap();
    let err = get(&client, &format!("http://127.0.0.1:{port}/")).unwrap_err();
    assert!(matches!(err, HttpClientError::Connect { .. }), "{err}");
}
