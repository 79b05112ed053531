//! Command-line parsing (no clap: the surface is small and fixed).

use crate::sansio::config::LogLevel;

pub const DEFAULT_CONFIG: &str = "/etc/baton/baton.json";

pub const USAGE: &str = "\
usage: baton [-c PATH] [--check] [--runtime-dir DIR] [--pid-file PATH] [--log-level LEVEL]
       baton status [-c PATH] [--runtime-dir DIR] [--json]
       baton reload [-c PATH] [--runtime-dir DIR] [--timeout SECONDS]
       baton stop [-c PATH] [--runtime-dir DIR] [--now] [--timeout SECONDS]
       baton --version | --help

  -c, --config PATH     config file (MOSN config.json, tcp_proxy subset) [/etc/baton/baton.json]
      --check           validate the config, print `ok` or the errors; exit 0 or 2
      --runtime-dir DIR directory for reconfig.sock, listen.sock and the lock (overrides the config)
      --pid-file PATH   file that always names the process owning the listeners
      --log-level LEVEL error|warn|info|debug|trace (overrides default_log_level)
  -V, --version         print the version
  -h, --help            print this help

Running a second baton with the same runtime directory hands the listeners over to it
(hot restart); SIGHUP does the same in place, keeping the PID. SIGTERM/SIGINT stop at once,
SIGQUIT stops accepting and drains open connections first.

status, reload and stop talk to the running baton through reconfig.sock in its runtime
directory (found from the config, or --runtime-dir):
  status      pid, generation, uptime, listeners, hosts and their health, connections,
              draining generations; --json: the /stats document
  reload      hot restart in place (like SIGHUP) and wait for the outcome: exit 0 once the new
              process serves; else exit 1 with the reason, and the running baton keeps serving
  stop        stop accepting, drain (at most drain_timeout), exit, and wait until every
              generation has exited; --now closes every connection at once (like SIGTERM)
  --timeout   how long to wait [reload: handoff_timeout + 10 s; stop: drain_timeout + 5 s]
Exit codes: 0 done; 1 failed or not running; 2 bad usage or config; 3 busy (a hot restart is
in progress; retry).";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub config: String,
    pub check: bool,
    pub runtime_dir: Option<String>,
    pub pid_file: Option<String>,
    pub log_level: Option<LogLevel>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Args),
    Control(Ctl),
    Version,
    Help,
}

/// A control subcommand: what to ask the running baton, and how to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctl {
    pub op: CtlOp,
    pub config: String,
    pub runtime_dir: Option<String>,
    pub json: bool,
    pub now: bool,
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtlOp {
    Status,
    Reload,
    Stop,
}

/// The arguments as text; one that is not UTF-8 (baton's paths and values are all text) is a
/// usage error that names its position.
pub fn utf8_args<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Result<Vec<String>, String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            a.into_string().map_err(|a| {
                format!(
                    "argument {} ({}) is not valid UTF-8; rename the file or use a UTF-8 path",
                    i + 1,
                    a.to_string_lossy()
                )
            })
        })
        .collect()
}

/// Parses arguments (without the program name). The error says what to fix.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut a =
        Args { config: DEFAULT_CONFIG.into(), check: false, runtime_dir: None, pid_file: None, log_level: None };
    let mut it = args.into_iter().peekable();
    let op = match it.peek().map(String::as_str) {
        Some("status") => Some(CtlOp::Status),
        Some("reload") => Some(CtlOp::Reload),
        Some("stop") => Some(CtlOp::Stop),
        _ => None,
    };
    if let Some(op) = op {
        it.next();
        return parse_ctl(op, it);
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value; see baton --help"))
        };
        match flag.as_str() {
            "-c" | "--config" => a.config = value("--config")?,
            "--check" | "-t" => a.check = true,
            "--runtime-dir" => a.runtime_dir = Some(absolute(value("--runtime-dir")?, "--runtime-dir")?),
            "--pid-file" => a.pid_file = Some(absolute(value("--pid-file")?, "--pid-file")?),
            "--log-level" => {
                let v = value("--log-level")?;
                a.log_level = Some(
                    LogLevel::parse(&v)
                        .ok_or_else(|| format!("--log-level {v}: use error, warn, info, debug or trace"))?,
                );
            }
            "-V" | "--version" => return Ok(Command::Version),
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument `{other}`; see baton --help")),
        }
    }
    Ok(Command::Run(a))
}

