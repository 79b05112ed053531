//! Socket helpers over nix: listening, non-blocking accept and connect, and the `Transport`
//! that lets the connection state machine do I/O on real sockets.

use core::net::SocketAddr;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self as so, sockopt, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrStorage, UnixAddr,
};
use nix::sys::stat::{umask, Mode};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::sansio::addr::Addr;
use crate::sansio::conn::{Io, Side, Transport};

fn family(a: &SocketAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A non-blocking unix stream socket (unix listeners, unix hosts, the stale-socket probe).
fn unix_stream() -> Result<OwnedFd, Errno> {
    so::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
}

fn stream_socket(a: &SocketAddr) -> Result<OwnedFd, Errno> {
    so::socket(family(a), SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
}

/// A non-blocking listening socket at `addr`: TCP, or a unix stream socket.
pub fn listen_at(addr: &Addr, backlog: u32) -> Result<OwnedFd, Errno> {
    match addr {
        Addr::Ip(a) => listen(a, backlog),
        Addr::Unix(p) => listen_unix(p, backlog),
    }
}

/// A non-blocking listening unix stream socket at `path`. A socket file already there is taken
/// over only when it is stale (nothing accepts on it: `connect` is refused), as MOSN removes it
/// before binding; a live one, or anything that is not a socket (a link included), is
/// `EADDRINUSE`. The file's mode follows the umask, as in MOSN.
pub fn listen_unix(path: &str, backlog: u32) -> Result<OwnedFd, Errno> {
    let fd = unix_stream()?;
    let addr = UnixAddr::new(path)?;
    match so::bind(fd.as_raw_fd(), &addr) {
        Err(Errno::EADDRINUSE) if stale_unix_socket(path) => {
            nix::unistd::unlink(path)?;
            so::bind(fd.as_raw_fd(), &addr)?;
        }
        r => r?,
    }
    so::listen(&fd, Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN))?;
    Ok(fd)
}

/// Whether `path` is a socket file (not followed if a link) that nothing accepts on.
fn stale_unix_socket(path: &str) -> bool {
    let is_socket = nix::sys::stat::lstat(path).is_ok_and(|m| m.st_mode & nix::libc::S_IFMT == nix::libc::S_IFSOCK);
    let probe = || -> Result<(), Errno> {
        let fd = unix_stream()?;
        so::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)
    };
    is_socket && probe() == Err(Errno::ECONNREFUSED)
}

/// A non-blocking listening TCP socket bound to `addr`. A wildcard (`0.0.0.0:P` or `[::]:P`)
/// listens on both families, as Go's `net.Listen("tcp", ...)` does in MOSN: one socket on
/// `[::]:P` with `IPV6_V6ONLY` off (IPv4 clients arrive v4-mapped; `any_addr` turns them back
/// into IPv4), or `0.0.0.0:P` when the kernel has no IPv6 (`ipv6.disable=1`, common on small
/// gateways). A specific IPv6 address is `IPV6_V6ONLY`.
pub fn listen(addr: &SocketAddr, backlog: u32) -> Result<OwnedFd, Errno> {
    if addr.ip().is_unspecified() {
        let v6 = SocketAddr::from((core::net::Ipv6Addr::UNSPECIFIED, addr.port()));
        match listen_one(&v6, false, backlog) {
            Err(Errno::EAFNOSUPPORT | Errno::EADDRNOTAVAIL) => {}
            done => return done,
        }
        return listen_one(&SocketAddr::from(([0, 0, 0, 0], addr.port())), true, backlog);
    }
    listen_one(addr, true, backlog)
}

fn listen_one(addr: &SocketAddr, v6_only: bool, backlog: u32) -> Result<OwnedFd, Errno> {
    let fd = stream_socket(addr)?;
    so::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    // accepted sockets inherit TCP_NODELAY from the listener on Linux: one call, not one per client
    let _ = so::setsockopt(&fd, sockopt::TcpNoDelay, &true);
    if addr.is_ipv6() {
        so::setsockopt(&fd, sockopt::Ipv6V6Only, &v6_only)?;
    }
    so::bind(fd.as_raw_fd(), &SockaddrStorage::from(*addr))?;
    so::listen(&fd, Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN))?;
    Ok(fd)
}

