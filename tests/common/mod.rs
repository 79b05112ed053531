//! Shared test helpers: start the real `baton` binary on a temporary config, loopback backends,
//! and checked clients. Everything started here is stopped by PID on drop, even when a test fails.
//! One file per noun: `fs` (temporary directories), `config` (test configs), `process` (the
//! binary's processes), `http` (the admin endpoint), `backend` (upstreams and round trips),
//! `load` (a checked load); timing and addresses here.
#![allow(dead_code, unused_imports)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod backend;
mod config;
mod fs;
mod http;
mod load;
mod process;

pub use backend::*;
pub use config::*;
pub use fs::*;
pub use http::*;
pub use load::*;
pub use process::*;

/// A port that was free a moment ago on 127.0.0.1, outside the kernel's ephemeral range: a port
/// from `bind(0)` is an ephemeral one, which the kernel hands out again, to another test's
/// backend or to any client connection's local end, before baton binds it (baton then fails
/// to start: a flaky test). Each test process takes ports from its own block (by PID), in turn.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    // the room below the ephemeral range (from 10000), else above it
    let (start, room) = if lo >= 12_000 { (10_000, lo - 10_000) } else { (hi + 1, 65_535 - hi) };
    let blocks = (room / 500).max(1);
    let base = start + (std::process::id() % blocks) * 500;
    for _ in 0..500 {
        let port = (base + NEXT.fetch_add(1, Ordering::Relaxed) % 500) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Under qemu-user (`cross/test-qemu-user.sh` sets `BATON_TEST_EMULATED`): tests scale their
/// counts and bounds down there.
pub fn emulated() -> bool {
    std::env::var_os("BATON_TEST_EMULATED").is_some()
}

/// Polls `f` every 20 ms until it is true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
