//! Access logs, MOSN's listener `access_logs`: the format's check and one line's rendering.
//! Sans-io: the server gathers an `Entry` when a connection closes; rendering is `core::fmt`
//! into the caller's buffer, without allocation.
//!
//! The format is MOSN's (`pkg/log/accesslog.go`, `parseFormat`): `%name%` is a variable, the
//! text around it is copied, a `%` right after a backslash is text (the backslash stays), `%%`
//! and an unclosed `%` are errors. Variable names are MOSN's (`pkg/types/variable.go`,
//! `pkg/proxy/var.go`); those with no meaning for a TCP connection (HTTP headers, response
//! codes, request phases) and any name MOSN does not know are written as `-`, as MOSN writes
//! an unknown one.

use core::fmt::{self, Display, Write};

use crate::sansio::addr::Addr;

/// MOSN's `types.DefaultAccessLogFormat`, used when a listener's access log has no format.
pub const DEFAULT_FORMAT: &str = "%start_time% %trace_id%  %connection_id% %upstream_connection_id% \
%request_received_duration% %response_received_duration% %bytes_sent% %bytes_received% %protocol% \
%response_code% %duration% %response_flag% %response_code% %upstream_local_address% \
%downstream_local_address% %downstream_remote_address% %upstream_host%";

/// What is wrong with a format (MOSN refuses both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// `%%`: a variable with no name.
    Empty,
    /// An opening `%` with no closing one.
    Unclosed,
}

impl Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "`%%` names no variable (write `\\%` for a literal %)",
            Self::Unclosed => "a `%` opens a variable that is never closed (write `\\%` for a literal %)",
        })
    }
}

/// One piece of a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Walks `format` as MOSN's parser does, calling `f` for each piece.
fn walk<'a>(format: &'a str, mut f: impl FnMut(Seg<'a>) -> fmt::Result) -> Result<(), Result<FormatError, fmt::Error>> {
    let b = format.as_bytes();
    let mut in_var = false;
    let mut last: Option<usize> = None; // position of the last `%`
    for (pos, ch) in format.char_indices() {
        if ch != '%' || (pos > 0 && b[pos - 1] == b'\\') {
            continue;
        }
        let from = last.map_or(0, |l| l + 1);
        if in_var {
            if pos == from {
                return Err(Ok(FormatError::Empty));
            }
            f(Seg::Var(&format[from..pos])).map_err(Err)?;
        } else if pos > from {
            f(Seg::Text(&format[from..pos])).map_err(Err)?;
        }
        last = Some(pos);
        in_var = !in_var;
    }
    if in_var {
        return Err(Ok(FormatError::Unclosed));
    }
    let from = last.map_or(0, |l| l + 1);
    if from < format.len() {
        f(Seg::Text(&format[from..])).map_err(Err)?;
    }
    Ok(())
}

/// Checks a format as MOSN does when it loads one.
pub fn check(format: &str) -> Result<(), FormatError> {
    walk(format, |_| Ok(())).map_err(|e| e.unwrap_or(FormatError::Unclosed))
}

/// What is known of a connection when it closes.
pub struct Entry<'a> {
    /// When it was accepted (ms since the Unix epoch).
    pub start_unix_ms: u64,
    pub duration_ms: u64,
    /// Bytes from the client, and to the client.
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Unique for the instance (the count of accepted connections, which a hot restart
    /// carries); `None` for a connection a hot restart moved here.
    pub connection_id: Option<u64>,
    pub downstream_local: Option<&'a Addr>,
    pub downstream_remote: Option<&'a Addr>,
    pub upstream_local: Option<&'a Addr>,
    pub upstream_host: Option<&'a Addr>,
    pub cluster: Option<&'a str>,
    /// Why no upstream connection was made, when none was.
    pub failure: Option<&'static str>,
}

/// Writes one line for `e` in `format` (checked with `check`), without the newline.
pub fn write_line(w: &mut dyn Write, format: &str, e: &Entry<'_>) -> fmt::Result {
    let dash = |w: &mut dyn Write, v: Option<&dyn Display>| match v {
        Some(v) => write!(w, "{v}"),
        None => w.write_char('-'),
    };
    let r = walk(format, |seg| match seg {
        Seg::Text(t) => w.write_str(t),
        Seg::Var(name) => match name {
            "start_time" => write!(w, "{}", UtcTime(e.start_unix_ms)),
            "duration" => write!(w, "{}", GoDuration(e.duration_ms)),
            "bytes_sent" => write!(w, "{}", e.bytes_sent),
            "bytes_received" => write!(w, "{}", e.bytes_received),
            "connection_id" => dash(w, e.connection_id.as_ref().map(|c| c as &dyn Display)),
            "protocol" => w.write_str("TCP"),
            "downstream_local_address" => dash(w, e.downstream_local.map(|a| a as &dyn Display)),
            "downstream_remote_address" => dash(w, e.downstream_remote.map(|a| a as &dyn Display)),
            "upstream_local_address" => dash(w, e.upstream_local.map(|a| a as &dyn Display)),
            "upstream_host" => dash(w, e.upstream_host.map(|a| a as &dyn Display)),
            "upstream_cluster" => dash(w, e.cluster.as_ref().map(|c| c as &dyn Display)),
            "response_flag" | "response_flags" => write!(w, "{}", e.failure.is_some()),
            "upstream_transport_failure_reason" => dash(w, e.failure.as_ref().map(|c| c as &dyn Display)),
            _ => w.write_char('-'),
        },
    });
    r.map_err(|_| fmt::Error)
}

