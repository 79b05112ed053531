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

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
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
