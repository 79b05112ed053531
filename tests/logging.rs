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

/// A stderr that nobody reads (a stalled log pipe of an init system) must not stop the event
/// loop: lines are dropped while the pipe is full, the proxy and a hot restart go on, and once
/// the pipe is read again the next line says how many were lost.
#[test]
fn a_stderr_nobody_reads_drops_lines_instead_of_stopping_baton() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    // fill the pipe: 4096-byte writes while the kernel says one goes through without waiting
    let chunk = [b'x'; 4096];
    while poll(&mut [PollFd::new(w.as_fd(), PollFlags::POLLOUT)], PollTimeout::ZERO).unwrap() > 0 {
        nix::unistd::write(&w, &chunk).unwrap();
    }
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("stalledlog");
    let cfg = Cfg::simple(free_port(), &[be.port]);
    let config = dir.path("baton.json");
    std::fs::write(&config, cfg.json()).unwrap();
    let child = Command::new(&*BIN)
        .args(["-c", &config, "--runtime-dir", &dir.path("run")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(w))
        .spawn()
        .unwrap();
    // stops every process of the test by PID, also when an assertion fails
    let b = Baton { child, dir, config, admin: cfg.admin, listen: cfg.listeners[0].1 };
    let pid = nix::unistd::Pid::from_raw(b.pid());
    let data = payload(7, 3000);
    assert!(
        eventually(Duration::from_secs(10), || echo_roundtrip(cfg.listeners[0].1, &data).is_ok_and(|b| b == data)),
        "baton stopped serving behind a full stderr pipe"
    );
    // baton writes the pipe through a non-blocking description of its own (sys::stdio): a
    // second descriptor for the same pipe, besides the shared fd 2
    let fds = std::fs::read_dir(format!("/proc/{}/fd", b.pid())).unwrap();
    let pipe = std::fs::read_link(format!("/proc/{}/fd/2", b.pid())).unwrap();
    let same = fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok()).filter(|l| *l == pipe).count();
    assert_eq!(same, 2, "fd 2 and baton's own non-blocking copy of {pipe:?}");
    // a hot restart logs a dozen lines, all into the full pipe: it still completes
    let gen = json_num(&http_get(cfg.admin.unwrap(), "/stats").unwrap().1, "\"generation\"", "generation");
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    let generation =
        || http_get(cfg.admin.unwrap(), "/stats").map(|(_, b)| json_num(&b, "\"generation\"", "generation"));
    assert!(eventually(Duration::from_secs(10), || generation() == Some(gen + 1)), "the restart stalled");
    assert_eq!(echo_roundtrip(cfg.listeners[0].1, &data).unwrap(), data);

    // read the pipe empty, then make baton log again (a restart)
    let mut reader = std::fs::File::from(r);
    nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
    let mut sink = [0u8; 65536];
    while reader.read(&mut sink).is_ok_and(|n| n > 0) {}
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || generation() == Some(gen + 2)), "the second restart stalled");
    let mut text = String::new();
    let t = std::time::Instant::now();
    while !text.contains("serving") && t.elapsed() < Duration::from_secs(5) {
        match reader.read(&mut sink) {
            Ok(n) if n > 0 => text.push_str(&String::from_utf8_lossy(&sink[..n])),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    drop(b);
    // the process that lived through the stall (the SIGHUP fork serving on until the takeover)
    // reports its count before its next line; the re-executed one starts with a fresh count
    let note = text.lines().find(|l| l.contains("log lines dropped: stderr was not being read"));
    let n: u64 = note.and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok())).unwrap_or(0);
    assert!(n >= 3, "no count of the dropped lines, or too small ({n}): {text}");
    assert!(text.contains("serving"), "{text}");
}
