//! A checking pass over the config text before serde-json-core sees it.
//!
//! serde-json-core reports *what* went wrong but not *where*. This pass walks the JSON once,
//! with a bounded nesting depth, and reports the first syntax error by line and column and the
//! first value of a known key whose JSON type is wrong by its path (`servers[0].listeners[1].address`).
//! Keys the schema does not know are logged at debug and skipped, so real MOSN files with
//! `stream_filters`, `routers`, `pprof`... load. Pure, `core` only, no allocation.

use core::fmt::{self, Write};
use heapless::String;

pub use crate::sansio::limits::MAX_DEPTH;
pub use crate::sansio::limits::PATH_TEXT_LEN;

pub type PathText = String<PATH_TEXT_LEN>;

use super::schema::SCHEMA;
pub use super::schema::{describe_unknown, UnknownKey};
pub use crate::sansio::limits::MAX_CHAINS;
pub use crate::sansio::limits::MAX_FILTERS;
pub use crate::sansio::limits::MAX_SERVERS;
pub use crate::sansio::limits::MAX_UNKNOWN_KEYS;
pub use crate::sansio::limits::PATH_STR_LEN;
pub use crate::sansio::limits::RAW_STR_LEN;

/// JSON type a known key must have.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Obj,
    /// Array with at most this many entries (the capacity of its fixed-size vector, named).
    Arr(usize, &'static str),
    /// String of at most this many bytes.
    Str(usize),
    Bool,
    /// Non-negative integer.
    UInt,
    /// Any value; its contents are not checked (e.g. `tls_context`, checked semantically).
    Any,
    /// A duration as MOSN's `DurationConfig` reads it: a Go duration string of at most
    /// `RAW_STR_LEN` bytes, or the bare number `0` (Go's `time.ParseDuration` of the unquoted
    /// text; any other number is an error there).
    Dur,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Obj => "an object",
            Kind::Arr(..) => "an array",
            Kind::Str(_) => "a string",
            Kind::Bool => "true or false",
            Kind::UInt => "a non-negative integer",
            Kind::Any => "a value",
            Kind::Dur => "a duration string such as \"30s\" (a bare number only as 0, as MOSN reads it)",
        }
    }
}

/// The error for a key given twice in one object, where baton reads it from the text.
pub const REPEATED_KEY: &str = "this key appears twice in its object; keep one";

/// The error for an unknown key in `"baton"` (see `check`).
pub const UNKNOWN_BATON_KEY: &str =
    "is not a baton setting (nothing else reads the \"baton\" object); see the README's config reference";

/// Where and what: the first problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonError {
    pub line: u32,
    pub col: u32,
    /// Path of the offending value, empty for syntax errors outside any key.
    pub path: PathText,
    pub what: &'static str,
    pub expected: Option<&'static str>,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.col)?;
        match self.expected {
            Some(exp) => write!(f, "`{}` must be {}, found {}", self.path, exp, self.what),
            None if self.path.is_empty() => write!(f, "{}", self.what),
            None if self.what == UNKNOWN_BATON_KEY => {
                write!(f, "`{}` {}", self.path, self.what)?;
                match describe_unknown(&self.path) {
                    UnknownKey::NearMiss(near) => write!(f, "; did you mean `{near}`?"),
                    _ => Ok(()),
                }
            }
            None => write!(f, "{} (in `{}`)", self.what, self.path),
        }
    }
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Idx(usize),
}

struct Walker<'a> {
    b: &'a [u8],
    i: usize,
    path: [Seg<'a>; MAX_DEPTH],
    depth: usize,
    unknown: UnknownKeys,
    captures: Captures,
}

/// Settings `parse` reads from the text itself instead of through serde, by path pattern (as in
/// `SCHEMA`, whose kinds they are checked against first). Each serde-derived type costs several
/// KiB of code on ARM; these small, rarely used sections cost far less read this way (the
/// size budget, `cross/size-budget`). Their index here is `Capture::id`.
pub const CAPTURED: &[&str] = &[
    "cluster_manager.clusters[].health_check",
    "cluster_manager.clusters[].health_check.protocol",
    "cluster_manager.clusters[].health_check.service_name",
    "cluster_manager.clusters[].health_check.timeout",
    "cluster_manager.clusters[].health_check.interval",
    "cluster_manager.clusters[].health_check.healthy_threshold",
    "cluster_manager.clusters[].health_check.unhealthy_threshold",
    "cluster_manager.clusters[].circuit_breakers[].max_connections",
    "metrics.sinks[]",
    "metrics.sinks[].type",
    "metrics.sinks[].config.port",
    "metrics.sinks[].config.endpoint",
    "metrics.sinks[].config.export_url",
    "admin.address.socket_address",
    "admin.address.socket_address.address",
    "admin.address.socket_address.port_value",
    "pid",
    "baton",
    "baton.runtime_dir",
    "baton.pid_file",
    "baton.max_connections",
    "baton.buffer_size",
    "baton.backlog",
    "baton.connect_timeout",
    "baton.idle_timeout",
    "baton.drain_timeout",
    "baton.handoff_timeout",
    "baton.connect_attempts",
    "baton.fail_threshold",
    "baton.down_time",
    "baton.max_draining",
    "baton.transfer_connections",
    "baton.splice",
    "baton.log",
    "servers[].listeners[].access_logs[]",
    "servers[].listeners[].access_logs[].log_path",
    "servers[].listeners[].access_logs[].log_format",
    "servers[].listeners[].use_original_dst",
];

