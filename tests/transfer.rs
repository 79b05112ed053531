//! Live connection transfer with the real binary: long-lived connections of three kinds move
//! from process to process through hot restarts (SIGHUP and hand-started) with every byte
//! checked, and the fault cases (new process killed mid-transfer, too few slots, a listener
//! removed) leave what did not move with the old process, which drains it and exits.
//!
//! Kinds, chosen by the first byte the client sends (then an 8-byte stream id):
//! - `E` echo: the client writes chunks and reads them back, both directions busy throughout;
//! - `S` half-closed: the client sends FIN at once; the backend streams to it until told to stop;
//! - `F` slow reader: the backend writes as fast as it can, the client reads slowly, so bytes
//!   wait in the proxy's buffers when a restart moves the connection.
mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A deterministic byte stream per id; any loss, duplication or reordering breaks the match.
struct Gen(u64);

impl Gen {
    fn new(id: u64) -> Gen {
        Gen(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// Bytes each backend connection sent (id -> count), for the `S` and `F` kinds.
type Sent = Arc<Mutex<HashMap<u64, u64>>>;

/// The tagged backend: one thread per connection; stops writing when `stop` is set.
struct StreamBackend {
    backend: Backend,
    sent: Sent,
}

impl StreamBackend {
    fn start(stop: Arc<AtomicBool>) -> StreamBackend {
        let sent: Sent = Arc::default();
        let sn = sent.clone();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let backend = Backend::serve_with(l, stop, move |c, stop| serve(c, stop, sn.clone()));
        StreamBackend { backend, sent }
    }

    fn port(&self) -> u16 {
        self.backend.port
    }
}

fn serve(mut c: TcpStream, stop: Arc<AtomicBool>, sent: Sent) {
    c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    c.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut head = [0u8; 9];
    let t0 = Instant::now();
    let mut got = 0;
    while got < 9 {
        match c.read(&mut head[got..]) {
            Ok(0) => return,
            Ok(n) => got += n,
            Err(_) if t0.elapsed() < Duration::from_secs(10) => {}
            Err(_) => return,
        }
    }
    let id = u64::from_le_bytes(head[1..].try_into().unwrap());
    let mut buf = vec![0u8; 16384];
    match head[0] {
        b'E' => loop {
            match c.read(&mut buf) {
                Ok(0) => {
                    let _ = c.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stop.load(Ordering::Relaxed) && t0.elapsed() > Duration::from_secs(300) {
                        return;
                    }
                }
                Err(_) => return,
            }
        },
        kind @ (b'S' | b'F') => {
            if kind == b'S' {
                // wait for the client's FIN: the connection is half-closed from here on
                loop {
                    match c.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return,
                    }
                }
            }
            let mut g = Gen::new(id);
            let chunk = if kind == b'S' { 1024 } else { 16384 };
            let mut total = 0u64;
            'outer: while !stop.load(Ordering::Relaxed) {
                g.fill(&mut buf[..chunk]);
                let mut off = 0;
                while off < chunk {
                    // a write that times out wrote nothing; `total` counts exactly what went out
                    match c.write(&buf[off..chunk]) {
                        Ok(n) => {
                            off += n;
                            total += n as u64;
                        }
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                            if stop.load(Ordering::Relaxed) {
                                // finish this chunk's bytes are unsent: stop mid-chunk
                                break 'outer;
                            }
                        }
                        Err(_) => break 'outer,
                    }
                }
                if kind == b'S' {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            sent.lock().unwrap().insert(id, total);
            let _ = c.shutdown(Shutdown::Write);
            // keep the socket until the client has read everything and closed
            let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = c.read(&mut buf);
        }
        _ => {}
    }
}

/// One client connection; `run` returns the bytes it checked, or what went wrong.
fn client(port: u16, kind: u8, id: u64, stop: Arc<AtomicBool>) -> Client {
    std::thread::spawn(move || -> Result<u64, String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = [kind; 9];
        head[1..].copy_from_slice(&id.to_le_bytes());
        s.write_all(&head).map_err(|e| format!("header: {e}"))?;
        let mut g = Gen::new(id);
        let mut want = vec![0u8; 16384];
        let mut got = vec![0u8; 16384];
        let mut total = 0u64;
        match kind {
            b'E' => {
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let n = 1 + (id as usize * 31 + k * 977) % 8192;
                    k += 1;
                    g.fill(&mut want[..n]);
                    s.write_all(&want[..n]).map_err(|e| format!("echo write after {total} B: {e}"))?;
                    s.read_exact(&mut got[..n]).map_err(|e| format!("echo read after {total} B: {e}"))?;
                    if got[..n] != want[..n] {
                        return Err(format!("echo: corrupted after {total} B"));
                    }
                    total += n as u64;
                    std::thread::sleep(Duration::from_millis(5));
                }
                s.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).map_err(|e| format!("echo final read: {e}"))?;
                if !rest.is_empty() {
                    return Err("echo: trailing bytes".into());
                }
            }
            _ => {
                if kind == b'S' {
                    s.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
                }
                loop {
                    let n = s.read(&mut got).map_err(|e| format!("read after {total} B: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    g.fill(&mut want[..n]);
                    if got[..n] != want[..n] {
                        return Err(format!("stream: corrupted at byte {total}"));
                    }
                    total += n as u64;
                    if kind == b'F' && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(30)); // the slow reader
                    }
                }
            }
        }
        Ok(total)
    })
}

