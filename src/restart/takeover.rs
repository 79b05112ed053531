//! The new process's side of a hot restart, run once at start-up before the event loop.
//!
//! `begin` asks the running baton (on `reconfig.sock`) to hand over, receives and verifies its
//! descriptors on `listen.sock`, and returns them; the caller builds its server from them and
//! then calls `Takeover::ack`. Every wait is bounded by `handoff_timeout`. Until the ack the old
//! process keeps serving, so any failure here only costs this process (rollback).

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::restart::channel::{self, HandoffError};
use crate::restart::rundir;
use crate::sansio::codec::{text, FdKind, HostHealth, Msg, RestartEvent, Text, MAX_HISTORY, TRANSFER_VERSION};
use crate::sansio::limits::MAX_HEALTH_HOSTS;
use crate::sansio::stats::Totals;
use crate::server::{Inherited, VERSION};
use crate::sys::net;

pub enum Start {
    /// Nobody answers on `reconfig.sock`: start from scratch.
    Cold,
    /// Boxed: the takeover state is large and lives only through start-up.
    Takeover(Box<Takeover>),
}

pub struct Takeover {
    pub inherited: Inherited,
    pub reconfig: Option<OwnedFd>,
    pub lock: Option<OwnedFd>,
    /// Pidfds of processes still draining, oldest first (the handing-over process last).
    pub predecessors: Vec<(u32, OwnedFd)>,
    pub totals: Totals,
    pub from_pid: i32,
    /// The old process died before handing over everything; what is missing is bound fresh.
    pub partial: bool,
    /// Hosts the old process had marked down (`Server::adopt_health`).
    pub health: Vec<HostHealth>,
    /// The old process's restart history (`Server::adopt_history`).
    pub history: heapless::Vec<RestartEvent, MAX_HISTORY>,
    chan: Option<OwnedFd>,
    listen_path: String,
}

/// Connects to a running baton and takes over its sockets, or reports a cold start.
pub fn begin(dir: &str, timeout_ms: u64) -> Result<Start, HandoffError> {
    let Some((conn, old_pid)) = greet(dir, timeout_ms)? else {
        return Ok(Start::Cold);
    };
    crate::fault::point(crate::fault::NEW_AFTER_GO);
    let listen_path = rundir::path(dir, rundir::LISTEN);
    // We hold the one handoff slot (GO), so a file here is a leftover of a failed attempt.
    let _ = nix::unistd::unlink(listen_path.as_str());
    let l = net::unix_listen(&listen_path).map_err(|e| HandoffError::Io("creating listen.sock", e))?;
    let mut t = Takeover {
        inherited: Inherited::default(),
        reconfig: None,
        lock: None,
        predecessors: Vec::new(),
        totals: Totals::default(),
        from_pid: old_pid,
        partial: false,
        health: Vec::new(),
        history: heapless::Vec::new(),
        chan: None,
        listen_path,
    };
    match channel::send(&conn, &Msg::Ready, &[]).and_then(|()| accept_old(&l, old_pid, timeout_ms)) {
        Ok(chan) => t.chan = Some(chan),
        Err(e) => {
            t.cleanup();
            return Err(e);
        }
    }
    if let Err(e) = t.receive(timeout_ms) {
        t.abort(&e.to_string());
        return Err(e);
    }
    crate::fault::point(crate::fault::NEW_AFTER_FDS);
    Ok(Start::Takeover(Box::new(t)))
}

/// HELLO on `reconfig.sock` and the running baton's answer: its PID after GO, `None` when
/// nobody answers (a cold start), an error for BUSY, REFUSED or anything else.
fn greet(dir: &str, timeout_ms: u64) -> Result<Option<(OwnedFd, i32)>, HandoffError> {
    // the directory is this user's alone (`rundir::prepare`), but it may have been chowned to
    // us with a socket another user bound in it before
    let me = nix::unistd::geteuid().as_raw();
    match nix::sys::stat::lstat(rundir::path(dir, rundir::RECONFIG).as_str()) {
        Ok(st) if st.st_uid != me => return Err(HandoffError::ForeignSocket { uid: st.st_uid }),
        _ => {}
    }
    let conn = match net::unix_connect(&rundir::path(dir, rundir::RECONFIG)) {
        Ok(c) => c,
        Err(Errno::ENOENT | Errno::ECONNREFUSED) => return Ok(None),
        Err(e) => return Err(HandoffError::Io("connecting to reconfig.sock", e)),
    };
    // uid only: on this side SO_PEERCRED names the socket's creator, not the current owner
    channel::check_peer(&conn)?;
    channel::send(&conn, &Msg::Hello { pid: std::process::id(), baton_version: text(VERSION) }, &[])?;
    match channel::recv_wait(&conn, timeout_ms, "the running baton's answer")?.0 {
        Msg::Go { pid } => Ok(Some((conn, pid as i32))),
        Msg::Busy => Err(HandoffError::Busy),
        Msg::Refused { reason } => Err(HandoffError::Refused(reason)),
        _ => Err(HandoffError::Unexpected("expected GO")),
    }
}

/// The running baton's connection to `listen.sock`, checked to come from the process that
/// said GO.
fn accept_old(l: &OwnedFd, old_pid: i32, timeout_ms: u64) -> Result<OwnedFd, HandoffError> {
    let late = HandoffError::Timeout("the running baton to connect to listen.sock");
    if !net::wait_readable(l, timeout_ms).map_err(|e| HandoffError::Io("waiting on listen.sock", e))? {
        return Err(late);
    }
    let chan = net::unix_accept(l).map_err(|e| HandoffError::Io("accepting on listen.sock", e))?.ok_or(late)?;
    if channel::check_peer(&chan)? != old_pid {
        return Err(HandoffError::Unexpected("listen.sock was reached by another process than the one that answered"));
    }
    Ok(chan)
}

