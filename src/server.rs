//! The proxy's event loop state: listeners, the connection table, the admin endpoint and timers.
//!
//! Everything is sized once in `Server::new` from the config (connection slots, one buffer arena,
//! the free list, the epoll event array); after that, accepting, proxying and closing never
//! allocate. A connection is a slot index plus a 16-bit generation in its epoll token, so an event
//! for a slot that was closed and reused is dropped. Events that belong to the layers above
//! (signals, hot-restart sockets) are handed back to the caller by `handle`.

use core::net::SocketAddr;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use crate::config::{Config, MAX_HOSTS, MAX_LISTENERS};
use crate::conn::{Conn, ConnState, Outcome, Phase, Side};
use crate::lb::{self, HealthChange, HostState};
use crate::net::{self, FdTransport, SpliceTransport};
use crate::poller::{Event, Kind, Poller, Token};
use crate::stats::{ListenerCounters, Snapshot, Totals, TransferCounters};
use crate::{admin, sys};

/// The package version, or `BATON_VERSION` when set at build time (the firmware test builds a
/// second, differently named binary to show an upgrade by hot restart).
pub const VERSION: &str = match option_env!("BATON_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};
/// Timer resolution: connect, idle, admin and drain deadlines are checked this often.
pub const TICK_MS: u64 = 250;
/// Descriptors needed besides two per connection: listeners, admin, epoll, signalfd,
/// control sockets, the lock, stdio, and slack for a handoff in progress.
pub const FD_OVERHEAD: u64 = 64 + MAX_LISTENERS as u64;
/// Largest buffer arena (`max_connections × 2 × buffer_size`) baton reserves.
pub const MAX_BUFFER_MEMORY: u64 = 1 << 30;
/// `Slot::host` of a transferred connection whose upstream host is no longer in its cluster:
/// the connection goes on, it is just not counted against a host.
const NO_HOST: u8 = u8::MAX;

/// Why the server could not start. Each says what to change.
#[derive(Debug)]
pub enum StartError {
    Bind { listener: crate::config::Name, addr: SocketAddr, errno: Errno },
    AdminBind { addr: SocketAddr, errno: Errno },
    FdLimit { need: u64, hard: u64 },
    Memory { bytes: u64 },
    Poller(Errno),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Bind { listener, addr, errno: Errno::EADDRINUSE } => write!(f, "listener \"{listener}\": {addr} is already in use by another program; stop it or change the listener's address"),
            Self::Bind { listener, addr, errno: Errno::EACCES } => write!(f, "listener \"{listener}\": binding {addr} needs privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE)"),
            Self::Bind { listener, addr, errno } => write!(f, "listener \"{listener}\": cannot listen on {addr}: {}", errno.desc()),
            Self::AdminBind { addr, errno } => write!(f, "admin: cannot listen on {addr}: {}; change admin.address", errno.desc()),
            Self::FdLimit { need, hard } => write!(f, "max_connections needs {need} file descriptors but the hard limit (ulimit -Hn) is {hard}; lower baton.max_connections or raise the limit"),
            Self::Memory { bytes } => write!(f, "cannot reserve {} MiB of buffers; lower baton.max_connections or baton.buffer_size", bytes >> 20),
            Self::Poller(e) => write!(f, "cannot create the event loop: {}", e.desc()),
        }
    }
}

/// Listening sockets handed over by a predecessor, by address.
#[derive(Default)]
pub struct Inherited {
    pub listeners: Vec<(SocketAddr, OwnedFd)>,
    pub admin: Option<(SocketAddr, OwnedFd)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Serving,
    /// Not accepting; finishing open connections until the deadline (monotonic ms).
    Draining {
        deadline: u64,
    },
    Stopped,
}

struct Slot {
    conn: Conn,
    fds: [Option<OwnedFd>; 2],
    /// Whether epoll currently reports writability for each side (see `Poller::want_writable`).
    out: [bool; 2],
    /// Splice mode only: a pipe per direction, created at accept.
    pipes: Option<[net::Pipe; 2]>,
    gen: u16,
    used: bool,
    /// Has an entry in `requeue` (see there).
    queued: bool,
    listener: u8,
    host: u8,
    attempts: u8,
    /// Hosts tried for this client (bit per host index).
    tried: u64,
    /// Connect deadline while connecting, idle deadline once open (monotonic ms).
    deadline: u64,
}