/// A client thread: its bytes checked, or what went wrong.
type Client = JoinHandle<Result<u64, String>>;

struct Fleet {
    stop: Arc<AtomicBool>,
    clients: Vec<(u8, u64, Client)>,
}

impl Fleet {
    /// `n` connections per kind through `port`, ids offset by `base`.
    fn start(port: u16, n: [usize; 3], base: u64, stop: Arc<AtomicBool>) -> Fleet {
        let mut clients = Vec::new();
        for (kind, count) in [b'E', b'S', b'F'].into_iter().zip(n) {
            for k in 0..count as u64 {
                let id = base | (kind as u64) << 20 | k;
                clients.push((kind, id, client(port, kind, id, stop.clone())));
            }
        }
        Fleet { stop, clients }
    }

    /// Stops the streams and checks every connection: no error, and for the backend-driven
    /// kinds exactly as many bytes as the backend sent. Returns the bytes checked.
    fn finish(self, sent: &Sent) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let n = self.clients.len();
        let mut bytes = 0;
        let mut errors = Vec::new();
        for (kind, id, h) in self.clients {
            match h.join().unwrap() {
                Ok(n) => {
                    bytes += n;
                    if kind != b'E' {
                        let want = sent.lock().unwrap().get(&id).copied();
                        if want != Some(n) {
                            errors.push(format!("{} {id}: read {n} B, backend sent {want:?}", kind as char));
                        }
                    }
                }
                Err(e) => errors.push(format!("{} {id}: {e}", kind as char)),
            }
        }
        assert!(errors.is_empty(), "{} of {n} connections failed: {:?}", errors.len(), &errors[..errors.len().min(10)]);
        bytes
    }
}

fn transfer_num(stats: &str, key: &str) -> u64 {
    json_num(stats, "\"transfer\"", key)
}

/// Waits until `n` connections are open in the serving process and connected upstream (one
/// still connecting stays with the old process at a restart, by design).
fn wait_active(b: &Baton, n: u64) {
    let ok = eventually(Duration::from_secs(20), || {
        http_get(b.admin.unwrap(), "/stats").is_some_and(|(_, s)| {
            json_num(&s, "\"connections\"", "active") == n && json_num(&s, "\"hosts\"", "active") == n
        })
    });
    assert!(ok, "expected {n} active connections: {}", b.stats());
}

fn base_cfg(port: u16, backend: u16) -> Cfg {
    Cfg::simple(port, &[backend])
        .set("transfer_connections", "true")
        .set("drain_timeout", "\"60s\"")
        .set("max_draining", "16")
        .set("idle_timeout", "\"10m\"")
}

