//! The command line and config errors: exit codes and messages that say what to fix.
mod common;
use common::*;

/// MOSN's own files, from the shared folder beside the checkout (the project keeps no copies).
fn mosn(name: &str) -> String {
    let shared = format!("{}/../shared/compat/mosn/{name}", env!("CARGO_MANIFEST_DIR"));
    assert!(std::path::Path::new(&shared).exists(), "{shared} is missing: MOSN's files live in shared/");
    shared
}

#[test]
fn version_help_and_usage_errors() {
    let (rc, out, _) = run(&["--version"]);
    assert_eq!((rc, out.trim()), (0, concat!("baton ", env!("CARGO_PKG_VERSION"))));
    let (rc, out, _) = run(&["--help"]);
    assert!(rc == 0 && out.contains("--runtime-dir") && out.contains("--check"));
    let (rc, _, err) = run(&["--frobnicate"]);
    assert_eq!(rc, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown argument `--frobnicate`"));
    let (rc, _, err) = run(&["-c"]);
    assert!(rc == 2 && err.contains("--config needs a value"), "{err}");
}

#[test]
fn check_accepts_the_mosn_sample_and_the_example() {
    for f in [mosn("tcpproxy-sample-0.8.1.json"), concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gateway.json").into()]
    {
        let (rc, out, err) = run(&["--check", "-c", &f]);
        assert_eq!((rc, out.trim()), (0, "ok"), "{f}: {err}");
    }
}

/// `tls_context: {"status": false}` is plaintext in MOSN and loads.
#[test]
fn tls_status_false_is_plaintext_and_loads() {
    let dir = TempDir::new("tlsoff");
    let p = dir.path("c.json");
    let text = Cfg::simple(2045, &[8080]).json().replace("\"tls_context\":{}", "\"tls_context\":{\"status\":false}");
    assert!(text.contains("\"status\":false"));
    std::fs::write(&p, text).unwrap();
    let (rc, out, _) = run(&["--check", "-c", &p]);
    assert_eq!((rc, out.trim()), (0, "ok"));
}

/// A command-line argument that is not UTF-8 is a usage error (exit 2), not a panic.
#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/caf\xe9.json");
    for args in [vec![std::ffi::OsStr::new("-c"), bad], vec![bad]] {
        let out = std::process::Command::new(&*BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("is not valid UTF-8"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn check_refuses_mosn_l7_config_naming_listener_and_filter() {
    let (rc, out, err) = run(&["--check", "-c", &mosn("proxy-fallback-example.json")]);
    assert_eq!((rc, out.as_str()), (2, ""), "errors go to stderr only");
    assert!(err.contains("listener \"listener-0\"") && err.contains("filter \"proxy\" is not supported"), "{err}");
}

#[test]
fn every_bad_config_exits_2_with_a_pointed_message() {
    let dir = TempDir::new("badcfg");
    let good = Cfg::simple(2045, &[8080]).json();
    let cases: Vec<(String, &str)> = vec![
        ("{\"servers\": [".into(), "line 1, column 14"),
        ("[1,2]".into(), "must be an object"),
        (good.replace("\"port_value\":", "\"port_value\":\"x\",\"y\":"), "port_value` must be a non-negative integer"),
        (" ".repeat(70_000), "MAX_CONFIG_BYTES"),
        (good.replace("\"cluster\":\"back\"", "\"cluster\":\"nowhere\""), "cluster \"nowhere\" is not defined"),
        (good.replace("127.0.0.1:8080", "127.0.0.1:80800"), "\"127.0.0.1:80800\" is not an address"),
        (
            good.replace("\"baton\":{}", "\"baton\":{\"idle_timeout\":\"soon\"}"),
            "baton.idle_timeout: \"soon\" is not a duration",
        ),
        (good.replace("{\"address\":\"127.0.0.1:8080\"}", ""), "has no hosts"),
        (good.replace("\"bind_port\":true", "\"bind_port\":false"), "bind_port false"),
        (good.replace("\"bind_port\":true,", ""), "bind_port is absent, which MOSN reads as false"),
        (good.replace("\"tls_context\":{}", "\"tls_context\":{\"status\":true}"), "TLS is not supported"),
        // configs MOSN would run differently (TLS, UDP, transparent proxying, DNS clusters)
        (good.replace("\"tls_context\":{}", "\"tls_context_set\":[{\"status\":true}]"), "tls_context_set): TLS"),
        (good.replace("\"bind_port\":true", "\"bind_port\":true,\"network\":\"udp\""), ".network): only \"tcp\""),
        (
            good.replace("\"bind_port\":true", "\"bind_port\":true,\"use_original_dst\":true"),
            "use_original_dst (transparent",
        ),
        (
            good.replace("\"bind_port\":true", "\"bind_port\":true,\"listener_filters\":[{\"type\":\"original_dst\"}]"),
            ".listener_filters): listener filters",
        ),
        (good.replace("\"type\":\"SIMPLE\"", "\"type\":\"ORIGINAL_DST\""), ".type): only \"SIMPLE\""),
        (
            good.replace("\"baton\":{}", "\"baton\":{\"max_connections\":999999999}"),
            "baton.max_connections: 999999999 is out of range",
        ),
        (good.replace("\"lb_type\":\"LB_ROUNDROBIN\"", "\"lb_type\":\"LB_MAGLEV\""), "LB_MAGLEV"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path(&format!("bad{i}.json"));
        std::fs::write(&p, text).unwrap();
        let (rc, out, err) = run(&["--check", "-c", &p]);
        assert_eq!((rc, out.as_str()), (2, ""), "case {i}: {err}");
        assert!(err.contains(want), "case {i}: want {want:?} in {err:?}");
        // without --check: nothing starts, exit 2, one line on stderr
        let (rc, _, err) = run(&["-c", &p, "--runtime-dir", &dir.path("run")]);
        assert_eq!(rc, 2, "case {i}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(err.contains(want), "case {i}: {err}");
    }
    let (rc, _, err) = run(&["-c", &dir.path("missing.json")]);
    assert!(rc == 2 && err.contains("No such file"), "{err}");
}

#[test]
fn duplicate_listener_addresses_are_refused() {
    let mut cfg = Cfg::simple(2046, &[8080]);
    cfg.listeners.push(("other".into(), 2046, "back".into()));
    let dir = TempDir::new("dup");
    let p = dir.path("c.json");
    std::fs::write(&p, cfg.json()).unwrap();
    let (rc, _, err) = run(&["--check", "-c", &p]);
    assert_eq!(rc, 2);
    assert!(err.contains("listener \"other\"") && err.contains("already used by listener \"front\""), "{err}");
}

#[test]
fn a_taken_port_is_a_runtime_error_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("taken");
    let p = dir.path("c.json");
    std::fs::write(&p, Cfg::simple(port, &[8080]).json()).unwrap();
    let (rc, _, err) = run(&["-c", &p, "--runtime-dir", &dir.path("run")]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port} is already in use")), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("baton: ")).count(), 1, "{err}");
}

#[test]
fn sigterm_is_a_clean_stop_that_removes_its_pid_file() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let cfg = Cfg::simple(port, &[be.port]);
    let dir = TempDir::new("term");
    let pid_file = dir.path("baton.pid");
    let cfg = cfg.set("pid_file", &format!("\"{pid_file}\""));
    let mut b = Baton::start_in(&cfg, dir);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), b.pid().to_string());
    b.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(b.wait_exit(std::time::Duration::from_secs(5)), Some(0));
    assert!(!std::path::Path::new(&pid_file).exists());
}

/// Unknown keys: `--check` says `ok` on stdout and describes them on stderr (a near miss gets
/// "did you mean", a MOSN setting baton ignores knowingly is said to be ignored); a running
/// baton logs them once logging is set up; an unknown key in `"baton"` is an error (exit 2).
#[test]
fn unknown_keys_are_warned_about_and_refused_in_the_baton_object() {
    let dir = TempDir::new("unknown-keys");
    let p = dir.path("c.json");
    let text = Cfg::simple(free_port(), &[8080])
        .json()
        .replace("{\"address\":\"127.0.0.1:8080\"}", "{\"address\":\"127.0.0.1:8080\",\"weigth\":3}")
        .replace("\"servers\":[{", "\"pprof\":{\"debug\":true},\"servers\":[{");
    assert!(text.contains("weigth") && text.contains("pprof"));
    std::fs::write(&p, &text).unwrap();
    let (rc, out, err) = run(&["--check", "-c", &p]);
    assert_eq!((rc, out.trim()), (0, "ok"), "{err}");
    assert!(
        err.contains("unknown key `cluster_manager.clusters[0].hosts[0].weigth` ignored; did you mean `weight`?"),
        "{err}"
    );
    assert!(err.contains("MOSN setting `pprof` is not supported by baton; ignored"), "{err}");
    // weights given to a policy that does not use them (MOSN's LB_ROUNDROBIN)
    let weighted = Cfg::simple(free_port(), &[8080, 8081])
        .json()
        .replace("{\"address\":\"127.0.0.1:8081\"}", "{\"address\":\"127.0.0.1:8081\",\"weight\":3}");
    std::fs::write(&p, &weighted).unwrap();
    let (rc, out, err) = run(&["--check", "-c", &p]);
    assert_eq!((rc, out.trim()), (0, "ok"), "{err}");
    assert!(err.contains("cluster \"back\": LB_ROUNDROBIN does not use host weights"), "{err}");
    std::fs::write(&p, weighted.replace("LB_ROUNDROBIN", "LB_WEIGHTED_ROUNDROBIN")).unwrap();
    let (_, _, err) = run(&["--check", "-c", &p]);
    assert!(!err.contains("does not use host weights"), "{err}");
    // a running baton logs them (here it then stops on a taken port)
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let running = Cfg::simple(port, &[8080]).json().replace("\"servers\":[{", "\"tracing\":{},\"servers\":[{");
    std::fs::write(&p, running).unwrap();
    let (rc, _, err) = run(&["-c", &p, "--runtime-dir", &dir.path("run")]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("MOSN setting `tracing` is not supported by baton; ignored"), "{err}");
    // inside "baton": an error, with the key it is close to
    std::fs::write(&p, Cfg::simple(free_port(), &[8080]).set("idle_timout", "\"1m\"").json()).unwrap();
    let (rc, _, err) = run(&["--check", "-c", &p]);
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("`baton.idle_timout` is not a baton setting") && err.contains("did you mean `idle_timeout`?"),
        "{err}"
    );
}
