//! `baton`: command line, logging, start-up (cold or by taking over), exit codes.
//!
//! Exit codes: 0 clean stop; 1 runtime failure (a port is taken, a takeover failed; a running
//! baton keeps serving); 2 bad usage or invalid config (nothing was started or contacted);
//! 3 another hot restart is in progress (retry later).

use std::os::fd::OwnedFd;

use nix::sys::signalfd::SignalFd;

use baton::cli::{self, Command, USAGE};
use baton::restart::channel::HandoffError;
use baton::restart::takeover::{self, Start, Takeover};
use baton::restart::{pidfile, rundir};
use baton::restart::{Exec, Restart};
use baton::runtime::{self, Runtime};
use baton::sansio::config::{self, Config, LogLevel, UnknownKeys};
use baton::server::{Inherited, Server, VERSION};

use baton::sansio::limits::STARTUP_STACK;

fn main() {
    std::process::exit(real_main());
}

/// Start-up runs on a short-lived thread whose stack (over a MiB touched by parsing and by the
/// server's fixed tables moving into place) is unmapped when it ends; the event loop then runs
/// on the main thread with a small stack. The start-up thread blocks the handled signals before
/// anything else; the main thread blocks them too, so they are read only from the signalfd.
fn real_main() -> i32 {
    if let Err(e) = runtime::block_signal_mask() {
        return fail(format_args!("cannot block signals: {}", e.desc()));
    }
    let started = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("startup".into())
            .stack_size(STARTUP_STACK)
            .spawn_scoped(s, start)
            .map(|t| t.join().unwrap_or(Err(1)))
            .unwrap_or(Err(1))
    });
    match started {
        Ok((mut rt, incoming)) => {
            // on the main thread, alone: with a second thread sharing the descriptor table,
            // every time the kernel doubles that table it waits for an RCU grace period
            // (expand_fdtable), which cost 10-30 ms per doubling while receiving connections
            if let Some((chan, from)) = incoming {
                receive_connections(&chan, &mut rt.server, from);
            }
            baton::notify::ready(rt.server.totals().generation);
            rt.run()
        }
        Err(code) => code,
    }
}

/// The connection to the predecessor that established connections arrive on, and its PID.
type Incoming = Option<(OwnedFd, i32)>;

/// Everything before the event loop. `Ok`: ready to run. `Err(code)`: exit now with `code`
/// (0 after --version, --help or a passing --check).
fn start() -> Result<(Box<Runtime>, Incoming), i32> {
    let t0 = std::time::Instant::now();
    let (args, mut cfg, unknown) = args_and_config()?;
    apply_overrides(&mut cfg, &args);
    init_logging(args.log_level.unwrap_or(cfg.log_level), cfg.settings.log);
    // only now that logging is set up
    baton::config_file::describe(
        &cfg,
        &unknown,
        |warn, line| if warn { log::warn!("{line}") } else { log::info!("{line}") },
    );
    let signals =
        runtime::block_signals().map_err(|e| fail(format_args!("cannot set up signal handling: {}", e.desc())))?;
    let dir = runtime_dir(&args, &cfg);
    rundir::prepare(&dir).map_err(|e| fail(format_args!("{e}")))?;
    let exec = Exec::current(&args.config);
    // consumed on every path, so a later SIGHUP re-exec (same PID) never sees LISTEN_* again;
    // a takeover gets its sockets from the predecessor and closes these
    let activated = baton::activation::take(&cfg);
    let started = match takeover::begin(&dir, cfg.settings.handoff_timeout_ms) {
        Ok(Start::Cold) => cold_start(cfg, &dir, exec, activated, &signals).map(|(s, r)| (s, r, None)),
        Ok(Start::Takeover(t)) => take_over(cfg, &dir, *t, exec, &signals, t0),
        Err(HandoffError::Busy) => {
            baton::logger::line(format_args!("baton: {}", HandoffError::Busy));
            return Err(3);
        }
        Err(e) => Err(format!("hot restart failed: {e}; the running baton keeps serving")),
    };
    let (server, restart, incoming) = started.map_err(|msg| fail(format_args!("{msg}")))?;
    log::info!(
        "baton {VERSION} serving (pid {}, generation {}, {} listeners)",
        std::process::id(),
        server.totals().generation,
        server.cfg().listeners.len()
    );
    Ok((Runtime::new(server, signals, restart), incoming))
}

