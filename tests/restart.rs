//! Hot restart with the real binary: takeover by a second process and by SIGHUP, rollback on
//! every failure, faults injected at each protocol step on both sides, leftovers after kill -9,
//! concurrent attempts, an unauthorised peer, and malformed messages.
mod common;
use common::*;
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn pid_cfg(dir: &TempDir, be: u16) -> (Cfg, String) {
    let pid_file = dir.path("baton.pid");
    let cfg = Cfg::simple(free_port(), &[be]).set("pid_file", &format!("\"{pid_file}\""));
    (cfg, pid_file)
}

fn read_pid(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn wait_serving(b: &Baton, pid: u32) -> bool {
    eventually(Duration::from_secs(10), || b.serving_pid() == Some(pid as u64))
}

fn alive(pid: i32) -> bool {
    pids_with("").contains(&pid)
}

#[test]
fn a_second_process_takes_over_and_the_old_one_drains_then_exits() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("takeover");
    let (cfg, pid_file) = pid_cfg(&dir, be.port);
    // draining as such (tests/transfer.rs moves connections instead)
    let cfg = cfg.set("transfer_connections", "false");
    let b = Baton::start_in(&cfg, dir);
    let old = b.pid();
    for id in 0..5 {
        let d = payload(id, 1000);
        assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d);
    }
    // a long-lived connection opened on the old process
    let mut long = TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    long.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 5];
    long.write_all(b"hello").unwrap();
    long.read_exact(&mut buf).unwrap();

    let succ = b.successor(&[]);
    assert!(wait_serving(&b, succ.id()), "successor never served");
    assert_eq!(read_pid(&pid_file), Some(succ.id()), "the PID file must name the owner");
    let stats = b.stats();
    assert_eq!(json_num(&stats, "\"generation\"", "generation"), 1);
    assert!(json_num(&stats, "\"connections\"", "total") >= 6, "counters carry over: {stats}");
    // the old process drains: the long connection still works through it
    assert!(alive(old));
    long.write_all(b"again").unwrap();
    long.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
    drop(long);
    assert!(eventually(Duration::from_secs(2), || !alive(old)), "old process did not exit after its last connection");
    let d = payload(99, 5000);
    assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d);
    stop_child(succ);
}

#[test]
fn sighup_restarts_in_place_keeping_the_pid() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("hup");
    let (cfg, pid_file) = pid_cfg(&dir, be.port);
    let b = Baton::start_in(&cfg, dir);
    for round in 1..=3 {
        b.signal(Signal::SIGHUP);
        assert!(eventually(Duration::from_secs(10), || b.generation() == round), "generation {round} not reached");
        assert_eq!(b.serving_pid(), Some(b.pid() as u64), "the PID changed");
        assert_eq!(read_pid(&pid_file), Some(b.child.id()));
        let d = payload(round, 3000);
        assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d);
    }
    // the forked old generations finished (nothing to drain) and were reaped
    assert!(eventually(Duration::from_secs(3), || pids_with(&b.config) == vec![b.pid()]), "{:?}", pids_with(&b.config));
}

#[test]
fn invalid_config_exits_2_and_never_contacts_the_running_baton() {
    let be = Backend::start(Mode::Echo);
    let b = Baton::start(&Cfg::simple(free_port(), &[be.port]));
    let bad = b.dir.path("bad.json");
    std::fs::write(&bad, "{\"servers\": 7}").unwrap();
    let (rc, _, err) = run(&["-c", &bad, "--runtime-dir", &b.run_dir()]);
    assert_eq!(rc, 2, "{err}");
    assert!(!std::path::Path::new(&format!("{}/listen.sock", b.run_dir())).exists());
    assert_eq!(b.generation(), 0);
    // SIGHUP with a broken config file: refused, same process keeps serving, nothing forked
    std::fs::write(&b.config, "{ not json").unwrap();
    b.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.serving_pid(), Some(b.pid() as u64));
    assert_eq!(b.generation(), 0);
    assert_eq!(pids_with(&b.config), vec![b.pid()]);
}

