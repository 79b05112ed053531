//! Unit tests of `parse`.

use super::*;
extern crate std;
use crate::sansio::limits::MAX_FILTERS;
use std::string::ToString;

/// One of MOSN's own files, read from the shared folder beside the checkout at test time (the
/// project keeps no copies of third-party files).
fn mosn_file(name: &str) -> std::string::String {
    let path = std::format!("{}/../shared/compat/mosn/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (MOSN's files live in shared/)"))
}

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
    let c = parse(mosn_file("tcpproxy-sample-0.8.1.json").as_bytes()).unwrap();
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
    let e = err(&mosn_file("proxy-fallback-example.json"));
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
        (listener(r#""network":"udp""#), ".network): only \"tcp\" and \"unix\""),
        (listener(r#""network":"unix""#), ".address): \"127.0.0.1:1\" is not a unix socket path"),
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
        ("LB_WEIGHTED_ROUNDROBIN", LbPolicy::WeightedRoundRobin),
        ("LB_REQUEST_ROUNDROBIN", LbPolicy::RequestRoundRobin),
        ("LB_RANDOM", LbPolicy::Random),
        ("LB_LEAST_CONNECTION", LbPolicy::LeastConn),
        ("LB_LEASTCONNECTION", LbPolicy::LeastConn),
        ("LB_LEAST_REQUEST", LbPolicy::LeastRequest),
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

/// A route as MOSN's marshalling writes it (Go field names, `IpNet` included).
const MARSHALLED_ROUTE: &str = r#"{"Cluster":"c","SourceAddrs":[{"Address":"127.0.0.2","Length":32,"IpNet":{"IP":"127.0.0.2","Mask":"/////w=="}}],"DestinationAddrs":[{"Address":"127.0.0.0","Length":8,"IpNet":null}],"SourcePort":"1-65535","DestinationPort":"1-65535"}"#;

fn with_config(config: &str) -> std::string::String {
    with("").replace("\"config\":{\"cluster\":\"c\"}", &std::format!("\"config\":{config}"))
}

/// The spellings MOSN's own marshalling writes (Go field names: `Cluster`, `Routes`,
/// `SourceAddrs`...) load, and are not reported as unknown keys.
#[test]
fn mosn_marshalled_key_spellings_load() {
    let top = with_config("{\"Cluster\":\"c\"}");
    let routed = with_config(&std::format!("{{\"Routes\":[{MARSHALLED_ROUTE}]}}"));
    for text in [top, routed] {
        let (c, unknown) = parse_noting(text.as_bytes()).unwrap();
        let l = &c.listeners[0];
        assert_eq!(l.clusters().map(|i| c.clusters[i].name.as_str()).collect::<std::vec::Vec<_>>(), ["c"]);
        assert!(unknown.paths.is_empty(), "{:?}", unknown.paths);
    }
}

/// MOSN's route rules: `cluster` wins and routes are then never read (the 0.8.1 sample's routes
/// have no matchers and do not matter); without it, routes with all four matchers, in order.
#[test]
fn routes_as_mosn_reads_them() {
    let two = r#"{"cluster":"c2","SourceAddrs":[{"address":"127.0.0.2","length":32}],"DestinationAddrs":[{"address":"0.0.0.0","length":0}],"SourcePort":"1-65535","DestinationPort":"1"},
                 {"cluster":"c","SourceAddrs":[{"address":"127.0.0.0","length":8},{"address":"::1","length":128}],"DestinationAddrs":[{"address":"127.0.0.0","length":8}],"SourcePort":"1-65535","DestinationPort":"1,2,3-9"}"#;
    let text = with_config(&std::format!("{{\"routes\":[{two}]}}"))
        .replace("\"clusters\":[", "\"clusters\":[{\"name\":\"c2\",\"hosts\":[{\"address\":\"127.0.0.1:3\"}]},");
    let c = parse(text.as_bytes()).unwrap();
    let l = &c.listeners[0];
    assert_eq!(l.cluster, None);
    assert_eq!(l.routes.len(), 2);
    assert_eq!((l.routes[0].cluster, l.routes[1].cluster), (0, 1));
    assert_eq!(l.routes[1].sources.len(), 2);
    assert_eq!(l.routes[1].destination_ports.len(), 3);
    let at =
        |peer: &str| crate::sansio::route::pick(&l.routes, &peer.parse().unwrap(), &"127.0.0.1:1".parse().unwrap());
    assert_eq!(at("127.0.0.2:5000"), Some(0));
    assert_eq!(at("127.0.0.1:5000"), Some(1));
    assert_eq!(at("10.0.0.1:5000"), None);
    // rendered back as MOSN marshals routes, and read back the same
    let mut s = std::string::String::new();
    crate::sansio::config::render::write_json(&mut s, &c).unwrap();
    assert_eq!(parse(s.as_bytes()).unwrap(), c, "{s}");

    let sample = parse(mosn_file("tcpproxy-sample-0.8.1.json").as_bytes()).unwrap();
    assert!(sample.listeners[0].cluster.is_some() && sample.listeners[0].routes.is_empty());
    let both = with_config(r#"{"cluster":"c","routes":[{"cluster":"nope"}]}"#);
    assert_eq!(parse(both.as_bytes()).unwrap().listeners[0].cluster, Some(0), "routes are not read beside cluster");
}

#[test]
fn routes_that_mosn_would_never_match_are_refused() {
    let full = r#""SourceAddrs":[{"address":"127.0.0.1","length":32}],"DestinationAddrs":[{"address":"127.0.0.1","length":32}],"SourcePort":"1-65535","DestinationPort":"1-65535""#;
    let route = |body: &str| with_config(&std::format!("{{\"routes\":[{{\"cluster\":\"c\",{body}}}]}}"));
    let cases: &[(std::string::String, &str)] = &[
        (with_config("{\"routes\":[{\"cluster\":\"c\"}]}"), "routes[0]): can never match"),
        (route(&full.replace(",\"SourcePort\":\"1-65535\"", "")), "routes[0]): can never match"),
        (route(&full.replace("SourceAddrs", "source_addrs")), "routes[0].source_addrs): MOSN does not read this key"),
        (route(&full.replace("DestinationPort", "destination_port")), "write \"DestinationPort\""),
        (
            route(&full.replace("\"length\":32}", "\"length\":33}")),
            "routes[0].SourceAddrs[0]): is not an address range",
        ),
        (route(&full.replace("127.0.0.1", "localhost")), "SourceAddrs[0]): is not an address range"),
        (route(&full.replace("\"1-65535\"", "\"80-70000\"")), "routes[0].SourcePort): \"80-70000\" is not a port list"),
        (
            route(full).replace("\"cluster\":\"c\",\"Source", "\"cluster\":\"x\",\"Source"),
            "routes[0].cluster): cluster \"x\" is not defined",
        ),
        (with_config("{}"), "config.cluster): is required"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
    assert!(parse(route(full).as_bytes()).is_ok());
    // more than two routes and filters load (MAX_ROUTES, MAX_FILTERS)
    let eight = std::iter::repeat_n(std::format!("{{\"cluster\":\"c\",{full}}}"), MAX_ROUTES)
        .collect::<std::vec::Vec<_>>()
        .join(",");
    let c = parse(with_config(&std::format!("{{\"routes\":[{eight}]}}")).as_bytes()).unwrap();
    assert_eq!(c.listeners[0].routes.len(), MAX_ROUTES);
    let filters = with("").replace(
        "[{\"type\":\"tcp_proxy\",\"config\":{\"cluster\":\"c\"}}]",
        "[{\"type\":\"tcp_proxy\",\"config\":{\"cluster\":\"c\"}},{\"type\":\"tcp_proxy\",\"config\":{\"cluster\":\"c\"}},{\"type\":\"tcp_proxy\",\"config\":{\"cluster\":\"c\"}}]",
    );
    assert_eq!(parse(filters.as_bytes()).unwrap().listeners[0].cluster, Some(0));
}

/// MOSN's per-cluster and per-listener options, honoured.
#[test]
fn per_cluster_and_per_listener_options() {
    let text = with("")
        .replace("\"bind_port\":true", "\"bind_port\":true,\"connection_idle_timeout\":\"90s\"")
        .replace(
        "\"name\":\"c\"",
        "\"name\":\"c\",\"connect_timeout\":\"1.5s\",\"circuit_breakers\":[{\"max_connections\":7,\"max_requests\":9}]",
    );
    let c = parse(text.as_bytes()).unwrap();
    assert_eq!(c.idle_timeout_ms(0), 90_000);
    assert_eq!(c.connect_timeout_ms(0), 1_500);
    assert_eq!(c.clusters[0].max_connections, 7);
    let mut s = std::string::String::new();
    crate::sansio::config::render::write_json(&mut s, &c).unwrap();
    assert_eq!(parse(s.as_bytes()).unwrap(), c, "{s}");
    // MOSN's tcp_proxy reads idle_timeout (Go nanoseconds) and max_connect_attempts and never
    // applies them to TCP: loaded, ignored, the defaults stay
    let ns = with_config("{\"cluster\":\"c\",\"idle_timeout\":2500000000,\"max_connect_attempts\":1}");
    let c = parse(ns.as_bytes()).unwrap();
    assert_eq!((c.idle_timeout_ms(0), c.settings.connect_attempts), (90_000, 3), "MOSN's default idle timeout");
    for key in ["idle_timeout", "max_connect_attempts"] {
        let path = std::format!("servers[0].listeners[0].filter_chains[0].filters[0].config.{key}");
        assert_eq!(
            crate::sansio::config::schema::describe_unknown(&path),
            crate::sansio::config::schema::UnknownKey::IgnoredMosn,
            "{key}"
        );
    }
    let c = parse(with("").as_bytes()).unwrap();
    assert_eq!((c.connect_timeout_ms(0), c.clusters[0].max_connections), (3_000, 0));
    let zero_ct = with("").replace("\"name\":\"c\"", "\"name\":\"c\",\"connect_timeout\":\"0s\"");
    assert!(err(&zero_ct).contains("connect_timeout): 0 (in MOSN: no timeout"), "{}", err(&zero_ct));
}

/// MOSN settings that would make baton run differently are refused, naming the field.
#[test]
fn mosn_settings_baton_cannot_honour_are_refused() {
    let cl = |extra: &str| with("").replace("\"name\":\"c\"", &std::format!("\"name\":\"c\",{extra}"));
    assert!(err(&cl("\"mark\":7")).contains(".mark): mark (SO_MARK"), "{}", err(&cl("\"mark\":7")));
    assert!(parse(cl("\"mark\":0").as_bytes()).is_ok());
    // MOSN runs such a cluster with cluster_manager.tls_context, plaintext when that is off
    assert!(parse(cl("\"cluster_manager_tls\":true").as_bytes()).is_ok());
    let tls =
        cl("\"cluster_manager_tls\":true").replace("{\"clusters\"", "{\"tls_context\":{\"status\":true},\"clusters\"");
    assert!(err(&tls).contains("cluster_manager_tls): TLS is not supported"), "{}", err(&tls));
    assert!(parse(cl("\"cluster_manager_tls\":false").as_bytes()).is_ok());
    let dir = with("").replace("{\"clusters\"", "{\"clusters_configs\":\"/etc/mosn/clusters\",\"clusters\"");
    assert!(err(&dir).contains("clusters_configs (clusters loaded"), "{}", err(&dir));
    for on in ["true", "\"tproxy\"", "\"redirect\""] {
        let l = with("").replace("\"bind_port\":true", &std::format!("\"bind_port\":true,\"use_original_dst\":{on}"));
        assert!(err(&l).contains("use_original_dst): use_original_dst (transparent proxying"), "{on}: {}", err(&l));
    }
    for bad in ["1", "{}", "[]"] {
        let l = with("").replace("\"bind_port\":true", &std::format!("\"bind_port\":true,\"use_original_dst\":{bad}"));
        assert!(err(&l).contains("use_original_dst): must be false, true or a string"), "{bad}: {}", err(&l));
    }
    for off in ["false", "\"\"", "null"] {
        let l = with("").replace("\"bind_port\":true", &std::format!("\"bind_port\":true,\"use_original_dst\":{off}"));
        assert!(parse(l.as_bytes()).is_ok(), "{off}");
    }
}

/// Durations as MOSN's DurationConfig reads them: strings, or the bare number 0.
#[test]
fn durations_as_strings_or_zero() {
    let c = parse(with(r#","baton":{"idle_timeout":0,"drain_timeout":"1m30s"}"#).as_bytes()).unwrap();
    assert_eq!((c.settings.idle_timeout_ms, c.settings.drain_timeout_ms), (0, 90_000));
    for bad in ["30", "0.0", "1e3", "00", "true", "-1"] {
        let e = err(&with(&std::format!(",\"baton\":{{\"idle_timeout\":{bad}}}")));
        assert!(e.contains("`baton.idle_timeout` must be a duration string such as \"30s\""), "{bad}: {e}");
    }
    // every other form Go's time.ParseDuration takes: signs, both micro signs, -0
    for (text, ms) in [("-0", 0), ("\"+5s\"", 5_000), ("\"-0s\"", 0), ("\"1500\u{3bc}s\"", 2), ("\"2000\u{b5}s\"", 2)] {
        let c = parse(with(&std::format!(",\"baton\":{{\"idle_timeout\":{text}}}")).as_bytes());
        assert_eq!(c.map(|c| c.settings.idle_timeout_ms).ok(), Some(ms), "{text}");
    }
    assert!(err(&with(",\"baton\":{\"drain_timeout\":\"-1s\"}")).contains("drain_timeout"), "negative refused");
    // MOSN: a zero graceful_timeout keeps the 30 s default
    for zero in ["0", "\"0s\""] {
        let g = with("").replace("{\"listeners\"", &std::format!("{{\"graceful_timeout\":{zero},\"listeners\""));
        assert_eq!(parse(g.as_bytes()).unwrap().settings.drain_timeout_ms, 30_000, "{zero}");
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
    // a wildcard takes both families (Go's net.Listen in MOSN): it clashes with every IP
    // address on its port, in either family, and ":P" is 0.0.0.0:P
    for (a, b) in [(":1", "[::]:1"), ("0.0.0.0:1", "[::1]:1"), ("[::]:1", "127.0.0.1:1"), (":1", "0.0.0.0:1")] {
        let pair = std::format!(
            "{},{}",
            l.replace("NAME", "a").replace("127.0.0.1:1", a),
            l.replace("NAME", "b").replace("127.0.0.1:1", b)
        );
        let text = MIN.replace("BATON", "").replacen(&l.replace("NAME", "l"), &pair, 1);
        assert!(err(&text).contains("already used by listener \"a\""), "{a} {b}: {}", err(&text));
    }
    let pair = std::format!("{},{}", l.replace("NAME", "a"), l.replace("NAME", "b").replace("127.0.0.1:1", "[::1]:1"));
    assert!(
        parse(MIN.replace("BATON", "").replacen(&l.replace("NAME", "l"), &pair, 1).as_bytes()).is_ok(),
        "two specific addresses"
    );
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
/// A config with every listener, filter, range and host a config can have parses on a thread
/// with `PARSE_STACK` of stack, in whatever build this test runs (debug: the deepest). The raw
/// config's size is fixed by its capacities, not by the text; only the routes are fewer than
/// `MAX_ROUTES`, to stay within `MAX_CONFIG_BYTES`.
#[test]
fn largest_config_parses_on_parse_stack() {
    let cidrs = |a: &str| {
        std::iter::repeat_n(std::format!("{{\"address\":\"{a}\",\"length\":9}}"), MAX_CIDRS)
            .collect::<std::vec::Vec<_>>()
            .join(",")
    };
    let route = std::format!(
        "{{\"cluster\":\"c\",\"SourceAddrs\":[{}],\"DestinationAddrs\":[{}],\"SourcePort\":\"1,2,3,4,5,6,7,8-65535\",\"DestinationPort\":\"1-65535\"}}",
        cidrs("::1"),
        cidrs("::")
    );
    let routes = std::iter::repeat_n(route, 1).collect::<std::vec::Vec<_>>().join(",");
    let filter = std::format!("{{\"type\":\"tcp_proxy\",\"config\":{{\"routes\":[{routes}]}}}}");
    let filters = std::iter::repeat_n(filter, MAX_FILTERS).collect::<std::vec::Vec<_>>().join(",");
    let listeners = (0..MAX_LISTENERS)
        .map(|i| std::format!("{{\"name\":\"l{i}\",\"address\":\"[::1]:{}\",\"bind_port\":true,\"filter_chains\":[{{\"filters\":[{filters}]}}]}}", i + 1))
        .collect::<std::vec::Vec<_>>()
        .join(",");
    let hosts = (0..MAX_HOSTS)
        .map(|i| std::format!("{{\"address\":\"[::1]:{}\"}}", i + 100))
        .collect::<std::vec::Vec<_>>()
        .join(",");
    let text = std::format!("{{\"servers\":[{{\"listeners\":[{listeners}]}}],\"cluster_manager\":{{\"clusters\":[{{\"name\":\"c\",\"hosts\":[{hosts}]}}]}}}}");
    assert!(text.len() <= MAX_CONFIG_BYTES, "{} bytes", text.len());
    let t = std::thread::Builder::new().stack_size(crate::sansio::limits::PARSE_STACK).spawn(move || {
        let c = parse(text.as_bytes()).unwrap();
        (c.listeners.len(), c.listeners[0].routes.len(), c.listeners[0].routes[0].sources.len())
    });
    assert_eq!(t.unwrap().join().unwrap(), (MAX_LISTENERS, 1, MAX_CIDRS));
}

/// MOSN's `health_check`: only with a `service_name`; zeros are MOSN's defaults; HTTP refused.
#[test]
fn health_check_as_mosn_reads_it() {
    let hc = |body: &str| with("").replace("\"name\":\"c\"", &std::format!("\"name\":\"c\",\"health_check\":{body}"));
    let c = parse(hc(r#"{"interval":"1s"}"#).as_bytes()).unwrap();
    assert_eq!(c.clusters[0].health, None, "no service_name: MOSN runs no checker");
    let c = parse(
        hc(r#"{"service_name":"s","timeout":0,"interval":"0s","healthy_threshold":0,"unhealthy_threshold":300}"#)
            .as_bytes(),
    )
    .unwrap();
    let want = HealthCheck { interval_ms: 15_000, timeout_ms: 1_000, healthy_threshold: 1, unhealthy_threshold: 255 };
    assert_eq!(c.clusters[0].health, Some(want));
    let (c, unknown) = parse_noting(
        hc(r#"{"service_name":"s","protocol":"tcp","interval":"2s","interval_jitter":"1s","check_config":{"a":1}}"#)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.clusters[0].health.map(|h| h.interval_ms), Some(2_000));
    assert_eq!(unknown.paths.len(), 2, "jitter and check_config are listed as ignored: {:?}", unknown.paths);
    let mut s = std::string::String::new();
    crate::sansio::config::render::write_json(&mut s, &c).unwrap();
    assert_eq!(parse(s.as_bytes()).unwrap(), c, "{s}");
    let e = err(&hc(r#"{"service_name":"s","protocol":"Http1"}"#));
    assert!(e.contains("health_check.protocol): HTTP health checks are not supported"), "{e}");
}

/// MOSN's uds-sample shapes: a `"network": "unix"` listener at a path, and `unix:/path` hosts;
/// a bare path as a host is refused (MOSN does not resolve it).
#[test]
fn unix_listeners_and_hosts() {
    let text = with("")
        .replace("\"address\":\"127.0.0.1:1\",", "\"address\":\"/run/gw/in.sock\",\"network\":\"unix\",")
        .replace("\"address\":\"127.0.0.1:2\"", "\"address\":\"unix:/run/svc.sock\"");
    let c = parse(text.as_bytes()).unwrap();
    assert_eq!(c.listeners[0].addr, Addr::unix("/run/gw/in.sock").unwrap());
    assert_eq!(c.clusters[0].hosts[0].addr.to_string(), "unix:/run/svc.sock");
    let mut s = std::string::String::new();
    crate::sansio::config::render::write_json(&mut s, &c).unwrap();
    assert!(s.contains("\"address\":\"/run/gw/in.sock\",\"network\":\"unix\""), "{s}");
    assert_eq!(parse(s.as_bytes()).unwrap(), c, "{s}");
    let bare = with("").replace("\"address\":\"127.0.0.1:2\"", "\"address\":\"/run/svc.sock\"");
    assert!(err(&bare).contains("MOSN does not resolve as a host"), "{}", err(&bare));
    let rel = text.replace("/run/gw/in.sock", "in.sock");
    assert!(err(&rel).contains("\"in.sock\" is not a unix socket path"), "{}", err(&rel));
    let long = text.replace("/run/gw/in.sock", &std::format!("/{}", "x".repeat(110)));
    assert!(err(&long).contains("is not a unix socket path"), "{}", err(&long));
}

/// MOSN's top-level `pid` is the PID file, unless `baton.pid_file` says otherwise.
#[test]
fn mosn_pid_is_the_pid_file() {
    let top = |extra: &str| with(extra).replacen("{\"servers\"", "{\"pid\":\"/run/mosn.pid\",\"servers\"", 1);
    assert_eq!(parse(top("").as_bytes()).unwrap().settings.pid_file.as_deref(), Some("/run/mosn.pid"));
    let both = top(r#","baton":{"pid_file":"/run/baton.pid"}"#);
    assert_eq!(parse(both.as_bytes()).unwrap().settings.pid_file.as_deref(), Some("/run/baton.pid"));
    let rel = with("").replacen("{\"servers\"", "{\"pid\":\"mosn.pid\",\"servers\"", 1);
    assert!(err(&rel).contains("pid: must be an absolute path"), "{}", err(&rel));
}

/// Values read from the captured text land on the right cluster and only the first
/// `circuit_breakers` entry counts; escapes in captured strings are decoded.
#[test]
fn captured_sections_keep_their_indices() {
    let text = with(r#","baton":{"runtime_dir":"\/tmp\/b\u00e9","splice":true,"idle_timeout":0}"#).replace(
        "\"clusters\":[",
        r#""clusters":[{"name":"a","hosts":[{"address":"127.0.0.1:3"}],"circuit_breakers":[{"max_connections":5},{"max_connections":9}]},"#,
    );
    let text = text.replace(
        "{\"name\":\"c\",",
        r#"{"name":"c","health_check":{"service_name":"s\"x","interval":"3s"},"circuit_breakers":[{},{"max_connections":7}],"#,
    );
    let c = parse(text.as_bytes()).unwrap();
    assert_eq!((c.clusters[0].name.as_str(), c.clusters[0].max_connections, c.clusters[0].health), ("a", 5, None));
    assert_eq!(c.clusters[1].max_connections, 0, "only the first entry counts");
    assert_eq!(c.clusters[1].health.map(|h| h.interval_ms), Some(3_000));
    assert_eq!(c.settings.runtime_dir.as_deref(), Some("/tmp/b\u{e9}"));
    assert!(c.settings.splice);
    assert_eq!(c.settings.idle_timeout_ms, 0);
}

/// A key given twice where baton reads the text itself is refused, naming it, rather than
/// read one way here and another by serde.
#[test]
fn a_repeated_captured_key_is_refused() {
    let e = err(&with(r#","baton":{"splice":true,"splice":false}"#));
    assert!(e.contains("this key appears twice in its object; keep one (in `baton.splice`)"), "{e}");
    let e = err(
        &with("").replace("\"name\":\"c\"", r#""name":"c","health_check":{"service_name":"a","service_name":"b"}"#)
    );
    assert!(e.contains("health_check.service_name"), "{e}");
}

#[test]
fn long_strings_with_escapes_load_where_baton_reads_or_skips_them() {
    // a PEM certificate in a section baton skips (1.6 KiB with \n escapes), and an access log
    // format near its limit with an escaped %: serde-json-core decodes both into its scratch
    let pem = "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\\n".repeat(24);
    let fmt = std::format!("{} 100\\\\%", "%duration% ".repeat(40));
    let text = MIN.replace("BATON", "").replace(
        r#""bind_port":true"#,
        &std::format!(
            r#""bind_port":true,"stream_filters":[{{"type":"x","config":{{"cert":"{pem}"}}}}],"access_logs":[{{"log_path":"/var/log/a.log","log_format":"{fmt}"}}]"#
        ),
    );
    let cfg = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let a = cfg.listeners[0].access_log.as_ref().unwrap();
    assert!(a.format().ends_with(" 100\\%") && a.format().len() > 400, "{}", a.format());
    // `/config` writes it back, and a default format out in full; both read back the same
    for cfg in [cfg.clone(), parse(text.replace(&std::format!(r#","log_format":"{fmt}""#), "").as_bytes()).unwrap()] {
        let mut s = std::string::String::new();
        crate::sansio::config::render::write_json(&mut s, &cfg).unwrap();
        assert_eq!(parse(s.as_bytes()).unwrap(), cfg, "{s}");
    }
}
