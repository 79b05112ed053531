//! The PID file: always names the process that owns the listeners.
//!
//! Written atomically (a temp file in the same directory, then `rename(2)`), and removed only by
//! the process it names, so a failed or finished process never erases its successor's PID.

use std::io::Write;

pub fn write(path: &str, pid: u32) -> std::io::Result<()> {
    let tmp = format!("{path}.{pid}.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{pid}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The PID a file names, if it is readable and well-formed.
pub fn read(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Removes the file only if it still names `pid`.
pub fn remove_if_mine(path: &str, pid: u32) {
    if read(path) == Some(pid) {
        let _ = std::fs::remove_file(path);
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
}
