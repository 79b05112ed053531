//! Unix domain sockets end to end (MOSN's uds-sample shapes): a `"network": "unix"` listener
//! and `unix:/path` hosts; the hot-restart handoff of a unix listener (its path answers
//! throughout: the old process never unlinks it, and there is no window where `connect` fails);
//! unix connections moved to the new process; a stale socket file taken over, a live one not.
mod common;
use common::*;
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An echo server on a unix socket; stops on drop.
struct UnixEcho {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UnixEcho {
    fn start(path: &str) -> UnixEcho {
        let l = UnixListener::bind(path).unwrap();
        l.set_nonblocking(true).unwrap();
        let (stop, accepted) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (st, acc) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                        let st = st.clone();
                        workers.push(std::thread::spawn(move || {
                            let mut buf = [0u8; 16384];
                            while !st.load(Ordering::Relaxed) {
                                match c.read(&mut buf) {
                                    Ok(0) => return,
                                    Ok(n) => {
                                        if c.write_all(&buf[..n]).is_err() {
                                            return;
                                        }
                                    }
                                    Err(e)
                                        if e.kind() == std::io::ErrorKind::WouldBlock
                                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                                    Err(_) => return,
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        UnixEcho { stop, accepted, thread: Some(thread) }
    }
}

impl Drop for UnixEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn roundtrip(s: &mut (impl Read + Write), id: u64) {
    let data = payload(id, 20_000);
    s.write_all(&data).unwrap();
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, data, "stream {id}");
}

fn unix_client(path: &str) -> UnixStream {
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// A unix listener in front of a unix host, and a TCP listener in front of the same host.
fn config(host_path: &str, listen_path: &str, tcp_port: u16) -> Cfg {
    let mut cfg =
        Cfg::simple(tcp_port, &[1]).edit(r#""address":"127.0.0.1:1""#, &format!(r#""address":"unix:{host_path}""#));
    cfg.listeners.push(("uds".into(), 2, "back".into()));
    cfg.edit(r#""address":"127.0.0.1:2","#, &format!(r#""address":"{listen_path}","network":"unix","#))
        .set("transfer_connections", "true")
        .set("drain_timeout", "\"30s\"")
}

#[test]
fn unix_listener_and_unix_host_proxy_and_survive_restarts_without_a_gap() {
    let dir = TempDir::new("uds");
    let (host_path, listen_path) = (dir.path("svc.sock"), dir.path("in.sock"));
    let be = UnixEcho::start(&host_path);
    let tcp_port = free_port();
    let b = Baton::start(&config(&host_path, &listen_path, tcp_port));
    let mut u = unix_client(&listen_path);
    roundtrip(&mut u, 1);
    let mut t = std::net::TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    roundtrip(&mut t, 2);
    assert_eq!(be.accepted.load(Ordering::Relaxed), 2);
    let st = b.stats();
    assert!(st.contains(&format!("\"address\":\"unix:{listen_path}\"")), "{st}");
    assert!(st.contains(&format!("\"address\":\"unix:{host_path}\"")), "{st}");

    // a client connecting in a loop sees no failure while the listener moves, twice
    let stop = Arc::new(AtomicBool::new(false));
    let (st2, lp) = (stop.clone(), listen_path.clone());
    let prober = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0u32, 0u32);
        let mut id = 100;
        while !st2.load(Ordering::Relaxed) {
            match UnixStream::connect(&lp) {
                Ok(mut c) => {
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let data = payload(id, 64);
                    let mut back = vec![0u8; 64];
                    if c.write_all(&data).is_ok() && c.read_exact(&mut back).is_ok() && back == data {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
                Err(_) => failed += 1,
            }
            id += 1;
        }
        (ok, failed)
    });
    for round in 1..=2 {
        b.signal(Signal::SIGHUP);
        assert!(eventually(Duration::from_secs(10), || b.generation() == round), "generation {round}");
        // the established unix connections moved with it and go on
        roundtrip(&mut u, 10 + round);
        roundtrip(&mut t, 20 + round);
        assert!(std::fs::symlink_metadata(&listen_path).is_ok(), "the socket file is still there");
        // the old generation exits once it holds nothing: had the unix connection stayed with it
        // to drain, it would live on for drain_timeout (30 s)
        let none_draining = || {
            http_get(b.admin.unwrap(), "/metrics")
                .is_some_and(|(_, m)| m.lines().any(|l| l == "baton_draining_generations 0"))
        };
        assert!(
            eventually(Duration::from_secs(5), none_draining),
            "round {round}: the old process still holds a connection"
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = prober.join().unwrap();
    assert!(ok >= 2, "{ok} probes answered");
    assert_eq!(failed, 0, "connect to the unix listener never failed through two restarts");
    let st = b.stats();
    // the two long-lived connections, and any probe open at that moment
    assert!(json_num(&st, "\"transfer\"", "received") >= 2, "both long-lived connections moved: {st}");
    assert!(eventually(Duration::from_secs(10), || pids_with(&b.config).len() == 1), "old generations left");
}

#[test]
fn a_stale_socket_file_is_taken_over_and_a_live_one_refused() {
    let dir = TempDir::new("uds-stale");
    let (host_path, listen_path) = (dir.path("svc.sock"), dir.path("in.sock"));
    let _be = UnixEcho::start(&host_path);
    // stale: bound, then its listener closed (the file stays, nothing accepts)
    drop(UnixListener::bind(&listen_path).unwrap());
    let b = Baton::start(&config(&host_path, &listen_path, free_port()));
    roundtrip(&mut unix_client(&listen_path), 1);
    drop(b);
    // live: another program listens there
    let other = dir.path("live.sock");
    let _live = UnixListener::bind(&other).unwrap();
    let cfg = config(&host_path, &other, free_port());
    let path = dir.path("live.json");
    std::fs::write(&path, cfg.json()).unwrap();
    let (code, _, err) = run(&["-c", &path, "--runtime-dir", &dir.path("run2")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is already in use"), "{err}");
}
