//! Keeping the runtime directory usable while this process owns it: `reconfig.sock` and
//! `baton.lock` are recreated if someone removed them.

use super::*;
use rundir::{LOCK, RECONFIG};

impl Restart {
    /// Recreates `reconfig.sock` and `baton.lock` if someone removed them (or the whole
    /// runtime directory, e.g. a cleanup of /run) while this process owns the directory, so a
    /// later hot restart still finds the running baton instead of failing on a taken port.
    /// A failure is reported once per outage, not every `RUNDIR_CHECK_MS`.
    pub(super) fn repair_rundir(&mut self, server: &Server) {
        let (Some(lock), Some(_)) = (&self.lock, &self.reconfig) else {
            return; // not the owner (draining) or a server without hot restart
        };
        let Some((same_lock, socket_there)) = rundir::intact(&self.dir, lock) else {
            return; // cannot tell now (e.g. no descriptor free): next round
        };
        if same_lock && socket_there {
            self.dir_warned = false;
            return;
        }
        let first = !std::mem::replace(&mut self.dir_warned, true);
        if first {
            log::warn!("runtime directory {}: {RECONFIG} or {LOCK} was removed or replaced; recreating them", self.dir);
        }
        match self.recreate(server, same_lock) {
            Ok(()) => {
                self.dir_warned = false;
                log::info!("runtime directory {}: recreated", self.dir);
            }
            Err(e) if first => log::error!("{e}; a hot restart will fail until it is fixed"),
            Err(_) => {}
        }
    }

    /// The directory (checked as at start), the lock file unless it is still ours, and a fresh
    /// `reconfig.sock`, registered in place of the old one.
    fn recreate(&mut self, server: &Server, same_lock: bool) -> Result<(), String> {
        rundir::prepare(&self.dir).map_err(|e| format!("cannot recreate the runtime directory: {e}"))?;
        if !same_lock {
            let l = rundir::lock(&self.dir).map_err(|e| format!("cannot recreate {LOCK}: {e}"))?;
            self.lock = Some(l);
        }
        let fd = rundir::bind_reconfig(&self.dir).map_err(|e| format!("cannot recreate {RECONFIG}: {e}"))?;
        if let Some(old) = self.reconfig.take() {
            server.poller().delete(&old);
        }
        let registered = server.poller().add_read(&fd, Token::new(Kind::ReconfigListener, 0));
        self.reconfig = Some(fd);
        registered.map_err(|e| format!("cannot register the new {RECONFIG}: {}", e.desc()))
    }
}
