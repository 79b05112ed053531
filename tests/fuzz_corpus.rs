//! The fuzz corpora (fuzz/corpus/*) and any crash inputs kept as regressions
//! (fuzz/regressions/<target>/*) run through the fuzz targets' checks on stable, in every test run.
//! The handoff and config seeds must also be valid inputs, so the corpus keeps exercising the
//! accepting paths (and the wire format in docs/hot-restart.md matches the code).
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            out.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

#[test]
fn config_corpus() {
    let all = inputs("config");
    assert!(all.len() >= 5);
    for (name, data) in all {
        if let Ok(cfg) = baton::config::parse(&data) {
            let mut text = String::new();
            baton::config::render::write_json(&mut text, &cfg).unwrap();
            assert_eq!(baton::config::parse(text.as_bytes()).unwrap(), cfg, "{name}");
        } else {
            assert!(name.contains("fallback") || name.contains("regressions"), "{name} should be a valid config");
        }
    }
}

#[test]
fn handoff_corpus() {
    use baton::handoff::codec::{decode, encode, MAX_FRAME};
    let all = inputs("handoff");
    assert!(all.len() >= 8);
    for (name, data) in all {
        match decode(&data) {
            Ok(m) => {
                let mut buf = [0u8; MAX_FRAME];
                let n = encode(&m, &mut buf).unwrap();
                assert_eq!(decode(&buf[..n]).unwrap(), m, "{name}");
            }
            Err(e) => assert!(name.contains("regressions"), "seed {name} does not decode: {e}"),
        }
    }
}

#[test]
fn admin_http_corpus() {
    use baton::http::{parse, Parsed};
    for (name, data) in inputs("admin_http") {
        let mut done = None;
        for end in 0..=data.len() {
            let p = parse(&data[..end]);
            if done.is_some() {
                assert_ne!(p, Parsed::Incomplete, "{name}");
            } else if p != Parsed::Incomplete {
                done = Some(p);
            }
        }
        assert!(done.is_some() || name.contains("regressions"), "{name} never completes");
    }
}

#[test]
fn values_corpus() {
    use baton::config::value::{parse_addr, parse_duration_ms, MAX_DURATION_MS};
    for (_, data) in inputs("values") {
        if let Ok(s) = std::str::from_utf8(&data) {
            assert!(parse_duration_ms(s).is_none_or(|ms| ms <= MAX_DURATION_MS));
            let _ = parse_addr(s);
        }
    }
}
