//! `baton`: command line, logging, exit codes. Everything else lives in the library.
//!
//! Exit codes: 0 clean stop; 1 runtime failure (a port is taken, a takeover failed);
//! 2 bad usage or invalid config (nothing was started); 3 another hot restart is in progress.

use baton::cli::{self, Command, USAGE};
use baton::config::{self, Config, LogLevel};
use baton::restart::Restart;
use baton::runtime::{self, Runtime};
use baton::server::{Inherited, Server, VERSION};

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Version) => {
            println!("baton {VERSION}");
            return 0;
        }
        Ok(Command::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("baton: {e}");
            return 2;
        }
    };
    let mut cfg = match config::read_file(&args.config) {
        Ok(c) => c,
        Err(e) => {
            if args.check {
                println!("{}: {e}", args.config);
            } else {
                eprintln!("baton: config {}: {e}", args.config);
            }
            return 2;
        }
    };
    if args.check {
        println!("ok");
        return 0;
    }
    apply_overrides(&mut cfg, &args);
    init_logging(args.log_level.unwrap_or(cfg.log_level));
    let signals = match runtime::block_signals() {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot set up signal handling: {}", e.desc())),
    };
    let server = match Server::new(cfg, &mut Inherited::default()) {
        Ok(s) => s,
        Err(e) => return fail(format_args!("{e}")),
    };
    let pid_file = server.cfg.settings.pid_file.as_ref().map(|p| p.to_string());
    if let Some(p) = &pid_file {
        if let Err(e) = baton::pidfile::write(p, std::process::id()) {
            return fail(format_args!("cannot write the PID file {p}: {e}"));
        }
    }
    log::info!(
        "baton {VERSION} started (pid {}, {} listeners)",
        std::process::id(),
        server.cfg.listeners.len()
    );
    let mut rt = match Runtime::new(server, signals, Restart { pid_file }) {
        Ok(r) => r,
        Err(e) => return fail(format_args!("cannot start the event loop: {}", e.desc())),
    };
    rt.run()
}

fn apply_overrides(cfg: &mut Config, args: &cli::Args) {
    if let Some(d) = &args.runtime_dir {
        cfg.settings.runtime_dir.clear();
        let _ = cfg.settings.runtime_dir.push_str(d);
    }
    if let Some(p) = &args.pid_file {
        let mut path = config::Path::new();
        let _ = path.push_str(p);
        cfg.settings.pid_file = Some(path);
    }
}

/// One line on stderr that says what to fix; exit code 1.
fn fail(msg: core::fmt::Arguments<'_>) -> i32 {
    eprintln!("baton: {msg}");
    1
}

fn init_logging(level: LogLevel) {
    let filter = match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    };
    let _ = simple_logger::SimpleLogger::new().with_level(filter).init();
}