#[test]
fn hundreds_of_live_connections_move_through_20_restarts_with_every_byte_checked() {
    let restarts = 20;
    let per_kind = if emulated() { [20, 10, 10] } else { [150, 75, 75] };
    let n: usize = per_kind.iter().sum();
    // an old process leaves once its connections have moved: well under a second here, a few
    // under qemu-user's emulation; either way far below the 60 s drain deadline
    let exit_bound = if emulated() { Duration::from_secs(15) } else { Duration::from_secs(2) };
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port()).set("max_connections", "2048");
    let b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, per_kind, 0, stop.clone());
    wait_active(&b, n as u64);
    std::thread::sleep(Duration::from_millis(300));

    let mut kids = Vec::new();
    let mut moved_bytes = 0;
    let mut exits = Vec::new();
    for i in 0..restarts {
        let gen = b.generation();
        let current = b.serving_pid().expect("serving") as i32;
        let t0 = Instant::now();
        if i % 2 == 0 {
            kill(Pid::from_raw(current), Signal::SIGHUP).unwrap();
        } else {
            kids.push(b.successor(&[]));
        }
        assert!(eventually(Duration::from_secs(20), || b.generation() == gen + 1), "restart {i} did not complete");
        // the old process (the SIGHUP's forked child, or the previous PID) is gone soon after
        let gone = eventually(exit_bound, || pids_with(&b.config).len() == 1);
        let took = t0.elapsed();
        assert!(gone, "restart {i}: old process still running after {took:?}: {:?}", pids_with(&b.config));
        exits.push(took);
        let st = b.stats();
        assert_eq!(transfer_num(&st, "received"), n as u64, "restart {i}: {st}");
        assert_eq!(transfer_num(&st, "declined"), 0, "restart {i}: {st}");
        assert_eq!(transfer_num(&st, "predecessor_kept"), 0, "restart {i}: {st}");
        assert_eq!(json_num(&st, "\"connections\"", "active"), n as u64, "restart {i}: {st}");
        moved_bytes += transfer_num(&st, "received_bytes");
        std::thread::sleep(Duration::from_millis(200));
    }
    let bytes = fleet.finish(&be.sent);
    assert!(moved_bytes > 0, "no restart moved buffered bytes: the slow readers did not exercise DATA records");
    let worst = exits.iter().max().unwrap();
    eprintln!(
        "transfer: {n} connections through {restarts} restarts, {bytes} bytes checked, {moved_bytes} buffered bytes \
         moved, slowest old-process exit {worst:?}"
    );
    kids.into_iter().for_each(stop_child);
}

/// Writes `next` as the config and hand-starts a successor with `env`.
fn restart_with(b: &Baton, next: &Cfg, env: &[(&str, &str)]) -> std::process::Child {
    std::fs::write(&b.config, next.json()).unwrap();
    b.successor(env)
}

/// As `restart_with`, then waits until the successor serves; returns it and its `/stats`.
fn take_over(b: &Baton, next: &Cfg, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let next = restart_with(b, next, env);
    assert!(eventually(Duration::from_secs(10), || b.serving_pid() == Some(next.id() as u64)), "takeover failed");
    (next, b.stats())
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection (BATON_FAULT)")]
fn new_process_killed_mid_transfer_leaves_every_connection_with_the_old_one() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port());
    let mut b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, [20, 10, 10], 0, stop.clone());
    wait_active(&b, 40);
    let mut next = restart_with(&b, &cfg, &[("BATON_FAULT", "new-mid-transfer:kill")]);
    assert_eq!(wait_child(&mut next, Duration::from_secs(20)), Some(-1), "the successor should die by SIGKILL");
    // the old process resumed the batch in flight and kept the rest; it still runs them all
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pids_with(&b.config), vec![b.pid()]);
    fleet.finish(&be.sent);
    // draining with nothing left: it exits (long before its 60 s deadline)
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_successor_with_fewer_free_slots_takes_what_fits_and_the_rest_drain() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port());
    let mut b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, [20, 10, 10], 0, stop.clone());
    wait_active(&b, 40);
    let (next, st) = take_over(&b, &cfg.clone().set("max_connections", "16"), &[]);
    assert_eq!(transfer_num(&st, "received"), 16, "{st}");
    assert_eq!(transfer_num(&st, "declined"), 24, "{st}");
    assert_eq!(transfer_num(&st, "predecessor_kept"), 24, "{st}");
    assert_eq!(pids_with(&b.config).len(), 2, "the old process drains the 24 it kept");
    fleet.finish(&be.sent);
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0), "the old process exits once its 24 are done");
    stop_child(next);
}

