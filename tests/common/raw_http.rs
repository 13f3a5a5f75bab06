//! A small HTTP/1.1 client over `std::net::TcpStream` for tests that need
//! what `daemon::http_get` hides: request headers (a token, `Host`,
//! `Accept-Encoding`, `Origin`), response headers and raw body bytes.
//!
//! Include with `#[path = "common/raw_http.rs"] mod raw_http;`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::time::Duration;

/// One answer: status, headers (names lowercase) and the body as sent
/// (de-chunked, not decompressed; empty for an event stream, which never
/// ends).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// `method target` on `addr` with `headers` (a `Host` of `addr` unless
/// given); `Connection: close`.
pub fn request(addr: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head += &format!("Host: {addr}\r\n");
    }
    for (n, v) in headers {
        head += &format!("{n}: {v}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{target}: connection closed inside the head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut a = Answer {
        status,
        headers,
        body: Vec::new(),
    };
    if a.header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        return a;
    }
    let mut rest = buf[end + 4..].to_vec();
    s.read_to_end(&mut rest).unwrap();
    a.body = if a.header("transfer-encoding") == Some("chunked") {
        dechunk(&rest)
    } else {
        rest
    };
    a
}

/// `GET target` with `headers`.
pub fn get(addr: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    request(addr, "GET", target, headers)
}

/// A chunked body's bytes.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let i = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&b[..i]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        b = &b[i + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Waits until `GET /health` on `addr` answers 200.
pub fn wait_healthy(addr: &str) {
    let start = std::time::Instant::now();
    loop {
        let ok =
            std::net::TcpStream::connect(addr).is_ok() && get(addr, "/health", &[]).status == 200;
        if ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{addr} never answered /health"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
