//! The admin endpoint from a test: GETs and reading `/stats`.

use super::*;

/// A minimal HTTP GET: (status, body), `None` if the connection failed.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_raw(port, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

pub fn http_raw(port: u16, req: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(req).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// A number from the flat JSON text of `/stats`: the first `"key":N` after `after`.
pub fn json_num(text: &str, after: &str, key: &str) -> u64 {
    let start = text.find(after).unwrap_or_else(|| panic!("{after} not in {text}"));
    let rest = &text[start..];
    let k = format!("\"{key}\":");
    let at = rest.find(&k).unwrap_or_else(|| panic!("{key} not in {rest}")) + k.len();
    rest[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}
