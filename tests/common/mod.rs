//! Shared test helpers: start the real `baton` binary on a temporary config, loopback backends,
//! and checked clients. Everything started here is stopped by PID on drop, even when a test fails.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_baton");

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "baton-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds a config: listeners `(name, port, cluster)`, clusters `(name, lb, [host ports])`.
#[derive(Clone)]
pub struct Cfg {
    pub listeners: Vec<(String, u16, String)>,
    pub clusters: Vec<(String, String, Vec<u16>)>,
    pub admin: Option<u16>,
    pub baton: Vec<(String, String)>,
}

impl Cfg {
    /// One listener on `port` to one cluster of `hosts`.
    pub fn simple(port: u16, hosts: &[u16]) -> Cfg {
        Cfg {
            listeners: vec![("front".into(), port, "back".into())],
            clusters: vec![("back".into(), "LB_ROUNDROBIN".into(), hosts.to_vec())],
            admin: Some(free_port()),
            baton: vec![],
        }
    }
    /// Sets a `"baton"` setting; `value` is raw JSON.
    pub fn set(mut self, key: &str, value: &str) -> Cfg {
        self.baton.retain(|(k, _)| k != key);
        self.baton.push((key.into(), value.into()));
        self
    }
    pub fn json(&self) -> String {
        let ls: Vec<String> = self
            .listeners
            .iter()
            .map(|(n, p, c)| format!(
                r#"{{"name":"{n}","address":"127.0.0.1:{p}","bind_port":true,"filter_chains":[{{"tls_context":{{}},"filters":[{{"type":"tcp_proxy","config":{{"cluster":"{c}"}}}}]}}]}}"#
            ))
            .collect();
        let cs: Vec<String> = self
            .clusters
            .iter()
            .map(|(n, lb, hs)| {
                let hosts: Vec<String> = hs.iter().map(|p| format!(r#"{{"address":"127.0.0.1:{p}"}}"#)).collect();
                format!(r#"{{"Name":"{n}","type":"SIMPLE","lb_type":"{lb}","hosts":[{}]}}"#, hosts.join(","))
            })
            .collect();
        let admin = self.admin.map_or(String::new(), |p| {
            format!(r#","admin":{{"address":{{"socket_address":{{"address":"127.0.0.1","port_value":{p}}}}}}}"#)
        });
        let baton: Vec<String> = self.baton.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!(
            r#"{{"servers":[{{"default_log_level":"INFO","listeners":[{}]}}],"cluster_manager":{{"clusters":[{}]}}{admin},"baton":{{{}}}}}"#,
            ls.join(","),
            cs.join(","),
            baton.join(",")
        )
    }
}

/// A running baton process.
pub struct Baton {
    pub child: Child,
    pub dir: TempDir,
    pub config: String,
    pub admin: Option<u16>,
    pub listen: u16,
}

impl Baton {
    /// Starts baton on `cfg` and waits until its first listener accepts.
    pub fn start(cfg: &Cfg) -> Baton {
        let dir = TempDir::new("baton");
        Self::start_in(cfg, dir)
    }

    pub fn start_in(cfg: &Cfg, dir: TempDir) -> Baton {
        Self::start_env(cfg, dir, &[])
    }

    /// Starts baton with extra environment variables (e.g. `BATON_FAULT`).
    pub fn start_env(cfg: &Cfg, dir: TempDir, env: &[(&str, &str)]) -> Baton {
        let config = dir.path("baton.json");
        std::fs::write(&config, cfg.json()).unwrap();
        let child = spawn_env(&config, &dir.path("run"), env);
        let b = Baton { child, dir, config, admin: cfg.admin, listen: cfg.listeners[0].1 };
        b.wait_ready();
        b
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn wait_ready(&self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(p) = self.admin {
                if http_get(p, "/health").is_some_and(|(s, _)| s == 200) {
                    return;
                }
            } else if TcpStream::connect(("127.0.0.1", self.listen)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("baton did not become ready within 10 s");
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn stats(&self) -> String {
        http_get(self.admin.expect("admin port"), "/stats").expect("stats answered").1
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // successors, forked SIGHUP generations, draining old processes
        kill_all_with(&self.config);
    }
}

/// PIDs of live processes whose command line contains `needle` (a test's unique config path).
pub fn pids_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// SIGKILLs every process of a test, by PID.
pub fn kill_all_with(needle: &str) {
    for pid in pids_with(needle) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

impl Baton {
    pub fn run_dir(&self) -> String {
        self.dir.path("run")
    }

    /// Starts a second baton on the same config and runtime directory (a hand-started takeover).
    pub fn successor(&self, env: &[(&str, &str)]) -> Child {
        let mut c = Command::new(BIN);
        c.args(["-c", &self.config, "--runtime-dir", &self.run_dir()]).stdin(Stdio::null()).stdout(Stdio::null());
        c.stderr(if std::env::var_os("BATON_TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::piped() });
        for (k, v) in env {
            c.env(k, v);
        }
        c.spawn().expect("spawn successor")
    }

    /// The PID that answers `/stats` now.
    pub fn serving_pid(&self) -> Option<u64> {
        http_get(self.admin?, "/stats").map(|(_, b)| json_num(&b, "\"pid\"", "pid"))
    }

    pub fn generation(&self) -> u64 {
        json_num(&self.stats(), "\"generation\"", "generation")
    }
}

/// SIGKILLs a child (a successor baton the test started) and reaps it.
pub fn stop_child(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Waits (bounded) for a child to exit: its code, or `None` if it is still running.
pub fn wait_child(c: &mut Child, limit: Duration) -> Option<i32> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

pub fn child_stderr(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(e) = c.stderr.as_mut() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

pub fn spawn_env(config: &str, runtime_dir: &str, env: &[(&str, &str)]) -> Child {
    Command::new(BIN)
        .args(["-c", config, "--runtime-dir", runtime_dir])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("BATON_TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .expect("spawn baton")
}

/// Runs `baton ARGS` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A minimal HTTP GET: (status, body), `None` if the connection failed.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_raw(port, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

pub fn http_raw(port: u16, req: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(req).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// A number from the flat JSON text of `/stats`: the first `"key":N` after `after`.
pub fn json_num(text: &str, after: &str, key: &str) -> u64 {
    let start = text.find(after).unwrap_or_else(|| panic!("{after} not in {text}"));
    let rest = &text[start..];
    let k = format!("\"{key}\":");
    let at = rest.find(&k).unwrap_or_else(|| panic!("{key} not in {rest}")) + k.len();
    rest[at..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

/// What a backend does with each connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Echo everything back; FIN after the client's FIN.
    Echo,
    /// Accept and never read or write (until stopped).
    Silent,
    /// Read N bytes then reset the connection.
    ResetAfter(usize),
    /// Write 16 KiB chunks as fast as the connection takes them, never read (until stopped).
    Source,
}

/// A threaded loopback backend; stops (and closes every connection) on drop.
pub struct Backend {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    pub fn start(mode: Mode) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::on(l, mode)
    }

    pub fn on(l: TcpListener, mode: Mode) -> Backend {
        Self::serve_with(l, Arc::new(AtomicBool::new(false)), move |c, stop| serve(c, mode, stop))
    }

    /// Runs `handler` on a thread per accepted connection until `stop` is set (also on drop),
    /// then waits for the handlers, which are given `stop` to finish on.
    pub fn serve_with(
        l: TcpListener,
        stop: Arc<AtomicBool>,
        handler: impl Fn(TcpStream, Arc<AtomicBool>) + Clone + Send + 'static,
    ) -> Backend {
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (st, acc) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        let (st, handler) = (st.clone(), handler.clone());
                        workers.push(std::thread::spawn(move || handler(c, st)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
                workers.retain(|w: &JoinHandle<()>| !w.is_finished());
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Backend { port, stop, accepted, thread: Some(thread) }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut c: TcpStream, mode: Mode, stop: Arc<AtomicBool>) {
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut seen = 0;
    c.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
    while !stop.load(Ordering::Relaxed) {
        if mode == Mode::Silent {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if mode == Mode::Source {
            match c.write(&buf[..16384]) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
            continue;
        }
        match c.read(&mut buf) {
            Ok(0) => {
                let _ = c.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                seen += n;
                if let Mode::ResetAfter(limit) = mode {
                    if seen >= limit {
                        let _ = nix::sys::socket::setsockopt(
                            &c,
                            nix::sys::socket::sockopt::Linger,
                            &nix::libc::linger { l_onoff: 1, l_linger: 0 },
                        );
                        return;
                    }
                    continue;
                }
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Deterministic pseudo-random payload for stream `id` (so corruption is detected, not masked).
pub fn payload(id: u64, len: usize) -> Vec<u8> {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `data` through `port`, half-closes, and returns everything read back.
pub fn echo_roundtrip(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        w.write_all(&data)?;
        w.shutdown(Shutdown::Write)
    });
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    writer.join().unwrap()?;
    Ok(out)
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

/// A bounded load: `short` workers each loop on new connections (send, half-close, read all,
/// compare); `long` workers each hold a stream of `chunks` checked round trips 10 ms apart.
/// Every failure (refused, reset, timeout, short or corrupt data) is counted and described.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub ok: Arc<AtomicUsize>,
    pub failed: Arc<AtomicUsize>,
    pub errors: Arc<std::sync::Mutex<Vec<String>>>,
}

pub struct LoadResult {
    pub ok: usize,
    pub failed: usize,
    pub errors: Vec<String>,
}

impl Load {
    pub fn start(port: u16, short: usize, long: usize, chunks: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for w in 0..short + long {
            let (stop, ok, failed, errors) = (stop.clone(), ok.clone(), failed.clone(), errors.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = (w as u64) << 32 | n;
                    n += 1;
                    let r = if w < short { short_conn(port, id) } else { long_conn(port, id, chunks) };
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            let mut v = errors.lock().unwrap();
                            if v.len() < 20 {
                                v.push(format!("worker {w} conn {n}: {e}"));
                            }
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        Load { stop, threads, ok, failed, errors }
    }

    pub fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        LoadResult {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            errors: self.errors.lock().unwrap().clone(),
        }
    }
}

fn short_conn(port: u16, id: u64) -> Result<(), String> {
    let data = payload(id, 1 + (id as usize % 7919));
    let back = echo_roundtrip(port, &data).map_err(|e| format!("short: {e}"))?;
    if back.len() != data.len() {
        return Err(format!("short: truncated {} of {}", back.len(), data.len()));
    }
    if back != data {
        return Err("short: corrupted".into());
    }
    Ok(())
}

fn long_conn(port: u16, id: u64, chunks: usize) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("long connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let data = payload(id, 4096);
    let mut back = vec![0u8; data.len()];
    for k in 0..chunks {
        s.write_all(&data).map_err(|e| format!("long write {k}: {e}"))?;
        s.read_exact(&mut back).map_err(|e| format!("long read {k}: {e}"))?;
        if back != data {
            return Err(format!("long: chunk {k} corrupted"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    s.shutdown(Shutdown::Write).map_err(|e| format!("long shutdown: {e}"))?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).map_err(|e| format!("long final read: {e}"))?;
    if !rest.is_empty() {
        return Err("long: unexpected trailing bytes".into());
    }
    Ok(())
}