#[test]
fn connections_of_a_listener_removed_by_the_new_config_stay_and_drain() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let mut cfg = base_cfg(free_port(), be.port());
    let gone_port = free_port();
    cfg.listeners.push(("leaving".into(), gone_port, "back".into()));
    let mut b = Baton::start(&cfg);
    let stays = Fleet::start(b.listen, [6, 4, 4], 0, stop.clone());
    let leaves = Fleet::start(gone_port, [6, 4, 4], 1 << 40, stop.clone());
    wait_active(&b, 28);
    let mut next_cfg = cfg.clone().set("idle_timeout", "\"9m\"");
    next_cfg.listeners.pop();
    let (next, st) = take_over(&b, &next_cfg, &[]);
    assert_eq!((transfer_num(&st, "received"), transfer_num(&st, "declined")), (14, 14), "{st}");
    stays.finish(&be.sent);
    leaves.finish(&be.sent);
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0));
    stop_child(next);
}

#[test]
fn splice_mode_moves_connections_with_their_pipes() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port()).set("splice", "true");
    let b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, [10, 5, 10], 0, stop.clone());
    wait_active(&b, 25);
    let mut kids = Vec::new();
    let mut moved_bytes = 0;
    for i in 0..3 {
        let gen = b.generation();
        kids.push(b.successor(&[]));
        assert!(eventually(Duration::from_secs(10), || b.generation() == gen + 1), "restart {i}");
        assert!(eventually(Duration::from_secs(10), || pids_with(&b.config).len() == 1), "restart {i}: old stays");
        let st = b.stats();
        assert_eq!(transfer_num(&st, "received"), 25, "{st}");
        moved_bytes += transfer_num(&st, "received_bytes");
        std::thread::sleep(Duration::from_millis(300));
    }
    fleet.finish(&be.sent);
    assert!(moved_bytes > 0, "no bytes were waiting in a pipe at any restart");
    kids.into_iter().for_each(stop_child);
}

/// A successor that does not take connections (`cfg`, `env`): the old process keeps its 8,
/// drains them with no error, and exits once they end.
fn old_process_drains_for(cfg: Cfg, env: &[(&str, &str)], stop: Arc<AtomicBool>, be: &StreamBackend) {
    let mut b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, [4, 2, 2], 0, stop);
    wait_active(&b, 8);
    let (next, st) = take_over(&b, &cfg, env);
    assert_eq!(transfer_num(&st, "received"), 0, "{st}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pids_with(&b.config).len(), 2, "the old process drains its 8 connections");
    fleet.finish(&be.sent);
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0));
    stop_child(next);
}

#[test]
fn with_transfer_off_the_old_process_drains_as_before() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port()).set("transfer_connections", "false");
    old_process_drains_for(cfg, &[], stop, &be);
}

#[test]
#[cfg_attr(not(feature = "fault-injection"), ignore = "needs --features fault-injection (BATON_FAULT)")]
fn a_successor_speaking_another_transfer_version_gets_no_connections_and_they_drain() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port());
    old_process_drains_for(cfg, &[("BATON_FAULT", "transfer-version:99")], stop, &be);
}

