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
        if let Ok(cfg) = baton::sansio::config::parse(&data) {
            let mut text = String::new();
            baton::sansio::config::render::write_json(&mut text, &cfg).unwrap();
            assert_eq!(baton::sansio::config::parse(text.as_bytes()).unwrap(), cfg, "{name}");
        } else {
            assert!(name.contains("fallback") || name.contains("regressions"), "{name} should be a valid config");
        }
    }
}

/// One seed per handoff message type, in the current wire format. `BATON_WRITE_SEEDS=1`
/// rewrites them after a format change; otherwise the files must match what the code encodes.
#[test]
fn handoff_seeds_match_the_wire_format() {
    use baton::sansio::codec::*;
    use baton::sansio::portable::{ConnState, FlowState};
    let t = |s: &str| text(s);
    let entry = |kind, name: &str, addr: Option<&str>, pid| Entry {
        kind,
        name: t(name),
        addr: addr.map(|a| a.parse().unwrap()),
        pid,
    };
    let mut entries = heapless::Vec::new();
    entries.push(entry(FdKind::Listener, "proxyListener", Some("127.0.0.1:2045"), 0)).unwrap();
    entries.push(entry(FdKind::Admin, "admin", Some("[::1]:34901"), 0)).unwrap();
    entries.push(entry(FdKind::Reconfig, "reconfig.sock", None, 0)).unwrap();
    entries.push(entry(FdKind::Lock, "baton.lock", None, 0)).unwrap();
    entries.push(entry(FdKind::Pidfd, "handing-over", None, 4242)).unwrap();
    let totals = baton::sansio::stats::Totals { accepted: 10, rx: 2048, tx: 4096, generation: 3, ..Default::default() };
    let head = ManifestHead { baton_version: t("0.1.0"), totals, batch: 0, last: true };
    let flow = |pending, eof, shut| FlowState { pending, eof, shut, bytes: 1 << 20 };
    let mut conns = heapless::Vec::new();
    for (k, flows) in [[flow(5, false, false), flow(0, false, false)], [flow(0, true, true), flow(3, false, false)]]
        .into_iter()
        .enumerate()
    {
        let c = ConnState {
            listener: "127.0.0.1:2045".parse().unwrap(),
            cluster: t("clusterName"),
            host: "127.0.0.1:8080".parse().unwrap(),
            flows,
            idle_left_ms: if k == 0 { 600_000 } else { u64::MAX },
        };
        conns.push(c).unwrap();
    }
    let msgs = [
        ("hello", Msg::Hello { pid: 4243, baton_version: t("0.1.0") }),
        ("go", Msg::Go { pid: 4242 }),
        ("busy", Msg::Busy),
        ("refused", Msg::Refused { reason: t("not authorised: run as baton's user or root") }),
        ("ready", Msg::Ready),
        ("manifest", Msg::Manifest { head, entries }),
        ("ack", Msg::Ack { pid: 4243, transfer_version: TRANSFER_VERSION, splice: false }),
        ("abort", Msg::Abort { reason: t("listener \"a\": 127.0.0.1:80 is already in use") }),
        ("conns", Msg::Conns { batch: 0, splice: false, conns }),
        ("taken", Msg::Taken { batch: 0, mask: 0b11 }),
        ("commit", Msg::Commit { batch: 0 }),
        ("done", Msg::Done { moved: 2, kept: 1 }),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/handoff");
    let write = std::env::var_os("BATON_WRITE_SEEDS").is_some();
    let mut buf = [0u8; MAX_FRAME];
    let check = |name: &str, rec: &[u8]| {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, rec).unwrap();
        }
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(rec), "{name}: rerun with BATON_WRITE_SEEDS=1");
    };
    for (name, m) in msgs {
        let n = encode(&m, &mut buf).unwrap();
        check(name, &buf[..n]);
    }
    let n = encode_data(0, 0, b"hello", &mut buf).unwrap();
    check("data", &buf[..n]);
}

/// Re-encodes a decoded record (a DATA record's bytes are the record's tail).
fn reencode(m: &baton::sansio::codec::Msg, rec: &[u8], buf: &mut [u8]) -> usize {
    use baton::sansio::codec::{encode, encode_data, Msg};
    match m {
        Msg::Data { conn, flow, len } => encode_data(*conn, *flow, &rec[rec.len() - *len as usize..], buf).unwrap(),
        _ => encode(m, buf).unwrap(),
    }
}

#[test]
fn handoff_corpus() {
    use baton::sansio::codec::{decode, MAX_FRAME};
    let all = inputs("handoff");
    assert!(all.len() >= 13);
    for (name, data) in all {
        match decode(&data) {
            Ok(m) => {
                let mut buf = [0u8; MAX_FRAME];
                let n = reencode(&m, &data, &mut buf);
                assert_eq!(&buf[..n], &data[..], "{name}");
                assert_eq!(decode(&buf[..n]).unwrap(), m, "{name}");
            }
            Err(e) => assert!(name.contains("regressions"), "seed {name} does not decode: {e}"),
        }
    }
}

#[test]
fn admin_http_corpus() {
    use baton::sansio::http::{parse, Parsed};
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
    use baton::sansio::config::value::{parse_addr, parse_duration_ms, MAX_DURATION_MS};
    for (_, data) in inputs("values") {
        if let Ok(s) = std::str::from_utf8(&data) {
            assert!(parse_duration_ms(s).is_none_or(|ms| ms <= MAX_DURATION_MS));
            let _ = parse_addr(s);
        }
    }
}
