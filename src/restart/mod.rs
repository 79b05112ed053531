//! The running process's side of a hot restart, driven by the event loop (docs/hot-restart.md).
//!
//! States: `Idle` (serving, accepting on `reconfig.sock`) → `Greeting` (a peer connected, wait
//! for HELLO) → `Offered` (GO sent, wait for READY) → `Sent` (descriptors sent on `listen.sock`,
//! wait for ACK) → `Draining`. Any failure, disconnect or `handoff_timeout` before the ACK goes
//! back to `Idle`: this process never stopped accepting, so nothing is lost (rollback). A second
//! would-be successor arriving while a handoff is under way gets BUSY.
//!
//! SIGHUP restarts in place: the process forks a child that carries on serving as the "old"
//! side, and re-executes the installed binary under its own PID, which then takes over from the
//! child by the same protocol. Supervisors keep tracking one PID.

pub mod channel;
mod control;
pub mod pidfile;
mod reexec;
mod refuse;
mod repair;
pub mod rundir;
pub mod takeover;
pub mod transfer;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use core::fmt::Write;

use crate::sansio::codec::{
    text, CodecError, Entry, FdKind, ManifestHead, Msg, Text, MAX_FDS_PER_MSG, PROTO_VERSION, TRANSFER_VERSION,
};
use crate::sansio::limits::{MAX_REFUSING, REFUSE_WAIT_MS, RUNDIR_CHECK_MS};
use crate::server::{Kind, Token};
use crate::server::{Mode, Server, VERSION};
use crate::sys;
use crate::sys::net;
use channel::HandoffError;
pub use control::{reply, Request};

enum State {
    Idle,
    Greeting { peer: OwnedFd, pid: i32, deadline: u64 },
    Offered { peer: OwnedFd, pid: i32, deadline: u64 },
    Sent { chan: OwnedFd, pid: i32, deadline: u64 },
    Draining,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Greeting { .. } => "greeting",
            State::Offered { .. } => "offered",
            State::Sent { .. } => "sent",
            State::Draining => "draining",
        }
    }
}

/// A draining older generation, tracked by pidfd (immune to PID reuse).
struct Predecessor {
    pid: u32,
    fd: OwnedFd,
    told_to_stop: bool,
}

/// What SIGHUP re-executes.
pub struct Exec {
    pub exe: CString,
    pub argv: Vec<CString>,
    pub config_path: String,
}

impl Exec {
    /// The running binary's installed path and this process's arguments.
    pub fn current(config_path: &str) -> Option<Exec> {
        let exe = std::fs::read_link("/proc/self/exe").ok()?;
        let exe = exe.to_str()?.trim_end_matches(" (deleted)");
        let argv = std::env::args_os()
            .filter_map(|a| CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).ok())
            .collect();
        Some(Exec { exe: CString::new(exe).ok()?, argv, config_path: config_path.into() })
    }
}

pub struct Restart {
    pub pid_file: Option<String>,
    pub dir: String,
    lock: Option<OwnedFd>,
    reconfig: Option<OwnedFd>,
    state: State,
    predecessors: Vec<Predecessor>,
    exec: Option<Exec>,
    /// When the runtime directory is next checked (monotonic ms).
    next_dir_check: u64,
    /// The directory's repair has been reported failing (reported again once it recovers).
    dir_warned: bool,
    /// Peers being turned away (BUSY, REFUSED), answered without blocking the loop.
    refusing: [Option<Refusal>; MAX_REFUSING],
    /// A control client's request for the runtime (reload, stop), taken by `take_request`.
    request: Option<Request>,
    /// The `baton reload` client waiting for this reload's outcome (`control.rs`).
    reload_waiter: Option<OwnedFd>,
    /// In the child a SIGHUP forked: the PID of the re-executed process that is to take over;
    /// if it exits before doing so, this process stays the owner and says so.
    reexec_parent: Option<i32>,
    /// The successor's HELLO named a version that reads HISTORY records (0.2 and later).
    successor_knows_history: bool,
}