/// In splice mode the bytes waiting in a moved pipe are counted against the successor's
/// buffer_size as in user-buffer mode: a successor with a smaller buffer declines connections
/// whose pipes hold more (they drain in the old process) instead of overrunning its buffer
/// window, which killed it with an out-of-range slice before.
#[test]
fn splice_mode_successor_with_a_smaller_buffer_declines_fuller_pipes() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port()).set("splice", "true").set("buffer_size", "262144");
    let mut b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, [5, 0, 10], 0, stop.clone());
    wait_active(&b, 15);
    std::thread::sleep(Duration::from_millis(1500)); // the slow readers' pipes fill up
    let (mut next, st) = take_over(&b, &cfg.clone().set("buffer_size", "4096"), &[]);
    let (received, declined) = (transfer_num(&st, "received"), transfer_num(&st, "declined"));
    assert_eq!(received + declined, 15, "{st}");
    assert!(declined > 0, "no pipe held more than 4 KiB: {st}");
    fleet.finish(&be.sent);
    assert!(http_get(b.admin.unwrap(), "/health").is_some(), "the successor stopped serving");
    assert_eq!(wait_child(&mut next, Duration::from_millis(10)), None, "the successor exited");
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0));
    stop_child(next);
}

/// A connection whose host has left the cluster moves at a restart, and moves again at the
/// next: it is announced with its upstream socket's real peer, not the listener's address.
#[test]
fn a_connection_whose_host_left_the_cluster_moves_again_at_the_next_restart() {
    let stop = Arc::new(AtomicBool::new(false));
    let be = StreamBackend::start(stop.clone());
    let cfg = base_cfg(free_port(), be.port());
    let b = Baton::start(&cfg);
    let fleet = Fleet::start(b.listen, [4, 2, 2], 0, stop.clone());
    wait_active(&b, 8);
    let mut without_host = cfg.clone();
    without_host.clusters[0].2 = vec![free_port()];
    let (first, st) = take_over(&b, &without_host, &[]);
    assert_eq!((transfer_num(&st, "received"), transfer_num(&st, "declined")), (8, 0), "{st}");
    let (second, st) = take_over(&b, &without_host.clone().set("idle_timeout", "\"9m\""), &[]);
    assert_eq!((transfer_num(&st, "received"), transfer_num(&st, "declined")), (8, 0), "second move: {st}");
    assert!(eventually(Duration::from_secs(10), || pids_with(&b.config).len() == 1), "{:?}", pids_with(&b.config));
    fleet.finish(&be.sent);
    stop_child(first);
    stop_child(second);
}

/// IPv6: connections on a `[::1]` listener to a `[::1]` host move to the new process on a
/// SIGHUP restart and go on carrying checked bytes.
#[test]
fn ipv6_connections_move_too() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let be = Backend::on(l, Mode::Echo);
    let port = free_port();
    let cfg = base_cfg(port, be.port)
        .edit(&format!(r#""address":"127.0.0.1:{port}""#), &format!(r#""address":"[::1]:{port}""#))
        .edit(&format!(r#""address":"127.0.0.1:{}""#, be.port), &format!(r#""address":"[::1]:{}""#, be.port));
    let b = Baton::start(&cfg);
    let mut conns: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("::1", port)).unwrap()).collect();
    let check = |conns: &mut Vec<TcpStream>, round: u64| {
        for (i, c) in conns.iter_mut().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let data = payload(round * 100 + i as u64, 4000);
            c.write_all(&data).unwrap();
            let mut back = vec![0u8; data.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, data, "connection {i}, round {round}");
        }
    };
    check(&mut conns, 0);
    let old = b.pid();
    b.signal(Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || b.generation() == 1));
    let st = b.stats();
    assert_eq!(transfer_num(&st, "received"), 8, "{st}");
    check(&mut conns, 1);
    // SIGHUP keeps the PID for the new generation; the old one kept nothing and exits
    assert!(eventually(Duration::from_secs(10), || pids_with(&b.config).len() == 1), "{:?}", pids_with(&b.config));
    assert_eq!(b.pid(), old);
}
