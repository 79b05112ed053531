//! Active health checks (MOSN's cluster `health_check`): a host that stops accepting is marked
//! down by the checks alone, before any client is sent to it, and up again when it recovers;
//! `/stats` and `/metrics` say why.
mod common;
use common::*;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn host_down_reason(stats: &str, port: u16) -> String {
    let at = stats.find(&format!("\"address\":\"127.0.0.1:{port}\"")).expect("host in /stats");
    let rest = &stats[at..];
    let v = rest.split("\"down_reason\":\"").nth(1).unwrap();
    v[..v.find('"').unwrap()].to_string()
}

#[test]
fn a_host_that_stops_accepting_is_marked_down_before_any_client_reaches_it() {
    let steady = Backend::start(Mode::Echo);
    let flaky_port = free_port();
    let flaky = Backend::on(TcpListener::bind(("127.0.0.1", flaky_port)).unwrap(), Mode::Echo);
    let port = free_port();
    let check = r#""health_check":{"service_name":"back","protocol":"tcp","interval":"200ms","timeout":"500ms","healthy_threshold":2,"unhealthy_threshold":2},"#;
    let cfg = Cfg::simple(port, &[steady.port, flaky_port])
        .set("fail_threshold", "100")
        .edit(r#""Name":"back","#, &format!(r#""Name":"back",{check}"#));
    let b = Baton::start(&cfg);
    assert!(eventually(Duration::from_secs(5), || flaky.accepted.load(Ordering::Relaxed) >= 2), "checks connect");
    assert_eq!(host_down_reason(&b.stats(), flaky_port), "");

    drop(flaky); // stops accepting: the port refuses connects
    assert!(
        eventually(Duration::from_secs(5), || host_down_reason(&b.stats(), flaky_port) == "active"),
        "marked down by the checks: {}",
        b.stats()
    );
    let metrics = http_get(b.admin.unwrap(), "/metrics").unwrap().1;
    assert!(
        metrics.contains(&format!("baton_host_check_down{{cluster=\"back\",host=\"127.0.0.1:{flaky_port}\"}} 1")),
        "{metrics}"
    );
    // clients counted per host by baton (the backends also see the checks' connections)
    let clients = |p: u16| json_num(&b.stats(), &format!("\"address\":\"127.0.0.1:{p}\""), "total");
    let (steady_before, flaky_before) = (clients(steady.port), clients(flaky_port));
    for id in 0..10 {
        let data = payload(id, 2000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    }
    assert_eq!(clients(steady.port) - steady_before, 10, "every client went to the healthy host");
    assert_eq!(clients(flaky_port), flaky_before);
    assert_eq!(json_num(&b.stats(), "\"connections\"", "upstream_failures"), 0, "no client was tried on the down host");

    // recovers: two passing checks in a row mark it up, and it gets clients again
    let back = Backend::on(TcpListener::bind(("127.0.0.1", flaky_port)).unwrap(), Mode::Echo);
    assert!(
        eventually(Duration::from_secs(5), || host_down_reason(&b.stats(), flaky_port).is_empty()),
        "marked up again: {}",
        b.stats()
    );
    let before = clients(flaky_port);
    for id in 0..10 {
        let data = payload(id, 2000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    }
    assert!(clients(flaky_port) - before >= 4, "round robin sends to it again");
    assert!(back.accepted.load(Ordering::Relaxed) >= 5);
}

/// MOSN runs no checker without a `service_name`: neither does baton.
#[test]
fn no_service_name_no_checks() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[be.port])
        .edit(r#""Name":"back","#, r#""Name":"back","health_check":{"interval":"100ms","timeout":"100ms"},"#);
    let _b = Baton::start(&cfg);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(be.accepted.load(Ordering::Relaxed), 0, "no check connected");
}

/// The marks carry over a hot restart: the new process keeps the host down from its first
/// moment, long before its own checks (every 3 s, two failures needed) could mark it, and
/// sends it no client.
#[test]
fn a_host_marked_down_stays_down_through_a_hot_restart() {
    let steady = Backend::start(Mode::Echo);
    let dead = free_port();
    let port = free_port();
    let check = r#""health_check":{"service_name":"back","interval":"3s","timeout":"500ms","unhealthy_threshold":2},"#;
    let cfg = Cfg::simple(port, &[steady.port, dead])
        .set("fail_threshold", "100")
        .edit(r#""Name":"back","#, &format!(r#""Name":"back",{check}"#));
    let b = Baton::start(&cfg);
    // two checks: one at start, the next 3 s later
    assert!(eventually(Duration::from_secs(8), || host_down_reason(&b.stats(), dead) == "active"), "{}", b.stats());
    b.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(5), || json_num(&b.stats(), "\"generation\"", "generation") == 1));
    let t = std::time::Instant::now();
    assert_eq!(host_down_reason(&b.stats(), dead), "active", "carried over: {}", b.stats());
    for id in 0..6 {
        let data = payload(id, 1000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    }
    let stats = b.stats();
    assert!(t.elapsed() < Duration::from_secs(2), "checked within the new process's first check interval");
    assert_eq!(json_num(&stats, "\"connections\"", "upstream_failures"), 0, "no client tried the dead host: {stats}");
}
