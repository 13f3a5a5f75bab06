//! Loopback helpers the benches and the integration tests share: a free
//! address to serve on and one plain HTTP/1.1 GET. Std only, so that
//! `tests/common` can include this very file (`#[path]`) instead of a copy.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound, then released: racy only in
/// theory).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A free loopback address, `127.0.0.1:PORT` (see [`free_port`]).
pub fn free_addr() -> io::Result<String> {
    Ok(format!("127.0.0.1:{}", free_port()?))
}

/// One HTTP/1.1 GET over a fresh connection, waiting at most `timeout` for
/// each read: (status, body). An error when nothing listens or the answer
/// is not HTTP.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let not_http = || io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_http)?;
    let (_, body) = text.split_once("\r\n\r\n").ok_or_else(not_http)?;
    Ok((status, body.to_owned()))
}