/// For a wildcard listening socket: `Some("IPv4 only")` or `Some("IPv6 only")` when it serves one
/// family while this kernel has both (a socket from a build before wildcards took both, or one
/// a supervisor made); `None` when it serves both, when the kernel has no IPv6, and for any
/// socket bound to a specific address.
pub fn wildcard_single_family(fd: &OwnedFd) -> Option<&'static str> {
    match local_addr(fd).filter(|a| a.ip().is_unspecified())? {
        SocketAddr::V4(_) => {
            stream_socket(&SocketAddr::from((core::net::Ipv6Addr::UNSPECIFIED, 0))).is_ok().then_some("IPv4 only")
        }
        SocketAddr::V6(_) => so::getsockopt(fd, sockopt::Ipv6V6Only).ok().filter(|&only| only).map(|_| "IPv6 only"),
    }
}

/// Accepts one pending connection, `Ok(None)` when the queue is empty.
pub fn accept(listener: &impl AsFd) -> Result<Option<OwnedFd>, Errno> {
    loop {
        match so::accept4(listener, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::EAGAIN) => return Ok(None),
            // the client gave up while queued, or a signal: try the next one
            Err(Errno::ECONNABORTED | Errno::EINTR | Errno::EPROTO) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Starts a non-blocking connect to `addr`; completion is reported by writability and
/// `SO_ERROR`. A unix socket connects at once or fails (`EAGAIN`: its backlog is full).
pub fn connect_to(addr: &Addr) -> Result<OwnedFd, Errno> {
    match addr {
        Addr::Ip(a) => connect(a),
        Addr::Unix(p) => {
            let fd = unix_stream()?;
            so::connect(fd.as_raw_fd(), &UnixAddr::new(p.as_str())?)?;
            Ok(fd)
        }
    }
}

/// Starts a non-blocking connect; completion is reported by writability and `SO_ERROR`.
pub fn connect(addr: &SocketAddr) -> Result<OwnedFd, Errno> {
    let fd = stream_socket(addr)?;
    let _ = so::setsockopt(&fd, sockopt::TcpNoDelay, &true);
    match so::connect(fd.as_raw_fd(), &SockaddrStorage::from(*addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(fd),
        Err(e) => Err(e),
    }
}

/// The pending error of a socket (`SO_ERROR`), `None` when the connect succeeded.
pub fn take_error(fd: &impl AsFd) -> Option<Errno> {
    match so::getsockopt(fd, sockopt::SocketError) {
        Ok(0) => None,
        Ok(e) => Some(Errno::from_raw(e)),
        Err(e) => Some(e),
    }
}

/// Closes a socket with an RST instead of a FIN (SO_LINGER with a zero timeout, see socket(7)).
pub fn reset(fd: OwnedFd) {
    let _ = so::setsockopt(&fd, sockopt::Linger, &nix::libc::linger { l_onoff: 1, l_linger: 0 });
    drop(fd);
}

fn any_addr(ss: &SockaddrStorage) -> Option<Addr> {
    if let Some(v4) = ss.as_sockaddr_in() {
        return Some(Addr::Ip(SocketAddr::from((v4.ip(), v4.port()))));
    }
    if let Some(v6) = ss.as_sockaddr_in6() {
        // an IPv4 client of a wildcard listener (dual-stack, see `listen`) is shown as IPv4
        let ip = v6.ip().to_ipv4_mapped().map_or(core::net::IpAddr::V6(v6.ip()), core::net::IpAddr::V4);
        return Some(Addr::Ip(SocketAddr::new(ip, v6.port())));
    }
    let path = ss.as_unix_addr()?.path()?;
    Addr::unix(path.to_str()?)
}

/// The local address of an IP or unix socket (`None` for an unnamed unix socket).
pub fn local(fd: &impl AsRawFd) -> Option<Addr> {
    any_addr(&so::getsockname(fd.as_raw_fd()).ok()?)
}

/// The peer address of a connected IP or unix socket (`None` for an unnamed unix peer).
pub fn peer(fd: &impl AsRawFd) -> Option<Addr> {
    any_addr(&so::getpeername(fd.as_raw_fd()).ok()?)
}

/// Checks with the kernel that `fd` is a listening stream socket at exactly `addr`.
pub fn verify_listener(fd: &OwnedFd, addr: &Addr) -> Result<(), &'static str> {
    match addr {
        Addr::Ip(a) => verify_tcp_listener(fd, a),
        Addr::Unix(_) => {
            listening_stream(fd)?;
            match local(fd) {
                Some(a) if a == *addr => Ok(()),
                _ => Err("bound to a different path than announced"),
            }
        }
    }
}

/// Checks with the kernel that `fd` is a connected stream socket (IP or unix), not a
/// listener; returns its local and peer addresses (`None`: an unnamed unix socket).
pub fn verify_stream(fd: &OwnedFd) -> Result<(Option<Addr>, Option<Addr>), &'static str> {
    if so::getsockopt(fd, sockopt::SockType).map_err(|_| "not a socket")? != SockType::Stream {
        return Err("not a stream socket");
    }
    if so::getsockopt(fd, sockopt::AcceptConn).map_err(|_| "SO_ACCEPTCONN failed")? {
        return Err("a listening socket, not a connection");
    }
    so::getpeername::<SockaddrStorage>(fd.as_raw_fd()).map_err(|_| "not connected")?;
    Ok((local(fd), peer(fd)))
}

/// The local address of a socket, if it is an IP socket.
pub fn local_addr(fd: &impl AsRawFd) -> Option<SocketAddr> {
    local(fd)?.ip()
}

/// The peer address of a connected IP socket.
pub fn peer_addr(fd: &impl AsRawFd) -> Option<SocketAddr> {
    peer(fd)?.ip()
}

/// Checks that `fd` is a pipe (splice mode's buffers travel as pipes).
pub fn verify_pipe(fd: &OwnedFd) -> Result<(), &'static str> {
    let md = nix::sys::stat::fstat(fd).map_err(|_| "fstat failed")?;
    if md.st_mode & nix::libc::S_IFMT != nix::libc::S_IFIFO {
        return Err("not a pipe");
    }
    Ok(())
}

