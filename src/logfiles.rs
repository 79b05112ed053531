//! Opening the listeners' access log files (`access_logs[0].log_path`), at start and again on
//! SIGUSR1 (logrotate's convention: the files are opened anew, by name). baton often runs as
//! root, so a log path is held to more than the PID file: every directory above it can be
//! changed only by root or baton's user, and its own directory can be written by nobody else,
//! not even with the sticky bit (in a shared `/tmp` another user could take the name between
//! two rotations: a FIFO of theirs would receive the lines, a file of theirs would stop the
//! next start). The file is opened without following a link (`O_NOFOLLOW`), and what is found
//! there must be baton's user's: a regular file with one name (no hard link to another file),
//! or a FIFO. It is opened to append, non-blocking (a full FIFO drops lines instead of stopping
//! the proxy) and close-on-exec.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use crate::restart::rundir;
use crate::sansio::config::Config;
use crate::server::{AccessLogs, Target};

/// Every listener's access log, one target per distinct path. The error names the listener,
/// the path and what to do.
pub fn open(cfg: &Config) -> Result<AccessLogs, String> {
    let mut targets: Vec<(String, Target, Vec<usize>)> = Vec::new();
    for (li, l) in cfg.listeners.iter().enumerate() {
        let Some(a) = &l.access_log else { continue };
        if let Some(t) = targets.iter_mut().find(|t| t.0 == a.path.as_str()) {
            t.2.push(li);
            continue;
        }
        let target = match a.path.as_str() {
            "stdout" => Target::Shared(crate::sys::stdio::Shared::new(true)),
            "stderr" => Target::Shared(crate::sys::stdio::Shared::new(false)),
            p => Target::File(open_file(p).map_err(|e| format!("listener \"{}\": access log {p}: {e}", l.name))?),
        };
        targets.push((a.path.to_string(), target, vec![li]));
    }
    Ok(AccessLogs::new(targets.into_iter().map(|(_, t, ls)| (t, ls)).collect()))
}

fn open_file(path: &str) -> Result<OwnedFd, String> {
    rundir::check_file_dir(path).map_err(|e| e.to_string())?;
    let dir = rundir::parent(path).unwrap_or(path);
    let me = nix::unistd::geteuid().as_raw();
    if let Ok(d) = nix::sys::stat::stat(dir) {
        if d.st_mode & 0o022 != 0 || (d.st_uid != 0 && d.st_uid != me) {
            return Err(format!(
                "its directory {dir} can be written by other users (mode {:o}, uid {}); use one only root or baton's user can write, such as /var/log/baton",
                d.st_mode & 0o7777,
                d.st_uid
            ));
        }
    }
    let flags =
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o640)).map_err(|e| match e {
        nix::errno::Errno::ELOOP => "is a symbolic link; give the file's own path".to_string(),
        nix::errno::Errno::ENXIO => "is a FIFO nobody reads; start its reader first".to_string(),
        e => format!("cannot open it: {}", e.desc()),
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("fstat: {}", e.desc()))?;
    let kind = st.st_mode & SFlag::S_IFMT.bits();
    if kind != SFlag::S_IFREG.bits() && kind != SFlag::S_IFIFO.bits() {
        return Err("is neither a regular file nor a FIFO".into());
    }
    if st.st_uid != me {
        return Err(format!(
            "belongs to uid {}, not to baton's user ({me}); remove it or give another path",
            st.st_uid
        ));
    }
    if kind == SFlag::S_IFREG.bits() && st.st_nlink != 1 {
        return Err(format!("has {} names (hard links); give a file of its own", st.st_nlink));
    }
    Ok(fd)
}
