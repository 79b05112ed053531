//! Unit tests of `json`.

use super::*;

fn err(s: &str) -> JsonError {
    check(s.as_bytes()).unwrap_err()
}

#[test]
fn accepts_valid_and_unknown_keys() {
    check(br#"{"servers":[{"listeners":[],"routers":[{"x":[1,2,{"y":null}]}]}],"pprof":{"debug":true}}"#).unwrap();
    check(b"  {}  ").unwrap();
    check(br#"{"a":"\u00e9\n","b":-1.5e3}"#).unwrap();
}

#[test]
fn syntax_errors_have_positions() {
    let e = err("{\n  \"servers\": [\n  }");
    assert_eq!((e.line, e.col), (3, 3));
    assert_eq!(err("{\"a\" 1}").what, "expected `:` after the key");
    assert_eq!(err("{\"a\":1,}").what, "expected a key in double quotes");
    assert_eq!(err("{").what, "expected a key in double quotes");
    assert_eq!(err("{\"a\":\"x").what, "the file ends inside a string");
    assert_eq!(err("{} x").what, "unexpected text after the top-level object");
    assert_eq!(err("[]").expected, Some("an object"));
    assert!(err("{\"a\":01.}").what.starts_with("invalid number"));
}

#[test]
fn type_errors_name_the_path() {
    let e = err(r#"{"servers":[{"listeners":[{"name":"a"},{"address":8080}]}]}"#);
    assert_eq!(e.path.as_str(), "servers[0].listeners[1].address");
    assert_eq!(e.expected, Some("a string"));
    assert_eq!(e.what, "a number");
    let e = err(r#"{"baton":{"max_connections":-5}}"#);
    assert_eq!(e.path.as_str(), "baton.max_connections");
    assert_eq!(e.what, "a negative number");
    let e = err(r#"{"baton":{"max_connections":1.5}}"#);
    assert_eq!(e.what, "a fractional number");
    assert!(e.to_string().contains("`baton.max_connections` must be a non-negative integer"));
}

#[test]
fn depth_is_bounded() {
    let mut s = [b'['; 200];
    s[0] = b'{';
    let e = check(&s).unwrap_err();
    assert!(e.what.starts_with("expected a key"));
    let mut deep = heapless::Vec::<u8, 512>::new();
    deep.extend_from_slice(b"{\"x\":").unwrap();
    for _ in 0..100 {
        deep.push(b'[').unwrap();
    }
    assert_eq!(check(&deep).unwrap_err().what, "nesting deeper than 32 levels");
}

/// Unknown keys are collected (for warnings at start), near misses of known keys are named,
/// MOSN settings baton ignores knowingly are told apart, and an unknown key in `"baton"` is an
/// error that suggests the key meant.
#[test]
fn unknown_keys_are_noted_named_and_refused_in_baton() {
    let text = br#"{"servers":[{"listeners":[{"name":"l","stream_filters":[],"filter_chains":[]}]}],
        "cluster_manager":{"clusters":[{"name":"c","hosts":[{"address":"127.0.0.1:1","weigth":2}]}]},"pprof":{}}"#;
    let u = check(text).unwrap();
    let paths: std::vec::Vec<&str> = u.paths.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        paths,
        ["servers[0].listeners[0].stream_filters", "cluster_manager.clusters[0].hosts[0].weigth", "pprof"]
    );
    assert_eq!(describe_unknown(paths[0]), UnknownKey::IgnoredMosn, "a MOSN setting baton ignores knowingly");
    assert_eq!(describe_unknown(paths[1]), UnknownKey::NearMiss("weight"));
    assert_eq!(describe_unknown(paths[2]), UnknownKey::IgnoredMosn);
    assert_eq!(describe_unknown("servers[0].frobnicate"), UnknownKey::Unknown);
    let e = check(br#"{"baton":{"idle_timout":"1m"}}"#).unwrap_err();
    let msg = std::format!("{e}");
    assert!(
        msg.contains("`baton.idle_timout` is not a baton setting") && msg.contains("did you mean `idle_timeout`?"),
        "{msg}"
    );
}
