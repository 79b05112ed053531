//! The runtime directory: where `reconfig.sock`, `listen.sock` and `baton.lock` live.
//!
//! Rules (docs/hot-restart.md, docs/reliability.md "Security model"): the directory belongs to
//! baton's effective user (root included) and only that user can write it; it is created 0700
//! when missing, and refused, naming its owner and mode, otherwise. Its ancestors must not be
//! replaceable by another user. Files in it are opened relative to the directory's descriptor
//! with `O_NOFOLLOW`, so a planted symbolic link never redirects a write. The lock (`flock` on
//! `baton.lock`) marks the one owner of the directory and is released by the kernel when its
//! last holder dies; a path is unlinked only by the process that created it, or by the lock
//! holder when the file is provably stale (its owner is dead).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, Mode, SFlag};

use crate::net;
use crate::sys;

pub const RECONFIG: &str = "reconfig.sock";
pub const LISTEN: &str = "listen.sock";
pub const LOCK: &str = "baton.lock";

#[derive(Debug)]
pub enum DirError {
    Create(String, std::io::Error),
    /// The directory (or an ancestor) could be changed by another user.
    Unsafe {
        path: String,
        uid: u32,
        mode: u32,
        why: &'static str,
    },
    /// An ancestor of the directory that another user could rename (swapping the directory).
    UnsafeAncestor {
        dir: String,
        ancestor: String,
        uid: u32,
        mode: u32,
    },
    Symlink(String),
    Locked {
        path: String,
        holder: Option<u32>,
    },
    Io(&'static str, String, Errno),
}

impl core::fmt::Display for DirError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let me = nix::unistd::geteuid().as_raw();
        match self {
            Self::Create(p, e) => write!(f, "runtime directory {p}: {e}; create it or set baton.runtime_dir / --runtime-dir"),
            Self::Unsafe { path, uid, mode, why } => write!(
                f,
                "runtime directory {path}: {why} (owner uid {uid}, mode {mode:04o}); baton (uid {me}) only uses a directory \
                 that it owns and that no other user can write: run `chown {me} {path} && chmod 0700 {path}`, \
                 or point baton.runtime_dir / --runtime-dir at a fresh path (it is created 0700)"
            ),
            Self::UnsafeAncestor { dir, ancestor, uid, mode } => write!(
                f,
                "runtime directory {dir}: its ancestor {ancestor} can be changed by another user (owner uid {uid}, \
                 mode {mode:04o}), who could swap the directory; choose a runtime directory whose ancestors belong \
                 to root or uid {me} (or are sticky, like /tmp), e.g. /run/baton"
            ),
            Self::Symlink(p) => write!(
                f,
                "{p} is a symbolic link; baton never follows links in its runtime directory: remove it, \
                 or give the real path"
            ),
            Self::Locked { path, holder } => match holder {
                Some(pid) => write!(f, "runtime directory {path} is owned by another baton (pid {pid}) that did not answer on {RECONFIG}; stop it or use another --runtime-dir"),
                None => write!(f, "runtime directory {path} is locked by another baton; stop it or use another --runtime-dir"),
            },
            Self::Io(what, p, e) => write!(f, "{what} {p}: {}", e.desc()),
        }
    }
}

/// The runtime directory when neither the config nor the command line names one: root's is
/// `/run/baton`; another user's is `$XDG_RUNTIME_DIR/baton` (a 0700 directory of that user's),
/// else `/tmp/baton-UID`. Another user can squat on the latter but never subvert it: `prepare`
/// refuses a directory this user does not own.
pub fn default_dir() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        return crate::config::Settings::DEFAULT_RUNTIME_DIR.into();
    }
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(x) if x.starts_with('/') && x.len() + 6 <= crate::config::PATH_LEN => format!("{x}/baton"),
        _ => format!("/tmp/baton-{uid}"),
    }
}

pub fn path(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// Creates the directory (0700) if needed and checks that only this user can change it (see
/// the module rules); tightens a mode that lets others read or enter it. Returns the
/// directory's descriptor, which every file operation in it goes through.
pub fn prepare(dir: &str) -> Result<OwnedFd, DirError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| DirError::Create(dir.into(), e))?;
    check_ancestors(dir)?;
    let fd = open_dir(dir)?;
    let md = fstat(&fd).map_err(|e| DirError::Io("cannot inspect", dir.into(), e))?;
    let me = nix::unistd::geteuid().as_raw();
    let (uid, mode) = (md.st_uid, md.st_mode & 0o7777);
    if uid != me {
        return Err(DirError::Unsafe { path: dir.into(), uid, mode, why: "it belongs to another user" });
    }
    if mode & 0o022 != 0 {
        return Err(DirError::Unsafe { path: dir.into(), uid, mode, why: "other users can write it" });
    }
    if mode & 0o077 != 0 {
        fchmod(&fd, Mode::from_bits_truncate(0o700)).map_err(|e| DirError::Io("cannot chmod", dir.into(), e))?;
    }
    Ok(fd)
}

/// Opens an existing directory without following a link in its last component.
fn open_dir(dir: &str) -> Result<OwnedFd, DirError> {
    nix::fcntl::open(dir, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => DirError::Symlink(dir.into()),
            e => DirError::Io("cannot open", dir.into(), e),
        })
}