pub struct Server {
    pub cfg: Config,
    pub poller: Poller,
    /// This process's copy of each listening socket, by config index; `None` once draining.
    pub listeners: heapless::Vec<Option<OwnedFd>, MAX_LISTENERS>,
    pub listener_counters: heapless::Vec<ListenerCounters, MAX_LISTENERS>,
    pub admin: admin::Admin,
    slots: Vec<Slot>,
    free: Vec<u32>,
    bufs: Box<[u8]>,
    buf_size: usize,
    /// Splice mode: the size each new pipe is set to; `None` keeps the kernel's 64 KiB.
    pipe_size: Option<usize>,
    /// Slots whose connection stopped at its per-wake-up budget (`conn::READS_PER_PUMP`) with
    /// work left; pumped again after each batch of events, before epoll is asked (without
    /// waiting) for more. A slot's `queued` flag stays set until its entry is taken, even if
    /// the slot is freed and reused meanwhile, so there is at most one entry per slot and the
    /// capacity reserved at start (`max_connections`) is never exceeded.
    requeue: Vec<u32>,
    /// Splice mode: the pipes for the next accepted connection, made before it is accepted.
    spare_pipes: Option<[net::Pipe; 2]>,
    hosts: heapless::Vec<heapless::Vec<HostState, MAX_HOSTS>, MAX_LISTENERS>,
    pub totals: Totals,
    /// Connections moved in and out by hot restarts, kept, and drained (this process only).
    pub transfer: TransferCounters,
    pub active: u32,
    pub mode: Mode,
    /// Table full or out of descriptors: accepting waits for a slot to free.
    paused: bool,
    resume: bool,
    /// Paused for lack of descriptors or memory, not yet recovered (logged once per episode).
    starved: bool,
    clock: Instant,
    pub now: u64,
    last_tick: u64,
    rng: u64,
}

