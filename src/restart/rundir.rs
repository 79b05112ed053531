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
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};

use crate::sansio::config::value::is_plain_abs_path;
use crate::sansio::limits::MAX_ANCESTORS;
use crate::sys;
use crate::sys::net;

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
    /// A path with a trailing slash, an empty, `.` or `..` component.
    NotNormal(String),
    /// A symbolic link in the path that another user owns (and could point elsewhere).
    ForeignLink {
        dir: String,
        link: String,
        uid: u32,
    },
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
            Self::Unsafe { path, uid, mode, why } if *uid == me => write!(
                f,
                "runtime directory {path}: {why} (owner uid {uid}, mode {mode:04o}); baton only uses a directory \
                 no other user can write: run `chmod go-w {path}`"
            ),
            Self::Unsafe { path, uid, mode, why } => write!(
                f,
                "runtime directory {path}: {why} (owner uid {uid}, mode {mode:04o}); baton (uid {me}) only uses a \
                 directory of its own that no other user can write: have its owner or root remove it (baton then \
                 creates it 0700), or point baton.runtime_dir / --runtime-dir at another path"
            ),
            Self::UnsafeAncestor { dir, ancestor, uid, mode } => write!(
                f,
                "{dir}: its ancestor {ancestor} can be changed by another user (owner uid {uid}, \
                 mode {mode:04o}), who could swap the directory; choose a runtime directory whose ancestors belong \
                 to root or uid {me} (or are sticky, like /tmp), e.g. under /run"
            ),
            Self::NotNormal(p) => write!(
                f,
                "{p}: give a plain absolute path (no trailing slash, no empty, . or .. component)"
            ),
            Self::ForeignLink { dir, link, uid } => write!(
                f,
                "runtime directory {dir}: {link} is a symbolic link owned by uid {uid}, who could point it \
                 elsewhere; give a path without it"
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
        return crate::sansio::config::Settings::DEFAULT_RUNTIME_DIR.into();
    }
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(x) if x.starts_with('/') && x.len() + 6 <= crate::sansio::config::PATH_LEN => {
            format!("{}/baton", x.trim_end_matches('/'))
        }
        _ => format!("/tmp/baton-{uid}"),
    }
}

pub fn path(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// Checks that no other user can change what `dir` names (see the module rules), creates what
/// is missing (0700), and checks the directory itself: this user's, writable by nobody else.
/// An existing directory's mode is left as it is. Returns the directory's descriptor.
pub fn prepare(dir: &str) -> Result<OwnedFd, DirError> {
    check_path(dir)?;
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| DirError::Create(dir.into(), e))?;
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
    check_real_ancestors(dir, &fd)?;
    Ok(fd)
}

/// Whether a directory owned by `uid` with `mode` can be changed only by root or this user: so
/// nothing in it can be renamed or replaced by someone else (a sticky directory such as /tmp
/// protects the entries of root and of this user).
fn only_ours(uid: u32, mode: u32, me: u32) -> bool {
    (uid == 0 || uid == me) && (mode & 0o022 == 0 || mode & 0o1000 != 0)
}