/// A peer that is refused: answered when its HELLO arrives (closing a unix socket with unread
/// input resets the peer, which would discard the answer) or at `deadline`, whichever is first.
struct Refusal {
    peer: OwnedFd,
    answer: Msg,
    deadline: u64,
}

impl Restart {
    /// Registers the reconfig listener and the predecessors' pidfds, and enforces the cap on
    /// draining generations.
    pub fn new(
        server: &Server,
        dir: String,
        lock: OwnedFd,
        reconfig: OwnedFd,
        predecessors: Vec<(u32, OwnedFd)>,
        pid_file: Option<String>,
        exec: Option<Exec>,
    ) -> Result<Restart, nix::errno::Errno> {
        server.poller().add_read(&reconfig, Token::new(Kind::ReconfigListener, 0))?;
        let mut r = Restart {
            pid_file,
            dir,
            lock: Some(lock),
            reconfig: Some(reconfig),
            state: State::Idle,
            predecessors: Vec::new(),
            exec,
            next_dir_check: 0,
            dir_warned: false,
            refusing: Default::default(),
            request: None,
            reload_waiter: None,
            reexec_parent: None,
            successor_knows_history: false,
        };
        for (pid, fd) in predecessors {
            server.poller().add_read(&fd, Token::new(Kind::Predecessor, pid as usize))?;
            r.predecessors.push(Predecessor { pid, fd, told_to_stop: false });
        }
        Ok(r)
    }

    /// A stand-in for tests and benchmarks that run a server without hot restart.
    pub fn none() -> Restart {
        Restart {
            pid_file: None,
            dir: String::new(),
            lock: None,
            reconfig: None,
            state: State::Idle,
            predecessors: Vec::new(),
            exec: None,
            next_dir_check: 0,
            dir_warned: false,
            refusing: Default::default(),
            request: None,
            reload_waiter: None,
            reexec_parent: None,
            successor_knows_history: false,
        }
    }

    pub fn on_event(&mut self, tok: Token, server: &mut Server) {
        match tok.kind {
            Kind::ReconfigListener => self.accept_peers(server),
            Kind::ReconfigPeer if tok.index > 0 => self.refusal_readable(server, tok.index as usize - 1),
            Kind::ReconfigPeer => self.peer_readable(server),
            Kind::Handoff => self.chan_readable(server),
            Kind::Predecessor => {
                self.predecessor_exited(tok.index);
                server.note_draining(self.predecessors.len());
            }
            _ => {}
        }
    }

    // ----- accepting would-be successors -----

    fn accept_peers(&mut self, server: &mut Server) {
        loop {
            let Some(l) = self.reconfig.as_ref() else {
                return;
            };
            match net::unix_accept(l) {
                Ok(Some(peer)) => self.new_peer(peer, server),
                Ok(None) => return,
                Err(e) => {
                    log::warn!("reconfig.sock: accept failed: {}", e.desc());
                    return;
                }
            }
        }
    }

    fn new_peer(&mut self, peer: OwnedFd, server: &mut Server) {
        let pid = match channel::check_peer(&peer) {
            Ok(pid) => pid,
            Err(e) => {
                log::warn!("hot restart refused: {e}; still serving");
                let reason = text("not authorised: run as baton's user or root");
                return self.refuse(server, peer, Msg::Refused { reason });
            }
        };
        if !matches!(self.state, State::Idle) || server.mode() != Mode::Serving {
            log::warn!("hot restart from pid {pid} refused: a handoff is already in progress ({})", self.state.name());
            return self.refuse(server, peer, Msg::Busy);
        }
        if server.poller().add_read(&peer, Token::new(Kind::ReconfigPeer, 0)).is_err() {
            return;
        }
        let deadline = server.now() + server.cfg().settings.handoff_timeout_ms;
        self.set(State::Greeting { peer, pid, deadline });
        self.peer_readable(server);
    }