/// `baton status|reload|stop [FLAGS]`: only the flags that subcommand takes.
fn parse_ctl(op: CtlOp, mut it: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut c = Ctl { op, config: DEFAULT_CONFIG.into(), runtime_dir: None, json: false, now: false, timeout_s: None };
    let name = match op {
        CtlOp::Status => "status",
        CtlOp::Reload => "reload",
        CtlOp::Stop => "stop",
    };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |flag: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{flag} needs a value; see baton --help"))
        };
        match (flag.as_str(), op) {
            ("-c" | "--config", _) => c.config = value("--config")?,
            ("--runtime-dir", _) => c.runtime_dir = Some(absolute(value("--runtime-dir")?, "--runtime-dir")?),
            ("--json", CtlOp::Status) => c.json = true,
            ("--now", CtlOp::Stop) => c.now = true,
            ("--timeout", CtlOp::Reload | CtlOp::Stop) => {
                let v = value("--timeout")?;
                c.timeout_s = Some(
                    v.parse()
                        .ok()
                        .filter(|s| (1..=86_400).contains(s))
                        .ok_or_else(|| format!("--timeout {v}: give whole seconds from 1 to 86400"))?,
                );
            }
            ("-h" | "--help", _) => return Ok(Command::Help),
            (other, _) => return Err(format!("baton {name}: unknown argument `{other}`; see baton --help")),
        }
    }
    Ok(Command::Control(c))
}

/// Paths for sockets and PID files must be absolute: the process may be re-executed elsewhere.
fn absolute(p: String, flag: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        Err(format!("{flag} {p}: give an absolute path"))
    } else if !crate::sansio::config::value::is_plain_abs_path(&p) {
        Err(format!("{flag} {p}: give a plain absolute path (no trailing slash, no empty, . or .. component)"))
    } else if p.len() <= crate::sansio::config::PATH_LEN {
        Ok(p)
    } else {
        Err(format!("{flag}: the path is longer than {} bytes", crate::sansio::config::PATH_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn flags() {
        let Command::Run(a) = p("-c /x.json --check --runtime-dir=/run/b --log-level DEBUG").unwrap() else { panic!() };
        assert_eq!((a.config.as_str(), a.check, a.runtime_dir.as_deref()), ("/x.json", true, Some("/run/b")));
        assert_eq!(a.log_level, Some(LogLevel::Debug));
        assert_eq!(p("--version").unwrap(), Command::Version);
        assert_eq!(
            p("").unwrap(),
            Command::Run(Args {
                config: DEFAULT_CONFIG.into(),
                check: false,
                runtime_dir: None,
                pid_file: None,
                log_level: None
            })
        );
        assert!(p("--bogus").unwrap_err().contains("unknown argument `--bogus`"));
        assert!(p("-c").unwrap_err().contains("--config needs a value"));
        assert!(p("--pid-file rel.pid").unwrap_err().contains("absolute"));
        assert!(p("--log-level loud").unwrap_err().contains("use error"));
    }

    #[test]
    fn control_subcommands_take_only_their_flags() {
        let Command::Control(c) = p("status -c /e.json --json").unwrap() else { panic!() };
        assert_eq!((c.op, c.config.as_str(), c.json), (CtlOp::Status, "/e.json", true));
        let Command::Control(c) = p("stop --now --timeout=9 --runtime-dir /run/b").unwrap() else { panic!() };
        assert_eq!((c.op, c.now, c.timeout_s, c.runtime_dir.as_deref()), (CtlOp::Stop, true, Some(9), Some("/run/b")));
        let Command::Control(c) = p("reload").unwrap() else { panic!() };
        assert_eq!((c.op, c.config.as_str(), c.timeout_s), (CtlOp::Reload, DEFAULT_CONFIG, None));
        assert!(p("reload --now").unwrap_err().contains("baton reload: unknown argument `--now`"));
        assert!(p("status --timeout 3").unwrap_err().contains("unknown argument `--timeout`"));
        assert!(p("stop --timeout 0").unwrap_err().contains("whole seconds"));
        assert!(p("stop --timeout soon").unwrap_err().contains("whole seconds"));
        assert!(p("status --runtime-dir rel").unwrap_err().contains("absolute"));
        // a subcommand's name later on the line is not a subcommand
        assert!(p("-c status").is_ok_and(|c| matches!(c, Command::Run(_))));
    }
}