#[test]
fn a_taken_port_for_a_new_listener_aborts_the_takeover() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("taken");
    let (mut cfg, pid_file) = pid_cfg(&dir, be.port);
    let b = Baton::start_in(&cfg, dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.listeners.push(("extra".into(), taken.local_addr().unwrap().port(), "back".into()));
    std::fs::write(&b.config, cfg.json()).unwrap();
    let mut succ = b.successor(&[]);
    assert_eq!(wait_child(&mut succ, Duration::from_secs(10)), Some(1));
    let err = child_stderr(&mut succ);
    assert!(err.contains("already in use") && err.contains("aborted"), "{err}");
    assert_eq!(b.serving_pid(), Some(b.pid() as u64));
    assert_eq!(read_pid(&pid_file), Some(b.child.id()));
    let d = payload(1, 100);
    assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d);
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection (BATON_FAULT)")]
fn new_process_killed_at_each_step_leaves_the_old_one_serving_without_loss() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("killnew");
    let (cfg, pid_file) = pid_cfg(&dir, be.port);
    let b = Baton::start_in(&cfg, dir);
    let load = Load::start(b.listen, 8, 4, 30);
    for point in ["new-after-go", "new-after-fds", "new-before-ack"] {
        let spec = format!("{point}:kill");
        let mut succ = b.successor(&[("BATON_FAULT", &spec)]);
        assert_eq!(wait_child(&mut succ, Duration::from_secs(10)), Some(-1), "{point}: not killed");
        // the old process notices (disconnect) and keeps serving
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(b.serving_pid(), Some(b.pid() as u64), "{point}");
        assert_eq!(b.generation(), 0, "{point}");
        assert_eq!(read_pid(&pid_file), Some(b.child.id()), "{point}");
    }
    let r = load.stop();
    assert!(r.ok > 50, "too little load ran: {}", r.ok);
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    // nothing left behind blocks a normal takeover afterwards
    let succ = b.successor(&[]);
    assert!(wait_serving(&b, succ.id()));
    stop_child(succ);
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection (BATON_FAULT)")]
fn old_process_killed_during_the_handoff_leaves_the_new_one_serving() {
    for point in ["old-before-manifest", "old-after-manifest"] {
        let be = Backend::start(Mode::Echo);
        let dir = TempDir::new("killold");
        let (cfg, pid_file) = pid_cfg(&dir, be.port);
        let spec = format!("{point}:kill");
        let mut b = Baton::start_env(&cfg, dir, &[("BATON_FAULT", &spec)]);
        let succ = b.successor(&[]);
        assert!(wait_serving(&b, succ.id()), "{point}: successor not serving");
        let killed = eventually(Duration::from_secs(3), || {
            use std::os::unix::process::ExitStatusExt;
            matches!(b.child.try_wait(), Ok(Some(st)) if st.signal() == Some(9))
        });
        assert!(killed, "{point}: the old process was not killed at the fault point");
        assert_eq!(read_pid(&pid_file), Some(succ.id()), "{point}");
        let d = payload(3, 3000);
        assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d, "{point}");
        stop_child(succ);
    }
}

#[test]
fn stale_socket_and_lock_after_kill_9_do_not_block_the_next_start() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("stale");
    let cfg = Cfg::simple(free_port(), &[be.port]);
    let mut b = Baton::start_in(&cfg, dir);
    b.signal(Signal::SIGKILL);
    let _ = b.wait_exit(Duration::from_secs(5));
    let run = b.run_dir();
    assert!(std::path::Path::new(&format!("{run}/reconfig.sock")).exists());
    assert!(std::path::Path::new(&format!("{run}/baton.lock")).exists());
    let next = b.successor(&[]);
    assert!(wait_serving(&b, next.id()), "a stale reconfig.sock or lock blocked the start");
    assert_eq!(b.generation(), 0, "a cold start after a crash is generation 0");
    stop_child(next);
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection (BATON_FAULT)")]
fn a_third_process_during_a_handoff_gets_busy_and_exit_3() {
    let be = Backend::start(Mode::Echo);
    let b = Baton::start(&Cfg::simple(free_port(), &[be.port]));
    let first = b.successor(&[("BATON_FAULT", "new-after-go:pause")]);
    std::thread::sleep(Duration::from_millis(500));
    let mut third = b.successor(&[]);
    assert_eq!(wait_child(&mut third, Duration::from_secs(5)), Some(3));
    assert!(child_stderr(&mut third).contains("another hot restart is in progress"));
    assert!(wait_serving(&b, first.id()), "the first successor did not complete");
    stop_child(first);
}