/// Socket I/O for one proxied connection: `fds[Side as usize]`.
pub struct FdTransport {
    pub fds: [RawFd; 2],
}

/// Maps a read-like call's result for the state machine; `None`: interrupted, call again.
fn read_io(r: Result<usize, Errno>) -> Option<Io> {
    match r {
        Ok(0) => Some(Io::Eof),
        other => write_io(other),
    }
}

/// Maps a write-like call's result for the state machine; `None`: interrupted, call again.
fn write_io(r: Result<usize, Errno>) -> Option<Io> {
    match r {
        Ok(n) => Some(Io::Done(n)),
        Err(Errno::EAGAIN) => Some(Io::WouldBlock),
        Err(Errno::EINTR) => None,
        Err(_) => Some(Io::Reset),
    }
}

/// Repeats a call interrupted by a signal.
fn retry(mut call: impl FnMut() -> Option<Io>) -> Io {
    loop {
        if let Some(io) = call() {
            return io;
        }
    }
}

impl Transport for FdTransport {
    fn recv(&mut self, from: Side, buf: &mut [u8]) -> Io {
        retry(|| read_io(so::recv(self.fds[from as usize], buf, MsgFlags::empty())))
    }

    fn send(&mut self, to: Side, buf: &[u8]) -> Io {
        retry(|| write_io(so::send(self.fds[to as usize], buf, MsgFlags::MSG_NOSIGNAL)))
    }

