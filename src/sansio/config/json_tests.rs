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
