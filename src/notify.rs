//! systemd's notify protocol (see sd_notify(3)), spoken directly: one datagram per state change
//! to the unix socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//! Without `NOTIFY_SOCKET` every call is a no-op. Failures are logged and otherwise ignored: the
//! proxy must not stop serving because its supervisor went away.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self as so, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};

pub struct Notifier {
    sock: OwnedFd,
    addr: UnixAddr,
}

impl Notifier {
    /// The notifier for `NOTIFY_SOCKET`, if the variable is set and usable.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var("NOTIFY_SOCKET").ok()?;
        let addr = match path.strip_prefix('@') {
            Some(name) => UnixAddr::new_abstract(name.as_bytes()),
            None => UnixAddr::new(path.as_str()),
        };
        let addr = addr.map_err(|e| log::warn!("NOTIFY_SOCKET {path}: {}", e.desc())).ok()?;
        let sock = so::socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
            .map_err(|e| log::warn!("NOTIFY_SOCKET: socket: {}", e.desc()))
            .ok()?;
        Some(Notifier { sock, addr })
    }

    fn send(&self, msg: &str) {
        if let Err(e) = so::sendto(self.sock.as_raw_fd(), msg.as_bytes(), &self.addr, MsgFlags::MSG_NOSIGNAL) {
            log::warn!("sd_notify: {}", e.desc());
        }
    }
}

/// Sends `msg` if baton runs under a notify-aware supervisor.
pub fn notify(msg: &str) {
    if let Some(n) = Notifier::from_env() {
        n.send(msg);
    }
}

/// Serving: READY=1, and this process as the main PID (it may have just taken over).
pub fn ready(generation: u64) {
    notify(&format!("READY=1\nMAINPID={}\nSTATUS=serving, generation {generation}", std::process::id()));
}

/// A hot restart in place began (SIGHUP); the new image sends READY=1 when it has taken over.
pub fn reloading() {
    notify("RELOADING=1\nSTATUS=hot restart in progress");
}

pub fn stopping() {
    notify("STOPPING=1");
}