    fn peer_readable(&mut self, server: &mut Server) {
        let (peer, pid, deadline) = match &self.state {
            State::Greeting { peer, pid, deadline } | State::Offered { peer, pid, deadline } => (peer, *pid, *deadline),
            _ => return,
        };
        let msg = match channel::recv(peer) {
            Ok(None) => return,
            Ok(Some((m, _))) => m,
            Err(HandoffError::Codec(CodecError::Version(v))) => {
                // REFUSED reads the same in every version: tell the successor why
                let mut reason = Text::new();
                let _ = write!(reason, "handoff protocol v{v}; the running baton speaks v{PROTO_VERSION}");
                let _ = channel::send(peer, &Msg::Refused { reason }, &[]);
                let e = HandoffError::Codec(CodecError::Version(v));
                return self.abort(server, &e);
            }
            Err(e) => return self.fail(server, &e),
        };
        match (&self.state, msg) {
            (State::Greeting { .. }, Msg::Hello { pid: claimed, baton_version }) => {
                log::info!("hot restart: pid {pid} (baton {baton_version}, claims pid {claimed}) asks to take over");
                self.successor_knows_history = knows_history(&baton_version);
                if let Err(e) = channel::send(peer, &Msg::Go { pid: std::process::id() }, &[]) {
                    return self.abort(server, &e);
                }
                let State::Greeting { peer, .. } = std::mem::replace(&mut self.state, State::Idle) else {
                    return;
                };
                self.set(State::Offered { peer, pid, deadline });
            }
            (State::Offered { .. }, Msg::Ready) => self.send_sockets(server, pid, deadline),
            (State::Greeting { .. }, Msg::Control { op }) => {
                let State::Greeting { peer, .. } = std::mem::replace(&mut self.state, State::Idle) else {
                    return;
                };
                server.poller().delete(&peer);
                self.control(server, peer, pid, op);
            }
            (_, Msg::Abort { reason }) => self.fail(server, &HandoffError::Refused(reason)),
            _ => self.fail(server, &HandoffError::Unexpected("out-of-order message on reconfig.sock")),
        }
    }

    /// A peer failed: before its HELLO (a control client that closed, timed out or sent
    /// something else) nothing was started, so it is only dropped; after it, the handoff is
    /// aborted (and recorded as a failed hot restart).
    fn fail(&mut self, server: &mut Server, why: &HandoffError) {
        if let State::Greeting { peer, pid, .. } = std::mem::replace(&mut self.state, State::Idle) {
            server.poller().delete(&peer);
            log::warn!("reconfig.sock: pid {pid} closed before any handoff began ({why}); dropped");
            return;
        }
        self.abort(server, why)
    }

    // ----- handing over -----

    fn send_sockets(&mut self, server: &mut Server, pid: i32, deadline: u64) {
        let path = rundir::path(&self.dir, rundir::LISTEN);
        let chan = match net::unix_connect(&path) {
            Ok(c) => c,
            Err(e) => return self.abort(server, &HandoffError::Io("connecting to listen.sock", e)),
        };
        match channel::check_peer(&chan) {
            Ok(p) if p == pid => {}
            Ok(_) => return self.abort(server, &HandoffError::Unexpected("listen.sock is served by another process")),
            Err(e) => return self.abort(server, &e),
        }
        crate::fault::point(crate::fault::OLD_BEFORE_MANIFEST);
        if let Err(e) = self.send_manifest(server, &chan) {
            return self.abort(server, &e);
        }
        crate::fault::point(crate::fault::OLD_AFTER_MANIFEST);
        if let Err(e) = server.poller().add_read(&chan, Token::new(Kind::Handoff, 0)) {
            return self.abort(server, &HandoffError::Io("registering listen.sock", e));
        }
        log::info!("hot restart: sockets sent to pid {pid}, waiting for its ack");
        self.set(State::Sent { chan, pid, deadline });
    }

