//! MOSN's `metrics` section with a prometheus sink: a second service listener on its own port
//! that serves `/metrics` only, and is handed over on a hot restart exactly like the admin one
//! (its port never stops answering, and the new process answers on it).
mod common;
use common::*;
use nix::sys::signal::Signal;
use std::time::Duration;

fn with_sink(cfg: Cfg, port: u16) -> Cfg {
    cfg.edit(
        r#","baton":{"#,
        &format!(r#","metrics":{{"shm_zone":"","sinks":[{{"type":"prometheus","config":{{"port":{port},"percentiles":[50]}}}}]}},"baton":{{"#),
    )
}

#[test]
fn the_prometheus_sink_serves_metrics_on_its_port_through_restarts() {
    let be = Backend::start(Mode::Echo);
    let (port, mport) = (free_port(), free_port());
    let b = Baton::start(&with_sink(Cfg::simple(port, &[be.port]), mport));
    let data = payload(1, 500);
    assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    let (status, body) = http_get(mport, "/metrics").expect("metrics port answers");
    assert_eq!(status, 200);
    assert!(body.contains("baton_connections_total 1"), "{body}");
    assert!(body.contains("baton_generation 0"), "{body}");
    assert_eq!(http_get(mport, "/stats").map(|r| r.0), Some(404), "the sink serves /metrics only");
    assert_eq!(http_get(mport, "/config").map(|r| r.0), Some(404));
    let (_, config) = http_get(b.admin.unwrap(), "/config").unwrap();
    assert!(
        config.contains(&format!(r#""metrics":{{"sinks":[{{"type":"prometheus","config":{{"port":{mport}}}}}]}}"#)),
        "{config}"
    );

    // hot restarts by SIGHUP: the sink's socket moves with the others; a poller on it sees no gap
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let poller = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, 0);
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            match http_get(mport, "/metrics") {
                Some((200, _)) => ok += 1,
                _ => failed += 1,
            }
        }
        (ok, failed)
    });
    for round in 1..=2 {
        b.signal(Signal::SIGHUP);
        assert!(eventually(Duration::from_secs(10), || b.generation() == round), "generation {round}");
        assert!(eventually(Duration::from_secs(5), || {
            http_get(mport, "/metrics").is_some_and(|(_, m)| m.contains(&format!("baton_generation {round}")))
        }));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = poller.join().unwrap();
    assert!(ok >= 2, "{ok} answers");
    assert_eq!(failed, 0, "the metrics port never refused or dropped a request through two restarts");
}

#[test]
fn bad_sinks_are_refused_naming_the_field() {
    let d = TempDir::new("sink");
    let cases = [
        (r#"{"type":"prometheus","config":{}}"#, "metrics.sinks[0].config.port: is required"),
        (r#"{"type":"prometheus","config":{"port":1,"export_url":"http://x"}}"#, "push-gateway mode is not supported"),
        (r#"{"type":"prometheus","config":{"port":1,"endpoint":"/stats/prometheus"}}"#, "at /metrics only"),
        (r#"{"type":"console"}"#, "only the \"prometheus\" sink is supported"),
    ];
    for (sink, want) in cases {
        let cfg = Cfg::simple(free_port(), &[free_port()])
            .edit(r#","baton":{"#, &format!(r#","metrics":{{"sinks":[{sink}]}},"baton":{{"#));
        let path = d.path("c.json");
        std::fs::write(&path, cfg.json()).unwrap();
        let (code, _, err) = run(&["--check", "-c", &path]);
        assert_eq!(code, 2, "{sink}");
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    let port = free_port();
    let cfg = with_sink(Cfg::simple(port, &[free_port()]), port);
    let path = d.path("clash.json");
    std::fs::write(&path, cfg.json()).unwrap();
    let (code, _, err) = run(&["--check", "-c", &path]);
    assert!(
        code == 2 && err.contains("metrics.sinks: the same address is already used by listener \"front\""),
        "{err}"
    );
}