impl Server {
    /// Binds (or adopts from `inherited`) every listener, registers everything, and sizes every
    /// table. Inherited sockets the config no longer has are closed here.
    pub fn new(cfg: Config, inherited: &mut Inherited) -> Result<Server, StartError> {
        let st = &cfg.settings;
        // two sockets per connection, plus two pipes (four descriptors) in splice mode
        let per_conn = if st.splice { 6 } else { 2 };
        raise_fd_limit(per_conn * st.max_connections as u64 + FD_OVERHEAD + admin::MAX_ADMIN_CONNS as u64)?;
        let slots_with_buffers = if st.splice { 1 } else { st.max_connections as u64 };
        let arena = slots_with_buffers * 2 * st.buffer_size as u64;
        if arena > MAX_BUFFER_MEMORY || arena > usize::MAX as u64 {
            return Err(StartError::Memory { bytes: arena });
        }
        let bufs = sys::zeroed_buffer(arena as usize).ok_or(StartError::Memory { bytes: arena })?;
        let poller = Poller::new().map_err(StartError::Poller)?;
        let n = st.max_connections as usize;
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, || Slot {
            conn: Conn::new(),
            fds: [None, None],
            out: [false, false],
            pipes: None,
            gen: 0,
            used: false,
            queued: false,
            listener: 0,
            host: 0,
            attempts: 0,
            tried: 0,
            deadline: 0,
        });
        let hosts = cfg.clusters.iter().map(|c| c.hosts.iter().map(|_| HostState::default()).collect()).collect();
        let admin = admin::Admin::new(&cfg, &poller, inherited)?;
        let mut s = Server {
            listeners: heapless::Vec::new(),
            listener_counters: heapless::Vec::new(),
            admin,
            free: (0..n as u32).rev().collect(),
            slots,
            buf_size: st.buffer_size as usize,
            pipe_size: pipe_size(st.buffer_size as usize),
            spare_pipes: None,
            requeue: Vec::with_capacity(n),
            bufs,
            hosts,
            totals: Totals::default(),
            transfer: TransferCounters::default(),
            active: 0,
            mode: Mode::Serving,
            paused: false,
            starved: false,
            resume: false,
            clock: Instant::now(),
            now: 0,
            last_tick: 0,
            rng: seed(),
            poller,
            cfg,
        };
        s.open_listeners(inherited)?;
        inherited.listeners.clear();
        Ok(s)
    }

    fn open_listeners(&mut self, inherited: &mut Inherited) -> Result<(), StartError> {
        for (i, l) in self.cfg.listeners.iter().enumerate() {
            let fd = match inherited.listeners.iter().position(|(a, _)| *a == l.addr) {
                Some(p) => {
                    log::info!("listener \"{}\" on {}: adopted from the previous process", l.name, l.addr);
                    inherited.listeners.swap_remove(p).1
                }
                None => {
                    let fd = net::listen(&l.addr, self.cfg.settings.backlog).map_err(|errno| StartError::Bind {
                        listener: l.name.clone(),
                        addr: l.addr,
                        errno,
                    })?;
                    log::info!("listener \"{}\" on {}: bound", l.name, l.addr);
                    fd
                }
            };
            self.poller.add_read(&fd, Token::new(Kind::Listener, i)).map_err(StartError::Poller)?;
            let _ = self.listeners.push(Some(fd));
            let _ = self.listener_counters.push(ListenerCounters::default());
        }
        for (addr, _) in &inherited.listeners {
            log::info!("listener on {addr}: not in the new config, closed");
        }
        Ok(())
    }

    /// Waits for events (at most one tick) and updates the clock. Returns the number ready.
    pub fn poll(&mut self) -> Result<usize, Errno> {
        let wait = if self.requeue.is_empty() {
            (self.last_tick + TICK_MS).saturating_sub(self.now).clamp(1, TICK_MS)
        } else {
            0 // connections have work left: look for events, do not sleep
        };
        let n = self.poller.wait(wait as u16)?;
        self.now = self.clock.elapsed().as_millis() as u64;
        Ok(n)
    }

    /// Handles event `i` of the last `poll`; returns it when it belongs to a layer above.
    pub fn handle(&mut self, i: usize) -> Option<Event> {
        let ev = self.poller.event(i);
        let tok = ev.token?;
        match tok.kind {
            Kind::Listener => self.accept_from(tok.index as usize),
            Kind::Conn => self.conn_event(tok, ev),
            Kind::AdminListener | Kind::Admin => self.admin_event(tok),
            _ => return Some(ev),
        }
        None
    }

    /// Work after a batch of events: resume accepting, run timers when a tick is due.
    pub fn after_events(&mut self) {
        self.run_requeued();
        if self.resume {
            self.resume = false;
            self.resume_accepting();
        }
        if self.now >= self.last_tick + TICK_MS {
            self.last_tick = self.now;
            self.tick();
        }
        if let Mode::Draining { .. } = self.mode {
            if self.active == 0 && !self.admin.busy() {
                self.mode = Mode::Stopped;
            }
        }
    }

    /// One turn of the loop for callers with nothing else to handle (tests, benchmarks).
    pub fn turn(&mut self) -> Result<(), Errno> {
        let n = self.poll()?;
        for i in 0..n {
            self.handle(i);
        }
        self.after_events();
        Ok(())
    }

    // ----- accepting -----

    fn accept_from(&mut self, li: usize) {
        if self.mode != Mode::Serving {
            return;
        }
        while let Some(&idx) = self.free.last() {
            if self.listeners[li].is_none() {
                return;
            }
            // splice mode: the connection's pipes come first, so a failed pipe2 (out of
            // descriptors or pipe memory) leaves the client waiting in the backlog, as EMFILE does
            if self.cfg.settings.splice && self.spare_pipes.is_none() {
                match (net::pipe(self.pipe_size), net::pipe(self.pipe_size)) {
                    (Ok(a), Ok(b)) => self.spare_pipes = Some([a, b]),
                    (Err(e), _) | (_, Err(e)) => return self.pause(e),
                }
            }
            let Some(fd) = self.listeners[li].as_ref() else {
                return;
            };
            match net::accept(fd) {
                Ok(Some(client)) => self.open(li, idx as usize, client),
                Ok(None) => return,
                Err(e @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    self.pause(e);
                    return;
                }
                Err(e) => {
                    log::warn!("listener \"{}\": accept failed: {}", self.cfg.listeners[li].name, e.desc());
                    return;
                }
            }
        }
        self.pause(Errno::EUSERS);
    }

    fn pause(&mut self, why: Errno) {
        let starving = why != Errno::EUSERS;
        // logged once: when a pause starts, and once per starvation episode (ticks retry)
        let already_said = self.paused || (starving && self.starved);
        if !already_said {
            match why {
                Errno::EUSERS => log::warn!(
                    "max_connections ({}) reached: new clients wait in the backlog",
                    self.cfg.settings.max_connections
                ),
                e => log::warn!("accept paused until descriptors free up (retried every tick): {}", e.desc()),
            }
        }
        self.paused = true;
        self.starved |= starving;
    }

    fn resume_accepting(&mut self) {
        if !self.paused || self.free.is_empty() {
            return;
        }
        self.paused = false;
        for li in 0..self.listeners.len() {
            self.accept_from(li);
        }
    }

    fn open(&mut self, li: usize, idx: usize, client: OwnedFd) {
        self.free.pop();
        let s = &mut self.slots[idx];
        s.gen = s.gen.wrapping_add(1);
        s.used = true;
        s.conn = Conn::new();
        s.listener = li as u8;
        s.tried = 0;
        s.attempts = 0;
        let tok = conn_token(idx, s.gen, Side::Client);
        let _ = self.poller.add_read(&client, tok);
        s.fds = [Some(client), None];
        s.out = [false, false];
        if self.cfg.settings.splice {
            s.pipes = self.spare_pipes.take();
        }
        self.active += 1;
        self.totals.accepted += 1;
        let c = &mut self.listener_counters[li];
        c.accepted += 1;
        c.active += 1;
        log::debug!("conn {idx}: accepted on listener {li}");
        if self.cfg.settings.splice && self.slots[idx].pipes.is_none() {
            self.totals.refused += 1;
            return self.close(idx, true);
        }
        self.connect_next(idx);
    }

    // ----- upstream connect, failover, health -----

    fn connect_next(&mut self, idx: usize) {
        let li = self.slots[idx].listener as usize;
        let ci = self.cfg.listeners[li].cluster;
        loop {
            let s = &mut self.slots[idx];
            let cluster = &self.cfg.clusters[ci];
            let picked = if s.attempts < self.cfg.settings.connect_attempts {
                lb::pick(cluster.lb, &cluster.hosts, &mut self.hosts[ci], s.tried, self.now, &mut self.rng)
            } else {
                None
            };
            let Some(h) = picked else {
                self.totals.refused += 1;
                log::debug!("conn {idx}: no upstream reachable, closing the client");
                return self.close(idx, true);
            };
            s.tried |= 1 << h;
            s.attempts += 1;
            s.host = h as u8;
            match net::connect(&cluster.hosts[h].addr) {
                Ok(fd) => {
                    if self.starved {
                        self.starved = false;
                        log::info!("descriptors available again: accepting");
                    }
                    // writability reports the connect's completion; dropped once connected
                    let _ = self.poller.add(&fd, conn_token(idx, s.gen, Side::Upstream));
                    s.out[1] = true;
                    s.fds[1] = Some(fd);
                    s.deadline = self.now + self.cfg.settings.connect_timeout_ms;
                    return;
                }
                // out of descriptors or memory here: not the host's fault; the client is
                // closed and accepting pauses until a connection frees what it holds
                Err(e @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    self.totals.refused += 1;
                    self.close(idx, true);
                    return self.pause(e);
                }
                Err(e) => self.host_failed(ci, h, e),
            }
        }
    }

    fn host_failed(&mut self, ci: usize, h: usize, e: Errno) {
        self.totals.upstream_failures += 1;
        let st = &self.cfg.settings;
        let change = lb::on_failure(&mut self.hosts[ci][h], self.now, st.fail_threshold, st.down_time_ms);
        if change == HealthChange::MarkedDown {
            let c = &self.cfg.clusters[ci];
            log::warn!(
                "cluster \"{}\": host {} marked down for {} ms after {} failed connects (last: {})",
                c.name,
                c.hosts[h].addr,
                st.down_time_ms,
                st.fail_threshold,
                e.desc()
            );
        }
    }

    fn connected(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &mut self.slots[idx];
        let h = s.host as usize;
        s.conn.on_connected();
        s.deadline = idle_deadline(self.now, self.cfg.settings.idle_timeout_ms);
        let hs = &mut self.hosts[ci][h];
        hs.active += 1;
        hs.total += 1;
        if lb::on_success(hs) == HealthChange::MarkedUp {
            let c = &self.cfg.clusters[ci];
            log::info!("cluster \"{}\": host {} is up again", c.name, c.hosts[h].addr);
        }
    }

    fn cluster_of(&self, idx: usize) -> usize {
        self.cfg.listeners[self.slots[idx].listener as usize].cluster
    }

    // ----- proxying -----

    fn conn_event(&mut self, tok: Token, ev: Event) {
        let idx = tok.index as usize;
        let Some(s) = self.slots.get_mut(idx) else {
            return;
        };
        if !s.used || s.gen != tok.gen {
            return; // a late event for a closed or reused slot
        }
        let side = if tok.side == 0 { Side::Client } else { Side::Upstream };
        if side == Side::Upstream && s.conn.phase == Phase::Connecting {
            if !(ev.writable || ev.readable) {
                return;
            }
            // writable without an error means connected; SO_ERROR is read only to name a failure
            let failed = if ev.err {
                s.fds[1].as_ref().map_or(Some(Errno::EBADF), |fd| net::take_error(fd).or(Some(Errno::ECONNREFUSED)))
            } else {
                None
            };
            match failed {
                None => self.connected(idx),
                Some(e) => {
                    self.slots[idx].fds[1] = None;
                    let (ci, h) = (self.cluster_of(idx), self.slots[idx].host as usize);
                    self.host_failed(ci, h, e);
                    return self.connect_next(idx);
                }
            }
        }
        // an error or hang-up on an open connection (e.g. a client that sent its data and FIN,
        // then reset): the reading side may be finished already and would never look again, so
        // the error is read here and the other side is reset at once
        if ev.err && self.slots[idx].conn.phase == Phase::Open {
            if let Some(e) = self.slots[idx].fds[side as usize].as_ref().and_then(net::take_error) {
                log::debug!("conn {idx}: {side:?} side failed ({}); resetting the other side", e.desc());
                return self.close(idx, true);
            }
        }
        self.slots[idx].conn.on_ready(side, ev.readable, ev.writable, ev.hup);
        self.drive(idx);
    }

    /// Asks epoll for writability of a side exactly while a write to it is blocked.
    fn sync_interest(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        if s.conn.phase != Phase::Open {
            return; // while connecting, writability is how the connect reports completion
        }
        for side in [Side::Client, Side::Upstream] {
            let want = s.conn.wants_writable(side);
            if want != s.out[side as usize] {
                if let Some(fd) = &s.fds[side as usize] {
                    let _ = self.poller.want_writable(fd, conn_token(idx, s.gen, side), want);
                }
                s.out[side as usize] = want;
            }
        }
    }

    fn drive(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        let (Some(c), Some(u)) = (&s.fds[0], &s.fds[1]) else {
            return;
        };
        // splice mode moves bytes inside the kernel; the arena is one scratch pair whose lengths
        // serve as byte counts
        let base = if self.cfg.settings.splice { 0 } else { idx * 2 * self.buf_size };
        let (b0, b1) = self.bufs[base..base + 2 * self.buf_size].split_at_mut(self.buf_size);
        let outcome = match &s.pipes {
            Some(pipes) => s.conn.pump(&mut SpliceTransport { socks: [c, u], pipes }, [b0, b1]),
            None => s.conn.pump(&mut FdTransport { fds: [c.as_raw_fd(), u.as_raw_fd()] }, [b0, b1]),
        };
        match outcome {
            Outcome::Open => {
                self.sync_interest(idx);
                let s = &mut self.slots[idx];
                if s.conn.has_work() && !s.queued {
                    s.queued = true;
                    self.requeue.push(idx as u32);
                }
            }
            Outcome::Done => self.close(idx, false),
            Outcome::Reset => self.close(idx, true),
        }
    }

    /// Pumps once more every connection that stopped at its budget (those still with work
    /// left queue themselves again, behind the others). No allocation: `requeue` never grows
    /// past its start-up capacity (one entry per slot, guarded by `queued`).
    fn run_requeued(&mut self) {
        let n = self.requeue.len();
        for k in 0..n {
            let idx = self.requeue[k] as usize;
            self.slots[idx].queued = false;
            if self.slots[idx].used {
                // whoever holds the slot now: an extra pump finds nothing to do at worst
                self.drive(idx);
            }
        }
        self.requeue.drain(..n);
    }

    /// Closes both sockets (with RST when `reset`) and frees the slot.
    fn close(&mut self, idx: usize, reset: bool) {
        let s = &mut self.slots[idx];
        for fd in s.fds.iter_mut().filter_map(Option::take) {
            if reset {
                net::reset(fd);
            }
        }
        if let Mode::Draining { .. } = self.mode {
            self.transfer.drained += 1;
        }
        self.totals.rx += s.conn.flows[0].bytes;
        self.totals.tx += s.conn.flows[1].bytes;
        self.free_slot(idx);
        log::debug!("conn {idx}: closed{}", if reset { " with reset" } else { "" });
    }

    /// Frees slot `idx` after its connection has ended here or moved away: drops whatever
    /// descriptors it still holds (a plain close) and takes it out of every gauge.
    fn free_slot(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &mut self.slots[idx];
        s.fds = [None, None];
        s.pipes = None;
        if s.conn.phase == Phase::Open && s.host != NO_HOST {
            let hs = &mut self.hosts[ci][s.host as usize];
            hs.active = hs.active.saturating_sub(1);
        }
        s.used = false;
        s.conn = Conn::new();
        let c = &mut self.listener_counters[s.listener as usize];
        c.active = c.active.saturating_sub(1);
        self.active -= 1;
        self.free.push(idx as u32);
        self.resume |= self.paused;
    }

    // ----- timers -----

    fn tick(&mut self) {
        let now = self.now;
        // paused for lack of descriptors or memory: try again each tick, in case the limit was
        // raised or another process freed some (a full table waits for a close instead)
        self.resume |= self.paused;
        for idx in 0..self.slots.len() {
            let s = &mut self.slots[idx];
            if !s.used {
                continue;
            }
            if s.conn.phase == Phase::Connecting {
                if s.deadline <= now {
                    s.fds[1] = None;
                    let (ci, h) = (self.cluster_of(idx), self.slots[idx].host as usize);
                    self.host_failed(ci, h, Errno::ETIMEDOUT);
                    self.connect_next(idx);
                }
            } else if s.conn.active {
                s.conn.active = false;
                s.deadline = idle_deadline(now, self.cfg.settings.idle_timeout_ms);
            } else if s.deadline <= now {
                self.totals.idle_timeouts += 1;
                log::debug!("conn {idx}: idle timeout");
                self.close(idx, false);
            }
        }
        self.admin.tick(now);
        if let Mode::Draining { deadline } = self.mode {
            if now >= deadline {
                log::warn!("drain deadline reached: closing {} connections still open", self.active);
                self.close_all();
            }
        }
    }

    /// Closes every connection (used at a hard stop and at the drain deadline).
    pub fn close_all(&mut self) {
        for idx in 0..self.slots.len() {
            if self.slots[idx].used {
                self.close(idx, false);
            }
        }
    }

    // ----- lifecycle -----

    /// Stops accepting and closes this process's copies of the listening sockets (they stay
    /// open in the successor, so no queued client is lost), then drains until `drain_ms`.
    pub fn start_draining(&mut self, drain_ms: u64) {
        for l in self.listeners.iter_mut() {
            if let Some(fd) = l.take() {
                self.poller.delete(&fd);
            }
        }
        self.admin.shut(&self.poller);
        self.mode = Mode::Draining { deadline: self.now + drain_ms };
        log::info!("draining {} connections for at most {} ms", self.active, drain_ms);
    }

    /// The listening sockets this process owns, for a handoff: (listener index, address, fd).
    pub fn listener_fds(&self) -> impl Iterator<Item = (usize, SocketAddr, &OwnedFd)> {
        self.listeners.iter().enumerate().filter_map(|(i, l)| l.as_ref().map(|fd| (i, self.cfg.listeners[i].addr, fd)))
    }

    pub fn uptime_s(&self) -> u64 {
        self.clock.elapsed().as_secs()
    }

    /// Everything `/stats` and `/metrics` show, as of now.
    pub fn snapshot(&self, state: &'static str) -> Snapshot<'_> {
        let (mut rx, mut tx) = (0, 0);
        for s in self.slots.iter().filter(|s| s.used) {
            rx += s.conn.flows[0].bytes;
            tx += s.conn.flows[1].bytes;
        }
        Snapshot {
            pid: std::process::id(),
            version: VERSION,
            state,
            uptime_s: self.uptime_s(),
            now_ms: self.now,
            active: self.active,
            max_connections: self.cfg.settings.max_connections,
            live_rx: rx,
            live_tx: tx,
            totals: &self.totals,
            transfer: &self.transfer,
            cfg: &self.cfg,
            listeners: &self.listener_counters,
            hosts: &self.hosts,
        }
    }

    fn admin_event(&mut self, tok: Token) {
        let state = match self.mode {
            Mode::Serving => "serving",
            _ => "draining",
        };
        let mut a = core::mem::take(&mut self.admin);
        a.on_event(tok, self, state);
        self.admin = a;
    }
}

