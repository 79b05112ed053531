//! The admin endpoint: each route, strict refusal of anything else, and limits on slow or
//! oversized requests, without disturbing the proxy path.
mod common;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn routes_answer_with_the_documented_content() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[be.port]));
    let data = payload(1, 12345);
    assert_eq!(echo_roundtrip(port, &data).unwrap(), data);
    let admin = b.admin.unwrap();

    let (st, body) = http_get(admin, "/stats").unwrap();
    assert_eq!(st, 200);
    for key in [
        "\"pid\":",
        "\"version\":\"",
        "\"uptime_s\":",
        "\"generation\":0",
        "\"active\":",
        "\"total\":1",
        "\"refused\":0",
        "\"healthy\":true",
    ] {
        assert!(body.contains(key), "{key} missing in {body}");
    }
    assert_eq!(json_num(&body, "\"bytes\"", "rx"), 12345);
    assert_eq!(json_num(&body, "\"bytes\"", "tx"), 12345);
    assert_eq!(json_num(&body, "\"pid\"", "pid"), b.pid() as u64);

    let (st, body) = http_get(admin, "/metrics").unwrap();
    assert_eq!(st, 200);
    assert!(body.contains("# TYPE baton_connections_total counter\nbaton_connections_total 1\n"), "{body}");
    assert!(
        body.contains(&format!("baton_host_healthy{{cluster=\"back\",host=\"127.0.0.1:{}\"}} 1", be.port)),
        "{body}"
    );

    assert_eq!(http_get(admin, "/health").unwrap(), (200, "ok\n".into()));
    let (st, body) = http_get(admin, "/config").unwrap();
    assert_eq!(st, 200);
    assert!(
        body.contains(&format!("\"address\":\"127.0.0.1:{port}\"")) && body.contains("\"max_connections\":1024"),
        "{body}"
    );
}

#[test]
fn bad_requests_get_4xx() {
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[free_port()]));
    let a = b.admin.unwrap();
    assert_eq!(http_get(a, "/nope").unwrap().0, 404);
    assert_eq!(http_raw(a, b"POST /stats HTTP/1.1\r\n\r\n").unwrap().0, 405);
    assert_eq!(http_raw(a, b"GET /stats SPDY/9\r\n\r\n").unwrap().0, 400);
    assert_eq!(http_raw(a, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").unwrap().0, 400);
    let mut big = b"GET /stats HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(http_raw(a, &big).unwrap().0, 431);
    assert_eq!(http_get(a, "/health").unwrap().0, 200, "admin still answers");
}

#[test]
fn slow_admin_clients_are_cut_off_and_do_not_disturb_proxying() {
    let be = Backend::start(Mode::Echo);
    let port = free_port();
    let b = Baton::start(&Cfg::simple(port, &[be.port]));
    let a = b.admin.unwrap();
    // occupy every admin slot with a client that never finishes its request
    let slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", a)).unwrap();
            s.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    for id in 0..20 {
        let data = payload(id, 10_000);
        assert_eq!(echo_roundtrip(port, &data).unwrap(), data, "proxying disturbed");
    }
    // within the 5 s admin deadline the slow ones are closed and admin answers again
    let t = Instant::now();
    assert!(eventually(Duration::from_secs(8), || http_get(a, "/health").is_some_and(|(s, _)| s == 200)));
    assert!(t.elapsed() < Duration::from_secs(8));
    drop(slow);
}
