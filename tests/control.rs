//! `baton status|reload|stop` against the real binary: the answers come from the running baton
//! over reconfig.sock (no admin port is used to decide), with the exit codes the README gives.
mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn ctl(b: &Baton, args: &[&str]) -> (i32, String, String) {
    let mut v: Vec<&str> = args.to_vec();
    let run_dir = b.run_dir();
    v.extend(["-c", &b.config, "--runtime-dir", &run_dir]);
    run(&v)
}

#[test]
fn status_shows_listeners_hosts_connections_and_draining_generations() {
    let be = Backend::start(Mode::Echo);
    let dead = free_port(); // a host nobody listens on: marked down after a failed connect
    let cfg = Cfg::simple(free_port(), &[be.port, dead])
        .set("transfer_connections", "false")
        .set("fail_threshold", "1")
        .set("drain_timeout", "\"20s\"");
    let b = Baton::start(&cfg);
    // one connection through each host (round robin; the dead one fails over to the live one)
    let mut held = std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    assert_eq!(echo_roundtrip(b.listen, b"x").unwrap(), b"x");
    let d = payload(1, 100);
    held.write_all(&d).unwrap();
    let mut back = vec![0u8; d.len()];
    held.read_exact(&mut back).unwrap();

    let pid = b.pid();
    assert!(eventually(Duration::from_secs(5), || ctl(&b, &["status"]).1.contains("connections: 1 active of")));
    let (code, out, err) = ctl(&b, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("baton {}, pid {pid}, generation 0, serving, up ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("connections: 1 active of"), "{out}");
    assert!(out.contains("draining generations: none"), "{out}");
    let front = out.lines().find(|l| l.starts_with("front ")).unwrap_or_else(|| panic!("no listener row: {out}"));
    let cols: Vec<&str> = front.split_whitespace().collect();
    assert_eq!(&cols[..4], ["front", &format!("127.0.0.1:{}", b.listen), "back", "1"], "{front}");
    let host =
        |port: u16| out.lines().find(|l| l.contains(&format!("127.0.0.1:{port} "))).unwrap_or_default().to_string();
    assert!(host(be.port).contains(" up "), "{out}");
    assert!(host(dead).contains("down (passive)"), "{out}");
    let cold =
        out.lines().find(|l| l.contains("  ok      cold start, pid")).unwrap_or_else(|| panic!("history: {out}"));
    assert!(cold.len() > 19 && cold.as_bytes()[4] == b'/', "a UTC time first: {cold}");

    // JSON: the /stats document, from the same process
    let (code, json, _) = ctl(&b, &["status", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_num(&json, "\"pid\"", "pid"), pid as u64);
    let stats = b.stats();
    assert_eq!(
        json.split("\"listeners\"").nth(1).map(|s| s.split("\"active\"").count()),
        stats.split("\"listeners\"").nth(1).map(|s| s.split("\"active\"").count())
    );

    // after a hot restart the held connection drains in the old process, which status names
    b.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || b.generation() == 1));
    let old: Vec<i32> = pids_with(&b.config).into_iter().filter(|&p| p != pid).collect();
    assert_eq!(old.len(), 1, "one draining generation");
    let (_, out, _) = ctl(&b, &["status"]);
    assert!(out.contains(&format!("draining generations: pid {}", old[0])), "{out}");
    assert!(out.contains("generation 1, serving"), "{out}");
}

#[test]
fn reload_answers_once_the_new_process_serves_and_keeps_the_pid() {
    let be = Backend::start(Mode::Echo);
    let b = Baton::start(&Cfg::simple(free_port(), &[be.port]));
    let pid = b.pid();
    // an established connection is moved to the new process, and keeps working
    let mut s = std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let roundtrip = |s: &mut std::net::TcpStream, k| {
        let d = payload(k, 1000);
        s.write_all(&d).unwrap();
        let mut back = vec![0u8; d.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, d);
    };
    roundtrip(&mut s, 1);
    for round in 1..=3u64 {
        let t = Instant::now();
        let (code, out, err) = ctl(&b, &["reload"]);
        assert_eq!(code, 0, "reload {round}: {out} {err}");
        assert!(out.starts_with(&format!("pid {pid} took over and serves; pid ")), "{out}");
        // the answer means done: the new generation already answers, no polling needed
        assert_eq!(b.generation(), round, "answered only once the new process serves");
        assert_eq!(b.serving_pid(), Some(pid as u64), "same PID, as a supervisor expects");
        eprintln!("reload {round}: {:?}", t.elapsed());
        roundtrip(&mut s, round + 1);
    }
}

#[test]
fn a_failed_reload_says_why_and_the_running_baton_keeps_serving() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("ctlfail");
    let cfg = Cfg::simple(free_port(), &[be.port]);
    let b = Baton::start_in(&cfg, dir);

    // 1. a new listener on a port that is taken: the takeover is aborted
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut with_taken = cfg.clone();
    with_taken.listeners.push(("extra".into(), port, "back".into()));
    std::fs::write(&b.config, with_taken.json()).unwrap();
    let (code, out, err) = ctl(&b, &["reload"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(err.contains("hot restart aborted") && err.contains(&port.to_string()), "{err}");
    assert!(err.contains("keeps serving"), "{err}");
    assert_eq!(b.generation(), 0);
    assert_eq!(echo_roundtrip(b.listen, b"still").unwrap(), b"still");

    // 2. the running baton's config file broken, the client given a good copy: the running
    //    baton refuses before it forks, and says so
    let good = b.dir.path("good.json");
    std::fs::write(&good, cfg.json()).unwrap();
    std::fs::write(&b.config, "{\"servers\": [").unwrap();
    let run_dir = b.run_dir();
    let (code, _, err) = run(&["reload", "-c", &good, "--runtime-dir", &run_dir]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the current config stays"), "{err}");
    assert_eq!(echo_roundtrip(b.listen, b"still").unwrap(), b"still");

    // 3. the client's own config broken: nothing is contacted, exit 2
    let (code, _, err) = ctl(&b, &["reload"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing was changed"), "{err}");

    // 4. a good config again: the reload works
    std::fs::write(&b.config, cfg.json()).unwrap();
    let (code, out, err) = ctl(&b, &["reload"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(eventually(Duration::from_secs(5), || b.generation() == 1));
}

#[test]
fn a_stop_that_outlasts_its_timeout_names_the_processes_still_running() {
    let be = Backend::start(Mode::Echo);
    let cfg = Cfg::simple(free_port(), &[be.port]).set("transfer_connections", "false").set("drain_timeout", "\"30s\"");
    let mut b = Baton::start(&cfg);
    // a connection left draining in an old generation, then a graceful stop with a short wait:
    // the old generation's drain outlasts it, and stop says who is still running
    let _held = std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    assert!(eventually(Duration::from_secs(5), || json_num(&b.stats(), "\"active\"", "active") == 1));
    let (code, _, err) = ctl(&b, &["reload"]);
    assert_eq!(code, 0, "{err}");
    let old: Vec<i32> = pids_with(&b.config).into_iter().filter(|&p| p != b.pid()).collect();
    assert_eq!(old.len(), 1);
    let (code, _, err) = ctl(&b, &["stop", "--timeout", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("still running after 1 s: pid {}", old[0])), "{err}");
    assert_eq!(b.wait_exit(Duration::from_secs(5)), Some(0), "the owner itself drained (nothing open) and exited");
    assert_eq!(pids_with(&b.config), old, "the draining generation is left to its own deadline");
    // (dropping `b` ends it by PID)
}

#[test]
fn stop_now_ends_the_owner_and_every_draining_generation() {
    let be = Backend::start(Mode::Echo);
    let cfg = Cfg::simple(free_port(), &[be.port]).set("transfer_connections", "false").set("drain_timeout", "\"30s\"");
    let mut b = Baton::start(&cfg);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap());
        // the previous connection drains in the previous generation: one here
        assert!(eventually(Duration::from_secs(5), || json_num(&b.stats(), "\"active\"", "active") == 1));
        let (code, _, err) = ctl(&b, &["reload"]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(pids_with(&b.config).len(), 3, "the owner and two draining generations");
    let t = Instant::now();
    let (code, out, err) = ctl(&b, &["stop", "--now"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(t.elapsed() < Duration::from_secs(10), "--now does not wait for the 30 s drain");
    assert_eq!(out.matches("pid ").count(), 3, "{out}");
    assert!(pids_with(&b.config).is_empty(), "stop returned while processes were still running");
    assert_eq!(b.wait_exit(Duration::from_secs(1)), Some(0));
    let (code, _, err) = ctl(&b, &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn graceful_stop_drains_then_reports_stopped() {
    let be = Backend::start(Mode::Echo);
    let cfg = Cfg::simple(free_port(), &[be.port]).set("drain_timeout", "\"2s\"");
    let mut b = Baton::start(&cfg);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(eventually(Duration::from_secs(5), || json_num(&b.stats(), "\"active\"", "active") == 1));
    let t = Instant::now();
    let (code, out, err) = ctl(&b, &["stop"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains(&format!("stopped: pid {}", b.pid())), "{out}");
    // the open connection held the process until the drain deadline, then it was closed
    assert!(t.elapsed() >= Duration::from_millis(1500), "stop returned before the drain ended: {:?}", t.elapsed());
    let mut buf = [0u8; 8];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "the connection was closed at the deadline");
    assert_eq!(b.wait_exit(Duration::from_secs(1)), Some(0));
}

#[test]
fn without_a_running_baton_or_with_bad_arguments_the_exit_code_says_so() {
    let dir = TempDir::new("ctlnone");
    let cfg = dir.path("baton.json");
    std::fs::write(&cfg, Cfg::simple(free_port(), &[free_port()]).json()).unwrap();
    let run_dir = dir.path("run");
    for op in ["status", "reload", "stop"] {
        let (code, _, err) = run(&[op, "-c", &cfg, "--runtime-dir", &run_dir]);
        assert_eq!(code, 1, "{op}: {err}");
        assert!(err.contains("not running"), "{op}: {err}");
    }
    let (code, _, err) = run(&["reload", "--now"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown argument `--now`"), "{err}");
    let (code, _, err) = run(&["status", "-c", "/nonexistent/baton.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("or give --runtime-dir"), "{err}");
}

#[test]
fn a_reexecuted_process_that_dies_before_taking_over_is_reported_and_the_fork_serves_on() {
    use std::os::unix::fs::PermissionsExt;
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("ctldies");
    let pid_file = dir.path("baton.pid");
    let b = Baton::start_in(&Cfg::simple(free_port(), &[be.port]).set("pid_file", &format!("\"{pid_file}\"")), dir);
    // a runtime directory others can write: the running baton can still fork and exec, but the
    // re-executed process refuses the directory at start and exits before it connects
    std::fs::set_permissions(b.run_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, out, err) = ctl(&b, &["reload"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(err.contains("exited before taking over"), "{err}");
    let survivor: Vec<i32> = pids_with(&b.config);
    assert_eq!(survivor.len(), 1, "only the forked old generation is left");
    assert_ne!(survivor[0], b.pid());
    assert!(err.contains(&format!("pid {} keeps serving", survivor[0])), "{err}");
    assert_eq!(echo_roundtrip(b.listen, b"on").unwrap(), b"on");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), survivor[0].to_string(), "the PID file names it");
}

#[test]
fn a_reload_or_stop_asked_while_a_reload_is_under_way_is_answered_busy() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("ctlbusy");
    // the re-executed process stalls after GO: the handoff stays under way for a while
    let b = Baton::start_env(&Cfg::simple(free_port(), &[be.port]), dir, &[("BATON_FAULT", "new-after-go:pause")]);
    let pid = b.pid();
    let run_dir = b.run_dir();
    let first = std::process::Command::new(&*BIN)
        .args(["reload", "-c", &b.config, "--runtime-dir", &run_dir])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for op in ["reload", "stop"] {
        let (code, _, err) = ctl(&b, &[op]);
        assert_eq!(code, 3, "{op} during a reload: {err}");
        assert!(err.contains("busy"), "{op}: {err}");
    }
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.generation(), 1, "one reload, not two");
    assert_eq!(b.serving_pid(), Some(pid as u64));
    assert_eq!(echo_roundtrip(b.listen, b"on").unwrap(), b"on", "and nothing stopped");
}
