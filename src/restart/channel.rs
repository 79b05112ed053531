//! Handoff records over `AF_UNIX` `SOCK_SEQPACKET` sockets, with descriptors as `SCM_RIGHTS`
//! (see unix(7)). Every received descriptor is owned (`OwnedFd`, close-on-exec) the moment it
//! arrives; a truncated record or truncated control data is an error, never a partial read.

use core::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{self as so, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::sansio::codec::{self, CodecError, Msg, Text, MAX_FRAME};
use crate::sys;
use crate::sys::net;

#[derive(Debug)]
pub enum HandoffError {
    Io(&'static str, Errno),
    Codec(CodecError),
    /// The record or its descriptors did not fit (MSG_TRUNC / MSG_CTRUNC).
    Truncated,
    Timeout(&'static str),
    /// The peer closed the connection.
    Closed,
    FdCount {
        announced: usize,
        received: usize,
    },
    Unexpected(&'static str),
    Refused(Text),
    Busy,
    /// `reconfig.sock` belongs to another user: not a baton of ours (planted).
    ForeignSocket {
        uid: u32,
    },
    Unauthorised {
        pid: i32,
        uid: u32,
    },
    Verify {
        name: Text,
        what: &'static str,
    },
}

impl fmt::Display for HandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(what, e) => write!(f, "{what}: {}", e.desc()),
            Self::Codec(e) => write!(f, "bad handoff message: {e}"),
            Self::Truncated => f.write_str("a handoff message or its descriptors were truncated"),
            Self::Timeout(what) => write!(f, "timed out waiting for {what} (handoff_timeout)"),
            Self::Closed => f.write_str("the other process closed the handoff connection"),
            Self::FdCount { announced, received } => {
                write!(f, "manifest announced {announced} descriptors but {received} arrived")
            }
            Self::Unexpected(what) => write!(f, "unexpected message: {what}"),
            Self::Refused(r) => write!(f, "the running baton refused the hot restart: {r}"),
            Self::Busy => f.write_str("another hot restart is in progress; retry when it has finished"),
            Self::ForeignSocket { uid } => write!(
                f,
                "reconfig.sock in the runtime directory belongs to uid {uid}, not to baton's user: another user \
                 planted it, no baton of ours is there; remove the runtime directory and start again"
            ),
            Self::Unauthorised { pid, uid } => {
                write!(f, "peer pid {pid} runs as uid {uid}, not as this process's user or root")
            }
            Self::Verify { name, what } => {
                write!(f, "inherited socket \"{name}\" failed verification: {what}")
            }
        }
    }
}

impl From<CodecError> for HandoffError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

/// Same user as this process, or root.
pub fn authorised(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Checks the peer's credentials; the error names it.
pub fn check_peer(fd: &impl AsFd) -> Result<i32, HandoffError> {
    let (pid, uid) = net::peer_cred(fd).map_err(|e| HandoffError::Io("SO_PEERCRED", e))?;
    if authorised(uid) {
        Ok(pid)
    } else {
        Err(HandoffError::Unauthorised { pid, uid })
    }
}

/// Sends one record with `fds` attached, without waiting (the handshake's records are small
/// and one at a time; a full socket is an error).
pub fn send(fd: &impl AsFd, m: &Msg, fds: &[RawFd]) -> Result<(), HandoffError> {
    let mut buf = [0u8; MAX_FRAME];
    let n = codec::encode(m, &mut buf)?;
    send_record(fd, &buf[..n], fds, 0)
}

/// Sends one record, waiting up to `timeout_ms` for room (a connection transfer streams many).
pub fn send_wait(fd: &impl AsFd, m: &Msg, fds: &[RawFd], timeout_ms: u64) -> Result<(), HandoffError> {
    let mut buf = [0u8; MAX_FRAME];
    let n = codec::encode(m, &mut buf)?;
    send_record(fd, &buf[..n], fds, timeout_ms)
}

/// Sends a `Data` record with `bytes`, waiting up to `timeout_ms` for room.
pub fn send_data(fd: &impl AsFd, conn: u8, flow: u8, bytes: &[u8], timeout_ms: u64) -> Result<(), HandoffError> {
    let mut buf = [0u8; MAX_FRAME];
    let n = codec::encode_data(conn, flow, bytes, &mut buf)?;
    send_record(fd, &buf[..n], &[], timeout_ms)
}

fn send_record(fd: &impl AsFd, rec: &[u8], fds: &[RawFd], timeout_ms: u64) -> Result<(), HandoffError> {
    let iov = [IoSlice::new(rec)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    loop {
        match so::sendmsg::<()>(
            fd.as_fd().as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(sent) if sent == rec.len() => return Ok(()),
            Ok(_) => return Err(HandoffError::Truncated),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if timeout_ms > 0 => {
                let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as u64;
                if left == 0 || !net::wait_for(fd, PollFlags::POLLOUT, left).unwrap_or(false) {
                    return Err(HandoffError::Timeout("room on the handoff socket"));
                }
            }
            Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(HandoffError::Closed),
            Err(e) => return Err(HandoffError::Io("sending a handoff message", e)),
        }
    }
}

/// Receives one record and the descriptors attached to it. `Ok(None)`: nothing yet (EAGAIN).
/// `Err(Closed)`: the peer hung up.
pub fn recv(fd: &impl AsRawFd) -> Result<Option<(Msg, Vec<OwnedFd>)>, HandoffError> {
    let mut buf = [0u8; MAX_FRAME];
    Ok(recv_into(fd, &mut buf)?.map(|(m, fds, _)| (m, fds)))
}

/// As `recv`, keeping the record in `buf`; also returns its length (a `Data` record's bytes
/// are its last `len` bytes).
pub fn recv_into(
    fd: &impl AsRawFd,
    buf: &mut [u8; MAX_FRAME],
) -> Result<Option<(Msg, Vec<OwnedFd>, usize)>, HandoffError> {
    // Room for every descriptor the kernel can attach to one message (SCM_MAX_FD), not just the
    // MAX_FDS_PER_MSG baton sends: a peer that attaches more can then never truncate the
    // control data (MSG_CTRUNC), which would hide descriptors already installed in this process
    // from `cmsgs()` and leak them. All are owned below, then the record is refused.
    let mut space = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
    let (n, fds, flags) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match so::recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(r) => {
                // own every received descriptor at once, whatever happens next
                let mut fds = Vec::new();
                let Ok(cmsgs) = r.cmsgs() else {
                    // truncated control data: cannot happen with SCM_MAX_FD of room (see above)
                    return Err(HandoffError::Truncated);
                };
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        fds.extend(raw.into_iter().map(sys::adopt));
                    }
                }
                break (r.bytes, fds, r.flags);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::ECONNRESET) => return Err(HandoffError::Closed),
            Err(e) => return Err(HandoffError::Io("receiving a handoff message", e)),
        }
    };
    if flags.intersects(MsgFlags::MSG_CTRUNC | MsgFlags::MSG_TRUNC) {
        return Err(HandoffError::Truncated);
    }
    if n == 0 {
        return Err(HandoffError::Closed);
    }
    let m = codec::decode(&buf[..n])?;
    let announced = match &m {
        Msg::Manifest { entries, .. } => entries.len(),
        Msg::Conns { conns, splice, .. } => conns.len() * crate::sansio::portable::fds_per_conn(*splice),
        _ => 0,
    };
    if announced != fds.len() {
        return Err(HandoffError::FdCount { announced, received: fds.len() });
    }
    Ok(Some((m, fds, n)))
}