// ----- live connection transfer (driven by `transfer`; see docs/hot-restart.md) -----

/// Why a connection offered by a predecessor stays with it.
pub type Decline = &'static str;

impl Server {
    /// Connections that can move to a successor: established, with both sockets open. Those
    /// still connecting upstream stay and drain.
    pub fn transferable(&self) -> Vec<u32> {
        let open = |s: &Slot| s.used && s.conn.phase == Phase::Open && s.fds[0].is_some() && s.fds[1].is_some();
        (0..self.slots.len() as u32).filter(|&i| open(&self.slots[i as usize])).collect()
    }

    /// Stops touching connection `idx` (removes it from epoll) and describes it. The slot keeps
    /// its descriptors until `release_moved` or `resume`.
    pub fn detach(&mut self, idx: usize) -> ConnState {
        let s = &self.slots[idx];
        for fd in s.fds.iter().flatten() {
            self.poller.delete(fd);
        }
        let l = &self.cfg.listeners[s.listener as usize];
        let c = &self.cfg.clusters[l.cluster];
        let idle_left_ms = if s.conn.active {
            self.cfg.settings.idle_timeout_ms
        } else if s.deadline == u64::MAX {
            u64::MAX
        } else {
            s.deadline.saturating_sub(self.now)
        };
        ConnState {
            listener: l.addr,
            cluster: crate::handoff::codec::text(&c.name),
            // the upstream socket's real peer: a host that has left the cluster is still where
            // the connection goes, and the next successor checks the socket against it
            host: s.fds[1]
                .as_ref()
                .and_then(net::peer_addr)
                .or_else(|| c.hosts.get(s.host as usize).map(|h| h.addr))
                .unwrap_or(l.addr),
            flows: s.conn.export(),
            idle_left_ms,
        }
    }