    fn send_manifest(&self, server: &Server, chan: &OwnedFd) -> Result<(), HandoffError> {
        // only to a successor that knows the record: one from before it would refuse the
        // handoff, and going back to an older build by hot restart would never work
        if self.successor_knows_history && !server.history().is_empty() {
            let events = server.history().iter().cloned().collect();
            channel::send(chan, &Msg::History { events }, &[])?;
        }
        send_health(server, chan)?;
        let own = sys::pidfd_open(std::process::id() as i32).map_err(|e| HandoffError::Io("pidfd_open", e))?;
        let mut items: Vec<(Entry, RawFd)> = Vec::new();
        let entry = |kind, name: &str, addr, pid| Entry { kind, name: text(name), addr, pid };
        for (i, addr, fd) in server.listener_fds() {
            items.push((
                entry(FdKind::Listener, &server.cfg().listeners[i].name, Some(addr.clone()), 0),
                fd.as_raw_fd(),
            ));
        }
        if let Some((addr, fd)) = server.admin_listener() {
            items.push((entry(FdKind::Admin, "admin", Some(addr.into()), 0), fd.as_raw_fd()));
        }
        if let Some((addr, fd)) = server.metrics_listener() {
            items.push((entry(FdKind::Metrics, "metrics", Some(addr.into()), 0), fd.as_raw_fd()));
        }
        if let Some(fd) = &self.reconfig {
            items.push((entry(FdKind::Reconfig, rundir::RECONFIG, None, 0), fd.as_raw_fd()));
        }
        if let Some(fd) = &self.lock {
            items.push((entry(FdKind::Lock, rundir::LOCK, None, 0), fd.as_raw_fd()));
        }
        for p in &self.predecessors {
            items.push((entry(FdKind::Pidfd, "draining", None, p.pid), p.fd.as_raw_fd()));
        }
        items.push((entry(FdKind::Pidfd, "handing-over", None, std::process::id()), own.as_raw_fd()));
        let batches = items.len().div_ceil(MAX_FDS_PER_MSG);
        for (b, chunk) in items.chunks(MAX_FDS_PER_MSG).enumerate() {
            let head = ManifestHead {
                baton_version: text(VERSION),
                totals: *server.totals(),
                batch: b as u16,
                last: b + 1 == batches,
            };
            let entries = chunk.iter().map(|(e, _)| e.clone()).collect();
            let fds: Vec<RawFd> = chunk.iter().map(|(_, fd)| *fd).collect();
            channel::send(chan, &Msg::Manifest { head, entries }, &fds)?;
        }
        Ok(())
    }

    fn chan_readable(&mut self, server: &mut Server) {
        let State::Sent { chan, pid, .. } = &self.state else {
            return;
        };
        let pid = *pid;
        match channel::recv(chan) {
            Ok(None) => {}
            Ok(Some((Msg::Ack { transfer_version, splice, .. }, _))) => {
                self.handed_off(server, pid, transfer_version, splice)
            }
            Ok(Some((Msg::Abort { reason }, _))) => self.abort(server, &HandoffError::Refused(reason)),
            Ok(Some(_)) => self.abort(server, &HandoffError::Unexpected("expected ACK")),
            Err(HandoffError::Closed) => {
                self.abort(server, &HandoffError::Unexpected("the new process exited before its ack"))
            }
            Err(e) => self.abort(server, &e),
        }
    }