impl Takeover {
    fn receive(&mut self, timeout_ms: u64) -> Result<(), HandoffError> {
        let chan = self.chan.take().ok_or(HandoffError::Closed)?;
        let r = self.receive_batches(&chan, timeout_ms);
        self.chan = Some(chan);
        r
    }

    fn receive_batches(&mut self, chan: &OwnedFd, timeout_ms: u64) -> Result<(), HandoffError> {
        let mut expect_batch = 0u16;
        loop {
            let (m, fds) = match channel::recv_wait(chan, timeout_ms, "the listening sockets") {
                Ok(r) => r,
                Err(HandoffError::Closed) => {
                    // the old process died mid-handoff: keep what arrived, bind the rest once its
                    // sockets are really gone (a pidfd turns readable after the exit closed them)
                    wait_for_exit(self.from_pid, timeout_ms);
                    log::warn!(
                        "hot restart: pid {} closed the handoff after {} batches; binding what is missing",
                        self.from_pid,
                        expect_batch
                    );
                    self.partial = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let (head, entries) = match m {
                Msg::Manifest { head, entries } => (head, entries),
                // before the first batch: the hosts the old process has marked down
                Msg::Health { hosts } if expect_batch == 0 && self.health.len() + hosts.len() <= MAX_HEALTH_HOSTS => {
                    self.health.extend(hosts);
                    continue;
                }
                // before the first batch: the last hot restarts, for the status page
                Msg::History { events } if expect_batch == 0 => {
                    self.history = events;
                    continue;
                }
                _ => return Err(HandoffError::Unexpected("expected a manifest batch")),
            };
            if head.batch != expect_batch {
                return Err(HandoffError::Unexpected("manifest batches out of order"));
            }
            expect_batch += 1;
            self.totals = head.totals;
            for (e, fd) in entries.iter().zip(fds) {
                self.adopt(e.kind, &e.name, e.addr.clone(), e.pid, fd)?;
            }
            if head.last {
                log::info!("hot restart: received the sockets of pid {} (baton {})", self.from_pid, head.baton_version);
                return Ok(());
            }
        }
    }

    fn adopt(
        &mut self,
        kind: FdKind,
        name: &Text,
        addr: Option<crate::sansio::addr::Addr>,
        pid: u32,
        fd: OwnedFd,
    ) -> Result<(), HandoffError> {
        let bad = |what| HandoffError::Verify { name: name.clone(), what };
        match kind {
            FdKind::Listener => {
                let addr = addr.ok_or(bad("no address announced"))?;
                net::verify_listener(&fd, &addr).map_err(bad)?;
                self.inherited.listeners.push((addr, fd));
            }
            FdKind::Admin | FdKind::Metrics => {
                let addr = addr.and_then(|a| a.ip()).ok_or(bad("no IP address announced"))?;
                net::verify_tcp_listener(&fd, &addr).map_err(bad)?;
                match kind {
                    FdKind::Admin => self.inherited.admin = Some((addr, fd)),
                    _ => self.inherited.metrics = Some((addr, fd)),
                }
            }
            FdKind::Reconfig => {
                net::verify_unix_listener(&fd).map_err(bad)?;
                self.reconfig = Some(fd);
            }
            FdKind::Lock => {
                let md = nix::sys::stat::fstat(&fd).map_err(|_| bad("fstat failed"))?;
                if md.st_mode & nix::libc::S_IFMT != nix::libc::S_IFREG {
                    return Err(bad("the lock is not a regular file"));
                }
                self.lock = Some(fd);
            }
            FdKind::Pidfd => self.predecessors.push((pid, fd)),
        }
        Ok(())
    }

    /// Tells the old process we are serving. It may be gone already; that is fine. With
    /// `transfer`, asks for its established connections and returns the connection they come
    /// on (see `transfer::receive`); `splice` is this process's relay mode.
    pub fn ack(mut self, transfer: bool, splice: bool) -> Option<OwnedFd> {
        self.cleanup();
        let chan = self.chan.take()?;
        let version = if transfer {
            crate::fault::value(crate::fault::ANNOUNCED_TRANSFER_VERSION).unwrap_or(TRANSFER_VERSION)
        } else {
            0
        };
        if let Err(e) =
            channel::send(&chan, &Msg::Ack { pid: std::process::id(), transfer_version: version, splice }, &[])
        {
            log::warn!("hot restart: could not acknowledge to pid {}: {e}", self.from_pid);
            return None;
        }
        transfer.then_some(chan)
    }

    /// Tells the old process to carry on serving (rollback) and removes our socket file.
    pub fn abort(&mut self, reason: &str) {
        if let Some(chan) = self.chan.take() {
            let _ = channel::send(&chan, &Msg::Abort { reason: text(reason) }, &[]);
        }
        self.cleanup();
    }

    fn cleanup(&mut self) {
        let _ = nix::unistd::unlink(self.listen_path.as_str());
    }
}

/// Waits (bounded) until process `pid` has exited, so the ports it held are free again.
fn wait_for_exit(pid: i32, timeout_ms: u64) {
    if let Ok(fd) = crate::sys::pidfd_open(pid) {
        let _ = net::wait_readable(&fd, timeout_ms);
    }
}
