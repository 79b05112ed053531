//! The log sink: one line per record on stderr, `LEVEL [target] message` (the format
//! simple_logger wrote before). A line is formatted into a fixed buffer (no allocation; a longer
//! message is cut and ends in `...`) and written with one `write`, so lines from the processes
//! of a hot restart sharing one stderr do not interleave. A failed write is dropped: a log
//! reader that went away (`EPIPE`: a logger pipe, journald restarting) must not stop the proxy,
//! and `eprintln!`, which panics on a failed write, would abort it.

use core::fmt::Write as _;
use std::io::Write as _;

use log::{LevelFilter, Log, Metadata, Record};

/// Longest log line, newline included; longer messages are cut.
pub const LINE_MAX: usize = 1024;

struct Stderr;

static LOGGER: Stderr = Stderr;

/// Installs the logger at `level`; later calls only change the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Writes one line to stderr, ignoring failures (see the module's note).
pub fn line(args: core::fmt::Arguments<'_>) {
    let mut b = Line { buf: [0; LINE_MAX], len: 0 };
    let _ = b.write_fmt(args);
    let _ = std::io::stderr().lock().write_all(b.finish());
}

/// Writes one line to stdout, ignoring failures (`--check`'s `ok` into a closed pipe).
pub fn out_line(args: core::fmt::Arguments<'_>) {
    let mut b = Line { buf: [0; LINE_MAX], len: 0 };
    let _ = b.write_fmt(args);
    let _ = std::io::stdout().lock().write_all(b.finish());
}

impl Log for Stderr {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let target = if r.target().is_empty() { r.module_path().unwrap_or_default() } else { r.target() };
            line(format_args!("{:<5} [{}] {}", r.level().as_str(), target, r.args()));
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