    fn shutdown_write(&mut self, to: Side) {
        let _ = so::shutdown(self.fds[to as usize], so::Shutdown::Write);
    }
}

/// One pipe per direction for splice mode: `(read end, write end)`.
pub type Pipe = (OwnedFd, OwnedFd);

pub use crate::sansio::limits::PIPE_DEFAULT_BYTES;

/// A pipe, set to `size` bytes with `F_SETPIPE_SZ` if given and the system allows it; if that
/// is refused (`/proc/sys/fs/pipe-max-size`, the per-user pipe page limit) it keeps the kernel's
/// size, which is slower for bulk but correct (a short splice is never taken for a drained
/// socket).
pub fn pipe(size: Option<usize>) -> Result<Pipe, Errno> {
    let p = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
    if let Some(bytes) = size {
        let _ = nix::fcntl::fcntl(&p.1, nix::fcntl::FcntlArg::F_SETPIPE_SZ(bytes as i32));
    }
    Ok(p)
}

/// Zero-copy I/O for one proxied connection (see splice(2)): bytes read from side `s` go into
/// `pipes[s]` and are written from it to the other side. The state machine's buffer lengths are
/// used as byte counts; the bytes themselves stay in the kernel. A flow only reads when its
/// pipe is empty, so EAGAIN on the read side always means "the socket has no data"; but a short
/// splice may only mean the pipe is full (its bytes, or its slots: one per socket-buffer fragment),
/// so the flow reads on to EAGAIN.
pub struct SpliceTransport<'a> {
    pub socks: [&'a OwnedFd; 2],
    pub pipes: &'a [Pipe; 2],
}

const SPLICE_FLAGS: nix::fcntl::SpliceFFlags =
    nix::fcntl::SpliceFFlags::SPLICE_F_MOVE.union(nix::fcntl::SpliceFFlags::SPLICE_F_NONBLOCK);

impl Transport for SpliceTransport<'_> {
    fn recv(&mut self, from: Side, buf: &mut [u8]) -> Io {
        let (sock, pipe_w) = (self.socks[from as usize], &self.pipes[from as usize].1);
        retry(|| read_io(nix::fcntl::splice(sock, None, pipe_w, None, buf.len(), SPLICE_FLAGS)))
    }

    fn send(&mut self, to: Side, buf: &[u8]) -> Io {
        let (pipe_r, sock) = (&self.pipes[to.other() as usize].0, self.socks[to as usize]);
        retry(|| write_io(nix::fcntl::splice(pipe_r, None, sock, None, buf.len(), SPLICE_FLAGS)))
    }

    fn shutdown_write(&mut self, to: Side) {
        let _ = so::shutdown(self.socks[to as usize].as_raw_fd(), so::Shutdown::Write);
    }

    fn short_read_drains(&self) -> bool {
        false
    }
}

// ----- unix seqpacket sockets (the hot-restart channels) and waiting -----

fn seqpacket() -> Result<OwnedFd, Errno> {
    so::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
}

/// Binds and listens on a unix seqpacket socket at `path`, readable and writable by the owner only.
pub fn unix_listen(path: &str) -> Result<OwnedFd, Errno> {
    let fd = seqpacket()?;
    let addr = UnixAddr::new(path)?;
    // the socket file's mode comes from the umask at bind time: 0600
    let old = umask(Mode::from_bits_truncate(0o177));
    let r = so::bind(fd.as_raw_fd(), &addr);
    umask(old);
    r?;
    so::listen(&fd, Backlog::new(8).unwrap_or(Backlog::MAXCONN))?;
    Ok(fd)
}

/// A non-blocking unix datagram socket connected to `path` (a syslog socket such as `/dev/log`).
pub fn unix_dgram_connect(path: &str) -> Result<OwnedFd, Errno> {
    let fd =
        so::socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
    so::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(fd)
}

