//! `/metrics` in the Prometheus text format (0.0.4): every line checked against the format's
//! grammar (HELP and TYPE before each family's samples, names, label escaping, values), label
//! values with `"`, `\` and a newline escaped as the format wants (JSON escaping made
//! promtool fail), the content type, `baton_build_info`, the process metrics, and what `/stats`
//! has (per-listener and per-host totals and failures, max_connections, transferred bytes).
//! promtool, Prometheus' own checker, reads the same output (`promtool check metrics`: format
//! and lint), from Debian's `prometheus` package unpacked by tests/tools/promtool.sh.
mod common;
use common::*;
use std::collections::HashSet;
use std::io::{Read, Write};

/// The path of promtool: `BATON_PROMTOOL` (tests/run.sh sets it), else what
/// tests/tools/promtool.sh unpacks.
fn promtool() -> String {
    if let Ok(p) = std::env::var("BATON_PROMTOOL") {
        return p;
    }
    let script = format!("{}/tests/tools/promtool.sh", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash").arg(&script).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `promtool check metrics` on `text`: Ok, or what promtool said.
fn promtool_check(text: &str) -> Result<(), String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// Checks `text` against the exposition format; returns the sample names seen.
fn check_format(text: &str) -> Result<HashSet<String>, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let (mut helped, mut typed, mut samples) = (HashSet::new(), HashSet::new(), HashSet::new());
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            if !name_ok(name) || !helped.insert(name.to_string()) {
                return Err(format!("bad or repeated HELP: {line}"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            let (name, kind) = (p.next().unwrap(), p.next().unwrap_or(""));
            if !name_ok(name) || !["counter", "gauge"].contains(&kind) || !typed.insert(name.to_string()) {
                return Err(format!("bad or repeated TYPE: {line}"));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(format!("a counter's name must end in _total: {line}"));
            }
        } else {
            // name{label="value",...} number
            let (name, rest) = match line.find('{') {
                Some(i) => (&line[..i], &line[i..]),
                None => line.split_at(line.find(' ').ok_or(format!("no value: {line}"))?),
            };
            if !name_ok(name) || !typed.contains(name) {
                return Err(format!("sample without its TYPE first: {line}"));
            }
            let value = if let Some(labels) = rest.strip_prefix('{') {
                let mut chars = labels.chars().peekable();
                loop {
                    let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                    if !name_ok(&key) || chars.next() != Some('"') {
                        return Err(format!("bad label in {line}"));
                    }
                    loop {
                        match chars.next() {
                            Some('\\') => match chars.next() {
                                Some('\\' | '"' | 'n') => {}
                                _ => return Err(format!("bad escape in {line}")),
                            },
                            Some('"') => break,
                            Some('\n') | None => return Err(format!("unterminated label value in {line}")),
                            Some(_) => {}
                        }
                    }
                    match chars.next() {
                        Some(',') => continue,
                        Some('}') => break,
                        _ => return Err(format!("bad label list in {line}")),
                    }
                }
                chars.collect::<String>()
            } else {
                rest.to_string()
            };
            let v = value.strip_prefix(' ').ok_or(format!("no space before the value: {line}"))?;
            v.parse::<f64>().map_err(|_| format!("bad value {v:?}: {line}"))?;
            samples.insert(name.to_string());
        }
    }
    Ok(samples)
}

#[test]
fn metrics_follow_the_text_format_and_carry_what_stats_has() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let mut cfg = Cfg::simple(port, &[be.port, free_port()]);
    // a listener and a cluster whose names need escaping in a label value
    let odd = free_port();
    cfg.listeners.push(("q\\\"uote\\\\back\\nline".into(), odd, "back".into()));
    let b = Baton::start(&cfg);
    for id in 0..3 {
        let data = payload(id, 1000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    }
    let admin = b.admin.unwrap();
    // the raw response, for the content type
    let mut s = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    let names = check_format(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    promtool_check(body).unwrap_or_else(|e| panic!("promtool check metrics: {e}\n{body}"));
    for n in [
        "baton_build_info",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
        "baton_connections_max",
        "baton_client_received_bytes_total",
        "baton_client_sent_bytes_total",
        "baton_transfer_received_bytes_total",
        "baton_draining_generations",
        "baton_listener_connections_total",
        "baton_listener_no_route_total",
        "baton_listener_overflow_total",
        "baton_host_connections_total",
        "baton_host_connect_failures_total",
    ] {
        assert!(names.contains(n), "{n} missing:\n{body}");
    }
    assert!(body.contains("baton_listener_connections_total{listener=\"front\"} 3\n"), "{body}");
    assert!(body.contains("baton_client_received_bytes_total 3000\n"), "{body}");
    assert!(body.contains("listener=\"q\\\"uote\\\\back\\nline\""), "escaped as the format wants:\n{body}");
    assert!(body.contains(&format!("baton_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))), "{body}");
    let fds = body.lines().find_map(|l| l.strip_prefix("process_open_fds ")).unwrap().parse::<u64>().unwrap();
    assert!(fds >= 4 && fds as usize <= open_fds(b.pid()) + 2, "{fds} vs {}", open_fds(b.pid()));
}

#[test]
fn the_checker_refuses_what_promtool_refuses() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\\\"\"} 1\n";
    assert!(check_format(ok).is_ok());
    for bad in [
        "# TYPE a_total counter\na_total{l=\"v\nw\"} 1\n", // a raw newline in a label value
        "# TYPE a_total counter\na_total{l=\"v\\u0041\"} 1\n", // a JSON escape
        "a 1\n",                                           // no TYPE
        "# TYPE a counter\na 1\n",                         // a counter without _total
        "# TYPE a gauge\na x\n",                           // not a number
    ] {
        assert!(check_format(bad).is_err(), "{bad:?}");
    }
    // and promtool agrees on both sides (so its silence on baton's output means something)
    assert_eq!(promtool_check(ok), Ok(()));
    for bad in ["# TYPE a_total counter\na_total{l=\"v\nw\"} 1\n", "# TYPE a gauge\na x\n", "# TYPE a counter\na 1\n"] {
        assert!(promtool_check(bad).is_err(), "promtool accepted {bad:?}");
    }
}
