//! The running process's side of `baton status|reload|stop`: a CONTROL message on
//! `reconfig.sock` (instead of HELLO; the same peer check, so only baton's user or root), then
//! text on the same connection, ended by closing it. Status is answered at once; reload and
//! stop are handed to the runtime (`take_request`), which owns signals and the process.
//!
//! Answers start with `ok:`, `error:` or `busy:` (what the client turns into its exit code);
//! status is the table or the JSON document itself. Every write is non-blocking: a client that
//! does not read gets a cut answer, never a stalled event loop.

use super::*;
use crate::sansio::codec::Control;
use crate::sansio::limits::STATUS_MAX;

/// What a control client asked of the runtime.
pub enum Request {
    /// A hot restart in place; the client waits for its outcome.
    Reload(OwnedFd),
    /// Stop; `now`: close everything at once (SIGTERM), else drain (SIGQUIT).
    Stop { now: bool, client: OwnedFd },
}

impl Restart {
    pub(super) fn control(&mut self, server: &mut Server, peer: OwnedFd, pid: i32, op: Control) {
        log::debug!("control request {op:?} from pid {pid}");
        let changing = matches!(op, Control::Reload | Control::Stop | Control::StopNow);
        if changing && (self.request.is_some() || self.reexec_parent.is_some() || self.reload_waiter.is_some()) {
            // a second request in the same loop turn, or one that reaches the fork serving
            // during a reload: the first is carried out, this one waits
            return reply(peer, format_args!("busy: a reload or stop is under way; retry when it is over"));
        }
        match op {
            Control::Status | Control::StatusJson => self.status(server, peer, op == Control::StatusJson),
            Control::Reload => self.request = Some(Request::Reload(peer)),
            Control::Stop | Control::StopNow => {
                self.request = Some(Request::Stop { now: op == Control::StopNow, client: peer })
            }
        }
    }

    /// The request a control client made, for the runtime to carry out.
    pub fn take_request(&mut self) -> Option<Request> {
        self.request.take()
    }

    fn status(&self, server: &Server, peer: OwnedFd, json: bool) {
        let mut out = String::with_capacity(4096);
        let snap = server.snapshot(if server.mode() == Mode::Serving { "serving" } else { "draining" });
        let pids: Vec<u32> = self.predecessors.iter().map(|p| p.pid).collect();
        let _ = if json {
            crate::sansio::stats::write_json(&mut out, &snap)
        } else {
            crate::sansio::status::write_table(&mut out, &snap, &pids)
        };
        let _ = net::set_send_buffer(&peer, STATUS_MAX);
        send_all(&peer, &out.as_bytes()[..out.len().min(STATUS_MAX)]);
    }

    /// The owner's PID and those of the generations still draining, for `baton stop` to wait on.
    pub fn stop_answer(&self, client: OwnedFd, now: bool, drain_ms: u64) {
        let mut text = String::new();
        let how = if now {
            "closing every connection now".to_string()
        } else {
            format!("draining for at most {drain_ms} ms")
        };
        let _ = write!(text, "ok: pid {} stops, {how}\npids: {}", std::process::id(), std::process::id());
        for p in &self.predecessors {
            let _ = write!(text, " {}", p.pid);
        }
        text.push('\n');
        send_all(&client, text.as_bytes());
    }

    /// The reload's client waits here for the outcome (`handed_off`, `abort`, `check_reexec`).
    pub(super) fn wait_for_reload(&mut self, client: OwnedFd) {
        self.reload_waiter = Some(client);
    }

    /// In the child a SIGHUP forked: if the re-executed process is gone (this process was
    /// re-parented) before it took over, this process stays the owner: it says so like any
    /// aborted handoff (PID file, service manager, the waiting `baton reload`).
    pub(super) fn check_reexec(&mut self, server: &mut Server) {
        if let Some(parent) = self.reexec_parent {
            if nix::unistd::getppid().as_raw() != parent {
                self.abort(
                    server,
                    &HandoffError::Unexpected("the re-executed process exited before taking over (see its log)"),
                );
            }
        }
    }
}

/// Sends one answer line and closes the connection.
pub fn reply(client: OwnedFd, line: core::fmt::Arguments<'_>) {
    let mut text = String::new();
    let _ = writeln!(text, "{line}");
    send_all(&client, text.as_bytes());
}

/// Writes as much of `bytes` as the socket takes now (the answer fits the socket's buffer; a
/// client that does not read gets a cut answer rather than a stalled event loop).
fn send_all(fd: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match net::send_nowait(fd, bytes) {
            Ok(n) if n > 0 => bytes = &bytes[n..],
            _ => return,
        }
    }
}