#[test]
fn a_peer_of_another_uid_is_refused_and_the_old_process_keeps_serving() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to act as another uid");
        return;
    }
    let be = Backend::start(Mode::Echo);
    let b = Baton::start(&Cfg::simple(free_port(), &[be.port]));
    let run = b.run_dir();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&b.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(format!("{run}/reconfig.sock"), std::fs::Permissions::from_mode(0o777)).unwrap();
    // a HELLO from uid 65534: the answer must be REFUSED (type 4)
    let script = format!(
        "import socket,struct\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\ns.connect('{run}/reconfig.sock')\n\
         p=struct.pack('<I',1)+bytes([0])\ns.send(b'BATN'+bytes([1,1])+struct.pack('<H',len(p))+p)\n\
         r=s.recv(100)\nprint(r[5] if len(r)>5 else -1)"
    );
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.serving_pid(), Some(b.pid() as u64));
    assert_eq!(b.generation(), 0);
    let d = payload(5, 100);
    assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d);
}

#[test]
fn malformed_messages_to_the_running_baton_are_refused_without_a_crash() {
    use baton::restart::channel;
    let be = Backend::start(Mode::Echo);
    let b = Baton::start(&Cfg::simple(free_port(), &[be.port]));
    let path = format!("{}/reconfig.sock", b.run_dir());
    let send_raw = |bytes: &[u8]| {
        let c = baton::sys::net::unix_connect(&path).unwrap();
        nix::sys::socket::send(std::os::fd::AsRawFd::as_raw_fd(&c), bytes, nix::sys::socket::MsgFlags::empty())
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    };
    send_raw(b"GET / HTTP/1.1\r\n\r\n");
    send_raw(b"BATN\x09\x01\x05\x00\x01\x00\x00\x00\x00"); // protocol version 9
    send_raw(b"BATN\x01\x01\xff\x00\x01"); // length lies
    send_raw(b"BAT"); // truncated header
                      // CONTROL records (type 15) that are wrong: an unknown request, none, one byte too many.
                      // None begins a handoff, so none is recorded as a failed hot restart (the junk above in
                      // another protocol version is: it could be a successor of that version)
    let failed_restarts = || http_get(b.admin.unwrap(), "/").unwrap().1.matches(">failed<").count();
    let failed_before = failed_restarts();
    let v = baton::sansio::codec::PROTO_VERSION;
    send_raw(&[b'B', b'A', b'T', b'N', v, 15, 1, 0, 9]);
    send_raw(&[b'B', b'A', b'T', b'N', v, 15, 0, 0]);
    send_raw(&[b'B', b'A', b'T', b'N', v, 15, 2, 0, 1, 1]);
    // a status request carrying a descriptor it does not announce: refused (closed without an
    // answer), and the descriptor closed (once baton's copy of the pipe's read end is gone,
    // writing gets EPIPE)
    {
        let c = baton::sys::net::unix_connect(&path).unwrap();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let status = baton::sansio::codec::Msg::Control { op: baton::sansio::codec::Control::Status };
        channel::send(&c, &status, &[std::os::fd::AsRawFd::as_raw_fd(&r)]).unwrap();
        drop(r);
        assert!(baton::sys::net::wait_readable(&c, 2000).unwrap(), "closed or answered");
        let mut buf = [0u8; 64];
        assert_eq!(nix::unistd::read(&c, &mut buf).unwrap(), 0, "refused: no answer");
        let closed = || nix::unistd::write(&w, b"x") == Err(nix::errno::Errno::EPIPE);
        assert!(eventually(Duration::from_secs(2), closed), "the received descriptor was closed");
    }
    assert_eq!(failed_restarts(), failed_before, "a bad control request is not a failed hot restart");
    // a HELLO, then garbage instead of READY
    let c = baton::sys::net::unix_connect(&path).unwrap();
    let hello = baton::sansio::codec::Msg::Hello { pid: 1, baton_version: Default::default() };
    channel::send(&c, &hello, &[]).unwrap();
    let (go, _) = channel::recv_wait(&c, 2000, "GO").unwrap();
    assert!(matches!(go, baton::sansio::codec::Msg::Go { .. }), "{go:?}");
    nix::sys::socket::send(
        std::os::fd::AsRawFd::as_raw_fd(&c),
        b"BATN\x01\x05\x01\x00",
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(c);
    assert_eq!(b.serving_pid(), Some(b.pid() as u64));
    // back to idle: a real successor still takes over
    let succ = b.successor(&[]);
    assert!(wait_serving(&b, succ.id()));
    stop_child(succ);
}

/// Plays the old process against a real new one and feeds it a bad manifest.
fn fake_old_process(bad: impl Fn(&std::os::fd::OwnedFd, &std::net::TcpListener)) -> (i32, String) {
    use baton::restart::channel;
    use baton::sansio::codec::Msg;
    let dir = TempDir::new("fakeold");
    let run = dir.path("run");
    std::fs::create_dir_all(&run).unwrap();
    let l = baton::sys::net::unix_listen(&format!("{run}/reconfig.sock")).unwrap();
    let cfg = Cfg::simple(free_port(), &[free_port()]);
    let config = dir.path("c.json");
    std::fs::write(&config, cfg.json()).unwrap();
    let mut child = std::process::Command::new(&*BIN)
        .args(["-c", &config, "--runtime-dir", &run])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(baton::sys::net::wait_readable(&l, 5000).unwrap());
    let peer = baton::sys::net::unix_accept(&l).unwrap().unwrap();
    let (hello, _) = channel::recv_wait(&peer, 5000, "HELLO").unwrap();
    assert!(matches!(hello, Msg::Hello { .. }));
    channel::send(&peer, &Msg::Go { pid: std::process::id() }, &[]).unwrap();
    let (ready, _) = channel::recv_wait(&peer, 5000, "READY").unwrap();
    assert_eq!(ready, Msg::Ready);
    let chan = baton::sys::net::unix_connect(&format!("{run}/listen.sock")).unwrap();
    let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bad(&chan, &sock);
    let code = wait_child(&mut child, Duration::from_secs(10));
    if code.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    (code.unwrap_or(-99), child_stderr(&mut child))
}

#[test]
fn a_bad_manifest_is_refused_by_the_new_process_with_a_clear_error() {
    use baton::restart::channel;
    use baton::sansio::codec::{self, Entry, FdKind, ManifestHead, Msg};
    use std::os::fd::AsRawFd;
    let manifest = |addr: std::net::SocketAddr, n: usize| Msg::Manifest {
        head: ManifestHead { baton_version: Default::default(), totals: Default::default(), batch: 0, last: true },
        entries: (0..n)
            .map(|_| Entry { kind: FdKind::Listener, name: Default::default(), addr: Some(addr.into()), pid: 0 })
            .collect(),
    };
    let raw_send = |chan: &std::os::fd::OwnedFd, b: &[u8]| {
        nix::sys::socket::send(chan.as_raw_fd(), b, nix::sys::socket::MsgFlags::empty()).unwrap();
    };
    // wrong protocol version
    let (rc, err) = fake_old_process(|chan, _| {
        let mut buf = [0u8; 256];
        // (not BUSY or REFUSED: those two keep their layout in every version)
        let n = codec::encode(&Msg::Ready, &mut buf).unwrap();
        buf[4] = 7;
        raw_send(chan, &buf[..n]);
    });
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("protocol version 7"), "{err}");
    // truncated manifest
    let (rc, err) = fake_old_process(|chan, s| {
        let mut buf = [0u8; 1024];
        let n = codec::encode(&manifest(s.local_addr().unwrap(), 1), &mut buf).unwrap();
        raw_send(chan, &buf[..n - 3]);
    });
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("bad handoff message"), "{err}");
    // announces two descriptors, carries one
    let (rc, err) = fake_old_process(|chan, s| {
        channel::send(chan, &manifest(s.local_addr().unwrap(), 2), &[s.as_raw_fd()]).unwrap();
    });
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("announced 2 descriptors but 1 arrived"), "{err}");
    // a descriptor that is not what the manifest says
    let (rc, err) = fake_old_process(|chan, s| {
        let wrong: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        channel::send(chan, &manifest(wrong, 1), &[s.as_raw_fd()]).unwrap();
    });
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("failed verification: bound to a different address"), "{err}");
}