    /// The descriptors that travel with connection `idx`: client, upstream, and in splice mode
    /// both pipes' read and write ends.
    pub fn conn_fds(&self, idx: usize) -> heapless::Vec<std::os::fd::RawFd, 6> {
        let s = &self.slots[idx];
        let mut v = heapless::Vec::new();
        for fd in s.fds.iter().flatten() {
            let _ = v.push(fd.as_raw_fd());
        }
        for (r, w) in s.pipes.iter().flatten() {
            let _ = v.push(r.as_raw_fd());
            let _ = v.push(w.as_raw_fd());
        }
        v
    }

    /// The bytes of `flow` read and not yet written (user-buffer mode; empty in splice mode,
    /// where they stay in the pipe).
    pub fn pending(&self, idx: usize, flow: usize) -> &[u8] {
        if self.cfg.settings.splice {
            return &[];
        }
        let f = &self.slots[idx].conn.flows[flow];
        let base = (idx * 2 + flow) * self.buf_size;
        &self.bufs[base + f.head as usize..base + f.tail as usize]
    }

    /// The successor took connection `idx`: close this process's copies of its descriptors
    /// (a plain close: the sockets live on in the successor) and free the slot.
    pub fn release_moved(&mut self, idx: usize) {
        self.free_slot(idx);
        self.transfer.sent += 1;
    }