/// `2006/01/02 15:04:05.000` (MOSN's start_time layout), in UTC: the binary carries no time
/// zone database.
pub struct UtcTime(pub u64);

impl Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", UtcSecs(self.0 / 1000), self.0 % 1000)
    }
}

/// `2006/01/02 15:04:05` in UTC, from seconds since the Unix epoch.
pub struct UtcSecs(pub u64);

impl Display for UtcSecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days((self.0 / 86_400) as i64);
        let s = self.0 % 86_400;
        write!(f, "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

/// The calendar date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A duration as Go's `time.Duration.String` writes it (`0s`, `250ms`, `1.5s`, `2m3.25s`,
/// `1h0m0s`), from milliseconds.
pub struct GoDuration(pub u64);

impl Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 1000 {
            return if ms == 0 { f.write_str("0s") } else { write!(f, "{ms}ms") };
        }
        let (s, frac) = (ms / 1000, ms % 1000);
        let (h, m) = (s / 3600, s / 60 % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        write!(f, "{}", s % 60)?;
        if frac > 0 {
            let (mut digits, mut v) = (3, frac);
            while v % 10 == 0 {
                v /= 10;
                digits -= 1;
            }
            write!(f, ".{v:0digits$}")?;
        }
        f.write_char('s')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(format: &str) -> heapless::Vec<Seg<'_>, 16> {
        let mut v = heapless::Vec::new();
        walk(format, |s| {
            let _ = v.push(s);
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn formats_are_read_as_mosn_reads_them() {
        assert_eq!(pieces("%a% x %b%"), [Seg::Var("a"), Seg::Text(" x "), Seg::Var("b")]);
        assert_eq!(pieces("pre %a%post"), [Seg::Text("pre "), Seg::Var("a"), Seg::Text("post")]);
        // an escaped % is text, backslash included (MOSN keeps it)
        assert_eq!(pieces("100\\% %a%"), [Seg::Text("100\\% "), Seg::Var("a")]);
        assert_eq!(pieces(""), []);
        assert_eq!(check("%a%%%"), Err(FormatError::Empty));
        assert_eq!(check("%a"), Err(FormatError::Unclosed));
        assert_eq!(check("x %a% %b"), Err(FormatError::Unclosed));
        assert_eq!(check(DEFAULT_FORMAT), Ok(()));
    }

    #[test]
    fn times_and_durations_read_as_in_mosn() {
        let s = |d: &dyn Display| {
            let mut o = heapless::String::<64>::new();
            let _ = write!(o, "{d}");
            o
        };
        assert_eq!(s(&UtcTime(0)), "1970/01/01 00:00:00.000");
        assert_eq!(s(&UtcTime(1_733_580_000_123)), "2024/12/07 14:00:00.123");
        assert_eq!(s(&UtcTime(951_782_400_000)), "2000/02/29 00:00:00.000");
        assert_eq!(s(&GoDuration(0)), "0s");
        assert_eq!(s(&GoDuration(250)), "250ms");
        assert_eq!(s(&GoDuration(1500)), "1.5s");
        assert_eq!(s(&GoDuration(1005)), "1.005s");
        assert_eq!(s(&GoDuration(123_250)), "2m3.25s");
        assert_eq!(s(&GoDuration(3_600_000)), "1h0m0s");
    }

    #[test]
    fn a_line_has_every_variable_or_a_dash() {
        let client: Addr = "10.0.0.7:40000".parse().unwrap();
        let host: Addr = "127.0.0.1:9000".parse().unwrap();
        let e = Entry {
            start_unix_ms: 1_733_580_000_000,
            duration_ms: 1500,
            bytes_received: 10,
            bytes_sent: 20,
            connection_id: Some(7),
            downstream_local: None,
            downstream_remote: Some(&client),
            upstream_local: None,
            upstream_host: Some(&host),
            cluster: Some("back"),
            failure: None,
        };
        let mut o = heapless::String::<512>::new();
        write_line(&mut o, "%start_time% %duration% %bytes_received%/%bytes_sent% #%connection_id% %downstream_remote_address% -> %upstream_cluster% %upstream_host% %response_flag% %trace_id% %nope%", &e).unwrap();
        assert_eq!(o, "2024/12/07 14:00:00.000 1.5s 10/20 #7 10.0.0.7:40000 -> back 127.0.0.1:9000 false - -");
    }
}
