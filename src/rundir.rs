//! The runtime directory: where `reconfig.sock`, `listen.sock` and `baton.lock` live.
//!
//! Rules (docs/hot-restart.md): the directory is 0700 and owned by baton's user; the lock
//! (`flock` on `baton.lock`) marks the one owner of the directory and is released by the kernel
//! when its last holder dies; a path is unlinked only by the process that created it, or by the
//! lock holder when the file is provably stale (its owner is dead).

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

use nix::errno::Errno;

use crate::handoff::transport;
use crate::sys;

pub const RECONFIG: &str = "reconfig.sock";
pub const LISTEN: &str = "listen.sock";
pub const LOCK: &str = "baton.lock";

#[derive(Debug)]
pub enum DirError {
    Create(String, std::io::Error),
    NotOwned { path: String, uid: u32 },
    Locked { path: String, holder: Option<u32> },
    Io(&'static str, String, Errno),
}

impl core::fmt::Display for DirError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Create(p, e) => write!(f, "runtime directory {p}: {e}; create it or set baton.runtime_dir / --runtime-dir"),
            Self::NotOwned { path, uid } => write!(f, "runtime directory {path} belongs to uid {uid}; baton only uses a directory of its own user"),
            Self::Locked { path, holder } => match holder {
                Some(pid) => write!(f, "runtime directory {path} is owned by another baton (pid {pid}) that did not answer on {RECONFIG}; stop it or use another --runtime-dir"),
                None => write!(f, "runtime directory {path} is locked by another baton; stop it or use another --runtime-dir"),
            },
            Self::Io(what, p, e) => write!(f, "{what} {p}: {}", e.desc()),
        }
    }
}

pub fn path(dir: &str, name: &str) -> String {
    format!("{dir}/{name}")
}

/// Creates the directory (0700) if needed and checks it belongs to this user; tightens its mode.
pub fn prepare(dir: &str) -> Result<(), DirError> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| DirError::Create(dir.into(), e))?;
    let md = std::fs::metadata(dir).map_err(|e| DirError::Create(dir.into(), e))?;
    let me = nix::unistd::geteuid().as_raw();
    if md.uid() != me && me != 0 {
        return Err(DirError::NotOwned { path: dir.into(), uid: md.uid() });
    }
    if md.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| DirError::Create(dir.into(), e))?;
    }
    Ok(())
}

/// Takes the directory's lock for a cold start and records our PID in the lock file.
pub fn lock(dir: &str) -> Result<OwnedFd, DirError> {
    let p = path(dir, LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&p)
        .map_err(|e| DirError::Create(p.clone(), e))?;
    match sys::try_lock(file.as_raw_fd()) {
        Ok(true) => {}
        Ok(false) => {
            let holder = std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse().ok());
            return Err(DirError::Locked { path: dir.into(), holder });
        }
        Err(e) => return Err(DirError::Io("cannot lock", p, e)),
    }
    let _ = file.set_len(0);
    let _ = std::fs::write(&p, format!("{}\n", std::process::id()));
    Ok(OwnedFd::from(file))
}

/// Records a new owner's PID in the lock file (informational; the lock itself is the truth).
pub fn note_owner(dir: &str) {
    let _ = std::fs::write(path(dir, LOCK), format!("{}\n", std::process::id()));
}

/// Binds `reconfig.sock`, replacing a stale file. Only the lock holder calls this, so a file
/// at the path belongs to a dead owner.
pub fn bind_reconfig(dir: &str) -> Result<OwnedFd, DirError> {
    let p = path(dir, RECONFIG);
    match nix::unistd::unlink(p.as_str()) {
        Ok(()) => log::info!("removed stale {p} (its owner is gone)"),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(DirError::Io("cannot remove stale", p, e)),
    }
    transport::listen(&p).map_err(|e| DirError::Io("cannot listen on", p, e))
}

/// Removes `reconfig.sock` at the final stop of the directory's owner.
pub fn remove_reconfig(dir: &str) {
    let _ = nix::unistd::unlink(path(dir, RECONFIG).as_str());
}
