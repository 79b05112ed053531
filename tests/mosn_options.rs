//! MOSN's tcp_proxy routes and per-cluster / per-listener options, with the real binary:
//! clients routed by source address, a client no route matches, the circuit breaker's
//! connection ceiling, a cluster's own connect_timeout, a listener's connection_idle_timeout,
//! the tcp_proxy's max_connect_attempts (ignored, as MOSN), Go's ":PORT" listeners, and IPv6
//! listeners, routes and hosts.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A connection to 127.0.0.1:`port` from the loopback address `from` (any of 127/8 works on
/// Linux without configuration).
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    use nix::sys::socket::*;
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    bind(raw, &SockaddrIn::new(from[0], from[1], from[2], from[3], 0)).unwrap();
    connect(raw, &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn roundtrip(s: &mut TcpStream, id: u64) -> bool {
    let data = payload(id, 3000);
    let mut back = vec![0u8; data.len()];
    s.write_all(&data).is_ok() && s.read_exact(&mut back).is_ok() && back == data
}

/// Closed by the proxy: EOF or a reset before any byte.
fn is_closed(s: &mut TcpStream) -> bool {
    let _ = s.write_all(b"x");
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn routes(list: &[(&str, &str, u8)]) -> String {
    let r: Vec<String> = list
        .iter()
        .map(|(cluster, src, len)| {
            format!(
                r#"{{"cluster":"{cluster}","SourceAddrs":[{{"address":"{src}","length":{len}}}],"DestinationAddrs":[{{"address":"127.0.0.1","length":32}}],"SourcePort":"1-65535","DestinationPort":"1-65535"}}"#
            )
        })
        .collect();
    format!(r#""config":{{"routes":[{}]}}"#, r.join(","))
}

/// Two clusters behind one listener; 127.0.0.2 goes to one, the rest of 127/8 to the other,
/// as MOSN's routes decide (first match in order).
#[test]
fn routes_send_clients_by_source_address() {
    let (a, b) = (Backend::start(Mode::Echo), Backend::start(Mode::Echo));
    let port = free_port();
    let mut cfg = Cfg::simple(port, &[a.port])
        .edit(r#""config":{"cluster":"back"}"#, &routes(&[("other", "127.0.0.2", 32), ("back", "127.0.0.0", 8)]));
    cfg.clusters.push(("other".into(), "LB_ROUNDROBIN".into(), vec![b.port]));
    let baton = Baton::start(&cfg);
    for (i, from) in [[127, 0, 0, 2], [127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]].into_iter().enumerate() {
        let mut s = connect_from(from, port);
        assert!(roundtrip(&mut s, i as u64), "client from {from:?}");
    }
    assert_eq!(b.accepted.load(Ordering::Relaxed), 2, "127.0.0.2 goes to cluster \"other\"");
    assert_eq!(a.accepted.load(Ordering::Relaxed), 2, "127.0.0.1 and .3 go to cluster \"back\"");
    let stats = baton.stats();
    assert_eq!(json_num(&stats, "\"name\":\"front\"", "no_route"), 0, "{stats}");
    assert!(stats.contains("\"routes\":2"), "{stats}");
}

#[test]
fn a_client_no_route_matches_is_closed_and_counted() {
    let a = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg =
        Cfg::simple(port, &[a.port]).edit(r#""config":{"cluster":"back"}"#, &routes(&[("back", "127.0.0.2", 32)]));
    let baton = Baton::start(&cfg);
    let mut s = connect_from([127, 0, 0, 1], port);
    assert!(is_closed(&mut s));
    let mut ok = connect_from([127, 0, 0, 2], port);
    assert!(roundtrip(&mut ok, 1));
    assert!(eventually(Duration::from_secs(2), || json_num(&baton.stats(), "\"name\":\"front\"", "no_route") == 1));
    assert_eq!(a.accepted.load(Ordering::Relaxed), 1);
}

/// `circuit_breakers[0].max_connections`: the third client of a cluster limited to two is
/// closed; once one of the two leaves, a new client gets through.
#[test]
fn circuit_breaker_caps_a_clusters_connections() {
    let a = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[a.port])
        .edit(r#""Name":"back","#, r#""Name":"back","circuit_breakers":[{"max_connections":2}],"#);
    let baton = Baton::start(&cfg);
    let mut one = connect_from([127, 0, 0, 1], port);
    let mut two = connect_from([127, 0, 0, 1], port);
    assert!(roundtrip(&mut one, 1) && roundtrip(&mut two, 2));
    let mut three = connect_from([127, 0, 0, 1], port);
    assert!(is_closed(&mut three), "over the ceiling");
    assert!(eventually(Duration::from_secs(2), || json_num(&baton.stats(), "\"name\":\"front\"", "overflow") == 1));
    drop(one);
    assert!(eventually(Duration::from_secs(3), || json_num(&baton.stats(), "\"name\":\"front\"", "active") == 1));
    let mut four = connect_from([127, 0, 0, 1], port);
    assert!(roundtrip(&mut four, 4));
    assert!(roundtrip(&mut two, 5));
}

/// A listener with a full accept queue that never accepts: SYNs to it are dropped.
fn stuck_port() -> (std::net::TcpListener, Vec<TcpStream>, u16) {
    use nix::sys::socket::*;
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let l = std::net::TcpListener::from(fd);
    let p = l.local_addr().unwrap().port();
    let fillers =
        (0..4).filter_map(|_| TcpStream::connect_timeout(&addr(p), Duration::from_millis(200)).ok()).collect();
    (l, fillers, p)
}

/// The cluster's `connect_timeout` applies, not `baton.connect_timeout` (20 s here).
#[test]
fn a_clusters_connect_timeout_overrides_the_default() {
    let (_l, _fillers, stuck) = stuck_port();
    let port = free_port();
    let cfg = Cfg::simple(port, &[stuck])
        .set("connect_timeout", "\"20s\"")
        .edit(r#""Name":"back","#, r#""Name":"back","connect_timeout":"300ms","#);
    let baton = Baton::start(&cfg.set("connect_attempts", "1"));
    let t = Instant::now();
    let mut s = connect_from([127, 0, 0, 1], port);
    assert!(is_closed(&mut s));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "closed after {took:?}");
    assert!(eventually(Duration::from_secs(2), || json_num(&baton.stats(), "\"connections\"", "refused") == 1));
}

/// The listener's `connection_idle_timeout` applies, not `baton.idle_timeout` (10 min here).
#[test]
fn a_listeners_connection_idle_timeout_overrides_the_default() {
    let a = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[a.port])
        .set("idle_timeout", "\"10m\"")
        .edit(r#""bind_port":true,"#, r#""bind_port":true,"connection_idle_timeout":"600ms","#);
    let baton = Baton::start(&cfg);
    let mut s = connect_from([127, 0, 0, 1], port);
    assert!(roundtrip(&mut s, 1));
    let t = Instant::now();
    let mut b = [0u8; 1];
    assert!(matches!(s.read(&mut b), Ok(0) | Err(_)), "closed for idleness");
    assert!(t.elapsed() < Duration::from_secs(4), "after {:?}", t.elapsed());
    assert_eq!(json_num(&baton.stats(), "\"connections\"", "idle_timeouts"), 1);
}

/// MOSN's tcp_proxy stores `max_connect_attempts` and never applies it to TCP: with it set to
/// 1, the dead host's clients are still failed over (baton's `connect_attempts`, 3).
#[test]
fn max_connect_attempts_is_ignored_as_in_mosn() {
    let a = Backend::start(Mode::Echo);
    let (dead, port) = (free_port(), free_port());
    let cfg = Cfg::simple(port, &[dead, a.port])
        .set("fail_threshold", "100")
        .edit(r#""config":{"cluster":"back"}"#, r#""config":{"cluster":"back","max_connect_attempts":1}"#);
    let baton = Baton::start(&cfg);
    let ok = (0..4).filter(|&i| roundtrip(&mut connect_from([127, 0, 0, 1], port), i)).count();
    assert_eq!(ok, 4, "every client failed over to the live host");
    assert_eq!(json_num(&baton.stats(), "\"connections\"", "refused"), 0);
}

/// Go's `":PORT"` listens on every IPv4 and IPv6 address (MOSN's `net.Listen`): IPv4 and IPv6
/// clients are served, an IPv4 client is shown and routed as IPv4, and both keep working
/// through a hot restart (the dual-stack socket is handed over).
#[test]
fn a_colon_port_listener_serves_ipv4_and_ipv6_through_a_restart() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let route = r#""config":{"routes":[{"cluster":"back","SourceAddrs":[{"address":"127.0.0.0","length":8},{"address":"::1","length":128}],"DestinationAddrs":[{"address":"0.0.0.0","length":0},{"address":"::","length":0}],"SourcePort":"1-65535","DestinationPort":"1-65535"}]}"#;
    let cfg = Cfg::simple(port, &[be.port])
        .edit(&format!(r#""address":"127.0.0.1:{port}""#), &format!(r#""address":":{port}""#))
        .edit(r#""config":{"cluster":"back"}"#, route);
    let baton = Baton::start(&cfg);
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let clients = |round: u64| {
        let mut s4 = connect_from([127, 0, 0, 2], port);
        assert!(roundtrip(&mut s4, round), "IPv4 client");
        if ipv6 {
            let mut s6 = TcpStream::connect(("::1", port)).unwrap();
            s6.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert!(roundtrip(&mut s6, round + 1), "IPv6 client");
        }
        s4
    };
    let mut kept = clients(0);
    assert_eq!(json_num(&baton.stats(), "\"name\":\"front\"", "no_route"), 0, "v4-mapped clients match IPv4 routes");
    let generation = baton.generation();
    baton.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || baton.generation() > generation), "hot restart");
    drop(clients(10));
    assert!(roundtrip(&mut kept, 20), "the IPv4 connection from before the restart");
    if !ipv6 {
        eprintln!("no IPv6 loopback here: only the IPv4 side was checked");
    }
}

/// `0.0.0.0:PORT` is a wildcard like `:PORT`: Go (MOSN) listens on both families for it too.
#[test]
fn a_wildcard_listener_takes_ipv6_clients_as_go_does() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[be.port])
        .edit(&format!(r#""address":"127.0.0.1:{port}""#), &format!(r#""address":"0.0.0.0:{port}""#));
    let _baton = Baton::start(&cfg);
    let mut s6 = TcpStream::connect(("::1", port)).unwrap();
    s6.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(roundtrip(&mut s6, 1), "IPv6 client of 0.0.0.0");
    assert!(roundtrip(&mut connect_from([127, 0, 0, 3], port), 2), "IPv4 client");
}

/// IPv6 end to end: a `[::1]` listener routed by an IPv6 prefix to an IPv6 host.
#[test]
fn ipv6_listener_route_and_host() {
    let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let be = Backend::on(l, Mode::Echo);
    let port = free_port();
    let route = r#""config":{"routes":[{"cluster":"back","SourceAddrs":[{"address":"::1","length":128}],"DestinationAddrs":[{"address":"::","length":0}],"SourcePort":"1-65535","DestinationPort":"1-65535"}]}"#;
    let cfg = Cfg::simple(port, &[be.port])
        .edit(&format!(r#""address":"127.0.0.1:{port}""#), &format!(r#""address":"[::1]:{port}""#))
        .edit(&format!(r#""address":"127.0.0.1:{}""#, be.port), &format!(r#""address":"[::1]:{}""#, be.port))
        .edit(r#""config":{"cluster":"back"}"#, route);
    let baton = Baton::start(&cfg);
    for id in 0..4 {
        let mut s = TcpStream::connect(("::1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(roundtrip(&mut s, id), "over IPv6");
    }
    assert_eq!(be.accepted.load(Ordering::Relaxed), 4);
    let stats = baton.stats();
    assert!(stats.contains(&format!("\"address\":\"[::1]:{port}\"")), "{stats}");
    assert_eq!(json_num(&stats, "\"name\":\"front\"", "no_route"), 0, "{stats}");
}

/// A hot restart warns about families only where a socket serves fewer than its listener
/// says: not for a specific address, nor for a wildcard whose socket takes both already.
#[test]
fn a_restart_does_not_warn_about_sockets_that_serve_what_they_say() {
    let be = Backend::start(Mode::Echo);
    let (p1, p2) = (free_port(), free_port());
    let mut cfg = Cfg::simple(p1, &[be.port]);
    cfg.listeners.push(("wild".into(), p2, "back".into()));
    let cfg = cfg.edit(&format!(r#""address":"127.0.0.1:{p2}""#), &format!(r#""address":"0.0.0.0:{p2}""#));
    let b = Baton::start(&cfg);
    let mut succ = b.successor(&[]);
    assert!(eventually(Duration::from_secs(10), || b.generation() == 1), "takeover");
    let _ = succ.kill();
    let _ = succ.wait();
    let log = child_stderr(&mut succ);
    assert_eq!(log.matches("adopted from the previous process").count(), 3, "two listeners and the admin: {log}");
    assert!(!log.contains("the socket handed over serves"), "{log}");
}
