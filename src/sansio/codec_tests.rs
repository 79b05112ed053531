//! Unit tests of `codec`.

use super::*;

fn text(s: &str) -> Text {
    let mut t = Text::new();
    t.push_str(s).unwrap();
    t
}

/// A unix socket path of the greatest length (`UNIX_PATH_LEN`), as `Addr`'s text form.
fn long_unix() -> std::string::String {
    std::format!("unix:/{}", "p".repeat(crate::sansio::limits::UNIX_PATH_LEN - 1))
}

extern crate std;

fn manifest(n: usize) -> Msg {
    let mut entries = Vec::new();
    let unix = long_unix();
    for k in 0..n {
        let addr = match k % 3 {
            0 => "127.0.0.1:2045",
            1 => "[::1]:80",
            _ => unix.as_str(),
        };
        entries
            .push(Entry {
                kind: FdKind::Listener,
                name: text("proxyListener"),
                addr: Some(addr.parse().unwrap()),
                pid: 0,
            })
            .unwrap();
    }
    let totals =
        Totals { accepted: 1, refused: 2, rx: 3, tx: 4, upstream_failures: 5, idle_timeouts: 6, generation: 7 };
    Msg::Manifest { head: ManifestHead { baton_version: text("0.1.0"), totals, batch: 3, last: true }, entries }
}

fn conns(n: usize, splice: bool) -> Msg {
    let mut conns = Vec::new();
    for k in 0..n {
        let flows = [
            FlowState { pending: k as u32, eof: k % 3 == 0, shut: false, bytes: 1 << 40 },
            FlowState { pending: 0, eof: true, shut: k % 2 == 0, bytes: 7 },
        ];
        let c = ConnState {
            listener: if k % 2 == 0 { "127.0.0.1:2045".parse().unwrap() } else { long_unix().parse().unwrap() },
            cluster: text("clusterName"),
            host: if k % 3 == 0 { "[::1]:8080".parse().unwrap() } else { long_unix().parse().unwrap() },
            flows,
            idle_left_ms: if k % 2 == 0 { u64::MAX } else { 1234 },
        };
        conns.push(c).unwrap();
    }
    Msg::Conns { batch: 7, splice, conns }
}

/// `n` hosts, the longest names and addresses a record can carry.
fn health(n: usize) -> Msg {
    let mut hosts = Vec::new();
    for k in 0..n {
        let h = HostHealth {
            cluster: text(&"c".repeat(TEXT_LEN)),
            host: if k % 2 == 0 { long_unix().parse().unwrap() } else { "[::1]:8080".parse().unwrap() },
            check_down: k % 3 == 0,
            checks_passed: k as u8,
            checks_failed: 255 - k as u8,
            passive_left_ms: k as u64 * 1000,
            consecutive: 3,
        };
        hosts.push(h).unwrap();
    }
    Msg::Health { hosts }
}

#[test]
fn data_records_carry_their_bytes_and_check_the_length() {
    let mut buf = [0u8; MAX_FRAME];
    let bytes = [0xA5u8; MAX_DATA];
    let n = encode_data(3, 1, &bytes, &mut buf).unwrap();
    assert_eq!(n, MAX_FRAME);
    assert_eq!(decode(&buf[..n]).unwrap(), Msg::Data { conn: 3, flow: 1, len: MAX_DATA as u16 });
    assert_eq!(&buf[n - MAX_DATA..n], &bytes[..]);
    assert_eq!(encode_data(0, 0, &[0u8; MAX_DATA + 1], &mut buf), Err(CodecError::Overflow));
    // a length field larger than the bytes present, or a flow index out of range
    let n = encode_data(0, 0, b"abc", &mut buf).unwrap();
    let mut v = buf[..n].to_vec_in_test();
    v[HEADER_LEN + 2] = 4;
    assert_eq!(decode(&v), Err(CodecError::BadData));
    let mut v = buf[..n].to_vec_in_test();
    v[HEADER_LEN + 1] = 2;
    assert_eq!(decode(&v), Err(CodecError::BadData));
}

#[test]
fn a_conns_batch_with_more_descriptors_than_a_record_holds_is_refused() {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(&conns(MAX_CONNS_PER_BATCH, true), &mut buf).unwrap();
    assert_eq!(decode(&buf[..n]), Err(CodecError::TooMany));
    // a flow marked shut with bytes still pending is inconsistent
    let mut m = conns(1, false);
    if let Msg::Conns { conns, .. } = &mut m {
        conns[0].flows[1] = FlowState { pending: 5, eof: true, shut: true, bytes: 0 };
    }
    let n = encode(&m, &mut buf).unwrap();
    assert_eq!(decode(&buf[..n]), Err(CodecError::BadData));
}

