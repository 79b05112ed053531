//! systemd's notify protocol with a fake manager: a unix datagram socket standing in for
//! NOTIFY_SOCKET. READY=1 with MAINPID when serving, RELOADING=1 then READY=1 (same PID) around a
//! SIGHUP restart, READY=1 with the new MAINPID after a hand-started takeover, STOPPING=1 at stop.
mod common;
use common::*;
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Messages until one contains `want` (bounded), all of them returned.
fn until(sock: &UnixDatagram, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = m.contains(want);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
    panic!("no message with {want:?} within 10 s; got {seen:?}");
}

#[test]
fn a_fake_manager_sees_ready_reloading_mainpid_and_stopping() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("notify");
    let path = dir.path("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let cfg = Cfg::simple(free_port(), &[be.port]);
    let mut b = Baton::start_env(&cfg, dir, &[("NOTIFY_SOCKET", &path)]);
    let pid = b.pid();
    let m = until(&sock, "READY=1");
    assert!(m.last().unwrap().contains(&format!("MAINPID={pid}")), "{m:?}");

    b.signal(Signal::SIGHUP);
    let m = until(&sock, "RELOADING=1");
    assert_eq!(m.len(), 1, "{m:?}");
    let m = until(&sock, "READY=1");
    assert!(
        m.last().unwrap().contains(&format!("MAINPID={pid}")) && m.last().unwrap().contains("generation 1"),
        "{m:?}"
    );

    // a hand-started successor inherits NOTIFY_SOCKET (as under systemd) and reports itself
    let mut succ = {
        let mut c = std::process::Command::new(&*BIN);
        c.args(["-c", &b.config, "--runtime-dir", &b.run_dir()]).env("NOTIFY_SOCKET", &path);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    };
    let m = until(&sock, "READY=1");
    assert!(m.last().unwrap().contains(&format!("MAINPID={}", succ.id())), "{m:?}");
    assert!(!m.iter().any(|x| x.contains("STOPPING")), "the drained old process must not say STOPPING: {m:?}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(succ.id() as i32), Signal::SIGTERM).unwrap();
    until(&sock, "STOPPING=1");
    assert_eq!(wait_child(&mut succ, Duration::from_secs(5)), Some(0));
    let _ = b.wait_exit(Duration::from_secs(5));
}

/// What systemd does for socket activation: bind a listening socket at `ip`:`cfg`'s first
/// listener port, pass it as descriptor 3, name this PID in LISTEN_PID, exec baton. Its log goes
/// to `baton.log` in its directory; returns it ready, and that log's path.
fn activated(cfg: &Cfg, ip: &str, name: &str) -> (Baton, String) {
    let dir = TempDir::new(name);
    let config = dir.path("baton.json");
    std::fs::write(&config, cfg.json()).unwrap();
    let port = cfg.listeners[0].1;
    let log = dir.path("baton.log");
    let script = format!(
        "import os, socket\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{ip}', {port})); s.listen(64)\n\
         if s.fileno() != 3: os.dup2(s.fileno(), 3)\n\
         os.set_inheritable(3, True)\n\
         os.environ['LISTEN_FDS'] = '1'; os.environ['LISTEN_PID'] = str(os.getpid())\n\
         os.execv('{bin}', ['{bin}', '-c', '{config}', '--runtime-dir', '{run}'])",
        run = dir.path("run"),
        bin = &*BIN
    );
    let child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut b = Baton { child, dir, config, admin: cfg.admin, listen: port };
    b.wait_ready();
    (b, log)
}

#[test]
fn listeners_from_socket_activation_are_adopted_and_survive_a_sighup() {
    let be = Backend::start(Mode::Echo);
    let mut cfg = Cfg::simple(free_port(), &[be.port]);
    cfg.admin = Some(free_port());
    let port = cfg.listeners[0].1;
    let (mut b, log) = activated(&cfg, "127.0.0.1", "activation");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("socket activation: listener socket 127.0.0.1:{port} taken from the supervisor")),
        "{text}"
    );
    assert!(!text.contains(&format!("on 127.0.0.1:{port}: bound")), "baton bound instead of adopting: {text}");
    let d = payload(1, 2000);
    assert_eq!(echo_roundtrip(port, &d).unwrap(), d);
    // re-exec under the same PID: LISTEN_* were consumed, descriptor 3 is not taken again
    b.signal(Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || b.serving_pid() == Some(b.pid() as u64) && b.generation() == 1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("socket activation:").count(), 1, "{text}");
    assert_eq!(echo_roundtrip(port, &d).unwrap(), d);
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait_exit(Duration::from_secs(5)), Some(0));
}

/// systemd's `ListenStream=0.0.0.0:P` gives an IPv4-only socket, where baton's own wildcard
/// takes both families: baton keeps the socket it was given (no rebinding under the
/// supervisor's feet) and says in a warning that IPv6 clients are not served.
#[test]
fn an_ipv4_only_wildcard_socket_from_the_supervisor_is_kept_with_a_warning() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[be.port])
        .edit(&format!(r#""address":"127.0.0.1:{port}""#), &format!(r#""address":"0.0.0.0:{port}""#));
    let (mut b, log) = activated(&cfg, "0.0.0.0", "activation-v4");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("listener socket 0.0.0.0:{port} taken from the supervisor")), "{text}");
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    assert_eq!(text.contains("the socket handed over serves IPv4 only"), ipv6, "{text}");
    let d = payload(2, 2000);
    assert_eq!(echo_roundtrip(port, &d).unwrap(), d);
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait_exit(Duration::from_secs(5)), Some(0));
}
