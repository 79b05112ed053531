//! `baton status|reload|stop`: the control client. It finds the running baton through the
//! runtime directory (the config's `runtime_dir`, or `--runtime-dir`), sends one CONTROL record
//! on `reconfig.sock` and prints the text answer (`restart/control.rs` is the other side).
//! No admin port is needed: the answer comes from the restart protocol itself.
//!
//! Exit codes as for running baton: 0 done; 1 failed or not running (a failed reload leaves the
//! running baton serving); 2 bad usage or config; 3 busy (a hot restart is in progress).

use core::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cli::{Ctl, CtlOp};
use crate::restart::channel::{self, HandoffError};
use crate::restart::rundir;
use crate::sansio::codec::{self, Control, Msg, MAGIC};
use crate::sansio::config::Settings;
use crate::sansio::limits::{RELOAD_GRACE_MS, STATUS_MAX, STOP_GRACE_MS};
use crate::sys::{self, net};

/// How long status waits for an answer, and retries while a hot restart makes the baton busy.
const STATUS_WAIT: Duration = Duration::from_secs(5);

/// Runs the subcommand; the process's exit code.
pub fn run(c: &Ctl) -> i32 {
    let st = match crate::config_file::load(&c.config) {
        Ok((cfg, _)) => cfg.settings,
        Err(e) if c.op == CtlOp::Reload || c.runtime_dir.is_none() => {
            // reload: the running baton would refuse this config; the others need it to find it
            let hint = if c.op == CtlOp::Reload { "nothing was changed" } else { "or give --runtime-dir" };
            return say(2, format_args!("config {}: {e}; {hint}", c.config));
        }
        Err(_) => Settings::default(),
    };
    let dir = match (&c.runtime_dir, &st.runtime_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => rundir::default_dir(),
    };
    match c.op {
        CtlOp::Status => status(&dir, c.json),
        CtlOp::Reload => {
            let wait = c.timeout_s.map_or(st.handoff_timeout_ms + RELOAD_GRACE_MS, |s| s * 1000);
            reload(&dir, Duration::from_millis(wait))
        }
        CtlOp::Stop => {
            let drain = if c.now { 0 } else { st.drain_timeout_ms };
            let wait = c.timeout_s.map_or(drain + STOP_GRACE_MS, |s| s * 1000);
            stop(&dir, c.now, Duration::from_millis(wait))
        }
    }
}

fn status(dir: &str, json: bool) -> i32 {
    let op = if json { Control::StatusJson } else { Control::Status };
    let t = Instant::now();
    loop {
        match ask(dir, op, STATUS_WAIT) {
            Ok(text) => {
                crate::logger::out_line(format_args!("{}", text.trim_end()));
                return 0;
            }
            // a handoff takes milliseconds: ask again until it is over
            Err((3, _)) if t.elapsed() < STATUS_WAIT => std::thread::sleep(Duration::from_millis(50)),
            Err((code, why)) => return say(code, format_args!("{why}")),
        }
    }
}

fn reload(dir: &str, wait: Duration) -> i32 {
    match ask(dir, Control::Reload, wait) {
        Ok(text) => answer(&text),
        Err((code, why)) => say(code, format_args!("reload: {why}")),
    }
}

/// Asks for the stop, then waits until the owner and every draining generation it named have
/// exited (through pidfds: a PID reused meanwhile is not mistaken for them).
fn stop(dir: &str, now: bool, wait: Duration) -> i32 {
    let t = Instant::now();
    let text = match ask(dir, if now { Control::StopNow } else { Control::Stop }, wait) {
        Ok(text) => text,
        Err((code, why)) => return say(code, format_args!("stop: {why}")),
    };
    let first = text.lines().next().unwrap_or_default();
    if !first.starts_with("ok:") {
        return answer(first);
    }
    let pids: Vec<i32> = text
        .lines()
        .find_map(|l| l.strip_prefix("pids:"))
        .map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default();
    // a process already gone cannot be opened: nothing to wait for
    let fds: Vec<(i32, OwnedFd)> = pids.iter().filter_map(|&p| sys::pidfd_open(p).ok().map(|fd| (p, fd))).collect();
    let mut left = String::new();
    for (pid, fd) in &fds {
        let rest = wait.saturating_sub(t.elapsed()).as_millis() as u64;
        if !net::wait_readable(fd, rest).unwrap_or(true) {
            let _ = write!(left, "{}pid {pid}", if left.is_empty() { "" } else { ", " });
        }
    }
    if left.is_empty() {
        let mut all = String::new();
        for p in &pids {
            let _ = write!(all, "{}pid {p}", if all.is_empty() { "" } else { ", " });
        }
        crate::logger::out_line(format_args!("stopped: {all}"));
        0
    } else {
        let s = wait.as_secs();
        say(1, format_args!("stop: still running after {s} s: {left}; `baton stop --now` closes them at once"))
    }
}

