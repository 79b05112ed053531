//! Upstream failures: refused and timed-out connects fail over to the next host; repeated
//! failures mark a host down (shown in /stats); no reachable host closes the client.
mod common;
use common::*;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[test]
fn refused_host_fails_over_and_is_marked_down() {
    let be = Backend::start(Mode::Echo);
    let dead = free_port();
    let port = free_port();
    let cfg = Cfg::simple(port, &[dead, be.port]).set("fail_threshold", "2").set("down_time", "\"30s\"");
    let b = Baton::start(&cfg);
    for id in 0..20 {
        let data = payload(id, 1000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data, "connection {id} failed");
    }
    let stats = b.stats();
    let dead_host = format!("\"address\":\"127.0.0.1:{dead}\"");
    assert!(stats.contains(&format!("{dead_host},\"weight\":1,\"healthy\":false")), "{stats}");
    // marked down after 2 failures: later clients skip it, so it saw exactly 2
    assert_eq!(json_num(&stats, &dead_host, "failures"), 2, "{stats}");
    assert_eq!(json_num(&stats, "\"connections\"", "refused"), 0);
}

#[test]
fn no_reachable_host_closes_the_client_and_counts_it() {
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[free_port(), free_port()]));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    let t = Instant::now();
    let r = s.read(&mut buf);
    assert!(matches!(r, Ok(0) | Err(_)), "expected the client to be closed, got {r:?}");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(eventually(Duration::from_secs(2), || json_num(&b.stats(), "\"connections\"", "refused") == 1));
}

#[test]
fn connect_timeout_fails_over_to_the_next_host() {
    // A listener with a full accept queue that never accepts: further SYNs are dropped, so a
    // connect to it hangs until baton's connect_timeout.
    let stuck = nix_listener_backlog0();
    let stuck_port = stuck.local_addr().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = std::net::TcpStream::connect_timeout(&addr(stuck_port), Duration::from_millis(200));
        if let Ok(s) = s {
            fillers.push(s);
        }
    }
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[stuck_port, be.port]).set("connect_timeout", "\"400ms\"");
    let b = Baton::start(&cfg);
    let t = Instant::now();
    let data = payload(7, 5000);
    assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300), "answered in {took:?}: the stuck host was not tried first");
    let stats = b.stats();
    assert!(json_num(&stats, &format!("127.0.0.1:{stuck_port}"), "failures") >= 1, "{stats}");
}

fn nix_listener_backlog0() -> TcpListener {
    use nix::sys::socket::*;
    use std::os::fd::OwnedFd;
    let fd: OwnedFd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    TcpListener::from(fd)
}

#[test]
fn round_robin_spreads_over_hosts() {
    let a = Backend::start(Mode::Echo);
    let c = Backend::start(Mode::Echo);
    let port = free_port();
    let _b = Baton::start(&Cfg::simple(port, &[a.port, c.port]));
    for id in 0..10 {
        let data = payload(id, 100);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    }
    assert_eq!(a.accepted.load(std::sync::atomic::Ordering::Relaxed), 5);
    assert_eq!(c.accepted.load(std::sync::atomic::Ordering::Relaxed), 5);
}
