//! The admin API's HTTP/1.x request parser and response framing (sans-io, `core` only).
//!
//! Deliberately small and strict: a request line and headers, no body, at most
//! `MAX_REQUEST` bytes; anything else is a 400, 404 or 405.

use core::fmt::{self, Write};

pub use crate::sansio::limits::MAX_REQUEST;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The status page; `refresh`: seconds between reloads asked with `/?refresh=N` (0: none).
    Page {
        refresh: u16,
    },
    Stats,
    Metrics,
    Health,
    Config,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Need more bytes.
    Incomplete,
    Get(Route),
    /// Respond with this status and close.
    Error(u16),
}

/// Parses the request in `buf` (all bytes received so far).
pub fn parse(buf: &[u8]) -> Parsed {
    let Some(end) = find(buf, b"\r\n\r\n").or_else(|| find(buf, b"\n\n")) else {
        return if buf.len() >= MAX_REQUEST { Parsed::Error(431) } else { Parsed::Incomplete };
    };
    let line_end = find(buf, b"\n").unwrap_or(end);
    let line = core::str::from_utf8(&buf[..line_end]).unwrap_or("").trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Error(400);
    };
    if !(version == "HTTP/1.1" || version == "HTTP/1.0") || !target.starts_with('/') {
        return Parsed::Error(400);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let route = match path {
        "/" => Route::Page { refresh: refresh(query) },
        "/stats" => Route::Stats,
        "/metrics" => Route::Metrics,
        "/health" => Route::Health,
        "/config" => Route::Config,
        _ => return Parsed::Error(404),
    };
    match method {
        "GET" | "HEAD" => Parsed::Get(route),
        m if m.bytes().all(|c| c.is_ascii_uppercase()) && !m.is_empty() => Parsed::Error(405),
        _ => Parsed::Error(400),
    }
}

/// `refresh=N` in a query, N from 1 to 3600 seconds; anything else is no refresh.
fn refresh(query: &str) -> u16 {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("refresh="))
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|n| (1..=3600).contains(n))
        .unwrap_or(0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// `fmt::Write` into a fixed slice; remembers whether anything did not fit.
pub struct SliceWriter<'a> {
    pub buf: &'a mut [u8],
    pub len: usize,
    pub overflow: bool,
}

impl<'a> SliceWriter<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceWriter { buf, len: 0, overflow: false }
    }
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            self.overflow = true;
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

pub use crate::sansio::limits::HEAD_ROOM;

/// Writes the head right before `buf[HEAD_ROOM..HEAD_ROOM + body_len]` and returns where the
/// response starts. `head_only` answers a HEAD request.
pub fn frame(buf: &mut [u8], status: u16, content_type: &str, body_len: usize) -> usize {
    let mut head = [0u8; HEAD_ROOM];
    let mut w = SliceWriter::new(&mut head);
    let _ = write!(
        w,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n",
        reason(status)
    );
    let n = w.len;
    buf[HEAD_ROOM - n..HEAD_ROOM].copy_from_slice(&head[..n]);
    HEAD_ROOM - n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"), Parsed::Get(Route::Stats));
        assert_eq!(parse(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Parsed::Get(Route::Metrics));
        assert_eq!(parse(b"GET /health HTTP/1.1\n\n"), Parsed::Get(Route::Health));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Parsed::Get(Route::Page { refresh: 0 }));
        assert_eq!(parse(b"GET /?refresh=5 HTTP/1.1\r\n\r\n"), Parsed::Get(Route::Page { refresh: 5 }));
        assert_eq!(parse(b"GET /?x=1&refresh=99999 HTTP/1.1\r\n\r\n"), Parsed::Get(Route::Page { refresh: 0 }));
        assert_eq!(parse(b"GET /?refresh=-1 HTTP/1.1\r\n\r\n"), Parsed::Get(Route::Page { refresh: 0 }));
        assert_eq!(parse(b"GET /stats HTTP/1.1\r\nHost"), Parsed::Incomplete);
        assert_eq!(parse(b"GET /nope HTTP/1.1\r\n\r\n"), Parsed::Error(404));
        assert_eq!(parse(b"POST /stats HTTP/1.1\r\n\r\n"), Parsed::Error(405));
        assert_eq!(parse(b"GET /stats HTTP/2\r\n\r\n"), Parsed::Error(400));
        assert_eq!(parse(b"GET  /stats HTTP/1.1\r\n\r\n"), Parsed::Error(400));
        assert_eq!(parse(b"\x00\xff\r\n\r\n"), Parsed::Error(400));
        assert_eq!(parse(&[b'a'; MAX_REQUEST]), Parsed::Error(431));
    }

    #[test]
    fn framing() {
        let mut buf = [0u8; 512];
        buf[HEAD_ROOM..HEAD_ROOM + 2].copy_from_slice(b"ok");
        let start = frame(&mut buf, 200, "text/plain", 2);
        let text = core::str::from_utf8(&buf[start..HEAD_ROOM + 2]).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n")
                && text.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\nok")
        );
    }
}
