//! Running the real binary: start, wait, signal and stop by PID (also on drop).

use super::*;

/// The binary under test: the one cargo built, or `BATON_TEST_BIN` (to check that a test fails
/// with an older binary, e.g. before a fix).
pub static BIN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| std::env::var("BATON_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_baton").into()));

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
        let mut b = Baton { child, dir, config, admin: cfg.admin, listen: cfg.listeners[0].1 };
        b.wait_ready();
        b
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn wait_ready(&mut self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("baton exited ({st}) before it was ready; BATON_TEST_LOG=1 shows its log");
            }
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
        let mut c = Command::new(&*BIN);
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
    Command::new(&*BIN)
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
    let out = Command::new(&*BIN).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Descriptors process `pid` has open now.
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}