    /// A detached connection did not move: register it again and carry on (it drains here).
    pub fn resume(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        for (side, fd) in s.fds.iter().enumerate() {
            if let Some(fd) = fd {
                let side = if side == 0 { Side::Client } else { Side::Upstream };
                let _ = self.poller.add_read(fd, conn_token(idx, s.gen, side));
            }
        }
        s.out = [false, false];
        s.conn.resume();
        self.drive(idx);
    }

    /// Takes a connection offered by the predecessor into a free slot and registers its
    /// sockets, without touching them: it runs only after `commit`. `fds` are checked with the
    /// kernel against what the state says.
    pub fn adopt(&mut self, st: &ConnState, fds: Vec<OwnedFd>) -> Result<usize, Decline> {
        let splice = self.cfg.settings.splice;
        if fds.len() != crate::handoff::codec::fds_per_conn(splice) {
            return Err("its relay mode (splice) differs from this process's");
        }
        let li = self
            .cfg
            .listeners
            .iter()
            .position(|l| l.addr == st.listener)
            .ok_or("its listener is not in the new config")?;
        let l = &self.cfg.listeners[li];
        let ci = l.cluster;
        if self.cfg.clusters[ci].name.as_str() != st.cluster.as_str() {
            return Err("its listener now routes to another cluster (or its cluster is gone)");
        }
        let host = self.cfg.clusters[ci].hosts.iter().position(|h| h.addr == st.host).map_or(NO_HOST, |h| h as u8);
        // in splice mode too: the bytes stay in the pipe, but the flow's window, which counts
        // them, is at most buffer_size
        if st.flows.iter().any(|f| f.pending as usize > self.buf_size) {
            return Err("it holds more buffered bytes than this process's buffer_size");
        }
        let mut fds = fds.into_iter();
        let (Some(client), Some(upstream)) = (fds.next(), fds.next()) else {
            return Err("descriptors missing");
        };
        let (local, _) = net::verify_tcp_stream(&client)?;
        if local.port() != l.addr.port() || !(l.addr.ip().is_unspecified() || local.ip() == l.addr.ip()) {
            return Err("its client socket is not on the listener's address");
        }
        let (_, peer) = net::verify_tcp_stream(&upstream)?;
        if peer != st.host {
            return Err("its upstream socket is not connected to the announced host");
        }
        let pipes = if splice {
            let (Some(r0), Some(w0), Some(r1), Some(w1)) = (fds.next(), fds.next(), fds.next(), fds.next()) else {
                return Err("pipe descriptors missing");
            };
            for p in [&r0, &w0, &r1, &w1] {
                net::verify_pipe(p)?;
            }
            Some([(r0, w0), (r1, w1)])
        } else {
            None
        };
        let idx = self.free.pop().ok_or("no free connection slot (max_connections)")? as usize;
        let now = self.now;
        let s = &mut self.slots[idx];
        s.gen = s.gen.wrapping_add(1);
        s.used = true;
        s.conn = Conn::import(st.flows);
        s.listener = li as u8;
        s.host = host;
        s.attempts = 0;
        s.tried = 0;
        s.out = [false, false];
        s.deadline = if st.idle_left_ms == u64::MAX { u64::MAX } else { now.saturating_add(st.idle_left_ms) };
        let _ = self.poller.add_read(&client, conn_token(idx, s.gen, Side::Client));
        let _ = self.poller.add_read(&upstream, conn_token(idx, s.gen, Side::Upstream));
        s.fds = [Some(client), Some(upstream)];
        s.pipes = pipes;
        Ok(idx)
    }