/// One captured value: which `CAPTURED` pattern, the first two array indices on its path
/// (`clusters[i]`, `circuit_breakers[j]`), and its JSON text's span in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    pub id: u8,
    pub idx: [u16; 2],
    pub start: u32,
    pub end: u32,
}

pub use crate::sansio::limits::MAX_CAPTURES;

/// The captured values, in the order found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captures {
    pub list: heapless::Vec<Capture, MAX_CAPTURES>,
}

impl Captures {
    /// The text of pattern `id`'s value at indices `idx` (a JSON string with its quotes, a
    /// number, `null`, ...), if the config has one.
    pub fn get<'t>(&self, text: &'t [u8], id: usize, idx: [u16; 2]) -> Option<&'t [u8]> {
        let c = self.list.iter().find(|c| c.id as usize == id && c.idx == idx)?;
        text.get(c.start as usize..c.end as usize)
    }
}

/// Keys baton does not know, in the order found (the first `MAX_UNKNOWN_KEYS`; `more` counts
/// the rest). The caller logs them once logging is set up (see `describe_unknown`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnknownKeys {
    pub paths: heapless::Vec<PathText, MAX_UNKNOWN_KEYS>,
    pub more: u32,
}

/// Checks `text` and returns the first problem, if any, or the unknown keys it holds. An
/// unknown key in baton's own `"baton"` object is an error: nothing else reads that object, so
/// it can only be a mistake.
pub fn check(text: &[u8]) -> Result<UnknownKeys, JsonError> {
    check_capturing(text).map(|(u, _)| u)
}

/// As `check`, also returning the values of the `CAPTURED` paths.
pub fn check_capturing(text: &[u8]) -> Result<(UnknownKeys, Captures), JsonError> {
    let mut w = Walker {
        b: text,
        i: 0,
        path: [Seg::Idx(0); MAX_DEPTH],
        depth: 0,
        unknown: UnknownKeys::default(),
        captures: Captures::default(),
    };
    w.ws();
    w.value(Some(Kind::Obj))?;
    w.ws();
    if w.i != w.b.len() {
        return Err(w.err("unexpected text after the top-level object"));
    }
    Ok((w.unknown, w.captures))
}

impl<'a> Walker<'a> {
    fn err(&self, what: &'static str) -> JsonError {
        let (line, col) = self.position();
        JsonError { line, col, path: self.path_text(), what, expected: None }
    }

    fn position(&self) -> (u32, u32) {
        let upto = &self.b[..self.i.min(self.b.len())];
        let line = 1 + upto.iter().filter(|&&c| c == b'\n').count() as u32;
        let line_start = upto.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
        let col = 1 + core::str::from_utf8(&upto[line_start..]).map_or(0, |s| s.chars().count());
        (line, col as u32)
    }

    fn path_text(&self) -> PathText {
        let mut s = PathText::new();
        for (n, seg) in self.path[..self.depth].iter().enumerate() {
            let _ = match seg {
                Seg::Key(k) if n == 0 => write!(s, "{k}"),
                Seg::Key(k) => write!(s, ".{k}"),
                Seg::Idx(i) => write!(s, "[{i}]"),
            };
        }
        s
    }

    /// The schema kind of the current path, `None` for an unknown key.
    fn schema_kind(&self) -> Option<Kind> {
        SCHEMA.iter().find(|(p, _)| self.pattern_is(p)).map(|(_, k)| *k)
    }