pub use crate::sansio::limits::SCM_MAX_FD;

/// Waits (bounded) for one record.
pub fn recv_wait(fd: &OwnedFd, timeout_ms: u64, what: &'static str) -> Result<(Msg, Vec<OwnedFd>), HandoffError> {
    let mut buf = [0u8; MAX_FRAME];
    let (m, fds, _) = recv_wait_into(fd, &mut buf, timeout_ms, what)?;
    Ok((m, fds))
}

/// Waits (bounded) for one record, kept in `buf` (see `recv_into`).
pub fn recv_wait_into(
    fd: &OwnedFd,
    buf: &mut [u8; MAX_FRAME],
    timeout_ms: u64,
    what: &'static str,
) -> Result<(Msg, Vec<OwnedFd>, usize), HandoffError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as u64;
        if !net::wait_readable(fd, left).map_err(|e| HandoffError::Io("waiting for the other process", e))? {
            return Err(HandoffError::Timeout(what));
        }
        if let Some(r) = recv_into(fd, buf)? {
            return Ok(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sansio::codec::{Entry, FdKind, ManifestHead, MAX_FDS_PER_MSG};
    use crate::sys::net::verify_tcp_listener;
    use core::net::SocketAddr;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};

    fn pair() -> (OwnedFd, OwnedFd) {
        so::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap()
    }

    #[test]
    fn descriptors_arrive_with_their_record_in_batches() {
        let (a, b) = pair();
        // 130 listeners: three batches of at most 64
        let socks: Vec<_> =
            (0..130).map(|_| crate::sys::net::listen(&"127.0.0.1:0".parse().unwrap(), 4).unwrap()).collect();
        let mut got = Vec::new();
        for (bi, chunk) in socks.chunks(MAX_FDS_PER_MSG).enumerate() {
            let entries = chunk
                .iter()
                .map(|s| Entry { kind: FdKind::Listener, name: Text::new(), addr: crate::sys::net::local(s), pid: 0 })
                .collect();
            let head =
                ManifestHead { baton_version: Text::new(), totals: Default::default(), batch: bi as u16, last: false };
            let raw: Vec<RawFd> = chunk.iter().map(|s| s.as_raw_fd()).collect();
            send(&a, &Msg::Manifest { head, entries }, &raw).unwrap();
            let (m, fds) = recv_wait(&b, 1000, "batch").unwrap();
            let Msg::Manifest { entries, .. } = m else { panic!() };
            for (e, fd) in entries.iter().zip(fds) {
                crate::sys::net::verify_listener(&fd, e.addr.as_ref().unwrap()).unwrap();
                got.push(fd);
            }
        }
        assert_eq!(got.len(), 130);
    }

    #[test]
    fn fd_count_mismatch_and_garbage_are_errors() {
        let (a, b) = pair();
        let l = crate::sys::net::listen(&"127.0.0.1:0".parse().unwrap(), 4).unwrap();
        // a Go record carrying a descriptor it does not announce
        send(&a, &Msg::Go { pid: 1 }, &[l.as_raw_fd()]).unwrap();
        assert!(matches!(recv_wait(&b, 1000, "x"), Err(HandoffError::FdCount { announced: 0, received: 1 })));
        so::send(a.as_raw_fd(), b"GET / HTTP/1.1\r\n\r\n", MsgFlags::empty()).unwrap();
        assert!(matches!(recv_wait(&b, 1000, "x"), Err(HandoffError::Codec(CodecError::BadMagic))));
        drop(a);
        assert!(matches!(recv_wait(&b, 1000, "x"), Err(HandoffError::Closed)));
    }

    /// A record with more descriptors than baton ever sends, up to the kernel's maximum: every
    /// one is owned and closed, none leaks, and the record is refused.
    #[test]
    fn surplus_descriptors_are_owned_and_closed_then_refused() {
        let (a, b) = pair();
        for n in [MAX_FDS_PER_MSG + 1, 100, SCM_MAX_FD] {
            // n copies of a pipe's read end: once every copy is closed, writing gets EPIPE
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
            send(&a, &Msg::Go { pid: 1 }, &vec![r.as_raw_fd(); n]).unwrap();
            drop(r);
            let got = recv_wait(&b, 1000, "x");
            assert!(
                matches!(got, Err(HandoffError::FdCount { announced: 0, received }) if received == n),
                "{n}: {got:?}"
            );
            assert_eq!(nix::unistd::write(&w, b"x"), Err(Errno::EPIPE), "{n}: a received descriptor leaked");
        }
    }

    #[test]
    fn verification_rejects_the_wrong_socket() {
        let l = crate::sys::net::listen(&"127.0.0.1:0".parse().unwrap(), 4).unwrap();
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(verify_tcp_listener(&l, &other), Err("bound to a different address than announced"));
        let (a, _b) = pair();
        assert_eq!(verify_tcp_listener(&a, &other), Err("not a stream socket"));
    }
}
