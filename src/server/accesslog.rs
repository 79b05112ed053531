//! Writing access log lines without ever waiting: each file gets a fixed buffer, lines are
//! formatted into it (no allocation) and written with one `write` per event-loop turn.
//! Files are opened non-blocking by the caller (`logfiles.rs`, with its checks), so a full pipe
//! answers `EAGAIN`: lines wait in the buffer, and what does not fit is dropped and counted.
//! `stdout` and `stderr` are shared with other processes; `sys::stdio` writes them without
//! waiting too.

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::sansio::limits::{ACCESS_LINE_MAX, ACCESS_LOG_BUF, MAX_LISTENERS};
use crate::sys::stdio::Shared;

/// Where one access log goes.
pub enum Target {
    /// A file or FIFO this process opened (non-blocking, append).
    File(OwnedFd),
    /// stdout or stderr, which other processes share (`sys::stdio`).
    Shared(Shared),
}

struct Sink {
    target: Target,
    buf: Box<[u8]>,
    len: usize,
    /// Lines in `buf` (for the drop count when a write fails).
    lines: u64,
}

/// The access logs of a process: one sink per file, and which sink each listener writes to.
#[derive(Default)]
pub struct AccessLogs {
    sinks: Vec<Sink>,
    of_listener: [Option<u8>; MAX_LISTENERS],
    /// Lines written, and lines dropped (buffer full while the file did not take more, or a
    /// failed write: a full disk).
    pub written: u64,
    pub dropped: u64,
}

impl AccessLogs {
    /// `targets`: each file and the listeners (config indices) that log to it.
    pub fn new(targets: Vec<(Target, Vec<usize>)>) -> AccessLogs {
        let mut a = AccessLogs::default();
        for (target, listeners) in targets {
            for li in listeners.into_iter().filter(|&li| li < MAX_LISTENERS) {
                a.of_listener[li] = Some(a.sinks.len() as u8);
            }
            a.sinks.push(Sink { target, buf: vec![0; ACCESS_LOG_BUF].into_boxed_slice(), len: 0, lines: 0 });
        }
        a
    }

    pub fn enabled(&self, listener: usize) -> bool {
        self.of_listener.get(listener).is_some_and(Option::is_some)
    }

    /// Adds one line for `listener`, formatted by `line` (without the newline; cut at
    /// `ACCESS_LINE_MAX`). Writes out first when the buffer has no room; drops the line if
    /// there is still none.
    pub fn log(&mut self, listener: usize, line: impl Fn(&mut dyn core::fmt::Write) -> core::fmt::Result) {
        let Some(Some(si)) = self.of_listener.get(listener).copied() else { return };
        let si = si as usize;
        if ACCESS_LOG_BUF - self.sinks[si].len < ACCESS_LINE_MAX {
            self.flush_one(si);
        }
        let s = &mut self.sinks[si];
        if ACCESS_LOG_BUF - s.len < ACCESS_LINE_MAX {
            self.dropped += 1;
            return;
        }
        let mut w = Cut { buf: &mut s.buf[s.len..s.len + ACCESS_LINE_MAX], len: 0, cut: false };
        let _ = line(&mut w);
        let mut n = w.len;
        if w.cut {
            s.buf[s.len + n - 3..s.len + n].copy_from_slice(b"...");
        }
        s.buf[s.len + n] = b'\n';
        n += 1;
        s.len += n;
        s.lines += 1;
    }

    /// Writes what each file takes now (once per event-loop turn).
    pub fn flush(&mut self) {
        for si in 0..self.sinks.len() {
            if self.sinks[si].len > 0 {
                self.flush_one(si);
            }
        }
    }

    fn flush_one(&mut self, si: usize) {
        let s = &mut self.sinks[si];
        let mut done = 0;
        let failed = loop {
            if done == s.len {
                break false;
            }
            let rest = &s.buf[done..s.len];
            let r = match &s.target {
                // whole lines, at most a pipe's atomic size: the generations of a hot restart
                // writing one FIFO never cut into each other's lines
                Target::File(fd) => nix::unistd::write(fd, whole_lines(rest)),
                Target::Shared(w) => w.write(whole_lines(rest)),
            };
            match r {
                Ok(0) | Err(Errno::EAGAIN) => break false,
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(_) => break true,
            }
        };
        let written_lines = s.buf[..done].iter().filter(|&&b| b == b'\n').count() as u64;
        self.written += written_lines;
        s.lines -= written_lines.min(s.lines);
        if failed {
            // a full disk, an I/O error, a FIFO without a reader: the rest is lost
            self.dropped += s.lines;
            s.len = 0;
            s.lines = 0;
            return;
        }
        s.buf.copy_within(done..s.len, 0);
        s.len -= done;
    }
}

/// The first at most `PIPE_BUF` (4096) bytes of `bytes`, ending at a line's end when there is
/// more (lines are shorter than that: `ACCESS_LINE_MAX`).
fn whole_lines(bytes: &[u8]) -> &[u8] {
    if bytes.len() <= 4096 {
        return bytes;
    }
    let page = &bytes[..4096];
    &page[..page.iter().rposition(|&b| b == b'\n').map_or(page.len(), |i| i + 1)]
}

/// Writes into a line's room; past it the text is cut (room for `...` kept).
struct Cut<'a> {
    buf: &'a mut [u8],
    len: usize,
    cut: bool,
}

impl core::fmt::Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // one byte is kept for the newline
        let room = self.buf.len() - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.cut = true;
            return Err(core::fmt::Error);
        }
        Ok(())
    }
}