#[test]
fn every_message_round_trips() {
    let msgs = [
        Msg::Hello { pid: 42, baton_version: text("0.1.0") },
        Msg::Go { pid: 7 },
        Msg::Busy,
        Msg::Refused { reason: text("no") },
        Msg::Ready,
        manifest(0),
        manifest(MAX_FDS_PER_MSG),
        Msg::Ack { pid: 9, transfer_version: TRANSFER_VERSION, splice: true },
        conns(0, false),
        conns(MAX_CONNS_PER_BATCH, false),
        conns(MAX_FDS_PER_MSG / fds_per_conn(true), true),
        Msg::Taken { batch: 2, mask: u64::MAX >> 1 },
        Msg::Commit { batch: 65_535 },
        Msg::Done { moved: 1000, kept: 3 },
        Msg::Abort { reason: text("port taken") },
        health(0),
        health(MAX_HEALTH_PER_MSG),
        Msg::Control { op: Control::Status },
        Msg::Control { op: Control::StatusJson },
        Msg::Control { op: Control::Reload },
        Msg::Control { op: Control::Stop },
        Msg::Control { op: Control::StopNow },
        Msg::History { events: Vec::new() },
        Msg::History {
            events: (0..MAX_HISTORY as u64)
                .map(|k| RestartEvent { unix_s: 1_765_000_000 + k, ok: k % 2 == 0, text: text(&"x".repeat(TEXT_LEN)) })
                .collect(),
        },
    ];
    let mut buf = [0u8; MAX_FRAME];
    for m in msgs {
        let n = encode(&m, &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap(), m);
    }
}

#[test]
fn malformed_records_are_refused_not_panicked_on() {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(&manifest(3), &mut buf).unwrap();
    let good = &buf[..n];
    assert_eq!(decode(&good[..5]), Err(CodecError::Short));
    let mut bad = [0u8; 64];
    bad[..8].copy_from_slice(b"XXXX\x01\x01\x00\x00");
    assert_eq!(decode(&bad[..8]), Err(CodecError::BadMagic));
    let mut v = good.to_vec_in_test();
    v[4] = PROTO_VERSION + 1;
    assert_eq!(decode(&v), Err(CodecError::Version(PROTO_VERSION + 1)));
    // REFUSED and BUSY read the same in every version
    let mut r = [0u8; MAX_FRAME];
    let rn = encode(&Msg::Refused { reason: text("versions differ") }, &mut r).unwrap();
    r[4] = PROTO_VERSION + 7;
    assert_eq!(decode(&r[..rn]), Ok(Msg::Refused { reason: text("versions differ") }));
    v[4] = PROTO_VERSION;
    v[5] = 99;
    assert_eq!(decode(&v), Err(CodecError::UnknownType(99)));
    // every truncation is an error, never a panic
    for cut in 0..n {
        assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    // a length field that lies
    let mut v = good.to_vec_in_test();
    v[6] = v[6].wrapping_add(1);
    assert_eq!(decode(&v), Err(CodecError::LengthMismatch));
    // corrupt every byte in turn: decode returns something, never panics
    for k in HEADER_LEN..n {
        let mut v = good.to_vec_in_test();
        v[k] ^= 0xff;
        let _ = decode(&v);
    }
    // the same for a HEALTH record (unix paths, flags, counts)
    let hn = encode(&health(3), &mut buf).unwrap();
    let h = buf[..hn].to_vec_in_test();
    for cut in 0..hn {
        assert!(decode(&h[..cut]).is_err(), "health cut at {cut}");
    }
    for k in HEADER_LEN..hn {
        let mut v = h.clone();
        v[k] ^= 0xff;
        let _ = decode(&v);
    }
    // more hosts than a record may hold, and a check flag that is neither 0 nor 1
    let mut v = h.clone();
    v[HEADER_LEN] = MAX_HEALTH_PER_MSG as u8 + 1;
    assert_eq!(decode(&v), Err(CodecError::TooMany));
    let flag_at = HEADER_LEN + 1 + 1 + TEXT_LEN + 1 + 1 + (crate::sansio::limits::UNIX_PATH_LEN);
    let mut v = h.clone();
    assert!(v[flag_at] <= 1, "the check_down flag is where this test thinks");
    v[flag_at] = 2;
    assert!(decode(&v).is_err());
    // a HISTORY record: every truncation refused, more events than it may hold refused
    let ev = RestartEvent { unix_s: 1, ok: true, text: text("pid 2 took over") };
    let hn = encode(&Msg::History { events: [ev.clone(), ev].into_iter().collect() }, &mut buf).unwrap();
    let h = buf[..hn].to_vec_in_test();
    for cut in 0..hn {
        assert!(decode(&h[..cut]).is_err(), "history cut at {cut}");
    }
    let mut v = h.clone();
    v[HEADER_LEN] = MAX_HISTORY as u8 + 1;
    assert_eq!(decode(&v), Err(CodecError::TooMany));
    let mut v = h.clone();
    v[HEADER_LEN + 1 + 8] = 2; // the ok flag
    assert!(decode(&v).is_err());
    // a control request this baton does not know is named, not guessed at
    let cn = encode(&Msg::Control { op: Control::Reload }, &mut buf).unwrap();
    let mut v = buf[..cn].to_vec_in_test();
    v[HEADER_LEN] = 9;
    assert_eq!(decode(&v), Err(CodecError::UnknownControl(9)));
    for cut in 0..cn {
        assert!(decode(&buf[..cut]).is_err(), "control cut at {cut}");
    }
}

trait ToVecInTest {
    fn to_vec_in_test(&self) -> heapless::Vec<u8, MAX_FRAME>;
}
impl ToVecInTest for [u8] {
    fn to_vec_in_test(&self) -> heapless::Vec<u8, MAX_FRAME> {
        heapless::Vec::from_slice(self).unwrap()
    }
}
