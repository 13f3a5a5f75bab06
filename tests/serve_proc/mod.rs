//! The `sundial serve` binary as a child process on a free port of
//! 127.0.0.1 (so its resident memory can be read from `/proc`), and a
//! tiny blocking HTTP/1.1 client over `std::net::TcpStream`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for one request, so a hung server fails the test instead of
/// blocking it forever (not a timing assertion).
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test: this build's, or `SUNDIAL_BIN` when set (to
/// measure a release binary with a debug test build).
pub fn sundial() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("SUNDIAL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sundial").to_owned())
    })
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `sundial serve`, killed when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Serve {
    /// Serves `storage` with extra `flags`, once `/health` answers.
    pub fn start(storage: &Path, flags: &[&str]) -> Serve {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(sundial())
            .args(["serve", "--storage", storage.to_str().unwrap()])
            .args(["--http", &addr.to_string()])
            .args(flags)
            .env("RUST_LOG", "sundial=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sundial serve");
        let serve = Serve { child, addr };
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Ok((200, _, _)) = try_get(addr, "/health") {
                return serve;
            }
            assert!(Instant::now() < deadline, "sundial serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's resident memory now, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.child.id())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` in bytes (`VmRSS`).
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Status, lower-cased head, body of one answer to `request` (sent as is).
pub fn try_raw(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(request.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

/// `GET path` with `Connection: close`.
pub fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    try_raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

/// `try_get`, panicking on I/O errors.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    try_get(addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// `try_raw`, panicking on I/O errors.
pub fn raw(addr: SocketAddr, request: &str) -> (u16, String, String) {
    try_raw(addr, request).unwrap_or_else(|e| panic!("{e}"))
}
