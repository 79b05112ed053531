//! What `/metrics` reports about the process itself (Prometheus' `process_*` metrics), read
//! from `/proc/self` and `getrlimit` when an admin request asks; each one is `None` when it
//! cannot be read.

use std::io::Read;

use crate::sansio::stats::ProcessStats;

/// `start_time_s`: when this process image started, in seconds since the Unix epoch.
pub fn stats(start_time_s: Option<u64>) -> ProcessStats {
    ProcessStats { start_time_s, open_fds: open_fds(), max_fds: max_fds(), resident_bytes: resident_bytes() }
}

fn open_fds() -> Option<u64> {
    // the directory's own descriptor, open while it is read, is not counted
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count().saturating_sub(1) as u64)
}

fn max_fds() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok().map(|(soft, _)| soft)
}

/// `/proc/self/statm`'s second field (resident pages) times the page size.
fn resident_bytes() -> Option<u64> {
    let mut buf = [0u8; 128];
    let n = std::fs::File::open("/proc/self/statm").ok()?.read(&mut buf).ok()?;
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    Some(pages * page as u64)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now_s() -> Option<u64> {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}
