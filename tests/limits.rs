//! max_connections backpressure (stop accepting, resume when a slot frees) and the idle timeout.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn echo_once(s: &mut TcpStream, msg: &[u8], wait: Duration) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(wait))?;
    s.write_all(msg)?;
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

#[test]
fn max_connections_holds_new_clients_in_the_backlog_until_a_slot_frees() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[be.port]).set("max_connections", "4"));
    let mut held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    for s in held.iter_mut() {
        assert_eq!(echo_once(s, b"hi", Duration::from_secs(5)).unwrap(), b"hi");
    }
    // the fifth client connects (kernel backlog) but is not served while the table is full
    let mut fifth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(echo_once(&mut fifth, b"wait", Duration::from_millis(600)).is_err(), "served beyond max_connections");
    assert_eq!(json_num(&b.stats(), "\"connections\"", "active"), 4);
    // a slot frees: the waiting client is accepted and served, nothing was dropped
    held.pop();
    let mut buf = [0u8; 4];
    fifth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    fifth.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"wait");
    assert_eq!(json_num(&b.stats(), "\"connections\"", "total"), 5);
}

#[test]
fn idle_connections_are_closed_by_the_idle_timeout() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[be.port]).set("idle_timeout", "\"600ms\""));
    let mut busy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(echo_once(&mut idle, b"x", Duration::from_secs(5)).unwrap(), b"x");
    // keep one connection active past the timeout
    for _ in 0..8 {
        assert_eq!(echo_once(&mut busy, b"y", Duration::from_secs(5)).unwrap(), b"y");
        std::thread::sleep(Duration::from_millis(200));
    }
    idle.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(idle.read(&mut buf).unwrap(), 0, "idle connection was not closed");
    assert_eq!(echo_once(&mut busy, b"z", Duration::from_secs(5)).unwrap(), b"z");
    assert_eq!(json_num(&b.stats(), "\"connections\"", "idle_timeouts"), 1);
}

#[test]
fn fd_limit_too_low_for_max_connections_is_a_clear_start_error() {
    let port = free_port();
    let dir = TempDir::new("fdlimit");
    let cfg = Cfg::simple(port, &[free_port()]).set("max_connections", "5000");
    let path = dir.path("c.json");
    std::fs::write(&path, cfg.json()).unwrap();
    // as an unprivileged user (setpriv, util-linux) the hard limit cannot be raised
    // the runtime directory's parent belongs to that user (baton refuses one that others can write)
    nix::unistd::chown(&dir.0, Some(65534.into()), Some(65534.into())).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 512 && exec setpriv --reuid=65534 --regid=65534 --clear-groups {bin} -c {path} --runtime-dir {}",
            dir.path("run"),
            bin = &*BIN,
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("max_connections needs 10") && err.contains("hard limit"), "{err}");
}
