//! `baton --check` over every MOSN config file that carries a tcp_proxy filter, in MOSN's whole
//! history (`../shared/compat/mosn/history/`, 14 files, unchanged; the project keeps no copies).
//! For each, what baton does: loads it, or refuses it naming the field and the reason. The
//! README's "MOSN compatibility" section explains each refusal.
mod common;
use common::*;

/// File, and `None` (loads) or what the refusal must say.
const CORPUS: &[(&str, Option<&str>)] = &[
    // MOSN's L7 `proxy` filter (dubbo, HTTP): baton is an L4 proxy
    (
        "configs_mosn_config_dubbo__8f72963.json",
        Some("(servers[0].listeners[0].filter_chains[0].filters[0]): filter \"proxy\" is not supported"),
    ),
    (
        "examples_codes_proxy-fallback-example_config__31c28a0.json",
        Some("filters[0]): filter \"proxy\" is not supported"),
    ),
    // the tcpproxy sample with `cluster` (its matcher-less route is never read, as in MOSN)
    ("examples_codes_tcpproxy-sample_config__3ac54fb.json", None),
    ("examples_codes_tcpproxy-sample_config__d1d3e82.json", None),
    // routes in snake_case, which MOSN never reads (so its route matches nothing)
    (
        "examples_codes_tcpproxy-sample_config__e28044a.json",
        Some("routes[0].source_addrs): MOSN does not read this key"),
    ),
    // transparent proxying to the original destination
    (
        "examples_codes_tproxy_tproxy_egress_config__15fdfa7.json",
        Some("(cluster_manager.clusters[0].lb_type): \"LB_ORIGINAL_DST\" is not supported"),
    ),
    ("examples_codes_tproxy_tproxy_egress_config__f4b5ed9.json", Some("\"LB_ORIGINAL_DST\" is not supported")),
    ("examples_codes_tproxy_tproxy_ingress_config__49e5ea5.json", Some("\"LB_ORIGINAL_DST\" is not supported")),
    // unix domain sockets: a unix listener, and `unix:/path` hosts; a bare path MOSN does not resolve
    ("examples_codes_uds-sample_client_config__0cbc50a.json", None),
    ("examples_codes_uds-sample_client_config__bf8a7f2.json", None),
    ("examples_codes_uds-sample_server_config__15a2ab1.json", None),
    ("examples_codes_uds-sample_server_config__8f6de35.json", None),
    ("examples_codes_uds-sample_server_config__b801883.json", Some("(cluster_manager.clusters[0].hosts[0]): \"/tmp/server-proxy.sock\" is a path, which MOSN does not resolve as a host")),
    // routes only, without matchers: MOSN matches nothing and closes every connection
    ("examples_tcpproxy-sample_config__d49a9ee.json", Some("config.routes[0]): can never match")),
];

fn history() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat/mosn/history");
    assert!(d.is_dir(), "{} is missing: the corpus lives beside the checkout, in shared/", d.display());
    d
}

#[test]
fn every_mosn_tcp_proxy_config_loads_or_is_refused_with_its_reason() {
    let dir = history();
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let listed: Vec<&str> = CORPUS.iter().map(|(f, _)| *f).collect();
    assert_eq!(files, listed, "every file of the corpus has its expectation here, and only those");
    for (file, want) in CORPUS {
        let path = dir.join(file);
        let (code, out, err) = run(&["--check", "-c", path.to_str().unwrap()]);
        match want {
            None => assert_eq!((code, out.trim()), (0, "ok"), "{file}: {err}"),
            Some(why) => {
                assert_eq!(code, 2, "{file}: {out} {err}");
                assert!(err.contains(why), "{file}: want {why:?} in {err:?}");
                assert!(out.is_empty(), "{file}: errors go to stderr only: {out:?}");
            }
        }
    }
}