/// The path as written: absolute and normalised (no empty, `.` or `..` component, no trailing
/// slash, which would make `O_NOFOLLOW` follow a link), and every existing component, links
/// included, owned by root or this user in a directory only they can change. A link another
/// user owns could be pointed elsewhere between two lookups.
pub fn check_path(path: &str) -> Result<(), DirError> {
    if !is_plain_abs_path(path) {
        return Err(DirError::NotNormal(path.into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    let mut prefix = String::with_capacity(path.len());
    for comp in path[1..].split('/') {
        let parent = if prefix.is_empty() { "/".to_string() } else { prefix.clone() };
        prefix.push('/');
        prefix.push_str(comp);
        let md = match nix::sys::stat::stat(parent.as_str()) {
            Ok(m) => m,
            Err(_) => return Ok(()), // not there yet: created below by this user
        };
        if !only_ours(md.st_uid, md.st_mode & 0o7777, me) {
            let (uid, mode) = (md.st_uid, md.st_mode & 0o7777);
            return Err(DirError::UnsafeAncestor { dir: path.into(), ancestor: parent, uid, mode });
        }
        match nix::sys::stat::lstat(prefix.as_str()) {
            Ok(l) if l.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() && l.st_uid != 0 && l.st_uid != me => {
                return Err(DirError::ForeignLink { dir: path.into(), link: prefix, uid: l.st_uid });
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// The directory an absolute `path` is in (`/` for `/x`); `None` for a path without a `/`.
pub fn parent(path: &str) -> Option<&str> {
    match path.rsplit_once('/')? {
        ("", _) => Some("/"),
        (d, _) => Some(d),
    }
}

/// For a file baton writes outside its runtime directory (the PID file): its directory and
/// every component above it can be changed only by root or this user.
pub fn check_file_dir(file: &str) -> Result<(), DirError> {
    let dir = parent(file).ok_or_else(|| DirError::NotNormal(file.into()))?;
    if dir != "/" {
        check_path(dir)?;
    }
    let me = nix::unistd::geteuid().as_raw();
    match nix::sys::stat::stat(dir) {
        Ok(md) if !only_ours(md.st_uid, md.st_mode & 0o7777, me) => Err(DirError::UnsafeAncestor {
            dir: file.into(),
            ancestor: dir.into(),
            uid: md.st_uid,
            mode: md.st_mode & 0o7777,
        }),
        _ => Ok(()),
    }
}

/// The directory's real ancestors (walking `..` from its descriptor, whatever links led to
/// it) must be changeable only by root or this user too.
fn check_real_ancestors(dir: &str, fd: &OwnedFd) -> Result<(), DirError> {
    let me = nix::unistd::geteuid().as_raw();
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let mut cur =
        openat(fd, "..", flags, Mode::empty()).map_err(|e| DirError::Io("cannot open the parent of", dir.into(), e))?;
    let mut below = fstat(fd).map_err(|e| DirError::Io("cannot inspect", dir.into(), e))?;
    for _ in 0..MAX_ANCESTORS {
        let md = fstat(&cur).map_err(|e| DirError::Io("cannot inspect an ancestor of", dir.into(), e))?;
        if (md.st_dev, md.st_ino) == (below.st_dev, below.st_ino) {
            return Ok(()); // `..` of `/` is `/`
        }
        if !only_ours(md.st_uid, md.st_mode & 0o7777, me) {
            let ancestor = format!("(a real ancestor, inode {})", md.st_ino);
            return Err(DirError::UnsafeAncestor {
                dir: dir.into(),
                ancestor,
                uid: md.st_uid,
                mode: md.st_mode & 0o7777,
            });
        }
        below = md;
        cur = openat(&cur, "..", flags, Mode::empty())
            .map_err(|e| DirError::Io("cannot open an ancestor of", dir.into(), e))?;
    }
    Ok(())
}

/// Opens an existing directory without following a link in its last component.
fn open_dir(dir: &str) -> Result<OwnedFd, DirError> {
    nix::fcntl::open(dir, OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => DirError::Symlink(dir.into()),
            // another user's 0700 directory: say whose, as when it can be opened
            Errno::EACCES => match nix::sys::stat::lstat(dir) {
                Ok(md) => DirError::Unsafe {
                    path: dir.into(),
                    uid: md.st_uid,
                    mode: md.st_mode & 0o7777,
                    why: "it belongs to another user",
                },
                Err(_) => DirError::Io("cannot open", dir.into(), e),
            },
            e => DirError::Io("cannot open", dir.into(), e),
        })
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

/// Takes the directory's lock for a cold start and records our PID in the lock file. The
/// caller has checked the directory with `prepare` (at start, or just before a repair).
pub fn lock(dir: &str) -> Result<OwnedFd, DirError> {
    let dfd = open_dir(dir)?;
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
    super::pidfile::parse_pid(&b[..n])
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
