//! Where log lines go: `"baton": {"log": "syslog"}` sends them to the syslog socket as
//! `<PRI>baton[PID]: ...` datagrams (what BusyBox syslogd and journald read), and falls back to
//! stderr, saying so, when there is no syslog socket. (Test builds point the sink at their own
//! socket with `BATON_FAULT=syslog-path:P`; a release build always uses `/dev/log`.)
mod common;
use common::*;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn start(cfg: &Cfg, dir: &TempDir, syslog: &str) -> std::process::Child {
    let config = dir.path("baton.json");
    std::fs::write(&config, cfg.json()).unwrap();
    Command::new(&*BIN)
        .args(["-c", &config, "--runtime-dir", &dir.path("run")])
        .env("BATON_FAULT", format!("syslog-path:{syslog}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(mut c: std::process::Child) -> String {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = wait_child(&mut c, Duration::from_secs(5));
    let _ = c.kill();
    let _ = c.wait();
    let mut err = String::new();
    let _ = c.stderr.take().unwrap().read_to_string(&mut err);
    err
}

#[test]
fn log_lines_go_to_syslog_as_datagrams() {
    let dir = TempDir::new("syslog");
    let sock_path = dir.path("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cfg = Cfg::simple(free_port(), &[free_port()]).set("log", "\"syslog\"");
    let child = start(&cfg, &dir, &sock_path);
    let pid = child.id();
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        let l = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = l.contains("bound");
        lines.push(l);
        if done {
            break;
        }
    }
    let err = stop(child);
    let prefix = format!("<30>baton[{pid}]: INFO  [");
    assert!(lines.iter().any(|l| l.starts_with(&prefix) && l.contains("bound")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.ends_with('\n')), "one message per datagram, no newline");
    assert!(!err.contains("INFO"), "nothing logged on stderr: {err}");
}

#[test]
fn without_a_syslog_socket_lines_stay_on_stderr() {
    let dir = TempDir::new("syslog-missing");
    let cfg = Cfg::simple(free_port(), &[free_port()]).set("log", "\"syslog\"");
    let missing = dir.path("no.sock");
    let child = start(&cfg, &dir, &missing);
    let admin = cfg.admin.unwrap();
    assert!(eventually(Duration::from_secs(10), || http_get(admin, "/health").is_some()));
    let err = stop(child);
    assert!(err.contains(&format!("syslog at {missing}: ")) && err.contains("; logging to stderr"), "{err}");
    assert!(err.contains("INFO  [") && err.contains("bound"), "{err}");
}

#[test]
fn an_unknown_log_sink_is_refused() {
    let dir = TempDir::new("syslog-bad");
    let path = dir.path("c.json");
    std::fs::write(&path, Cfg::simple(free_port(), &[free_port()]).set("log", "\"file\"").json()).unwrap();
    let (code, _, err) = run(&["--check", "-c", &path]);
    assert_eq!(code, 2);
    assert!(err.contains("baton.log: use \"stderr\" (the default) or \"syslog\""), "{err}");
}
