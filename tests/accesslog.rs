//! Access logs (MOSN's listener `access_logs`): a line per closed connection in MOSN's default
//! format or the one given, to a file, a FIFO or stdout; never waiting (a FIFO nobody reads
//! drops lines and counts them), reopened on SIGUSR1, refused paths named at start.
mod common;
use common::*;
use nix::sys::signal::Signal;
use std::process::{Command, Stdio};
use std::time::Duration;

fn with_log(cfg: Cfg, path: &str, format: Option<&str>) -> Cfg {
    let f = format.map_or(String::new(), |f| format!(r#","log_format":"{f}""#));
    cfg.edit(r#""bind_port":true"#, &format!(r#""bind_port":true,"access_logs":[{{"log_path":"{path}"{f}}}]"#))
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
}

#[test]
fn every_closed_connection_gets_a_line_in_mosns_default_format() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("alog");
    let log = dir.path("access.log");
    let cfg = with_log(Cfg::simple(free_port(), &[be.port]), &log, None);
    let b = Baton::start_in(&cfg, dir);
    for (i, n) in [10usize, 2000, 70_000].iter().enumerate() {
        let d = payload(i as u64, *n);
        assert_eq!(echo_roundtrip(b.listen, &d).unwrap(), d);
    }
    assert!(eventually(Duration::from_secs(5), || lines(&log).len() == 3), "{:?}", lines(&log));
    // MOSN's default: start_time trace_id  connection_id upstream_connection_id
    // request_received_duration response_received_duration bytes_sent bytes_received protocol
    // response_code duration response_flag response_code upstream_local_address
    // downstream_local_address downstream_remote_address upstream_host
    let is_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    for (i, (line, n)) in lines(&log).iter().zip([10u64, 2000, 70_000]).enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 19, "{line}");
        let date: Vec<&str> = f[0].split('/').collect();
        assert!(is_digits(date[0], 4) && is_digits(date[1], 2) && is_digits(date[2], 2), "start date: {line}");
        let (hms, ms) = f[1].split_once('.').unwrap();
        assert!(hms.split(':').all(|p| is_digits(p, 2)) && is_digits(ms, 3), "start time: {line}");
        assert_eq!((f[2], f[3], f[4]), ("-", "", &*(i + 1).to_string()), "trace_id, two spaces, connection_id: {line}");
        assert_eq!((f[5], f[6], f[7]), ("-", "-", "-"), "L7 variables are dashes: {line}");
        assert_eq!(
            (f[8].parse::<u64>().unwrap(), f[9].parse::<u64>().unwrap()),
            (n, n),
            "bytes sent, received: {line}"
        );
        assert_eq!((f[10], f[11], f[13], f[14]), ("TCP", "-", "false", "-"), "{line}");
        assert!(
            f[12].ends_with('s') && f[12].trim_end_matches(['m', 's']).parse::<f64>().is_ok(),
            "duration as Go writes it: {line}"
        );
        assert!(f[15].starts_with("127.0.0.1:"), "upstream local address: {line}");
        assert_eq!(f[16], format!("127.0.0.1:{}", b.listen), "downstream local address: {line}");
        assert!(f[17].starts_with("127.0.0.1:") && f[17] != f[16], "downstream remote address: {line}");
        assert_eq!(f[18], format!("127.0.0.1:{}", be.port), "upstream host: {line}");
    }
    let stats = b.stats();
    assert!(stats.contains(r#""access_log":{"lines":3,"dropped":0}"#), "{stats}");
}

#[test]
fn a_format_of_ones_own_and_a_client_no_host_was_reached_for() {
    let dead = free_port();
    let dir = TempDir::new("alogfmt");
    let log = dir.path("a.log");
    let fmt = "%connection_id% %upstream_cluster% %upstream_host% %response_flag% [%upstream_transport_failure_reason%] %bytes_received% %x-mosn-host% 100\\\\%";
    let cfg = with_log(Cfg::simple(free_port(), &[dead]), &log, Some(fmt));
    let b = Baton::start_in(&cfg, dir);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let _ = std::io::Read::read(&mut s, &mut buf);
    assert!(eventually(Duration::from_secs(5), || lines(&log).len() == 1));
    assert_eq!(
        lines(&log)[0],
        format!("1 back 127.0.0.1:{dead} true [no upstream host could be reached] 0 - 100\\%"),
        "an unknown (L7) variable is a dash, an escaped % stays as MOSN keeps it"
    );
}

#[test]
fn sigusr1_opens_the_file_again_after_logrotate_moved_it() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("alogrot");
    let log = dir.path("access.log");
    let cfg = with_log(Cfg::simple(free_port(), &[be.port]), &log, Some("%connection_id%"));
    let b = Baton::start_in(&cfg, dir);
    for i in 0..3 {
        echo_roundtrip(b.listen, &payload(i, 100)).unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || lines(&log).len() == 3));
    let rotated = format!("{log}.1");
    std::fs::rename(&log, &rotated).unwrap();
    b.signal(Signal::SIGUSR1);
    assert!(eventually(Duration::from_secs(5), || std::path::Path::new(&log).exists()), "reopened by name");
    for i in 3..5 {
        echo_roundtrip(b.listen, &payload(i, 100)).unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || lines(&log).len() == 2));
    assert_eq!(lines(&rotated), ["1", "2", "3"]);
    assert_eq!(lines(&log), ["4", "5"]);
}