/// Prints an `ok:`/`error:`/`busy:` answer; its exit code.
fn answer(text: &str) -> i32 {
    let line = text.trim_end();
    if let Some(rest) = line.strip_prefix("ok: ") {
        crate::logger::out_line(format_args!("{rest}"));
        0
    } else if let Some(rest) = line.strip_prefix("busy: ") {
        say(3, format_args!("{rest}"))
    } else {
        say(1, format_args!("{}", line.strip_prefix("error: ").unwrap_or(line)))
    }
}

/// One line on stderr, `baton: ...`, without control characters (a reason may come from the
/// socket); returns `code`.
fn say(code: i32, msg: core::fmt::Arguments<'_>) -> i32 {
    crate::logger::line(format_args!("baton: {}", printable(&msg.to_string())));
    code
}

/// Text as it may be shown on a terminal, maybe root's: control characters (escape sequences)
/// become `?`, newlines stay.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && c != '\n' { '?' } else { c }).collect()
}

/// Sends `op` and reads the whole answer (until the running baton closes the connection, at
/// most `wait`). `Err((exit code, reason))`.
fn ask(dir: &str, op: Control, wait: Duration) -> Result<String, (i32, String)> {
    let conn = connect(dir)?;
    channel::send(&conn, &Msg::Control { op }, &[]).map_err(|e| (1, e.to_string()))?;
    let t = Instant::now();
    let mut buf = vec![0u8; STATUS_MAX + 1024];
    let mut out = Vec::new();
    loop {
        let rest = wait.saturating_sub(t.elapsed()).as_millis() as u64;
        match net::wait_readable(&conn, rest) {
            Ok(true) => {}
            Ok(false) => return Err((1, format!("no answer within {} s; see baton's log", wait.as_secs()))),
            Err(e) => return Err((1, format!("waiting for the answer: {}", e.desc()))),
        }
        match nix::unistd::read(conn.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) if out.is_empty() && buf[..4.min(n)] == MAGIC[..4.min(n)] => {
                // a handoff record: the running baton turned the request away
                return Err(match codec::decode(&buf[..n]) {
                    Ok(Msg::Busy) => (3, "busy: a hot restart is in progress; retry".into()),
                    Ok(Msg::Refused { reason }) => (1, format!("refused: {}", reason.as_str())),
                    Ok(Msg::Go { .. }) => (1, "this running baton is too old for status, reload and stop".into()),
                    Ok(_) | Err(_) => (1, "unexpected answer on reconfig.sock".into()),
                });
            }
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > STATUS_MAX {
                    return Err((1, "the answer is longer than any baton sends; not shown".into()));
                }
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err((1, format!("reading the answer: {}", e.desc()))),
        }
    }
    if out.is_empty() {
        // an older baton reads CONTROL as a malformed handshake and closes
        return Err((1, "the running baton closed without answering; see its log (an older version?)".into()));
    }
    Ok(printable(&String::from_utf8_lossy(&out)))
}

/// `reconfig.sock` in `dir`, checked like a successor checks it: a socket only this user could
/// have made, served by an authorised process. Root also talks to an instance of another user
/// (baton run as `baton`): then the socket must be that of the runtime directory's owner, the
/// directory writable by nobody else, and its parent root's and writable by nobody else (no
/// sticky `/tmp`, where any user could have made the directory while baton was stopped).
fn connect(dir: &str) -> Result<OwnedFd, (i32, String)> {
    let path = rundir::path(dir, rundir::RECONFIG);
    let me = nix::unistd::geteuid().as_raw();
    let sock = match nix::sys::stat::lstat(path.as_str()) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Err((1, format!("not running: no {path}"))),
        Err(e) => return Err((1, format!("{path}: {}", e.desc()))),
    };
    let parent = rundir::parent(dir).unwrap_or("/");
    let trusted = sock.st_uid == me
        || (me == 0
            && nix::sys::stat::lstat(dir).is_ok_and(|d| d.st_uid == sock.st_uid && d.st_mode & 0o022 == 0)
            && nix::sys::stat::stat(parent).is_ok_and(|p| p.st_uid == 0 && p.st_mode & 0o022 == 0));
    if !trusted {
        return Err((1, HandoffError::ForeignSocket { uid: sock.st_uid }.to_string()));
    }
    let conn = match net::unix_connect(&path) {
        Ok(c) => c,
        Err(Errno::ECONNREFUSED) => return Err((1, format!("not running: nobody answers on {path}"))),
        Err(e) => return Err((1, format!("connecting to {path}: {}", e.desc()))),
    };
    let (_, uid) = net::peer_cred(&conn).map_err(|e| (1, format!("SO_PEERCRED: {}", e.desc())))?;
    if !(channel::authorised(uid) || (me == 0 && uid == sock.st_uid)) {
        return Err((1, format!("{path} is served by uid {uid}: run this as baton's user or root")));
    }
    Ok(conn)
}
