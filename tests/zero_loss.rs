//! Zero loss under load: hundreds of concurrent clients (short connections at a high rate plus
//! long checked streams) while baton is hot-restarted 20 times in a row, alternating SIGHUP and
//! a second process started by hand, with config changes in between. Asserts 0 refused, reset,
//! corrupted or truncated connections, and that every old process exits within its drain deadline.
//! Connection transfer is on (the default): established streams move to each new process, and
//! connections caught mid-connect at a restart stay with the old one and drain, so both paths
//! run under load here.
mod common;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RESTARTS: usize = 20;

/// (short workers, long streams, drain deadline in s, minimum completed connections).
/// Under qemu-user (cross/test-qemu-user.sh sets BATON_TEST_EMULATED) the proxy runs about ten
/// times slower, so old processes need longer to finish their streams: fewer clients and a
/// longer deadline, same assertions. Without that, the 4 s deadline cuts streams still running
/// in an old process, which is the deadline working, not a handoff losing anything.
fn load_shape() -> (usize, usize, u64, usize) {
    if std::env::var_os("BATON_TEST_EMULATED").is_some() {
        (40, 20, 20, 300)
    } else {
        (150, 100, 4, 2_000)
    }
}

#[test]
fn no_connection_is_lost_through_20_hot_restarts_under_load() {
    let (short, long, drain_s, min_ok) = load_shape();
    let be = Backend::start(Mode::Echo);
    let dir = TempDir::new("zeroloss");
    let pid_file = dir.path("baton.pid");
    let base = Cfg::simple(free_port(), &[be.port])
        .set("pid_file", &format!("\"{pid_file}\""))
        .set("drain_timeout", &format!("\"{drain_s}s\""))
        .set("max_draining", "16")
        .set("max_connections", "4096");
    let b = Baton::start_in(&base, dir);

    // every process of this test, sampled: pid -> (first seen, last seen)
    let seen: Arc<Mutex<HashMap<i32, (Instant, Instant)>>> = Arc::default();
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (seen, stop, config) = (seen.clone(), stop_sampler.clone(), b.config.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                for p in pids_with(&config) {
                    seen.lock().unwrap().entry(p).or_insert((now, now)).1 = now;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };

    // short-connection workers and long streams (~100 round trips over ~1.5 s each)
    let load = Load::start(b.listen, short, long, 100);
    std::thread::sleep(Duration::from_millis(800));
    let mut kids = Vec::new();
    let mut serving: Vec<(u64, Instant)> = vec![(b.pid() as u64, Instant::now())];
    let extra_port = free_port();
    for i in 0..RESTARTS {
        // config changes between restarts: a listener comes and goes, timeouts change
        let mut cfg = Cfg {
            listeners: base.listeners.clone(),
            clusters: base.clusters.clone(),
            admin: base.admin,
            baton: base.baton.clone(),
            edits: base.edits.clone(),
        };
        if i % 4 == 1 || i % 4 == 2 {
            cfg.listeners.push(("extra".into(), extra_port, "back".into()));
        }
        let cfg = cfg.set("idle_timeout", if i % 2 == 0 { "\"10m\"" } else { "\"11m\"" });
        std::fs::write(&b.config, cfg.json()).unwrap();

        let gen = b.generation();
        let current = b.serving_pid().expect("serving") as i32;
        if i % 2 == 0 {
            kill(Pid::from_raw(current), Signal::SIGHUP).unwrap();
        } else {
            kids.push(b.successor(&[]));
        }
        assert!(eventually(Duration::from_secs(10), || b.generation() == gen + 1), "restart {i} did not complete");
        // until the old process handles the ack, both accept (by design); then only the new one
        let agree = || {
            let file = std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<u64>().ok());
            file.is_some() && b.serving_pid() == file
        };
        assert!(eventually(Duration::from_secs(3), agree), "restart {i}: PID file and /stats disagree");
        let now_serving = b.serving_pid().unwrap();
        if i % 4 == 1 {
            let d = payload(i as u64, 500);
            assert_eq!(echo_roundtrip(extra_port, &d).unwrap(), d, "restart {i}: added listener");
        }
        serving.push((now_serving, Instant::now()));
        std::thread::sleep(Duration::from_millis(300));
    }
    let result = load.stop();
    let load_end = Instant::now();
    let last = b.serving_pid().unwrap() as i32;
    assert!(
        eventually(Duration::from_secs(drain_s + 3), || pids_with(&b.config) == vec![last]),
        "old processes still alive: {:?}",
        pids_with(&b.config)
    );
    stop_sampler.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert_eq!(result.failed, 0, "failed connections: {:?}", result.errors);
    assert!(result.ok > min_ok, "too little load ran: {} connections", result.ok);
    eprintln!("zero loss: {} connections completed, 0 failed, {RESTARTS} restarts", result.ok);

    // each old process exited within its drain deadline after it stopped serving
    let seen = seen.lock().unwrap();
    for (&pid, &(first, lastseen)) in seen.iter().filter(|(&p, _)| p != last) {
        // retired when /stats stopped naming it; a SIGHUP child never served /stats for long
        let retired =
            serving.windows(2).find(|w| w[0].0 == pid as u64 && w[1].0 != pid as u64).map_or(first, |w| w[1].1);
        let drained = lastseen.saturating_duration_since(retired);
        assert!(
            drained <= Duration::from_secs(drain_s) + Duration::from_millis(1500),
            "pid {pid} drained for {drained:?} (deadline {drain_s}s)"
        );
    }
    assert!(load_end.elapsed() < Duration::from_secs(drain_s + 3));
    kids.into_iter().for_each(stop_child);
}