    fn pattern_is(&self, pattern: &str) -> bool {
        let mut rest = pattern;
        for (n, seg) in self.path[..self.depth].iter().enumerate() {
            rest = match seg {
                Seg::Key(k) => {
                    let r = if n == 0 { rest } else { rest.strip_prefix('.').unwrap_or("\0") };
                    match r.strip_prefix(k) {
                        Some(r) => r,
                        None => return false,
                    }
                }
                Seg::Idx(_) => match rest.strip_prefix("[]") {
                    Some(r) => r,
                    None => return false,
                },
            };
        }
        rest.is_empty()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// One value; `want` is the kind the schema expects (`None`: unknown key, `Any`: opaque).
    /// One value, captured when its path is one of `CAPTURED` (only known paths are: an
    /// unknown key's value is skipped).
    fn value(&mut self, want: Option<Kind>) -> Result<(), JsonError> {
        let start = self.i;
        let id = want.and_then(|_| CAPTURED.iter().position(|p| self.pattern_is(p)));
        self.value_inner(want)?;
        if let Some(id) = id {
            let mut idx = [0u16; 2];
            let indices = self.path[..self.depth].iter().filter_map(|s| match s {
                Seg::Idx(i) => Some(*i as u16),
                Seg::Key(_) => None,
            });
            for (d, i) in idx.iter_mut().zip(indices) {
                *d = i;
            }
            let c = Capture { id: id as u8, idx, start: start as u32, end: self.i as u32 };
            // a repeated key would be read once here and once by serde, maybe differently
            if self.captures.list.iter().any(|o| o.id == c.id && o.idx == c.idx) {
                self.i = start;
                return Err(self.err(REPEATED_KEY));
            }
            // with no repeats, MAX_CAPTURES covers every capturable path at the array limits
            self.captures.list.push(c).map_err(|_| self.err(REPEATED_KEY))?;
        }
        Ok(())
    }

    fn value_inner(&mut self, want: Option<Kind>) -> Result<(), JsonError> {
        let found = match self.peek() {
            Some(b'{') => Kind::Obj,
            Some(b'[') => Kind::Arr(0, ""),
            Some(b'"') => Kind::Str(0),
            Some(b't' | b'f') => Kind::Bool,
            Some(b'0'..=b'9') if found_name(b'0', self.b, self.i) == "a number" => Kind::UInt,
            Some(b'0'..=b'9') => Kind::Any,
            Some(b'-' | b'n') => Kind::Any,
            None => return Err(self.err("the file ends where a value was expected")),
            Some(_) => return Err(self.err("expected a value (object, array, string, number, true, false or null)")),
        };
        if let Some(w) = want {
            let null = self.peek() == Some(b'n');
            // null is an absent optional; serde rejects it where a value is required.
            let fits = match w {
                Kind::Any => true,
                // serde reads the number through `RawDur`, which relies on this check
                Kind::Dur => null || found == Kind::Str(0) || self.bare_zero(),
                _ => same_kind(w, found) || null,
            };
            if !fits {
                let (line, col) = self.position();
                let what = found_name(self.peek().unwrap_or(b' '), self.b, self.i);
                return Err(JsonError { line, col, path: self.path_text(), what, expected: Some(w.name()) });
            }
        }
        let checked = want.is_some() && want != Some(Kind::Any);
        match self.peek() {
            Some(b'{') => self.object(checked),
            Some(b'[') => self.array(checked, want),
            Some(b'"') => self.checked_string(want),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn enter(&mut self, seg: Seg<'a>) -> Result<(), JsonError> {
        if self.depth == MAX_DEPTH {
            return Err(self.err("nesting deeper than 32 levels"));
        }
        self.path[self.depth] = seg;
        self.depth += 1;
        Ok(())
    }

    fn object(&mut self, checked: bool) -> Result<(), JsonError> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key in double quotes"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after the key"));
            }
            self.i += 1;
            self.ws();
            self.enter(Seg::Key(key))?;
            let want = if checked { self.known_or_noted()? } else { None };
            self.value(want)?;
            self.depth -= 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}` after a value in an object")),
            }
        }
    }

    /// The key's schema kind; an unknown key is noted (and refused inside `"baton"`).
    fn known_or_noted(&mut self) -> Result<Option<Kind>, JsonError> {
        let kind = self.schema_kind();
        if kind.is_none() {
            if matches!(self.path[0], Seg::Key("baton")) && self.depth == 2 {
                return Err(self.err(UNKNOWN_BATON_KEY));
            }
            let p = self.path_text();
            if self.unknown.paths.push(p).is_err() {
                self.unknown.more += 1;
            }
        }
        Ok(kind)
    }

    /// Whether the value here is the number `0` and nothing more (`0.0`, `00`, `0e1` are not).
    /// `0` or `-0`: the only JSON numbers Go's `time.ParseDuration` takes (it has no unit).
    fn bare_zero(&self) -> bool {
        let at = self.i + usize::from(self.peek() == Some(b'-'));
        self.b.get(at) == Some(&b'0') && !matches!(self.b.get(at + 1), Some(b'0'..=b'9' | b'.' | b'e' | b'E'))
    }

    fn checked_string(&mut self, want: Option<Kind>) -> Result<(), JsonError> {
        let at = self.i;
        let s = self.string()?;
        let max = match want {
            Some(Kind::Str(max)) => Some(max),
            Some(Kind::Dur) => Some(RAW_STR_LEN),
            _ => None,
        };
        match max {
            Some(max) if s.len() > max => {
                self.i = at;
                Err(JsonError { what: too_long(max), ..self.err("") })
            }
            _ => Ok(()),
        }
    }

    fn array(&mut self, checked: bool, want: Option<Kind>) -> Result<(), JsonError> {
        let limit = match want {
            Some(Kind::Arr(n, name)) => Some((n, name)),
            _ => None,
        };
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        let mut n = 0;
        loop {
            self.ws();
            if let Some((max, name)) = limit.filter(|(max, _)| n >= *max) {
                return Err(JsonError { what: too_many(max, name), ..self.err("") });
            }
            self.enter(Seg::Idx(n))?;
            let want = if checked { self.schema_kind() } else { None };
            self.value(want)?;
            self.depth -= 1;
            n += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `]` after a value in an array")),
            }
        }
    }

    /// A string starting at the opening quote; returns its raw (still escaped) contents.
    fn string(&mut self) -> Result<&'a str, JsonError> {
        let start = self.i + 1;
        self.i = start;
        loop {
            match self.peek() {
                None => return Err(self.err("the file ends inside a string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => self.hex4()?,
                        _ => return Err(self.err("invalid escape sequence in a string")),
                    }
                }
                Some(c) if c < 0x20 => return Err(self.err("control character inside a string")),
                Some(_) => self.i += 1,
            }
        }
        let raw = &self.b[start..self.i];
        self.i += 1;
        core::str::from_utf8(raw).map_err(|_| self.err("a string is not valid UTF-8"))
    }

    fn hex4(&mut self) -> Result<(), JsonError> {
        self.i += 1;
        for _ in 0..4 {
            if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                return Err(self.err("\\u must be followed by four hex digits"));
            }
            self.i += 1;
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("expected a value (object, array, string, number, true, false or null)"))
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = self.digits();
        if digits == 0 {
            return Err(self.err("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number: digits must follow `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number: digits must follow the exponent"));
            }
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - s
    }
}