/// Every ancestor must belong to root or to this user, or be sticky (like /tmp), so nobody
/// else can rename the runtime directory away and put their own in its place.
fn check_ancestors(dir: &str) -> Result<(), DirError> {
    let me = nix::unistd::geteuid().as_raw();
    let mut p = std::path::Path::new(dir).parent();
    while let Some(a) = p {
        if let Ok(md) = nix::sys::stat::stat(a) {
            let (uid, mode) = (md.st_uid, md.st_mode & 0o7777);
            let others_write = mode & 0o022 != 0 && mode & 0o1000 == 0;
            if (uid != 0 && uid != me) || others_write {
                let ancestor = a.to_string_lossy().into_owned();
                return Err(DirError::UnsafeAncestor { dir: dir.into(), ancestor, uid, mode });
            }
        }
        p = a.parent();
    }
    Ok(())
}

/// Opens (creating 0600) a regular file in the directory, never through a symbolic link, and
/// checks it belongs to this user.
fn open_file(dir: &str, dfd: &OwnedFd, name: &str) -> Result<OwnedFd, DirError> {
    let p = path(dir, name);
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = openat(dfd, name, flags, Mode::from_bits_truncate(0o600)).map_err(|e| match e {
        Errno::ELOOP => DirError::Symlink(p.clone()),
        e => DirError::Io("cannot open", p.clone(), e),
    })?;
    let md = fstat(&fd).map_err(|e| DirError::Io("cannot inspect", p.clone(), e))?;
    if SFlag::from_bits_truncate(md.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(DirError::Io("not a regular file:", p, Errno::EINVAL));
    }
    if md.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(DirError::Unsafe {
            path: p,
            uid: md.st_uid,
            mode: md.st_mode & 0o7777,
            why: "this file belongs to another user",
        });
    }
    Ok(fd)
}

/// Takes the directory's lock for a cold start and records our PID in the lock file.
pub fn lock(dir: &str) -> Result<OwnedFd, DirError> {
    let dfd = prepare(dir)?;
    let fd = open_file(dir, &dfd, LOCK)?;
    match sys::try_lock(fd.as_raw_fd()) {
        Ok(true) => {}
        Ok(false) => return Err(DirError::Locked { path: dir.into(), holder: read_pid(&fd) }),
        Err(e) => return Err(DirError::Io("cannot lock", path(dir, LOCK), e)),
    }
    note_owner(&fd);
    Ok(fd)
}

/// Records this process's PID in the lock file, through the descriptor (informational; the
/// lock itself is the truth). Best effort: a full disk leaves the old text.
pub fn note_owner(lock: &OwnedFd) {
    let text = format!("{}\n", std::process::id());
    if nix::unistd::ftruncate(lock, 0).is_ok() {
        let _ = nix::sys::uio::pwrite(lock, text.as_bytes(), 0);
    }
}

fn read_pid(fd: &OwnedFd) -> Option<u32> {
    let mut b = [0u8; 16];
    let n = nix::sys::uio::pread(fd, &mut b, 0).ok()?;
    core::str::from_utf8(&b[..n]).ok()?.trim().parse().ok()
}

/// Whether the lock file is still the one behind `lock` (same inode, not a link) and
/// `reconfig.sock` is still a socket. `None` when it cannot be told (e.g. no descriptor free):
/// then nothing is repaired this round.
pub fn intact(dir: &str, lock: &OwnedFd) -> Option<(bool, bool)> {
    let dfd = match open_dir(dir) {
        Ok(d) => d,
        Err(DirError::Io(_, _, Errno::ENOENT)) => return Some((false, false)),
        Err(_) => return None,
    };
    let at = |name: &str| fstatat(&dfd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
    let mine = fstat(lock).ok()?;
    let same_lock = at(LOCK).is_ok_and(|a| a.st_ino == mine.st_ino && a.st_dev == mine.st_dev);
    let socket = at(RECONFIG).is_ok_and(|s| s.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFSOCK.bits());
    Some((same_lock, socket))
}

/// Removes `name` from the directory (a file, a socket or a link; never what a link names).
pub fn remove(dir: &str, name: &str) -> Result<bool, Errno> {
    let dfd = open_dir(dir).map_err(|_| Errno::ENOENT)?;
    match nix::unistd::unlinkat(&dfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Binds `reconfig.sock`, replacing a stale file. Only the lock holder calls this, so a file
/// at the path belongs to a dead owner. (A socket is bound by path: the directory was checked
/// to be this user's alone, so the path cannot be redirected; bind never follows a link.)
pub fn bind_reconfig(dir: &str) -> Result<OwnedFd, DirError> {
    let p = path(dir, RECONFIG);
    match remove(dir, RECONFIG) {
        Ok(true) => log::info!("removed stale {p} (its owner is gone)"),
        Ok(false) => {}
        Err(e) => return Err(DirError::Io("cannot remove stale", p, e)),
    }
    net::unix_listen(&p).map_err(|e| DirError::Io("cannot listen on", p, e))
}

/// Removes `reconfig.sock` at the final stop of the directory's owner.
pub fn remove_reconfig(dir: &str) {
    let _ = remove(dir, RECONFIG);
}