#[test]
fn drain_deadline_bounds_the_old_process_and_max_draining_caps_generations() {
    let be = Backend::start(Mode::Echo);
    // draining as such: connections stay with their generation (no transfer)
    let cfg = Cfg::simple(free_port(), &[be.port])
        .set("drain_timeout", "\"1s\"")
        .set("max_draining", "1")
        .set("transfer_connections", "false");
    let b = Baton::start(&cfg);
    // generation 0 holds a connection that never ends: it must still exit at the drain deadline
    let mut held = TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    held.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    held.read_exact(&mut one).unwrap();
    let old = b.pid();
    let succ = b.successor(&[]);
    assert!(wait_serving(&b, succ.id()));
    let t = Instant::now();
    assert!(eventually(Duration::from_secs(3), || !alive(old)), "old process outlived its drain deadline");
    assert!(t.elapsed() < Duration::from_millis(2500), "took {:?}", t.elapsed());
    stop_child(succ);

    // max_draining 1, long drain: each generation holds a connection; at most one drains at once
    let cfg = Cfg::simple(free_port(), &[be.port])
        .set("drain_timeout", "\"60s\"")
        .set("max_draining", "1")
        .set("transfer_connections", "false");
    let b = Baton::start(&cfg);
    let mut held = Vec::new();
    let mut kids = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
        s.write_all(b"x").unwrap();
        s.read_exact(&mut one).unwrap();
        held.push(s);
        let succ = b.successor(&[]);
        assert!(wait_serving(&b, succ.id()));
        kids.push(succ);
    }
    assert!(
        eventually(Duration::from_secs(3), || pids_with(&b.config).len() <= 2),
        "more than one draining generation: {:?}",
        pids_with(&b.config)
    );
    kids.into_iter().for_each(stop_child);
}