#[test]
fn a_fifo_nobody_reads_drops_lines_counts_them_and_the_proxy_goes_on() {
    use std::os::unix::fs::OpenOptionsExt;
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("alogfifo");
    let fifo = dir.path("access.fifo");
    nix::unistd::mkfifo(fifo.as_str(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // a reader that never reads (a stalled log shipper)
    let reader = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(&fifo).unwrap();
    let cfg = with_log(Cfg::simple(free_port(), &[be.port]), &fifo, None);
    let b = Baton::start_in(&cfg, dir);
    // ~125-byte lines: well over what the 64 KiB pipe and the 16 KiB buffer hold (about 660)
    let n = if emulated() { 1000 } else { 1500 };
    for i in 0..n {
        assert_eq!(echo_roundtrip(b.listen, b"x").unwrap(), b"x", "connection {i}");
    }
    let counts = || {
        let s = b.stats();
        (json_num(&s, "\"access_log\"", "lines"), json_num(&s, "\"access_log\"", "dropped"))
    };
    // what has not been written or dropped waits in baton's 16 KiB buffer (about 80 lines)
    let (written, dropped) = counts();
    assert!(dropped > 0 && written > 0, "written {written}, dropped {dropped}");
    assert!(
        written + dropped <= n as u64 && n as u64 - (written + dropped) <= 16 * 1024 / 60,
        "{written} + {dropped} of {n}"
    );
    // the reader catches up: the waiting lines follow, every one whole
    let mut text = Vec::new();
    let done = eventually(Duration::from_secs(10), || {
        let _ = std::io::Read::read_to_end(&mut &reader, &mut text);
        counts().0 + counts().1 == n as u64
    });
    let _ = std::io::Read::read_to_end(&mut &reader, &mut text);
    let (written, dropped) = counts();
    assert!(done, "written {written} + dropped {dropped} != {n}");
    let text = String::from_utf8(text).unwrap();
    assert_eq!(text.lines().count() as u64, written, "every line counted as written is in the FIFO");
    assert!(text.lines().all(|l| l.ends_with(&format!("127.0.0.1:{}", be.port))), "whole lines only");
    eprintln!("FIFO not read: {written} lines written, {dropped} dropped, proxy unaffected");
}

#[test]
fn stdout_as_the_path_writes_to_batons_stdout() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("alogstdout");
    let cfg = with_log(Cfg::simple(free_port(), &[be.port]), "stdout", Some("conn %connection_id% %bytes_sent%"));
    let config = dir.path("baton.json");
    std::fs::write(&config, cfg.json()).unwrap();
    let child = Command::new(&*BIN)
        .args(["-c", &config, "--runtime-dir", &dir.path("run")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut b = Baton { child, dir, config, admin: cfg.admin, listen: cfg.listeners[0].1 };
    b.wait_ready();
    echo_roundtrip(b.listen, b"hello").unwrap();
    assert!(eventually(Duration::from_secs(5), || b.stats().contains(r#""lines":1"#)));
    b.signal(Signal::SIGTERM);
    assert_eq!(b.wait_exit(Duration::from_secs(5)), Some(0));
    let mut out = String::new();
    std::io::Read::read_to_string(b.child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(out, "conn 1 5\n");
}

#[test]
fn a_moved_connection_is_logged_once_by_the_process_that_closes_it() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("alogmove");
    let log = dir.path("access.log");
    let cfg = with_log(Cfg::simple(free_port(), &[be.port]), &log, Some("%connection_id% %bytes_received%"));
    let b = Baton::start_in(&cfg, dir);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", b.listen)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let echo = |s: &mut std::net::TcpStream, d: &[u8]| {
        std::io::Write::write_all(s, d).unwrap();
        let mut back = vec![0u8; d.len()];
        std::io::Read::read_exact(s, &mut back).unwrap();
        assert_eq!(back, d);
    };
    echo(&mut s, b"before");
    b.signal(Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || b.generation() == 1));
    assert!(eventually(Duration::from_secs(10), || pids_with(&b.config).len() == 1), "the old process left");
    echo(&mut s, b"after!");
    drop(s);
    echo_roundtrip(b.listen, b"new").unwrap();
    assert!(eventually(Duration::from_secs(5), || lines(&log).len() == 2), "{:?}", lines(&log));
    let mut got = lines(&log);
    got.sort();
    // the moved one has no id of this process; its byte counts moved with it
    assert_eq!(got, ["- 12", "2 3"]);
}

#[test]
fn bad_access_log_settings_are_refused_naming_the_field() {
    let dir = TempDir::new("alogbad");
    let cases: [(&str, &str, i32, &str); 5] = [
        (
            r#""access_logs":[{"log_path":"rel.log"}]"#,
            "",
            2,
            "access_logs[0].log_path): give an absolute path, or stdout or stderr",
        ),
        (
            r#""access_logs":[{"log_path":"/tmp/x.log","log_format":"%start_time"}]"#,
            "",
            2,
            "access_logs[0].log_format): a `%` opens a variable that is never closed",
        ),
        (r#""access_logs":[{"log_path":"/tmp/x.log","log_format":"%a%%%"}]"#, "", 2, "`%%` names no variable"),
        (
            r#""access_logs":[{"log_path":"/tmp/a.log"},{"log_path":"/tmp/b.log"}]"#,
            "",
            2,
            "baton writes one per listener (MAX_ACCESS_LOGS)",
        ),
        (r#""access_logs":[{"log_format":"%duration%"}]"#, "", 2, "access_logs[0].log_path): is required"),
    ];
    for (i, (logs, _, code, msg)) in cases.iter().enumerate() {
        let cfg = Cfg::simple(free_port(), &[free_port()])
            .edit(r#""bind_port":true"#, &format!(r#""bind_port":true,{logs}"#));
        let path = dir.path(&format!("c{i}.json"));
        std::fs::write(&path, cfg.json()).unwrap();
        let (c, _, err) = run(&["--check", "-c", &path]);
        assert_eq!(c, *code, "{logs}: {err}");
        assert!(err.contains(msg), "{logs}: {err}");
    }
    // at start: a link, another user's file, a FIFO without a reader
    let target = dir.path("target.log");
    std::fs::write(&target, "").unwrap();
    let link = dir.path("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let foreign = dir.path("foreign.log");
    std::fs::write(&foreign, "").unwrap();
    nix::unistd::chown(foreign.as_str(), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let fifo = dir.path("noreader.fifo");
    nix::unistd::mkfifo(fifo.as_str(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // another user's FIFO, with a reader of theirs: it would receive the lines
    let their_fifo = dir.path("theirs.fifo");
    nix::unistd::mkfifo(their_fifo.as_str(), nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    nix::unistd::chown(their_fifo.as_str(), Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let _their_reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(&their_fifo).unwrap()
    };
    // a directory anyone may write, even with the sticky bit (a shared /tmp)
    let shared = dir.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let in_shared = format!("{shared}/access.log");
    for (path, msg) in [
        (&link, "is a symbolic link"),
        (&foreign, "belongs to uid 65534"),
        (&fifo, "is a FIFO nobody reads"),
        (&their_fifo, "belongs to uid 65534"),
        (&in_shared, "its directory"),
    ] {
        let cfg = with_log(Cfg::simple(free_port(), &[free_port()]), path, None);
        let config = dir.path("start.json");
        std::fs::write(&config, cfg.json()).unwrap();
        let run_dir = dir.path("run");
        let (c, _, err) = run(&["-c", &config, "--runtime-dir", &run_dir]);
        assert_eq!(c, 1, "{path}: {err}");
        assert!(err.contains(&format!("listener \"front\": access log {path}: {msg}")), "{err}");
        if msg == "its directory" {
            assert!(err.contains("can be written by other users (mode 1777"), "{err}");
        }
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "", "nothing written through the link");
}

#[test]
fn a_hot_restart_to_a_log_path_that_is_refused_is_aborted_and_the_old_process_logs_on() {
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("alogabort");
    let log = dir.path("access.log");
    let cfg = with_log(Cfg::simple(free_port(), &[be.port]), &log, Some("%connection_id%"));
    let b = Baton::start_in(&cfg, dir);
    let link = b.dir.path("link.log");
    std::os::unix::fs::symlink(&log, &link).unwrap();
    let mut to_link = cfg.clone();
    to_link.edits.clear();
    std::fs::write(&b.config, with_log(to_link, &link, None).json()).unwrap();
    let run_dir = b.run_dir();
    let (code, _, err) = run(&["reload", "-c", &b.config, "--runtime-dir", &run_dir]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("hot restart aborted"), "{err}");
    echo_roundtrip(b.listen, b"on").unwrap();
    assert!(eventually(Duration::from_secs(5), || lines(&log) == ["1"]), "{:?}", lines(&log));
    assert_eq!(b.generation(), 0);
}
