//! The one module allowed to use `unsafe`: adopting raw descriptors, `fork`, and the pidfd
//! system calls nix does not wrap. Each block states why it is sound.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::libc;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor the kernel just installed in this process (from
/// `SCM_RIGHTS`, see unix(7)). Must be called once per received descriptor, at once.
pub fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel created `fd` in this process for this message; nothing else owns it,
    // and the caller adopts each received descriptor exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `fork(2)`. Returns the child's PID in the parent and `None` in the child.
/// Only called from the single-threaded event loop, so the child inherits no held locks.
pub fn fork() -> Result<Option<nix::unistd::Pid>, Errno> {
    // SAFETY: baton is single-threaded when this is called (one event loop thread), so the
    // child may run any code, including allocation, after fork.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Some(child)),
        nix::unistd::ForkResult::Child => Ok(None),
    }
}

/// `pidfd_open(2)`: a descriptor that names one process for its lifetime, immune to PID reuse.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain system call with integer arguments; on success it returns a new descriptor
    // that this process owns.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(adopt(r as RawFd))
}

/// `pidfd_send_signal(2)`: signals exactly the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: RawFd, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain system call; a null siginfo is allowed and means "as kill(2) would".
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A zero-filled buffer of `len` bytes, or `None` when the memory cannot be had. The pages
/// come from `calloc`/`mmap` and stay untouched (not resident) until a connection uses them.
pub fn zeroed_buffer(len: usize) -> Option<Box<[u8]>> {
    if len == 0 {
        return Some(Box::default());
    }
    let layout = std::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: `layout` has a non-zero size. On success the allocation is `len` initialised
    // (zeroed) bytes with the global allocator's layout for `[u8; len]`, which is exactly what
    // `Box<[u8]>` frees on drop.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout);
        if p.is_null() {
            return None;
        }
        Some(Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)))
    }
}

/// Ignores SIGPIPE: a closed stderr or peer must surface as EPIPE, never kill the proxy.
pub fn ignore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code, so no async-signal-safety concern arises.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// Takes `flock(LOCK_EX | LOCK_NB)` on `fd`; `Ok(false)` when another process holds it.
///
/// The lock belongs to the open file description, so it travels with the descriptor through
/// `SCM_RIGHTS` and is released by the kernel when the last holder closes or dies. nix's
/// `Flock` guard is not used because it unlocks on drop, which would release the lock for the
/// successor that shares the description too.
pub fn try_lock(fd: RawFd) -> Result<bool, Errno> {
    #[allow(deprecated)]
    match nix::fcntl::flock(fd, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(()) => Ok(true),
        Err(Errno::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes ownership of descriptor `fd` that this process inherited at start-up from its
/// supervisor (systemd socket activation, see sd_listen_fds(3)), and marks it close-on-exec.
/// Must be called once per inherited descriptor, before anything else could own it.
pub fn adopt_inherited(fd: RawFd) -> Option<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    // SAFETY: the supervisor passed `fd` to this process for this purpose (LISTEN_FDS names the
    // range and LISTEN_PID this process); nothing in baton opened or owns it before this call,
    // and the caller adopts each number once, then removes the variables. It is borrowed only
    // to check that it is open, and owned only if it is (dropping a closed one would be wrong).
    let owned = unsafe {
        fcntl(std::os::fd::BorrowedFd::borrow_raw(fd), FcntlArg::F_GETFD).ok()?;
        OwnedFd::from_raw_fd(fd)
    };
    let _ = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    Some(owned)
}

/// Makes a descriptor non-blocking. Supervisors pass blocking sockets by default, and an
/// edge-triggered accept loop on a blocking listener would hang at the first empty queue.
pub fn set_nonblocking(fd: &OwnedFd) -> Result<(), Errno> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(|_| ())
}
