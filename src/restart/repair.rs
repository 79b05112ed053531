//! Keeping the runtime directory usable while this process owns it: `reconfig.sock` and
//! `baton.lock` are recreated if someone removed them.

use super::*;

impl Restart {
    /// Recreates `reconfig.sock` and `baton.lock` if someone removed them (or the whole
    /// runtime directory, e.g. a cleanup of /run) while this process owns the directory, so a
    /// later hot restart still finds the running baton instead of failing on a taken port.
    pub(super) fn repair_rundir(&mut self, server: &Server) {
        let (Some(lock), Some(_)) = (&self.lock, &self.reconfig) else {
            return; // not the owner (draining) or a server without hot restart
        };
        let reconfig = rundir::path(&self.dir, rundir::RECONFIG);
        let lock_path = rundir::path(&self.dir, rundir::LOCK);
        let Some((same_lock, socket_there)) = rundir::intact(&self.dir, lock) else {
            return;
        };
        if same_lock && socket_there {
            self.dir_warned = false;
            return;
        }
        // once per outage, not every RUNDIR_CHECK_MS, so a stuck directory does not fill the log
        let warn = !std::mem::replace(&mut self.dir_warned, true);
        if warn {
            log::warn!(
                "runtime directory {}: {} or {} was removed or replaced; recreating them",
                self.dir,
                rundir::RECONFIG,
                rundir::LOCK
            );
        }
        if let Err(e) = rundir::prepare(&self.dir) {
            if warn {
                log::error!("cannot recreate the runtime directory: {e}; a hot restart will fail until it is fixed");
            }
            return;
        }
        if !same_lock {
            match rundir::lock(&self.dir) {
                Ok(l) => self.lock = Some(l),
                Err(e) => {
                    if warn {
                        log::error!("cannot recreate {lock_path}: {e}");
                    }
                    return;
                }
            }
        }
        match rundir::bind_reconfig(&self.dir) {
            Ok(fd) => {
                if let Some(old) = self.reconfig.take() {
                    server.poller().delete(&old);
                }
                if let Err(e) = server.poller().add_read(&fd, Token::new(Kind::ReconfigListener, 0)) {
                    log::error!("cannot register the new {reconfig}: {}", e.desc());
                }
                self.reconfig = Some(fd);
                self.dir_warned = false;
                log::info!("runtime directory {}: recreated", self.dir);
            }
            Err(e) => {
                if warn {
                    log::error!("cannot recreate {reconfig}: {e}; a hot restart will fail until it exists")
                }
            }
        }
    }
}
