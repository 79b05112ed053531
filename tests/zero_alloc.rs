//! Proof that proxying allocates nothing after start-up: a counting global allocator counts the
//! allocations made on the proxy's thread while 1,000 connections, routed by their addresses,
//! and 400 more on a unix and an IPv6 listener carry checked data, with health checks running
//! and an access log line written for every connection (two listeners, two files).
mod common;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

struct Counting;

thread_local! {
    static PROXY_THREAD: Cell<bool> = const { Cell::new(false) };
}
static MEASURING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

fn count() {
    if MEASURING.load(Ordering::Relaxed) && PROXY_THREAD.with(|t| t.get()) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call unchanged to the system allocator; counting has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn traffic(port: u16, from: u64, n: u64) {
    let workers: Vec<_> = (0..20)
        .map(|w| {
            std::thread::spawn(move || {
                for id in (from + w..from + n).step_by(20) {
                    let data = payload(id, 1 + (id as usize * 7919) % 100_000);
                    assert_eq!(echo_roundtrip(port, &data).unwrap(), data, "stream {id}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// `n` checked round trips each through the unix listener at `path` and the `[::1]` one.
fn other_traffic(path: &str, v6_port: u16, from: u64, n: u64) {
    use std::io::{Read, Write};
    for id in from..from + n {
        let data = payload(id, 1 + (id as usize * 7919) % 20_000);
        let mut back = vec![0u8; data.len()];
        let mut u = std::os::unix::net::UnixStream::connect(path).unwrap();
        u.write_all(&data).unwrap();
        u.read_exact(&mut back).unwrap();
        assert_eq!(back, data, "unix stream {id}");
        let mut t = std::net::TcpStream::connect(("::1", v6_port)).unwrap();
        t.write_all(&data).unwrap();
        t.read_exact(&mut back).unwrap();
        assert_eq!(back, data, "IPv6 stream {id}");
    }
}

#[test]
fn no_allocation_on_the_data_path_after_warm_up() {
    let be = Backend::start(Mode::Echo);
    // two hosts, one dead: failover and health marking are on the measured path too
    // and a routed listener: the route is chosen per connection from its addresses
    let route = r#""config":{"routes":[{"cluster":"back","SourceAddrs":[{"address":"127.0.0.0","length":8}],"DestinationAddrs":[{"address":"127.0.0.1","length":32}],"SourcePort":"1-65535","DestinationPort":"1-65535"}]}"#;
    let mut cfg = Cfg::simple(free_port(), &[be.port, free_port()])
        .set("buffer_size", "8192")
        .set("max_connections", "64")
        .edit(r#""config":{"cluster":"back"}"#, route)
        // active health checks run on the measured path too (never marking a host down here, so
        // that clients still meet the dead host and fail over)
        .edit(
            r#""Name":"back","#,
            r#""Name":"back","health_check":{"service_name":"back","interval":"100ms","unhealthy_threshold":255},"#,
        );
    cfg.admin = None;
    let port = cfg.listeners[0].1;
    // a unix listener and an IPv6 one, in front of the same cluster
    let dir = TempDir::new("zero-alloc");
    let unix_path = dir.path("in.sock");
    let v6_port = free_port();
    cfg.listeners.push(("uds".into(), 1, "back".into()));
    cfg.listeners.push(("v6".into(), v6_port, "back".into()));
    let (log_tcp, log_uds) = (dir.path("tcp.log"), dir.path("uds.log"));
    let cfg = cfg
        .edit(r#""bind_port":true"#, &format!(r#""bind_port":true,"access_logs":[{{"log_path":"{log_tcp}"}}]"#))
        .edit(r#""address":"127.0.0.1:1","#, &format!(r#""address":"{unix_path}","network":"unix","#))
        .edit(
            &format!(r#""address":"{unix_path}","network":"unix","bind_port":true"#),
            &format!(r#""address":"{unix_path}","network":"unix","bind_port":true,"access_logs":[{{"log_path":"{log_uds}"}}]"#),
        )
        .edit(&format!(r#""address":"127.0.0.1:{v6_port}""#), &format!(r#""address":"[::1]:{v6_port}""#));
    let config = baton::sansio::config::parse(cfg.json().as_bytes()).unwrap();
    assert!(config.listeners[0].cluster.is_none() && config.listeners[0].routes.len() == 1);
    assert!(config.clusters[0].health.is_some());
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let proxy = std::thread::spawn(move || {
        let mut server = baton::server::Server::new(config, &mut Default::default()).unwrap();
        server.set_access_logs(baton::logfiles::open(server.cfg()).unwrap());
        PROXY_THREAD.with(|t| t.set(true));
        while !st.load(Ordering::Relaxed) {
            server.turn().unwrap();
        }
        *server.totals()
    });
    eventually(std::time::Duration::from_secs(5), || std::net::TcpStream::connect(addr(port)).is_ok());
    traffic(port, 0, 100); // warm-up
    other_traffic(&unix_path, v6_port, 0, 20); // warm-up
    MEASURING.store(true, Ordering::SeqCst);
    traffic(port, 1_000, 1_000);
    other_traffic(&unix_path, v6_port, 100, 200);
    std::thread::sleep(std::time::Duration::from_millis(600)); // let timers tick while measured
    MEASURING.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let totals = proxy.join().unwrap();
    assert!(totals.accepted >= 1_100 + 2 * 220, "{totals:?}");
    assert!(totals.upstream_failures >= 1, "the failover path was not exercised: {totals:?}");
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 0, "allocations on the proxy thread while proxying");
    // every connection of the two logged listeners has its line (written before the loop
    // ended): the readiness probe's, 100 + 1,000 on TCP, 20 + 200 on the unix listener
    let lines = |p: &str| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!((lines(&log_tcp), lines(&log_uds)), (1_101, 220), "one access log line per connection");
}
