//! Unit tests of `parse`.

use super::*;
extern crate std;
use std::string::ToString;

const SAMPLE: &str = include_str!("../../../tests/data/tcpproxy-sample-0.8.1.json");
const FALLBACK: &str = include_str!("../../../tests/data/proxy-fallback-example.json");

fn err(s: &str) -> std::string::String {
    parse(s.as_bytes()).unwrap_err().to_string()
}

const MIN: &str = r#"{"servers":[{"listeners":[{"name":"l","address":"127.0.0.1:1","bind_port":true,"filter_chains":[{"filters":[{"type":"tcp_proxy","config":{"cluster":"c"}}]}]}]}],
    "cluster_manager":{"clusters":[{"name":"c","hosts":[{"address":"127.0.0.1:2"}]}]}BATON}"#;

fn with(extra: &str) -> std::string::String {
    MIN.replace("BATON", extra)
}

#[test]
fn mosn_sample_loads_unchanged() {
    let c = parse(SAMPLE.as_bytes()).unwrap();
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name.as_str(), "proxyListener");
    assert_eq!(c.listeners[0].addr.to_string(), "127.0.0.1:2045");
    assert_eq!(c.clusters[0].name.as_str(), "serverCluster");
    assert_eq!(c.clusters[0].lb, LbPolicy::Random);
    assert_eq!(c.clusters[0].hosts[0].addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.admin, None);
}

#[test]
fn mosn_l7_filter_is_refused_naming_listener_and_filter() {
    let e = err(FALLBACK);
    assert!(e.contains("listener \"listener-0\""), "{e}");
    assert!(e.contains("filter \"proxy\" is not supported"), "{e}");
}