fn same_kind(a: Kind, b: Kind) -> bool {
    core::mem::discriminant(&a) == core::mem::discriminant(&b)
}

fn too_long(max: usize) -> &'static str {
    match max {
        RAW_STR_LEN => "a string longer than 64 bytes",
        crate::sansio::limits::ACCESS_FORMAT_LEN => "a string longer than 512 bytes",
        _ => "a string longer than 128 bytes",
    }
}

fn too_many(max: usize, name: &'static str) -> &'static str {
    // Messages are static so errors stay allocation-free; one per named limit.
    match (max, name) {
        (_, "MAX_LISTENERS") => "more entries than MAX_LISTENERS (16) allows",
        (_, "MAX_CLUSTERS") => "more entries than MAX_CLUSTERS (16) allows",
        (_, "MAX_HOSTS") => "more entries than MAX_HOSTS (32) allows",
        (_, "MAX_SERVERS") => "more entries than MAX_SERVERS (1) allows",
        (_, "MAX_CHAINS") => "more entries than MAX_CHAINS (1) allows",
        (_, "MAX_SINKS") => "more entries than MAX_SINKS (4) allows",
        (_, "MAX_THRESHOLDS") => "more entries than MAX_THRESHOLDS (4) allows",
        (_, "MAX_ROUTES") => "more entries than MAX_ROUTES (4) allows",
        (_, "MAX_CIDRS") => "more entries than MAX_CIDRS (4) allows",
        (_, "MAX_ACCESS_LOGS") => "more than one access log; baton writes one per listener (MAX_ACCESS_LOGS)",
        _ => "more entries than MAX_FILTERS (4) allows",
    }
}

/// Describes the value found where another kind was expected.
fn found_name(first: u8, b: &[u8], i: usize) -> &'static str {
    match first {
        b'{' => "an object",
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        b'-' => "a negative number",
        _ => {
            let rest = &b[i..];
            let end = rest.iter().position(|c| !(c.is_ascii_digit())).unwrap_or(rest.len());
            if matches!(rest.get(end), Some(b'.' | b'e' | b'E')) {
                "a fractional number"
            } else {
                "a number"
            }
        }
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
