//! Scalar parsers for config values: Go-style durations and socket addresses. Pure, `core` only.

use core::net::{IpAddr, SocketAddr};

pub use crate::sansio::limits::MAX_DURATION_MS;

/// Parses a Go duration string (`"30s"`, `"500ms"`, `"1m30s"`, `"1.5h"`, `"+5s"`, `"-0"`) into
/// milliseconds. A non-zero duration under a millisecond rounds up to 1 ms (0 means "off" for
/// some settings, which `"500us"` must not turn into); `"0"` and `"0s"` are zero.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    // Go's time.ParseDuration takes a sign; a negative duration means nothing for a timeout,
    // so only a zero is taken with a minus.
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let ns = parse_unsigned_ns(s)?;
    if negative && ns > 0 {
        return None;
    }
    Some(ns.div_ceil(1_000_000) as u64)
}

fn parse_unsigned_ns(s: &str) -> Option<u128> {
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut i = 0;
    let mut total_ns: u128 = 0;
    while i < b.len() {
        let (int, frac, frac_div, next) = number(b, i)?;
        let (unit_ns, after) = unit(b, next)?;
        total_ns += int as u128 * unit_ns + (frac as u128 * unit_ns) / frac_div as u128;
        if total_ns > MAX_DURATION_MS as u128 * 1_000_000 {
            return None;
        }
        i = after;
    }
    Some(total_ns)
}

/// Digits with an optional fraction starting at `i`: (integer, fraction, 10^digits, end).
fn number(b: &[u8], mut i: usize) -> Option<(u64, u64, u64, usize)> {
    let start = i;
    let mut int: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        int = int.checked_mul(10)?.checked_add((b[i] - b'0') as u64)?;
        i += 1;
    }
    let (mut frac, mut div) = (0u64, 1u64);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            if div < 1_000_000_000 {
                frac = frac * 10 + (b[i] - b'0') as u64;
                div *= 10;
            }
            i += 1;
        }
    }
    if i == start || (i == start + 1 && b[start] == b'.') {
        return None;
    }
    Some((int, frac, div, i))
}

/// A unit suffix at `i`: (nanoseconds per unit, end).
fn unit(b: &[u8], i: usize) -> Option<(u128, usize)> {
    const UNITS: [(&[u8], u128); 8] = [
        (b"ns", 1),
        (b"us", 1_000),
        ("\u{b5}s".as_bytes(), 1_000),  // micro sign
        ("\u{3bc}s".as_bytes(), 1_000), // Greek mu: Go takes both
        (b"ms", 1_000_000),
        (b"s", 1_000_000_000),
        (b"m", 60_000_000_000),
        (b"h", 3_600_000_000_000),
    ];
    let rest = &b[i..];
    UNITS
        .iter()
        .find(|(u, _)| rest.starts_with(u) && !(u == b"m" && rest.starts_with(b"ms")))
        .map(|(u, ns)| (*ns, i + u.len()))
}

/// Parses `"127.0.0.1:2045"`, `"[::1]:2045"`, and `"localhost:2045"` (as 127.0.0.1: baton
/// never resolves names, so it can start before DNS is up on a gateway).
pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    // Go's ":port" (MOSN listeners): every address, like 0.0.0.0 (both families, as in Go)
    if let Some(port) = s.strip_prefix(':') {
        return Some(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port.parse::<u16>().ok()?));
    }
    let port = s.strip_prefix("localhost:")?.parse::<u16>().ok()?;
    Some(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port))
}

/// An absolute path with no empty, `.` or `..` component and no trailing slash (which would
/// make `O_NOFOLLOW` follow a link): what baton accepts for the files it creates.
pub fn is_plain_abs_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() > 1
        && !p.ends_with('/')
        && p[1..].split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// An IP and a port given separately (the admin `socket_address` shape).
pub fn parse_ip_port(ip: &str, port: u16) -> Option<SocketAddr> {
    let ip = if ip == "localhost" { IpAddr::from([127, 0, 0, 1]) } else { ip.parse::<IpAddr>().ok()? };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Some(30_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1m"), Some(60_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration_ms("250us"), Some(1), "under 1 ms is not 0 (off)");
        assert_eq!(parse_duration_ms("1.2ms"), Some(2));
        assert_eq!(parse_duration_ms("-0.0s"), Some(0));
        assert_eq!(parse_duration_ms("-500us"), None, "negative, however small");
        assert_eq!(parse_duration_ms("0"), Some(0));
        assert_eq!(parse_duration_ms("0s"), Some(0));
        for bad in ["", "s", "30", "30x", "-1s", "1.s5", ".s", "999999999999999999999h", "200h"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("127.0.0.1:2045").unwrap().port(), 2045);
        assert!(parse_addr("[::1]:80").unwrap().is_ipv6());
        assert_eq!(parse_addr("localhost:9").unwrap().to_string(), "127.0.0.1:9");
        assert_eq!(parse_addr(":8080").unwrap().to_string(), "0.0.0.0:8080", "Go's :port");
        for bad in ["", "127.0.0.1", "127.0.0.1:99999", "host:80", "1.2.3:4", ":", ":x", ":70000"] {
            assert_eq!(parse_addr(bad), None, "{bad}");
        }
        assert!(parse_ip_port("0.0.0.0", 34901).is_some());
        assert!(parse_ip_port("nope", 1).is_none());
    }
}
