//! The proxy's event loop state: listeners, the connection table, the admin endpoint and timers.
//!
//! Everything is sized once in `Server::new` from the config (connection slots, one buffer arena,
//! the free list, the epoll event array); after that, accepting, proxying and closing never
//! allocate. A connection is a slot index plus a 16-bit generation in its epoll token, so an event
//! for a slot that was closed and reused is dropped. Events that belong to the layers above
//! (signals, hot-restart sockets) are handed back to the caller by `handle`.

use core::net::SocketAddr;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use crate::sansio::accesslog::{write_line, Entry, DEFAULT_FORMAT};
use crate::sansio::addr::Addr;
use crate::sansio::codec::{RestartEvent, MAX_HISTORY};
use crate::sansio::config::{Config, MAX_HOSTS, MAX_LISTENERS};
use crate::sansio::conn::{Conn, Outcome, Phase, Side};
use crate::sansio::lb::{self, HealthChange, HostState};
use crate::sansio::portable::{fds_per_conn, ConnState, MAX_FDS_PER_CONN};
use crate::sansio::route;
use crate::sansio::stats::{ListenerCounters, Snapshot, Totals, TransferCounters};
use crate::sys::net::{self, FdTransport, SpliceTransport};
use crate::sys::poller::{Event, Poller};

use crate::sys;
pub use token::{Kind, Token};

mod accept;
pub mod accesslog;
pub mod admin;
mod handover;
mod health;
mod relay;
pub mod token;
mod upstream;

pub use accesslog::{AccessLogs, Target};
pub use handover::Decline;

/// The package version, or `BATON_VERSION` when set at build time (the firmware test builds a
/// second, differently named binary to show an upgrade by hot restart).
pub const VERSION: &str = match option_env!("BATON_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};
pub use crate::sansio::limits::FD_OVERHEAD;
pub use crate::sansio::limits::MAX_BUFFER_MEMORY;
pub use crate::sansio::limits::TICK_MS;
/// `Slot::host` of a transferred connection whose upstream host is no longer in its cluster:
/// the connection goes on, it is just not counted against a host.
const NO_HOST: u8 = u8::MAX;

/// Why the server could not start. Each says what to change.
#[derive(Debug)]
pub enum StartError {
    /// The listener's name and address (boxed: a unix path makes them large, and this is an
    /// error of start-up only).
    Bind {
        listener: Box<(crate::sansio::config::Name, Addr)>,
        errno: Errno,
    },
    AdminBind {
        addr: SocketAddr,
        errno: Errno,
    },
    MetricsBind {
        addr: SocketAddr,
        errno: Errno,
    },
    FdLimit {
        need: u64,
        hard: u64,
    },
    Memory {
        bytes: u64,
    },
    Poller(Errno),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Bind { listener, errno } => {
                let (name, addr) = &**listener;
                match (errno, addr) {
                    (Errno::EADDRINUSE, _) => write!(f, "listener \"{name}\": {addr} is already in use by another program; stop it or change the listener's address"),
                    (Errno::EACCES, Addr::Ip(_)) => write!(f, "listener \"{name}\": binding {addr} needs privileges (ports below 1024 need root or CAP_NET_BIND_SERVICE)"),
                    (Errno::EACCES, Addr::Unix(_)) => write!(f, "listener \"{name}\": cannot create {addr}: permission denied on its directory"),
                    (e, _) => write!(f, "listener \"{name}\": cannot listen on {addr}: {}", e.desc()),
                }
            }
            Self::AdminBind { addr, errno } => write!(f, "admin: cannot listen on {addr}: {}; change admin.address", errno.desc()),
            Self::MetricsBind { addr, errno } => write!(f, "metrics: cannot listen on {addr}: {}; change the prometheus sink's port (metrics.sinks[].config.port)", errno.desc()),
            Self::FdLimit { need, hard } => write!(f, "max_connections needs {need} file descriptors but the hard limit (ulimit -Hn) is {hard}; lower baton.max_connections or raise the limit"),
            Self::Memory { bytes } => write!(f, "cannot reserve {} MiB of buffers; lower baton.max_connections or baton.buffer_size", bytes >> 20),
            Self::Poller(e) => write!(f, "cannot create the event loop: {}", e.desc()),
        }
    }
}

