//! systemd socket activation (see sd_listen_fds(3)): listening sockets passed as descriptors
//! 3, 4, ... with `LISTEN_FDS` and `LISTEN_PID`, used instead of binding. Each is verified with
//! the kernel (a listening TCP socket) and matched to a configured listener, or the admin
//! address, by its full address; unmatched ones are closed and logged. The variables are removed
//! afterwards: a SIGHUP restart re-executes under the same PID and must not take descriptor
//! numbers for sockets a second time.

use crate::sansio::addr::same_listen_addr;
use crate::sansio::config::Config;
use crate::server::Inherited;
use crate::sys::{self, net};

/// First descriptor number systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;
use crate::sansio::limits::MAX_ACTIVATED;

/// The sockets the supervisor passed to this process, matched to `cfg`; empty without activation.
pub fn take(cfg: &Config) -> Inherited {
    let mut inh = Inherited::default();
    let for_me = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    if !for_me || n == 0 {
        return inh;
    }
    if n > MAX_ACTIVATED {
        log::warn!("socket activation: {n} descriptors passed; only the first {MAX_ACTIVATED} are used");
    }
    for fd_num in (LISTEN_FDS_START..).take(n.min(MAX_ACTIVATED)) {
        let Some(fd) = sys::adopt_inherited(fd_num) else { continue };
        let Some(addr) = net::local(&fd) else {
            log::warn!("socket activation: descriptor {fd_num} is not an IP or named unix socket; closed");
            continue;
        };
        if let Err(why) = net::verify_listener(&fd, &addr) {
            log::warn!("socket activation: descriptor {fd_num} ({addr}): {why}; closed");
        } else if let Err(e) = sys::set_nonblocking(&fd) {
            log::warn!(
                "socket activation: descriptor {fd_num} ({addr}): cannot make it non-blocking: {}; closed",
                e.desc()
            );
        } else if cfg.listener_by_addr(&addr).is_some() {
            log::info!("socket activation: listener socket {addr} taken from the supervisor");
            inh.listeners.push((addr, fd));
        } else if let Some(ip) = addr.ip().filter(|a| cfg.admin.is_some_and(|c| same_listen_addr(a, &c))) {
            log::info!("socket activation: admin socket {addr} taken from the supervisor");
            inh.admin = Some((ip, fd));
        } else if let Some(ip) = addr.ip().filter(|a| cfg.metrics.is_some_and(|c| same_listen_addr(a, &c))) {
            log::info!("socket activation: metrics socket {addr} taken from the supervisor");
            inh.metrics = Some((ip, fd));
        } else {
            log::warn!("socket activation: descriptor {fd_num} ({addr}) matches no listener in the config; closed");
        }
    }
    inh
}