    /// Where `Data` records for `flow` of an adopted connection go (user-buffer mode).
    pub fn inbound(&mut self, idx: usize, flow: usize) -> &mut [u8] {
        let base = (idx * 2 + flow) * self.buf_size;
        &mut self.bufs[base..base + self.buf_size]
    }

    /// The predecessor let go of an adopted connection: count it and run it.
    pub fn commit(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &self.slots[idx];
        if s.host != NO_HOST {
            self.hosts[ci][s.host as usize].active += 1;
        }
        self.listener_counters[s.listener as usize].active += 1;
        self.active += 1;
        self.transfer.received += 1;
        self.transfer.received_bytes += s.conn.flows.iter().map(|f| f.pending() as u64).sum::<u64>();
        self.drive(idx);
    }

    /// The transfer of an adopted connection failed before `commit`: forget it untouched (a
    /// plain close of this process's copies; the predecessor still has it).
    pub fn abandon(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        for fd in s.fds.iter().flatten() {
            self.poller.delete(fd);
        }
        s.fds = [None, None];
        s.pipes = None;
        s.used = false;
        s.conn = Conn::new();
        self.free.push(idx as u32);
    }
}

fn conn_token(idx: usize, gen: u16, side: Side) -> Token {
    Token { kind: Kind::Conn, index: idx as u32, gen, side: side as u8 }
}