/// Listening sockets handed over by a predecessor, by address.
#[derive(Default)]
pub struct Inherited {
    pub listeners: Vec<(Addr, OwnedFd)>,
    pub admin: Option<(SocketAddr, OwnedFd)>,
    pub metrics: Option<(SocketAddr, OwnedFd)>,
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

#[derive(Default)]
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
    /// Index into `Config::clusters`: the listener's cluster or the one its routes chose.
    cluster: u8,
    host: u8,
    attempts: u8,
    /// Hosts tried for this client (bit per host index).
    tried: u64,
    /// Connect deadline while connecting, idle deadline once open (monotonic ms).
    deadline: u64,
    /// When it was accepted, or moved here by a hot restart (monotonic ms; access logs).
    started: u64,
    /// `Totals::accepted` when it was accepted; 0 for one moved here (access logs).
    id: u64,
}

pub struct Server {
    cfg: Config,
    poller: Poller,
    /// This process's copy of each listening socket, by config index; `None` once draining.
    listeners: heapless::Vec<Option<OwnedFd>, MAX_LISTENERS>,
    listener_counters: heapless::Vec<ListenerCounters, MAX_LISTENERS>,
    admin: admin::Admin,
    metrics: admin::Admin,
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
    /// Active health checks, a probe per host (`health`).
    probes: health::Probes,
    /// Connections per cluster (connecting or open), for the `circuit_breakers` ceiling.
    cluster_active: heapless::Vec<u32, MAX_LISTENERS>,
    totals: Totals,
    /// Connections moved in and out by hot restarts, kept, and drained (this process only).
    transfer: TransferCounters,
    active: u32,
    mode: Mode,
    /// Table full or out of descriptors: accepting waits for a slot to free.
    paused: bool,
    resume: bool,
    /// Paused for lack of descriptors or memory, not yet recovered (logged once per episode).
    starved: bool,
    clock: Instant,
    /// When this process image started, in seconds since the Unix epoch (`/metrics`).
    started_unix_s: Option<u64>,
    /// Older generations still draining, as the restart layer last said.
    draining: usize,
    /// The listeners' access logs (set by the caller, which opens the files).
    access: AccessLogs,
    /// The last hot restarts and their results, oldest first (the status page); carried over
    /// a hot restart in a HISTORY record.
    history: heapless::Vec<RestartEvent, MAX_HISTORY>,
    now: u64,
    last_tick: u64,
    rng: u64,
}

