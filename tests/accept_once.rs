//! The open question of the original reconfig design, answered by a test: while two processes
//! hold the same listening socket (as old and new do during a handoff), every connection is
//! accepted exactly once, by one of them, and none is lost.
//!
//! The test process hands its listening socket to a second process with baton's own transport
//! (`SCM_RIGHTS` over a seqpacket socket); then both accept at the same time, each tagging the
//! connections it takes, while clients open 2,000 connections carrying unique ids.
mod common;
use common::*;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

const CONNS: u64 = 2_000;

/// The second process: receives the socket, accepts for a bounded time, prints the ids it took.
const HELPER: &str = r#"
import socket, sys, time
c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c.connect(sys.argv[1])
_, fds, _, _ = socket.recv_fds(c, 16384, 4)
l = socket.socket(fileno=fds[0])
l.settimeout(0.2)
ids, last, start = [], time.time(), time.time()
c.send(b"ready")
while time.time() - last < 1.5 and time.time() - start < 30:
    try:
        s, _ = l.accept()
    except socket.timeout:
        continue
    s.settimeout(5)
    buf = b""
    while len(buf) < 8:
        buf += s.recv(8 - len(buf))
    s.sendall(b"B")
    s.close()
    ids.append(int.from_bytes(buf, "little"))
    last = time.time()
print(",".join(map(str, ids)))
"#;

#[test]
fn every_connection_is_accepted_exactly_once_while_two_processes_hold_the_socket() {
    use baton::restart::channel;
    use baton::sansio::codec::{Entry, FdKind, ManifestHead, Msg};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let dir = TempDir::new("once");
    let path = dir.path("handoff.sock");
    let ctl = baton::sys::net::unix_listen(&path).unwrap();
    // the helper ends by itself: 1.5 s without a connection, 30 s at most
    let helper = std::process::Command::new("/usr/bin/python3")
        .args(["-c", HELPER, &path])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    assert!(baton::sys::net::wait_readable(&ctl, 5000).unwrap());
    let chan = baton::sys::net::unix_accept(&ctl).unwrap().unwrap();
    let entries = [Entry { kind: FdKind::Listener, name: Default::default(), addr: Some(addr.into()), pid: 0 }]
        .into_iter()
        .collect();
    let head = ManifestHead { baton_version: Default::default(), totals: Default::default(), batch: 0, last: true };
    channel::send(&chan, &Msg::Manifest { head, entries }, &[l.as_raw_fd()]).unwrap();
    assert!(baton::sys::net::wait_readable(&chan, 5000).unwrap(), "helper never got the socket");

    // this process accepts on its own copy at the same time
    l.set_nonblocking(true).unwrap();
    let mine = std::thread::spawn(move || {
        let mut ids = Vec::new();
        let mut idle = 0;
        while idle < 150 {
            match l.accept() {
                Ok((mut s, _)) => {
                    idle = 0;
                    s.set_nonblocking(false).unwrap();
                    let mut b = [0u8; 8];
                    s.read_exact(&mut b).unwrap();
                    s.write_all(b"A").unwrap();
                    ids.push(u64::from_le_bytes(b));
                }
                Err(_) => {
                    idle += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        ids
    });

    let clients: Vec<_> = (0..8u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut tags = Vec::new();
                for id in (t..CONNS).step_by(8) {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s.write_all(&id.to_le_bytes()).unwrap();
                    let mut tag = Vec::new();
                    s.read_to_end(&mut tag).unwrap();
                    tags.push((id, tag));
                }
                tags
            })
        })
        .collect();
    let mut by_a = HashSet::new();
    let mut by_b = HashSet::new();
    for c in clients {
        for (id, tag) in c.join().unwrap() {
            match tag.as_slice() {
                b"A" => assert!(by_a.insert(id)),
                b"B" => assert!(by_b.insert(id)),
                other => panic!("connection {id} got {other:?}: not accepted exactly once"),
            }
        }
    }
    let accepted_a: Vec<u64> = mine.join().unwrap();
    let out = helper.wait_with_output().unwrap();
    let accepted_b: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();

    assert_eq!(by_a.len() + by_b.len(), CONNS as usize, "every client was answered once");
    assert_eq!(accepted_a.iter().copied().collect::<HashSet<_>>(), by_a);
    assert_eq!(accepted_b.iter().copied().collect::<HashSet<_>>(), by_b);
    assert_eq!(accepted_a.len() + accepted_b.len(), CONNS as usize, "no connection accepted twice");
    assert!(by_a.is_disjoint(&by_b));
    assert!(!by_a.is_empty() && !by_b.is_empty(), "both processes must have competed: {} / {}", by_a.len(), by_b.len());
    eprintln!("accepted by this process: {}, by the other: {}, twice: 0, lost: 0", by_a.len(), by_b.len());
}