/// Configs that MOSN would run with TLS, another network or transparent proxying are refused
/// naming the field: baton must never run something other than what the file says.
#[test]
fn configs_baton_would_run_differently_are_refused() {
    let chain = |x: &str| with("").replace("[{\"filters\"", &std::format!("[{{{x},\"filters\""));
    let listener = |x: &str| with("").replace("\"filter_chains\"", &std::format!("{x},\"filter_chains\""));
    let cluster = |x: &str| with("").replace("\"name\":\"c\"", &std::format!("\"name\":\"c\",{x}"));
    for (cfg, want) in [
        (
            chain(r#""tls_context":{"status":true,"cert_chain":"/x"}"#),
            "filter_chains[0].tls_context): TLS is not supported",
        ),
        (
            chain(r#""tls_context_set":[{"status":true}]"#),
            "filter_chains[0].tls_context_set): TLS is not supported, and baton will not guess",
        ),
        (listener(r#""network":"udp""#), ".network): only \"tcp\""),
        (listener(r#""network":"unix""#), ".network): only \"tcp\""),
        (listener(r#""use_original_dst":true"#), ".use_original_dst): use_original_dst"),
        (listener(r#""listener_filters":[{"type":"original_dst"}]"#), ".listener_filters): listener filters"),
        (cluster(r#""type":"STRICT_DNS""#), "cluster \"c\" (cluster_manager.clusters[0].type): only \"SIMPLE\""),
        (cluster(r#""tls_context":{"status":true}"#), "clusters[0].tls_context): TLS is not supported"),
    ] {
        let e = err(&cfg);
        assert!(e.contains(want), "{cfg}\n  gave: {e}\n  want: {want}");
    }
    for ok in [
        chain(r#""tls_context":{"status":false,"cert_chain":"/x"}"#),
        chain(r#""tls_context":{}"#),
        chain(r#""tls_context_set":[]"#),
        listener(r#""network":"tcp","use_original_dst":false,"listener_filters":[]"#),
        cluster(r#""type":"SIMPLE","tls_context":{"status":false}"#),
    ] {
        assert!(parse(ok.as_bytes()).is_ok(), "{ok}: {:?}", parse(ok.as_bytes()).err());
    }
}

/// MOSN's names: every lb_type MOSN has for TCP maps to what it means; weights outside
/// MOSN's 1..=128 are clamped, not refused; `/config` renders MOSN's spelling.
#[test]
fn mosn_lb_names_and_weight_clamping() {
    for (name, lb) in [
        ("LB_ROUNDROBIN", LbPolicy::RoundRobin),
        ("LB_WEIGHTED_ROUNDROBIN", LbPolicy::RoundRobin),
        ("LB_REQUEST_ROUNDROBIN", LbPolicy::RoundRobin),
        ("LB_RANDOM", LbPolicy::Random),
        ("LB_LEAST_CONNECTION", LbPolicy::LeastConn),
        ("LB_LEASTCONNECTION", LbPolicy::LeastConn),
        ("LB_LEAST_REQUEST", LbPolicy::LeastConn),
    ] {
        let text = with("").replace("\"name\":\"c\"", &std::format!("\"name\":\"c\",\"lb_type\":\"{name}\""));
        assert_eq!(parse(text.as_bytes()).unwrap().clusters[0].lb, lb, "{name}");
    }
    assert_eq!(LbPolicy::LeastConn.as_str(), "LB_LEAST_CONNECTION");
    for (w, want) in [(0, 1), (1, 1), (128, 128), (1000, 128)] {
        let text = with("")
            .replace("\"address\":\"127.0.0.1:2\"", &std::format!("\"address\":\"127.0.0.1:2\",\"weight\":{w}"));
        assert_eq!(parse(text.as_bytes()).unwrap().clusters[0].hosts[0].weight, want, "weight {w}");
    }
    let text = with("").replace("\"127.0.0.1:1\"", "\":7001\"");
    assert_eq!(parse(text.as_bytes()).unwrap().listeners[0].addr.to_string(), "0.0.0.0:7001");
}

/// The spellings MOSN's own marshalling writes (Go field names: `Cluster`, `Routes`) load, and
/// are not reported as unknown keys.
#[test]
fn mosn_marshalled_key_spellings_load() {
    let top = with("").replace("\"config\":{\"cluster\":\"c\"}", "\"config\":{\"Cluster\":\"c\"}");
    let routed = with("").replace("\"config\":{\"cluster\":\"c\"}", "\"config\":{\"Routes\":[{\"Cluster\":\"c\"}]}");
    for text in [top, routed] {
        assert!(text.contains("Cluster"), "{text}");
        let (c, unknown) = parse_noting(text.as_bytes()).unwrap();
        assert_eq!(c.clusters[c.listeners[0].cluster].name.as_str(), "c");
        assert!(unknown.paths.is_empty(), "{:?}", unknown.paths);
    }
}

#[test]
fn settings_and_graceful_timeout() {
    let c = parse(with("").as_bytes()).unwrap();
    assert_eq!(c.settings, Settings::default());
    let c = parse(
        with(r#","baton":{"max_connections":10,"idle_timeout":"1m","drain_timeout":"2s","runtime_dir":"/tmp/x"}"#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (c.settings.max_connections, c.settings.idle_timeout_ms, c.settings.drain_timeout_ms),
        (10, 60_000, 2_000)
    );
    let g = with("").replace("{\"listeners\"", "{\"graceful_timeout\":\"7s\",\"listeners\"");
    assert_eq!(parse(g.as_bytes()).unwrap().settings.drain_timeout_ms, 7_000);
}

#[test]
fn bad_configs_point_at_the_field() {
    let cases: &[(std::string::String, &str)] = &[
        (with(r#","baton":{"max_connections":0}"#), "baton.max_connections: 0 is out of range"),
        (with(r#","baton":{"idle_timeout":"5 minutes"}"#), "baton.idle_timeout: \"5 minutes\" is not a duration"),
        (with(r#","baton":{"runtime_dir":"run"}"#), "baton.runtime_dir: must be an absolute path"),
        (
            with("").replace("127.0.0.1:1", "127.0.0.1"),
            "servers[0].listeners[0].address): \"127.0.0.1\" is not an address",
        ),
        (with("").replace("\"cluster\":\"c\"", "\"cluster\":\"nope\""), "cluster \"nope\" is not defined"),
        (
            with("").replace("[{\"address\":\"127.0.0.1:2\"}]", "[]"),
            "cluster \"c\" (cluster_manager.clusters[0].hosts): has no hosts",
        ),
        (with("").replace("\"bind_port\":true", "\"bind_port\":false"), "bind_port false"),
        (with("").replace("\"bind_port\":true,", ""), "bind_port is absent, which MOSN reads as false"),
        (with("").replace("[{\"filters\"", "[{\"tls_context\":{\"status\":true},\"filters\""), "TLS is not supported"),
        (
            with(r#","admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":70000}}}"#),
            "port_value: 70000 is out of range",
        ),
        (
            with(r#","admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":1}}}"#),
            "admin.address: the same address is already used by listener \"l\"",
        ),
        (
            with("").replace("\"lb_type\"", "x").replace("\"name\":\"c\"", "\"name\":\"c\",\"lb_type\":\"LB_MAGLEV\""),
            "\"LB_MAGLEV\" is not supported",
        ),
        (
            with("").replace("\"address\":\"127.0.0.1:1\"", "\"address\":1"),
            "`servers[0].listeners[0].address` must be a string, found a number",
        ),
        ("{\"servers\":[".into(), "line 1, column 13"),
        ("{}".into(), "servers: no listeners are configured"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
    let big = std::vec![b' '; MAX_CONFIG_BYTES + 1];
    assert!(parse(&big).unwrap_err().to_string().contains("MAX_CONFIG_BYTES"));
}

#[test]
fn duplicate_listener_addresses_and_limits() {
    let l = r#"{"name":"NAME","address":"127.0.0.1:1","bind_port":true,"filter_chains":[{"filters":[{"type":"tcp_proxy","config":{"cluster":"c"}}]}]}"#;
    let two = std::format!("{},{}", l.replace("NAME", "a"), l.replace("NAME", "b"));
    let text = MIN.replace("BATON", "").replacen(&l.replace("NAME", "l"), &two, 1);
    assert!(err(&text).contains("the same address is already used by listener \"a\""), "{}", err(&text));
    let hosts: std::vec::Vec<_> = (0..33).map(|i| std::format!("{{\"address\":\"127.0.0.1:{}\"}}", i + 1)).collect();
    let text = MIN.replace("BATON", "").replace("{\"address\":\"127.0.0.1:2\"}", &hosts.join(","));
    assert!(err(&text).contains("MAX_HOSTS (32)"), "{}", err(&text));
}

#[test]
fn rendered_config_parses_back_identically() {
    let c = parse(with(r#","baton":{"max_connections":77,"pid_file":"/tmp/p"},"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":9}}}"#).as_bytes()).unwrap();
    let mut s = std::string::String::new();
    crate::sansio::config::render::write_json(&mut s, &c).unwrap();
    assert_eq!(parse(s.as_bytes()).unwrap(), c, "{s}");
}