fn idle_deadline(now: u64, idle_ms: u64) -> u64 {
    if idle_ms == 0 {
        u64::MAX
    } else {
        now + idle_ms
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ ((std::process::id() as u64) << 32) | 1
}

/// Pipes are grown to `buffer_size` when it is above the kernel's 64 KiB default, so one splice
/// can move a whole buffer. `BATON_FAULT=pipe-pages:N` sets them to N pages instead (smaller
/// than a buffer), for the test that short splices are read on.
fn pipe_size(buffer_size: usize) -> Option<usize> {
    match crate::fault::value(crate::fault::PIPE_PAGES) {
        Some(pages) => Some(pages as usize * 4096),
        None => (buffer_size > net::PIPE_DEFAULT_BYTES).then_some(buffer_size),
    }
}

/// Raises `RLIMIT_NOFILE`'s soft limit to cover `need` descriptors, or says why it cannot.
fn raise_fd_limit(need: u64) -> Result<(), StartError> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(StartError::Poller)?;
    if soft >= need {
        return Ok(());
    }
    if hard >= need {
        return setrlimit(Resource::RLIMIT_NOFILE, need, hard).map_err(StartError::Poller);
    }
    // root may raise the hard limit too
    setrlimit(Resource::RLIMIT_NOFILE, need, need).map_err(|_| StartError::FdLimit { need, hard })
}