/// Sends one datagram without waiting: `EAGAIN` when the receiver's queue is full.
pub fn send_datagram(fd: &impl AsRawFd, buf: &[u8]) -> Result<(), Errno> {
    so::send(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL).map(|_| ())
}

/// Connects to the unix socket at `path` (completes at once for unix sockets, or fails).
pub fn unix_connect(path: &str) -> Result<OwnedFd, Errno> {
    let fd = seqpacket()?;
    so::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(fd)
}

pub fn unix_accept(l: &impl AsFd) -> Result<Option<OwnedFd>, Errno> {
    match so::accept4(l, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sends what `fd` takes now, without waiting: the count sent.
pub fn send_nowait(fd: &impl AsRawFd, buf: &[u8]) -> Result<usize, Errno> {
    so::send(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL)
}

/// Asks for a send buffer of at least `bytes` (the kernel caps it at `net.core.wmem_max`).
pub fn set_send_buffer(fd: &impl AsFd, bytes: usize) -> Result<(), Errno> {
    so::setsockopt(fd, sockopt::SndBuf, &bytes)
}

/// The peer's (pid, uid) as the kernel recorded them at connect (`SO_PEERCRED`).
pub fn peer_cred(fd: &impl AsFd) -> Result<(i32, u32), Errno> {
    let c = so::getsockopt(fd, sockopt::PeerCredentials)?;
    Ok((c.pid(), c.uid()))
}

/// Waits up to `timeout_ms` for `fd` to be readable; `false` on timeout.
pub fn wait_readable(fd: &impl AsFd, timeout_ms: u64) -> Result<bool, Errno> {
    wait_for(fd, PollFlags::POLLIN, timeout_ms)
}

/// Whether a write of up to a pipe's atomic size (`PIPE_BUF`, 4096 bytes) to `fd` would go
/// through now without waiting (also `true` when the reader is gone: the write then fails).
pub fn writable_now(fd: &impl AsFd) -> bool {
    wait_for(fd, PollFlags::POLLOUT, 0).unwrap_or(true)
}

pub fn wait_for(fd: &impl AsFd, what: PollFlags, timeout_ms: u64) -> Result<bool, Errno> {
    let mut p = [PollFd::new(fd.as_fd(), what)];
    let t = PollTimeout::try_from(timeout_ms.min(i32::MAX as u64) as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut p, t) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

// ----- checking sockets received from elsewhere -----

/// Checks with the kernel that `fd` is a listening TCP socket bound to `addr` (a wildcard of
/// either family for a wildcard: `addr::same_listen_addr`).
pub fn verify_tcp_listener(fd: &OwnedFd, addr: &SocketAddr) -> Result<(), &'static str> {
    listening_stream(fd)?;
    match local_addr(fd) {
        Some(a) if crate::sansio::addr::same_listen_addr(&a, addr) => Ok(()),
        Some(_) => Err("bound to a different address than announced"),
        None => Err("not an IP socket"),
    }
}

/// Checks with the kernel that `fd` is a stream socket that listens.
fn listening_stream(fd: &OwnedFd) -> Result<(), &'static str> {
    if so::getsockopt(fd, sockopt::SockType).map_err(|_| "not a socket")? != SockType::Stream {
        return Err("not a stream socket");
    }
    if !so::getsockopt(fd, sockopt::AcceptConn).map_err(|_| "SO_ACCEPTCONN failed")? {
        return Err("not listening");
    }
    Ok(())
}

/// Checks that `fd` is a listening unix seqpacket socket (the reconfig listener).
pub fn verify_unix_listener(fd: &OwnedFd) -> Result<(), &'static str> {
    if so::getsockopt(fd, sockopt::SockType).map_err(|_| "not a socket")? != SockType::SeqPacket {
        return Err("not a seqpacket socket");
    }
    if !so::getsockopt(fd, sockopt::AcceptConn).map_err(|_| "SO_ACCEPTCONN failed")? {
        return Err("not listening");
    }
    Ok(())
}