/// The command line and the config it names. `Err(code)`: --version, --help, --check done,
/// or a usage or config error (printed).
fn args_and_config() -> Result<(cli::Args, Config, UnknownKeys), i32> {
    let args = match cli::utf8_args(std::env::args_os().skip(1)).and_then(cli::parse) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Control(c)) => return Err(baton::control::run(&c)),
        Ok(Command::Version) => return print_and_exit(format_args!("baton {VERSION}")),
        Ok(Command::Help) => return print_and_exit(format_args!("{USAGE}")),
        Err(e) => {
            baton::logger::line(format_args!("baton: {e}"));
            return Err(2);
        }
    };
    match baton::config_file::load(&args.config) {
        Ok((cfg, unknown)) if args.check => {
            // on stderr: an init script that hides stdout still shows them
            baton::config_file::describe(&cfg, &unknown, |_, line| baton::logger::line(format_args!("{line}")));
            print_and_exit(format_args!("ok"))
        }
        Ok((cfg, unknown)) => Ok((args, cfg, unknown)),
        Err(e) if args.check => {
            // on stderr, so a script that hides stdout (`--check >/dev/null`) still shows it
            baton::logger::line(format_args!("{}: {e}", args.config));
            Err(2)
        }
        Err(e) => {
            baton::logger::line(format_args!("baton: config {}: {e}", args.config));
            Err(2)
        }
    }
}

fn print_and_exit<T>(text: core::fmt::Arguments<'_>) -> Result<T, i32> {
    baton::logger::out_line(format_args!("{text}"));
    Err(0)
}

/// `--runtime-dir`, else the config's `baton.runtime_dir`, else the per-user default.
fn runtime_dir(args: &cli::Args, cfg: &Config) -> String {
    match (&args.runtime_dir, &cfg.settings.runtime_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => rundir::default_dir(),
    }
}

/// `activated`: sockets from systemd socket activation, adopted like a predecessor's.
fn cold_start(
    cfg: Config,
    dir: &str,
    exec: Option<Exec>,
    mut activated: Inherited,
    signals: &SignalFd,
) -> Result<(Server, Restart), String> {
    let lock = rundir::lock(dir).map_err(|e| e.to_string())?;
    let mut server = Server::new(cfg, &mut activated).map_err(|e| e.to_string())?;
    server.set_access_logs(baton::logfiles::open(server.cfg())?);
    let reconfig = rundir::bind_reconfig(dir).map_err(|e| e.to_string())?;
    let restart = new_restart(&server, dir, lock, reconfig, Vec::new(), exec)?;
    watch_signals(&server, signals)?;
    publish_pid(&restart)?;
    server.note_restart(true, format_args!("cold start, pid {}", std::process::id()));
    Ok((server, restart))
}

fn take_over(
    cfg: Config,
    dir: &str,
    mut t: Takeover,
    exec: Option<Exec>,
    signals: &SignalFd,
    t0: std::time::Instant,
) -> Result<(Server, Restart, Incoming), String> {
    // Every step that can fail happens before the ack: until then the old process serves, and
    // a failure here only ends this one. After the ack there is nothing left that can fail.
    let (mut server, mut restart) = match prepare_takeover(cfg, dir, &mut t, exec, signals) {
        Ok(s) => s,
        Err(e) => {
            t.abort(&e);
            return Err(format!("{e}; the hot restart was aborted and the running baton keeps serving"));
        }
    };
    let from = t.from_pid;
    baton::fault::point(baton::fault::NEW_BEFORE_ACK);
    let st = &server.cfg().settings;
    let chan = t.ack(st.transfer_connections, st.splice);
    let acked_ms = t0.elapsed().as_secs_f64() * 1e3;
    restart.enforce_draining_cap(server.cfg().settings.max_draining as usize);
    log::info!("took over from pid {from}: acknowledged {acked_ms:.2} ms after start");
    if chan.is_none() {
        server.note_restart(
            true,
            format_args!("pid {} took over from {from}; its connections drain there", std::process::id()),
        );
    }
    Ok((server, restart, chan.map(|c| (c, from))))
}

