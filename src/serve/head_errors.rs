//! Hyper's automatic answers to a request it could not parse (400 bad
//! request, 414 URI too long, 431 head too large) in the API's JSON error
//! shape. Hyper writes them itself, before any handler runs, as a bare
//! status line with `content-length: 0`; no hook changes them. This wraps
//! a connection's socket and, when a write is exactly such a head, writes
//! the same status with a JSON body instead. Every answer of the router has
//! a body, so nothing else matches. Reads pass through untouched.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest request head (request line and headers): the listener's hyper
/// read buffer, so also what one connection can make the server hold while
/// it reads.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// A socket whose bodiless 400/414/431 heads are rewritten as JSON answers.
pub struct JsonHeadErrors<T> {
    inner: T,
    /// A replacement being written: its bytes, how many are written, and
    /// the length of the head it stands for (reported as written).
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonHeadErrors<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        JsonHeadErrors {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer standing for `head`, when it is one of hyper's own.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    let end = text.find("\r\n\r\n")?;
    if end + 4 != text.len() {
        return None;
    }
    let code = rest.get(2..5)?;
    let message = match code {
        "400" => "malformed request: not HTTP/1.1 this server can read".to_owned(),
        "414" => "uri too long".to_owned(),
        "431" => format!(
            "request head too large: at most {} bytes of request line and headers, at most 100 headers",
            MAX_HEAD_BYTES
        ),
        _ => return None,
    };
    let bodiless = text[..end]
        .split("\r\n")
        .any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !bodiless {
        return None;
    }
    let status_line = &text[..text.find("\r\n")?];
    let body =
        serde_json::json!({"error": message, "status": code.parse::<u16>().ok()?}).to_string();
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonHeadErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonHeadErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match replacement(buf) {
                Some(bytes) => this.pending = Some((bytes, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // Hyper calls again with the same head while this returns Pending.
        let Some((bytes, written, stands_for)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let n = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands over each head as one buffer, which is
    // what `replacement` recognises.
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn hypers_bodiless_431_becomes_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 04:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(head).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let body: serde_json::Value =
            serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["status"], 431);
        assert!(body["error"].as_str().unwrap().contains("too large"));
    }

    #[test]
    fn answers_with_a_body_or_other_statuses_pass_through() {
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 431 X\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
