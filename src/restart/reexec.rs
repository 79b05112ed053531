//! SIGHUP: restart in place, keeping the PID (fork a child that serves as the old
//! generation, re-execute the binary, which takes over from the child).

use super::*;

impl Restart {
    /// Returns `true` in the forked child that carries on serving as the old generation; the
    /// caller must then renew its signalfd (a signalfd wakes the epoll of the process that
    /// registered it, so the child's own signals would never be seen).
    pub fn on_sighup(&mut self, server: &mut Server) -> bool {
        if !matches!(self.state, State::Idle) || server.mode() != Mode::Serving {
            log::warn!("SIGHUP ignored: a hot restart is already in progress ({})", self.state.name());
            return false;
        }
        self.repair_rundir(server);
        let Some(exec) = &self.exec else {
            log::warn!("SIGHUP ignored: this process cannot re-execute itself");
            return false;
        };
        if let Err(e) = crate::config_file::load(&exec.config_path) {
            log::error!("SIGHUP: config {}: {e}; still serving the current config", exec.config_path);
            return false;
        }
        if let Err(e) = nix::unistd::access(self.dir.as_str(), nix::unistd::AccessFlags::W_OK) {
            log::error!(
                "SIGHUP: the runtime directory {} is not writable ({}); still serving; make it writable and retry",
                self.dir,
                e.desc()
            );
            return false;
        }
        if let Err(e) = nix::unistd::access(exec.exe.as_c_str(), nix::unistd::AccessFlags::X_OK) {
            log::error!("SIGHUP: cannot execute {:?}: {}; still serving", exec.exe, e.desc());
            return false;
        }
        let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => {
                log::error!("SIGHUP: pipe: {}; still serving", e.desc());
                return false;
            }
        };
        match sys::fork() {
            Err(e) => {
                log::error!("SIGHUP: fork: {}; still serving", e.desc());
                false
            }
            Ok(None) => {
                Self::continue_as_old_generation(r, w);
                true
            }
            Ok(Some(child)) => {
                drop(r);
                log::info!(
                    "SIGHUP: re-executing {:?} as pid {}; pid {child} serves until it takes over",
                    exec.exe,
                    std::process::id()
                );
                crate::notify::reloading();
                let e = nix::unistd::execv(exec.exe.as_c_str(), &exec.argv).unwrap_err();
                // still here: the exec failed; the child exits on this byte and we carry on
                let _ = nix::unistd::write(&w, &[1]);
                crate::notify::ready(server.totals().generation);
                log::error!("SIGHUP: cannot execute {:?}: {}; still serving", exec.exe, e.desc());
                false
            }
        }
    }

    /// In the forked child: wait until the parent's exec succeeded (the pipe closes) or failed
    /// (a byte arrives). On success keep serving as the old generation; on failure exit quietly,
    /// since the parent keeps serving with the very same sockets.
    pub(super) fn continue_as_old_generation(r: OwnedFd, w: OwnedFd) {
        drop(w);
        let _ = net::wait_readable(&r, crate::sansio::limits::EXEC_CONFIRM_MS);
        let mut b = [0u8; 1];
        if matches!(nix::unistd::read(&r, &mut b), Ok(1)) {
            std::process::exit(0);
        }
        log::info!("pid {} serves as the previous generation until the new process takes over", std::process::id());
    }
}