    /// The successor serves. Stop accepting, move the established connections if it asked
    /// for them (`transfer`: its transfer version, 0 for none), and drain the rest.
    fn handed_off(&mut self, server: &mut Server, pid: i32, transfer_version: u8, splice: bool) {
        log::info!(
            "hot restart: pid {pid} acknowledged and is serving; this process (pid {}) hands over",
            std::process::id()
        );
        if let Some(fd) = self.reconfig.take() {
            server.poller().delete(&fd);
        }
        if let Some(w) = self.reload_waiter.take() {
            control::reply(w, format_args!("ok: pid {pid} took over and serves; pid {} drains", std::process::id()));
        }
        self.reexec_parent = None;
        self.lock = None;
        self.predecessors.clear();
        let State::Sent { chan, .. } = std::mem::replace(&mut self.state, State::Idle) else {
            return;
        };
        self.set(State::Draining);
        server.poller().delete(&chan);
        server.start_draining(server.cfg().settings.drain_timeout_ms);
        match transfer_decision(transfer_version, splice, server.cfg().settings.splice) {
            Ok(()) if server.active() > 0 => {
                let s = crate::restart::transfer::send(&chan, server, server.cfg().settings.handoff_timeout_ms);
                log::info!(
                    "hot restart: moved {} connections to pid {pid} in {:.1} ms; {} stay here and drain",
                    s.moved,
                    s.elapsed_ms,
                    s.kept
                );
                if let Some(e) = s.error {
                    log::warn!("hot restart: connection transfer stopped early: {e}");
                }
            }
            Ok(()) => {}
            Err(why) => log::info!("hot restart: connections are not moved ({why}); draining them"),
        }
        server.note_kept();
    }

    /// Back to serving as if nothing happened; the PID file names this process again.
    fn abort(&mut self, server: &mut Server, why: &HandoffError) {
        log::warn!("hot restart aborted: {why}; pid {} keeps serving", std::process::id());
        server.note_restart(false, format_args!("aborted: {why}"));
        if let Some(w) = self.reload_waiter.take() {
            control::reply(
                w,
                format_args!("error: hot restart aborted: {why}; pid {} keeps serving", std::process::id()),
            );
        }
        self.reexec_parent = None;
        self.set(State::Idle);
        if server.mode() == Mode::Serving {
            self.write_pid_file();
            crate::notify::ready(server.totals().generation);
        }
    }

    fn set(&mut self, next: State) {
        log::debug!("restart: {} => {}", self.state.name(), next.name());
        self.state = next;
    }

    fn write_pid_file(&self) {
        if let Some(p) = &self.pid_file {
            if pidfile::read(p) != Some(std::process::id()) {
                if let Err(e) = pidfile::write(p, std::process::id()) {
                    log::error!("cannot write the PID file {p}: {e}");
                }
            }
        }
    }

    // ----- timers, predecessors, exit -----

    pub fn tick(&mut self, server: &mut Server) {
        for slot in 0..MAX_REFUSING {
            if self.refusing[slot].as_ref().is_some_and(|r| server.now() >= r.deadline) {
                self.answer_refusal(server, slot);
            }
        }
        if matches!(self.state, State::Idle) {
            self.check_reexec(server);
        }
        if matches!(self.state, State::Idle) && server.now() >= self.next_dir_check {
            self.next_dir_check = server.now() + RUNDIR_CHECK_MS;
            self.repair_rundir(server);
        }
        let deadline = match &self.state {
            State::Greeting { deadline, .. } | State::Offered { deadline, .. } | State::Sent { deadline, .. } => {
                *deadline
            }
            _ => return,
        };
        if server.now() >= deadline {
            self.fail(server, &HandoffError::Timeout("the new process (handoff_timeout)"));
        }
    }

    fn predecessor_exited(&mut self, pid: u32) {
        if let Some(i) = self.predecessors.iter().position(|p| p.pid == pid) {
            self.predecessors.remove(i);
            log::info!("previous generation pid {pid} has exited ({} still draining)", self.predecessors.len());
        }
    }

    /// Tells the oldest draining generations beyond the cap to close now (SIGTERM). Called once
    /// this process has acknowledged the takeover.
    /// No handoff under way (state `Idle`).
    pub fn idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Older generations still draining that this process knows of.
    pub fn draining(&self) -> usize {
        self.predecessors.len()
    }