impl Server {
    /// Binds (or adopts from `inherited`) every listener, registers everything, and sizes every
    /// table. Inherited sockets the config no longer has are closed here.
    pub fn new(cfg: Config, inherited: &mut Inherited) -> Result<Server, StartError> {
        let st = &cfg.settings;
        // two sockets per connection, plus two pipes (four descriptors) in splice mode
        let per_conn = fds_per_conn(st.splice) as u64;
        raise_fd_limit(
            per_conn * st.max_connections as u64
                + FD_OVERHEAD
                + admin::MAX_ADMIN_CONNS as u64 * (1 + cfg.metrics.is_some() as u64)
                + health::checked_hosts(&cfg),
        )?;
        let bufs = buffer_arena(st)?;
        let poller = Poller::new().map_err(StartError::Poller)?;
        let n = st.max_connections as usize;
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, Slot::default);
        let hosts = cfg.clusters.iter().map(|c| c.hosts.iter().map(|_| HostState::default()).collect()).collect();
        let admin = admin::Admin::new(cfg.admin, admin::Role::Admin, &poller, inherited.admin.take())
            .map_err(|(addr, errno)| StartError::AdminBind { addr, errno })?;
        let metrics = admin::Admin::new(cfg.metrics, admin::Role::Metrics, &poller, inherited.metrics.take())
            .map_err(|(addr, errno)| StartError::MetricsBind { addr, errno })?;
        let mut s = Server {
            listeners: heapless::Vec::new(),
            listener_counters: heapless::Vec::new(),
            admin,
            metrics,
            free: (0..n as u32).rev().collect(),
            slots,
            buf_size: st.buffer_size as usize,
            pipe_size: pipe_size(st.buffer_size as usize),
            spare_pipes: None,
            requeue: Vec::with_capacity(n),
            bufs,
            cluster_active: cfg.clusters.iter().map(|_| 0).collect(),
            probes: health::probes(&cfg),
            hosts,
            totals: Totals::default(),
            transfer: TransferCounters::default(),
            active: 0,
            mode: Mode::Serving,
            paused: false,
            starved: false,
            resume: false,
            clock: Instant::now(),
            started_unix_s: sys::process::unix_now_s(),
            draining: 0,
            access: AccessLogs::default(),
            history: heapless::Vec::new(),
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
            let fd = match inherited.listeners.iter().position(|(a, _)| l.listens_on(a)) {
                Some(p) => {
                    log::info!("listener \"{}\" on {}: adopted from the previous process", l.name, l.addr);
                    let fd = inherited.listeners.swap_remove(p).1;
                    if let Some(only) = net::wildcard_single_family(&fd) {
                        log::warn!(
                            "listener \"{}\" on {}: the socket handed over serves {only} (made by a build before \
                             wildcards took both families, or by a supervisor: systemd's ListenStream=PORT is \
                             dual-stack, ListenStream=0.0.0.0:PORT is not); stop and start baton to serve both",
                            l.name,
                            l.addr
                        );
                    }
                    fd
                }
                None => {
                    let fd = net::listen_at(&l.addr, self.cfg.settings.backlog).map_err(|errno| StartError::Bind {
                        listener: Box::new((l.name.clone(), l.addr.clone())),
                        errno,
                    })?;
                    match net::local(&fd) {
                        Some(at) if at != l.addr => log::info!("listener \"{}\" on {}: bound ({at})", l.name, l.addr),
                        _ => log::info!("listener \"{}\" on {}: bound", l.name, l.addr),
                    }
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
        let tok = Token::decode(ev.token)?;
        match tok.kind {
            Kind::Listener => self.accept_from(tok.index as usize),
            Kind::Conn => self.conn_event(tok, ev),
            Kind::AdminListener | Kind::Admin | Kind::MetricsListener | Kind::Metrics => self.admin_event(tok),
            Kind::Health => self.probe_event(tok.index),
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
            if self.active == 0 && !self.admin.busy() && !self.metrics.busy() {
                self.mode = Mode::Stopped;
            }
        }
        self.access.flush();
    }

    /// Records a hot restart's result (or the cold start), dropping the oldest beyond
    /// `MAX_HISTORY`.
    pub fn note_restart(&mut self, ok: bool, what: core::fmt::Arguments<'_>) {
        let unix_s = wall_ms() / 1000;
        self.push_history(RestartEvent { unix_s, ok, text: crate::sansio::codec::text(&what.to_string()) });
    }

    /// The predecessor's restart history (before this process notes its own start).
    pub fn adopt_history(&mut self, events: &[RestartEvent]) {
        for e in events {
            self.push_history(e.clone());
        }
    }

    fn push_history(&mut self, e: RestartEvent) {
        if self.history.is_full() {
            self.history.remove(0);
        }
        let _ = self.history.push(e);
    }

    pub fn history(&self) -> &[RestartEvent] {
        &self.history
    }

    /// Replaces the access logs (at start, and on SIGUSR1 with files opened again), writing
    /// out what the old ones still hold first.
    pub fn set_access_logs(&mut self, logs: AccessLogs) {
        self.access.flush();
        let (written, dropped) = (self.access.written, self.access.dropped);
        self.access = logs;
        self.access.written += written;
        self.access.dropped += dropped;
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
        self.metrics.shut(&self.poller);
        self.set_mode(Mode::Draining { deadline: self.now + drain_ms });
        log::info!("draining {} connections for at most {} ms", self.active, drain_ms);
    }

    // ----- read-only views for the layers above (no field is writable from outside) -----

    pub fn cfg(&self) -> &Config {
        &self.cfg
    }

    pub fn poller(&self) -> &Poller {
        &self.poller
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn transfer(&self) -> &TransferCounters {
        &self.transfer
    }

    /// Open connections (a gauge).
    pub fn active(&self) -> u32 {
        self.active
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Monotonic milliseconds since start, as of the last `poll`.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The admin listener's address and socket, for a handoff.
    pub fn admin_listener(&self) -> Option<(SocketAddr, &OwnedFd)> {
        self.admin.addr.zip(self.admin.listener.as_ref())
    }

    /// The metrics listener's address and socket, for a handoff.
    pub fn metrics_listener(&self) -> Option<(SocketAddr, &OwnedFd)> {
        self.metrics.addr.zip(self.metrics.listener.as_ref())
    }

    // ----- the few changes the layers above make -----

    /// The one way the mode changes (`start_draining` uses it too).
    pub fn set_mode(&mut self, mode: Mode) {
        log::debug!("server: {:?} => {:?}", self.mode, mode);
        self.mode = mode;
    }

    /// A successor continues its predecessor's counters, one generation later.
    pub fn continue_from(&mut self, totals: Totals) {
        self.totals = totals;
        self.totals.generation += 1;
    }

    /// What the connection transfer into this process declined, and how many the predecessor
    /// said it kept (see `transfer::receive`).
    pub fn note_transfer_in(&mut self, declined: u64, kept_by_predecessor: u64) {
        self.transfer.declined = declined;
        self.transfer.predecessor_kept = kept_by_predecessor;
    }

    /// After handing over: the connections still here stay and drain.
    pub fn note_kept(&mut self) {
        self.transfer.kept = self.active as u64;
    }

    /// The listening sockets this process owns, for a handoff: (listener index, address, fd).
    pub fn listener_fds(&self) -> impl Iterator<Item = (usize, &Addr, &OwnedFd)> {
        self.listeners.iter().enumerate().filter_map(|(i, l)| l.as_ref().map(|fd| (i, &self.cfg.listeners[i].addr, fd)))
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
            draining: self.draining,
            history: &self.history,
            access_log_lines: self.access.written,
            access_log_dropped: self.access.dropped,
            started_unix_s: self.started_unix_s,
            process: Default::default(),
        }
    }

    /// The restart layer tells how many older generations are still draining (for `/metrics`).
    pub fn note_draining(&mut self, n: usize) {
        self.draining = n;
    }

    fn admin_event(&mut self, tok: Token) {
        let state = match self.mode {
            Mode::Serving => "serving",
            _ => "draining",
        };
        let metrics = matches!(tok.kind, Kind::MetricsListener | Kind::Metrics);
        let mut a = core::mem::take(if metrics { &mut self.metrics } else { &mut self.admin });
        a.on_event(tok, &self.poller, self.now, &|| self.snapshot(state));
        *(if metrics { &mut self.metrics } else { &mut self.admin }) = a;
    }
}

/// Now, in ms since the Unix epoch (access log times).
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
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
        Some(pages) => Some(pages as usize * crate::sansio::limits::FAULT_PAGE_BYTES),
        None => (buffer_size > net::PIPE_DEFAULT_BYTES).then_some(buffer_size),
    }
}

/// The buffer arena: two buffers per connection (one pair in splice mode, as scratch), at most
/// `MAX_BUFFER_MEMORY`, zeroed pages that become resident only when used.
fn buffer_arena(st: &crate::sansio::config::Settings) -> Result<Box<[u8]>, StartError> {
    let slots_with_buffers = if st.splice { 1 } else { st.max_connections as u64 };
    let arena = slots_with_buffers * 2 * st.buffer_size as u64;
    if arena > MAX_BUFFER_MEMORY || arena > usize::MAX as u64 {
        return Err(StartError::Memory { bytes: arena });
    }
    sys::zeroed_buffer(arena as usize).ok_or(StartError::Memory { bytes: arena })
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
