//! The PID file: always names the process that owns the listeners.
//!
//! Written atomically (a temporary file created with `O_EXCL | O_NOFOLLOW` in the same
//! directory, then `renameat(2)`), and removed only by the process it names, so a failed or
//! finished process never erases its successor's PID. Every access goes through the
//! directory's descriptor and never follows a symbolic link: a link planted at the path is
//! replaced, not written through.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use crate::sansio::limits::TMP_ATTEMPTS;

/// The directory (opened) and the file name of `path`.
fn split(path: &str) -> Result<(OwnedFd, &str), Errno> {
    let (dir, name) = path.rsplit_once('/').ok_or(Errno::EINVAL)?;
    if name.is_empty() || name == "." || name == ".." {
        return Err(Errno::EINVAL);
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    let fd = nix::fcntl::open(dir, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_RDONLY, Mode::empty())?;
    Ok((fd, name))
}

/// Writes the PID file. Its directory must be changeable only by root or this user
/// (`rundir::check_file_dir`), else the error names it.
pub fn write(path: &str, pid: u32) -> Result<(), String> {
    crate::restart::rundir::check_file_dir(path).map_err(|e| e.to_string())?;
    write_in_place(path, pid).map_err(|e| e.desc().to_string())
}

fn write_in_place(path: &str, pid: u32) -> Result<(), Errno> {
    let (dfd, name) = split(path)?;
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o644);
    let mut attempt = 0;
    let (fd, tmp) = loop {
        let tmp = if attempt == 0 {
            format!(".{name}.{pid}.tmp")
        } else {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            format!(".{name}.{pid}.{attempt}-{nanos}.tmp")
        };
        match openat(&dfd, tmp.as_str(), flags, mode) {
            Ok(fd) => break (fd, tmp),
            // a leftover of this PID (a crash between create and rename) is removed; one another
            // user planted cannot be (sticky directory): try another name
            Err(Errno::EEXIST) if attempt + 1 < TMP_ATTEMPTS => {
                let _ = nix::unistd::unlinkat(&dfd, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let text = format!("{pid}\n");
    let r = nix::unistd::write(&fd, text.as_bytes())
        .and_then(|n| if n == text.len() { Ok(()) } else { Err(Errno::ENOSPC) })
        .and_then(|()| nix::unistd::fsync(&fd))
        .and_then(|()| nix::fcntl::renameat(&dfd, tmp.as_str(), &dfd, name));
    if r.is_err() {
        let _ = nix::unistd::unlinkat(&dfd, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    r
}

/// The PID a file names, if it is a readable, well-formed regular file (not a link).
pub fn read(path: &str) -> Option<u32> {
    let (dfd, name) = split(path).ok()?;
    read_at(&dfd, name)
}

fn read_at(dfd: &OwnedFd, name: &str) -> Option<u32> {
    let fd =
        openat(dfd, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK, Mode::empty())
            .ok()?;
    let mut b = [0u8; 16];
    let n = nix::unistd::read(&fd, &mut b).ok()?;
    parse_pid(&b[..n])
}

/// A PID written as decimal text (the PID file's and the lock file's contents).
pub fn parse_pid(text: &[u8]) -> Option<u32> {
    core::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// Removes the file only if it still names `pid` (read and removed through one descriptor of
/// its directory).
pub fn remove_if_mine(path: &str, pid: u32) {
    let Ok((dfd, name)) = split(path) else {
        return;
    };
    if read_at(&dfd, name) == Some(pid) {
        let _ = nix::unistd::unlinkat(&dfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn written_atomically_and_removed_only_by_its_owner() {
        let dir = std::env::temp_dir().join(format!("baton-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.pid");
        let p = p.to_str().unwrap();
        super::write(p, 42).unwrap();
        assert_eq!(super::read(p), Some(42));
        super::remove_if_mine(p, 7);
        assert_eq!(super::read(p), Some(42));
        super::remove_if_mine(p, 42);
        assert_eq!(super::read(p), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A link planted at the path is replaced by the PID file; what it pointed at is untouched.
    #[test]
    fn a_planted_link_is_replaced_not_written_through() {
        let dir = std::env::temp_dir().join(format!("baton-pidlink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("precious");
        std::fs::write(&target, "keep me\n").unwrap();
        let p = dir.join("b.pid");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let p = p.to_str().unwrap();
        assert_eq!(super::read(p), None, "read must not follow the link");
        super::write(p, 42).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
        assert!(std::fs::symlink_metadata(p).unwrap().file_type().is_file());
        assert_eq!(super::read(p), Some(42));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
