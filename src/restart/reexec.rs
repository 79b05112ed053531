//! SIGHUP: restart in place, keeping the PID (fork a child that serves as the old
//! generation, re-execute the binary, which takes over from the child).

use super::*;

impl Restart {
    /// SIGHUP, or `baton reload` (`client`: told the outcome). Returns `true` in the forked
    /// child that carries on serving as the old generation; the caller must then renew its
    /// signalfd (a signalfd wakes the epoll of the process that registered it, so the child's
    /// own signals would never be seen).
    pub fn on_sighup(&mut self, server: &mut Server, client: Option<OwnedFd>) -> bool {
        if !matches!(self.state, State::Idle) || server.mode() != Mode::Serving {
            log::warn!("SIGHUP ignored: a hot restart is already in progress ({})", self.state.name());
            if let Some(c) = client {
                control::reply(c, format_args!("busy: a hot restart or stop is in progress; retry when it is over"));
            }
            return false;
        }
        self.repair_rundir(server);
        let ready = match &self.exec {
            None => Err("this process cannot re-execute itself (/proc/self/exe unreadable)".to_string()),
            Some(exec) => Self::ready_to_exec(exec, &self.dir),
        };
        let pipe = ready
            .and_then(|()| nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {}", e.desc())));
        let (r, w) = match pipe {
            Ok(p) => p,
            Err(why) => {
                log::error!("SIGHUP: {why}; still serving");
                if let Some(c) = client {
                    control::reply(c, format_args!("error: {why}; pid {} keeps serving", std::process::id()));
                }
                return false;
            }
        };
        let parent = std::process::id() as i32;
        match sys::fork() {
            Err(e) => {
                log::error!("SIGHUP: fork: {}; still serving", e.desc());
                if let Some(c) = client {
                    control::reply(c, format_args!("error: fork: {}; pid {parent} keeps serving", e.desc()));
                }
                false
            }
            Ok(None) => {
                Self::continue_as_old_generation(r, w);
                self.reexec_parent = Some(parent);
                if let Some(c) = client {
                    self.wait_for_reload(c);
                }
                true
            }
            Ok(Some(child)) => {
                drop(r);
                // the client's socket is close-on-exec: after a good exec only the child has it
                let Some(exec) = &self.exec else { return false };
                let why = Self::exec_new_generation(exec, child, w, server);
                if let Some(c) = client {
                    control::reply(c, format_args!("error: {why}; pid {parent} keeps serving"));
                }
                false
            }
        }
    }

    /// What must hold before forking: a config that loads, a writable runtime directory, an
    /// executable binary. The error says what to fix.
    fn ready_to_exec(exec: &Exec, dir: &str) -> Result<(), String> {
        crate::config_file::load(&exec.config_path)
            .map(|_| ())
            .map_err(|e| format!("config {}: {e}; the current config stays", exec.config_path))?;
        nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).map_err(|e| {
            format!("the runtime directory {dir} is not writable ({}); make it writable and retry", e.desc())
        })?;
        nix::unistd::access(exec.exe.as_c_str(), nix::unistd::AccessFlags::X_OK)
            .map_err(|e| format!("cannot execute {:?}: {}", exec.exe, e.desc()))
    }

    /// In the parent: becomes the new binary under this PID. Returns only if the exec failed
    /// (with the reason); then the child learns it from the pipe and exits, and this process
    /// carries on serving.
    fn exec_new_generation(exec: &Exec, child: nix::unistd::Pid, w: OwnedFd, server: &Server) -> String {
        log::info!(
            "SIGHUP: re-executing {:?} as pid {}; pid {child} serves until it takes over",
            exec.exe,
            std::process::id()
        );
        crate::notify::reloading();
        let e = nix::unistd::execv(exec.exe.as_c_str(), &exec.argv).unwrap_err();
        let _ = nix::unistd::write(&w, &[1]);
        crate::notify::ready(server.totals().generation);
        log::error!("SIGHUP: cannot execute {:?}: {}; still serving", exec.exe, e.desc());
        format!("cannot execute {:?}: {}", exec.exe, e.desc())
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
