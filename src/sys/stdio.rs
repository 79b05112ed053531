//! Writing to stdout or stderr without ever waiting. Those descriptors are shared with other
//! processes (the generations of a hot restart, the init system's logger), so `O_NONBLOCK`
//! cannot be set on them: it would change them for everyone. Instead, per kind:
//!
//! - a pipe or FIFO is opened again through `/proc/self/fd/N`, which gives this process an open
//!   file description of its own, made non-blocking: a full pipe answers `EAGAIN`;
//! - a socket (journald's stream) is written with `MSG_DONTWAIT`;
//! - anything else (a terminal, a file; or a pipe when `/proc` is not mounted) is written only
//!   when `poll` says it takes a write now, a page at most.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{self as so, MsgFlags};
use nix::sys::stat::{Mode, SFlag};

/// A non-waiting writer for descriptor 1 or 2.
pub struct Shared {
    raw: RawFd,
    how: How,
}

enum How {
    /// Our own non-blocking open file description of the same pipe.
    Private(OwnedFd),
    Socket,
    Poll,
}

impl Shared {
    /// The writer for stdout (`stdout`: true) or stderr, chosen by what the descriptor is now.
    pub fn new(stdout: bool) -> Shared {
        let (out, err) = (std::io::stdout(), std::io::stderr());
        let std_fd = if stdout { out.as_fd() } else { err.as_fd() };
        let fd = std_fd.as_raw_fd();
        let kind = nix::sys::stat::fstat(std_fd).map(|st| st.st_mode & SFlag::S_IFMT.bits()).unwrap_or(0);
        let how = if kind == SFlag::S_IFIFO.bits() {
            let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            match nix::fcntl::open(format!("/proc/self/fd/{fd}").as_str(), flags, Mode::empty()) {
                Ok(own) => How::Private(own),
                Err(_) => How::Poll,
            }
        } else if kind == SFlag::S_IFSOCK.bits() {
            How::Socket
        } else {
            How::Poll
        };
        Shared { raw: fd, how }
    }

    /// Writes what the descriptor takes now (at most a page when it must poll); `EAGAIN` when
    /// it takes nothing.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, Errno> {
        match &self.how {
            How::Private(fd) => nix::unistd::write(fd, bytes),
            How::Socket => so::send(self.raw, bytes, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL),
            How::Poll => {
                let (out, err) = (std::io::stdout(), std::io::stderr());
                let fd = if self.raw == out.as_raw_fd() { out.as_fd() } else { err.as_fd() };
                if !super::net::writable_now(&fd) {
                    return Err(Errno::EAGAIN);
                }
                nix::unistd::write(fd, &bytes[..bytes.len().min(4096)])
            }
        }
    }

    /// Whether this writer has its own non-blocking description (for tests and logs).
    pub fn is_private(&self) -> bool {
        matches!(self.how, How::Private(_))
    }
}