    pub fn enforce_draining_cap(&mut self, max: usize) {
        let excess = self.predecessors.len().saturating_sub(max);
        for p in self.predecessors.iter_mut().take(excess).filter(|p| !p.told_to_stop) {
            log::warn!("max_draining ({max}) exceeded: telling pid {} to close its connections and exit", p.pid);
            let _ = sys::pidfd_send_signal(p.fd.as_raw_fd(), nix::libc::SIGTERM);
            p.told_to_stop = true;
        }
    }

    /// The owner is told to stop (SIGTERM, SIGINT): every generation still draining is told to
    /// close too (SIGTERM through its pidfd), so stopping the service's main process stops all
    /// of it (an init system that signals only its main PID would otherwise leave them running
    /// until their drain deadline).
    pub fn stop_predecessors(&mut self) {
        for p in self.predecessors.iter_mut().filter(|p| !p.told_to_stop) {
            log::info!("stopping: telling draining generation pid {} to close too", p.pid);
            let _ = sys::pidfd_send_signal(p.fd.as_raw_fd(), nix::libc::SIGTERM);
            p.told_to_stop = true;
        }
    }

    /// At the final stop: the PID file goes if it names us; the owner removes `reconfig.sock`.
    pub fn finish(&mut self) {
        if let Some(p) = &self.pid_file {
            pidfile::remove_if_mine(p, std::process::id());
        }
        if self.lock.is_some() && self.reconfig.is_some() {
            rundir::remove_reconfig(&self.dir);
        }
    }
}

/// Whether this process moves its connections to a successor that acknowledged with
/// The hosts marked down, in `Health` records before the manifest (none when every host is up,
/// so a successor of an older version, which would refuse the record, is only refused when
/// there is health to carry).
fn send_health(server: &Server, chan: &OwnedFd) -> Result<(), HandoffError> {
    let mut hosts = heapless::Vec::new();
    for h in server.hosts_down() {
        if hosts.is_full() {
            channel::send(chan, &Msg::Health { hosts: core::mem::take(&mut hosts) }, &[])?;
        }
        let _ = hosts.push(h);
    }
    if !hosts.is_empty() {
        channel::send(chan, &Msg::Health { hosts }, &[])?;
    }
    Ok(())
}

/// `transfer_version` (0: it does not want them) and relay mode `splice`.
pub fn transfer_decision(transfer_version: u8, splice: bool, own_splice: bool) -> Result<(), &'static str> {
    if transfer_version == 0 {
        return Err("the new process has transfer_connections off");
    }
    if transfer_version != TRANSFER_VERSION {
        return Err("the new process speaks another transfer version");
    }
    if splice != own_splice {
        return Err("the new process's splice setting differs");
    }
    Ok(())
}

/// Whether a baton of `version` (`MAJOR.MINOR...`, as its HELLO says) reads HISTORY records,
/// which came with 0.2.0.
fn knows_history(version: &str) -> bool {
    let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (0, 2),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_goes_only_to_versions_that_read_it() {
        assert!(knows_history("0.2.0") && knows_history("0.2.0-upgrade") && knows_history("1.0.0"));
        assert!(!knows_history("0.1.0") && !knows_history("0.1.9-upgrade") && !knows_history("dev"));
    }

    #[test]
    fn connections_move_only_to_a_successor_that_asks_in_the_same_version_and_mode() {
        assert_eq!(transfer_decision(TRANSFER_VERSION, false, false), Ok(()));
        assert_eq!(transfer_decision(TRANSFER_VERSION, true, true), Ok(()));
        assert!(transfer_decision(0, false, false).is_err());
        assert!(transfer_decision(TRANSFER_VERSION + 1, false, false).is_err(), "another version drains");
        assert!(transfer_decision(TRANSFER_VERSION, true, false).is_err());
    }
}