/// Stopping the owner (SIGTERM, as an init system that knows only the main PID does) also
/// ends the generations still draining after SIGHUP restarts, instead of leaving them running
/// until their drain deadline (60 s here).
#[test]
fn stopping_the_owner_also_stops_draining_generations() {
    let be = Backend::start(Mode::Echo);
    let cfg = Cfg::simple(free_port(), &[be.port])
        .set("drain_timeout", "\"60s\"")
        .set("max_draining", "4")
        .set("transfer_connections", "false");
    let mut b = Baton::start(&cfg);
    let mut held = Vec::new();
    let mut one = [0u8; 1];
    for round in 1..=2 {
        let mut s = TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
        s.write_all(b"x").unwrap();
        s.read_exact(&mut one).unwrap();
        held.push(s);
        b.signal(Signal::SIGHUP);
        assert!(eventually(Duration::from_secs(10), || b.generation() == round));
    }
    assert!(eventually(Duration::from_secs(5), || pids_with(&b.config).len() == 3), "{:?}", pids_with(&b.config));
    let t = Instant::now();
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        eventually(Duration::from_secs(5), || pids_with(&b.config).is_empty()),
        "draining generations outlived the owner's stop: {:?}",
        pids_with(&b.config)
    );
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(matches!(s.read(&mut one), Ok(0) | Err(_)), "the held connections were closed");
    }
}