/// Everything a successor must have before it acknowledges: the server on the inherited
/// sockets, the lock and `reconfig.sock`, the signal watch and the PID file.
fn prepare_takeover(
    cfg: Config,
    dir: &str,
    t: &mut Takeover,
    exec: Option<Exec>,
    signals: &SignalFd,
) -> Result<(Server, Restart), String> {
    let mut server = Server::new(cfg, &mut t.inherited).map_err(|e| e.to_string())?;
    // a log file that cannot be opened fails this process before the ack: the old one serves on
    server.set_access_logs(baton::logfiles::open(server.cfg())?);
    let lock = match t.lock.take() {
        Some(l) => l,
        None => rundir::lock(dir).map_err(|e| e.to_string())?, // the old process died mid-handoff
    };
    let reconfig = match t.reconfig.take() {
        Some(r) => r,
        None => rundir::bind_reconfig(dir).map_err(|e| e.to_string())?,
    };
    server.continue_from(t.totals);
    server.adopt_history(&t.history);
    let carried = t.health.iter().filter(|h| server.adopt_health(h)).count();
    if carried > 0 {
        log::info!("hot restart: {carried} hosts marked down by the previous process stay down");
    }
    let preds: Vec<(u32, OwnedFd)> = std::mem::take(&mut t.predecessors);
    rundir::note_owner(&lock);
    let restart = new_restart(&server, dir, lock, reconfig, preds, exec)?;
    server.note_draining(restart.draining());
    watch_signals(&server, signals)?;
    publish_pid(&restart)?;
    Ok((server, restart))
}

/// Takes the old process's established connections (after the ack: this process serves).
fn receive_connections(chan: &OwnedFd, server: &mut Server, from: i32) {
    let timeout = server.cfg().settings.handoff_timeout_ms;
    let (r, err) = match baton::restart::transfer::receive(chan, server, timeout) {
        Ok(r) => (r, None),
        Err((r, e)) => (r, Some(e)),
    };
    server.note_transfer_in(r.declined as u64, r.kept_by_old.unwrap_or(0) as u64);
    server.note_restart(
        true,
        format_args!("pid {} took over from {from}: {} moved, {} declined", std::process::id(), r.moved, r.declined),
    );
    log::info!(
        "received {} connections from pid {from} in {:.1} ms ({} declined, {} kept there)",
        r.moved,
        r.elapsed_ms,
        r.declined,
        r.kept_by_old.map_or("?".to_string(), |k| k.to_string())
    );
    if let Some(e) = err {
        log::warn!("hot restart: connection transfer ended early: {e}; the rest drain in pid {from}");
    }
}

fn new_restart(
    server: &Server,
    dir: &str,
    lock: OwnedFd,
    reconfig: OwnedFd,
    preds: Vec<(u32, OwnedFd)>,
    exec: Option<Exec>,
) -> Result<Restart, String> {
    let pid_file = server.cfg().settings.pid_file.as_ref().map(|p| p.to_string());
    Restart::new(server, dir.to_string(), lock, reconfig, preds, pid_file, exec)
        .map_err(|e| format!("cannot register reconfig.sock: {}", e.desc()))
}

fn publish_pid(restart: &Restart) -> Result<(), String> {
    match &restart.pid_file {
        Some(p) => pidfile::write(p, std::process::id()).map_err(|e| format!("cannot write the PID file {p}: {e}")),
        None => Ok(()),
    }
}

fn watch_signals(server: &Server, signals: &SignalFd) -> Result<(), String> {
    runtime::watch_signals(server, signals).map_err(|e| format!("cannot watch signals: {}", e.desc()))
}

fn apply_overrides(cfg: &mut Config, args: &cli::Args) {
    if let Some(p) = &args.pid_file {
        let mut path = config::Path::new();
        let _ = path.push_str(p);
        cfg.settings.pid_file = Some(path);
    }
}

/// One line on stderr that says what to fix; exit code 1.
fn fail(msg: core::fmt::Arguments<'_>) -> i32 {
    baton::logger::line(format_args!("baton: {msg}"));
    1
}

fn init_logging(level: LogLevel, sink: baton::sansio::config::LogSink) {
    let filter = match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    };
    baton::logger::init(filter, sink);
}
