//! The log sink: one line per record, `LEVEL [target] message` (the format simple_logger wrote
//! before), on stderr or, with `"baton": {"log": "syslog"}`, as a datagram to `/dev/log`. A
//! line is formatted into a fixed buffer (no allocation; a longer message is cut and ends in
//! `...`) and written with one `write`, so lines from the processes of a hot restart sharing one
//! stderr do not interleave. A failed write is dropped: a log reader that went away (`EPIPE`:
//! a logger pipe, journald restarting) must not stop the proxy, and `eprintln!`, which panics on
//! a failed write, would abort it. Nor may a reader that stopped reading: a line goes to stderr
//! only when the descriptor takes it without waiting (a pipe with room; lines are shorter than
//! the pipe's atomic write size), otherwise it is dropped and counted, and the next line that
//! gets through is preceded by how many were lost. Syslog datagrams are sent without waiting
//! too: when the syslog daemon's queue is full the line is dropped rather than the event loop
//! stalled.

use core::fmt::Write as _;

use core::sync::atomic::{AtomicU64, Ordering};
use log::{Level, LevelFilter, Log, Metadata, Record};
use nix::errno::Errno;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use crate::sansio::config::LogSink;
use crate::sys::net;
use crate::sys::stdio::Shared;

/// Longest log line, newline included; longer messages are cut.
pub const LINE_MAX: usize = 1024;

struct Logger;

static LOGGER: Logger = Logger;

/// The syslog socket and its path, when logging to syslog.
static SYSLOG: Mutex<Option<(OwnedFd, String)>> = Mutex::new(None);

/// Where syslog lines go: the local syslog socket (`BATON_FAULT=syslog-path:P` in test builds).
pub const SYSLOG_PATH: &str = "/dev/log";

/// Installs the logger at `level`, writing to `sink`; later calls change both. A syslog socket
/// that cannot be reached leaves the lines on stderr, with one line there saying why.
pub fn init(level: LevelFilter, sink: LogSink) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    let to = match sink {
        LogSink::Stderr => None,
        LogSink::Syslog => {
            let path = crate::fault::text(crate::fault::SYSLOG_PATH).unwrap_or_else(|| SYSLOG_PATH.into());
            match net::unix_dgram_connect(&path) {
                Ok(fd) => Some((fd, path)),
                Err(e) => {
                    line(format_args!("baton: syslog at {path}: {}; logging to stderr", e.desc()));
                    None
                }
            }
        }
    };
    if let Ok(mut s) = SYSLOG.lock() {
        *s = to;
    }
}

/// Sends `args` as one syslog datagram (`<PRI>baton[PID]: ...`, facility daemon), reconnecting
/// once if the daemon restarted; `false` when there is no syslog sink.
fn to_syslog(level: Level, args: core::fmt::Arguments<'_>) -> bool {
    let Ok(mut guard) = SYSLOG.lock() else { return false };
    let Some((fd, path)) = guard.as_mut() else { return false };
    let severity = match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    };
    let mut b = Line { buf: [0; LINE_MAX], len: 0 };
    let _ = write!(b, "<{}>baton[{}]: {}", 3 * 8 + severity, std::process::id(), args);
    let msg = b.finish();
    let msg = &msg[..msg.len() - 1]; // a datagram is one message: no newline
    if let Err(nix::errno::Errno::ECONNREFUSED | nix::errno::Errno::ENOTCONN) = net::send_datagram(fd, msg) {
        if let Ok(again) = net::unix_dgram_connect(path) {
            let _ = net::send_datagram(&again, msg);
            *fd = again;
        }
    }
    true
}

/// Lines not written to stderr because it was not being read (see the module's note).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// stderr, written without waiting (`sys::stdio`: a pipe through a non-blocking description of
/// its own, a socket with `MSG_DONTWAIT`, else after `poll`).
static STDERR: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();

/// Writes one line to stderr if it takes it without waiting, ignoring failures (see the
/// module's note); after lines were dropped, says how many first.
pub fn line(args: core::fmt::Arguments<'_>) {
    let err = STDERR.get_or_init(|| Shared::new(false));
    let _serialised = std::io::stderr().lock(); // one line at a time from this process's threads
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let mut note = Line { buf: [0; LINE_MAX], len: 0 };
        let _ = write!(note, "WARN  [baton] {dropped} log lines dropped: stderr was not being read");
        if let Err(Errno::EAGAIN) = err.write(note.finish()) {
            DROPPED.fetch_add(dropped + 1, Ordering::Relaxed);
            return;
        }
    }
    let mut b = Line { buf: [0; LINE_MAX], len: 0 };
    let _ = b.write_fmt(args);
    if let Err(Errno::EAGAIN) = err.write(b.finish()) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes one line to stdout, ignoring failures (`--check`'s `ok` into a closed pipe).
pub fn out_line(args: core::fmt::Arguments<'_>) {
    write_line(&mut std::io::stdout().lock(), args);
}

fn write_line(out: &mut dyn std::io::Write, args: core::fmt::Arguments<'_>) {
    let mut b = Line { buf: [0; LINE_MAX], len: 0 };
    let _ = b.write_fmt(args);
    let _ = out.write_all(b.finish());
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let target = if r.target().is_empty() { r.module_path().unwrap_or_default() } else { r.target() };
            let args = format_args!("{:<5} [{}] {}", r.level().as_str(), target, r.args());
            if !to_syslog(r.level(), args) {
                line(args);
            }
        }
    }

    fn flush(&self) {}
}

/// A line being built; `finish` appends the newline (after `...` when the text was cut).
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    fn finish(&mut self) -> &[u8] {
        if self.len > LINE_MAX - 1 {
            self.len = LINE_MAX - 4;
            self.buf[self.len..self.len + 3].copy_from_slice(b"...");
            self.len += 3;
        }
        self.buf[self.len] = b'\n';
        &self.buf[..self.len + 1]
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // room for the newline is kept; one byte past it marks a cut line
        let room = LINE_MAX - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_the_limit_and_end_in_a_newline() {
        let mut b = Line { buf: [0; LINE_MAX], len: 0 };
        let _ = write!(b, "short");
        assert_eq!(b.finish(), b"short\n");
        let mut b = Line { buf: [0; LINE_MAX], len: 0 };
        let _ = write!(b, "{}", "x".repeat(LINE_MAX - 1));
        assert_eq!(b.finish().len(), LINE_MAX, "exactly at the limit: kept whole");
        assert!(!b.finish().ends_with(b"...\n"));
        let mut b = Line { buf: [0; LINE_MAX], len: 0 };
        let _ = write!(b, "{}", "y".repeat(5 * LINE_MAX));
        let l = b.finish();
        assert_eq!(l.len(), LINE_MAX);
        assert!(l.ends_with(b"...\n"));
    }
}
