//! Unit tests of `conn`.

//! A tiny in-memory transport: each side has an inbox (what the peer sent us), an outbox
//! (what we wrote to it) with a capacity, a FIN flag, and a reset flag.
use super::*;
extern crate std;
use std::vec::Vec;

#[derive(Default)]
struct Peer {
    inbox: Vec<u8>,
    fin: bool,
    reset: bool,
    out: Vec<u8>,
    out_cap: usize,
    got_fin: bool,
}

struct Mem {
    p: [Peer; 2],
    /// Like a pipe behind splice(2): a read stops at this many bytes although more are
    /// queued, so a short read proves nothing.
    read_cap: Option<usize>,
}

impl Transport for Mem {
    fn recv(&mut self, from: Side, buf: &mut [u8]) -> Io {
        let p = &mut self.p[from as usize];
        if p.reset {
            return Io::Reset;
        }
        if p.inbox.is_empty() {
            return if p.fin { Io::Eof } else { Io::WouldBlock };
        }
        let n = buf.len().min(p.inbox.len()).min(self.read_cap.unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&p.inbox[..n]);
        p.inbox.drain(..n);
        Io::Done(n)
    }
    fn send(&mut self, to: Side, buf: &[u8]) -> Io {
        let p = &mut self.p[to as usize];
        if p.reset {
            return Io::Reset;
        }
        let n = buf.len().min(p.out_cap - p.out.len());
        if n == 0 {
            return Io::WouldBlock;
        }
        p.out.extend_from_slice(&buf[..n]);
        Io::Done(n)
    }
    fn shutdown_write(&mut self, to: Side) {
        assert!(!self.p[to as usize].got_fin, "double shutdown");
        self.p[to as usize].got_fin = true;
    }
    fn short_read_drains(&self) -> bool {
        self.read_cap.is_none()
    }
}

fn setup(cap: usize) -> (Conn, Mem) {
    let mut c = Conn::new();
    c.on_connected();
    let mk = || Peer { out_cap: cap, ..Default::default() };
    (c, Mem { p: [mk(), mk()], read_cap: None })
}

/// Pumps as the server does: again while the connection has work left (re-queued).
fn pump_all(c: &mut Conn, m: &mut Mem, a: &mut [u8], b: &mut [u8]) -> Outcome {
    for _ in 0..10_000 {
        let o = c.pump(m, [&mut *a, &mut *b]);
        if o != Outcome::Open || !c.has_work() {
            return o;
        }
    }
    panic!("still has work after 10,000 pumps");
}

fn all_ready(c: &mut Conn) {
    c.on_ready(Side::Client, true, true, true);
    c.on_ready(Side::Upstream, true, true, true);
}

#[test]
fn bytes_pass_both_ways_unchanged() {
    let (mut c, mut m) = setup(1 << 20);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    m.p[0].inbox = data.clone();
    m.p[1].inbox = b"reply".to_vec();
    all_ready(&mut c);
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    assert_eq!(pump_all(&mut c, &mut m, &mut a, &mut b), Outcome::Open);
    assert_eq!(m.p[1].out, data);
    assert_eq!(m.p[0].out, b"reply");
    assert_eq!((c.flows[0].bytes, c.flows[1].bytes), (10_000, 5));
}

#[test]
fn half_close_is_propagated_and_stays_open() {
    let (mut c, mut m) = setup(1 << 20);
    m.p[0].inbox = b"request".to_vec();
    m.p[0].fin = true;
    all_ready(&mut c);
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    assert_eq!(c.pump(&mut m, [&mut a, &mut b]), Outcome::Open);
    assert!(m.p[1].got_fin && !m.p[0].got_fin);
    // the upstream still answers after the client's FIN
    m.p[1].inbox = b"response".to_vec();
    m.p[1].fin = true;
    c.on_ready(Side::Upstream, true, false, true);
    // both directions done: the caller's close sends the client its FIN (no extra shutdown)
    assert_eq!(c.pump(&mut m, [&mut a, &mut b]), Outcome::Done);
    assert_eq!(m.p[0].out, b"response");
    assert!(!m.p[0].got_fin);
}

#[test]
fn a_short_read_without_fin_skips_the_read_that_would_return_eagain() {
    let (mut c, mut m) = setup(1 << 20);
    m.p[0].inbox = b"ping".to_vec();
    c.on_ready(Side::Client, true, true, false);
    c.on_ready(Side::Upstream, false, true, false);
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    c.pump(&mut m, [&mut a, &mut b]);
    assert_eq!(m.p[1].out, b"ping");
    assert!(!c.ready[0].readable, "drained by a short read");
    // with a FIN reported, reading goes on to see the EOF
    m.p[0].inbox = b"last".to_vec();
    m.p[0].fin = true;
    c.on_ready(Side::Client, true, false, true);
    c.pump(&mut m, [&mut a, &mut b]);
    assert!(c.flows[0].eof && c.flows[0].shut && m.p[1].got_fin);
}

#[test]
fn a_transport_whose_short_reads_prove_nothing_is_read_until_eagain() {
    let (mut c, mut m) = setup(1 << 20);
    m.read_cap = Some(10);
    m.p[0].inbox = (0..1000u32).map(|i| i as u8).collect();
    c.on_ready(Side::Client, true, true, false);
    c.on_ready(Side::Upstream, false, true, false);
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    pump_all(&mut c, &mut m, &mut a, &mut b);
    assert_eq!(m.p[1].out.len(), 1000, "no edge comes for bytes already queued");
    assert!(!c.ready[0].readable, "EAGAIN seen");
}

#[test]
fn slow_reader_stops_reading_the_other_side() {
    let (mut c, mut m) = setup(100);
    m.p[0].inbox = std::vec![7u8; 10_000];
    all_ready(&mut c);
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    c.pump(&mut m, [&mut a, &mut b]);
    // the upstream took 100 bytes; the proxy holds at most one buffer (64) more
    assert_eq!(m.p[1].out.len(), 100);
    assert!(10_000 - m.p[0].inbox.len() <= 100 + 64);
    assert!(!c.ready[1].writable && c.ready[0].readable);
    // the reader drains; writable edge; the rest flows
    m.p[1].out_cap = 1 << 20;
    c.on_ready(Side::Upstream, false, true, false);
    pump_all(&mut c, &mut m, &mut a, &mut b);
    assert_eq!(m.p[1].out.len(), 10_000);
}

#[test]
fn reset_on_either_side_resets_the_connection() {
    for side in [0, 1] {
        let (mut c, mut m) = setup(1 << 20);
        m.p[side].reset = true;
        all_ready(&mut c);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        assert_eq!(c.pump(&mut m, [&mut a, &mut b]), Outcome::Reset);
    }
}

#[test]
fn a_connection_exported_mid_stream_continues_elsewhere_without_loss() {
    // a slow upstream leaves bytes pending in the proxy; the client half-closed
    let (mut c, mut m) = setup(100);
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
    m.p[0].inbox = data.clone();
    m.p[0].fin = true;
    all_ready(&mut c);
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    c.pump(&mut m, [&mut a, &mut b]);
    let st = c.export();
    assert!(st[0].pending > 0, "bytes wait in the proxy");
    // the new process copies the pending bytes to the start of its own buffer
    let (mut a2, mut b2) = ([0u8; 64], [0u8; 64]);
    let f = c.flows[0];
    a2[..st[0].pending as usize].copy_from_slice(&a[f.head as usize..f.tail as usize]);
    let mut moved = Conn::import(st);
    assert_eq!(moved.flows[0].bytes, c.flows[0].bytes);
    m.p[1].out_cap = 1 << 20;
    for _ in 0..100 {
        if moved.pump(&mut m, [&mut a2, &mut b2]) != Outcome::Open || m.p[1].got_fin {
            break;
        }
    }
    assert_eq!(m.p[1].out, data, "every byte once, in order");
    assert!(m.p[1].got_fin, "the client's FIN follows the last byte");
    assert_eq!(moved.flows[0].bytes, 1000);
}

/// A stream with far more queued than one turn's budget: one `pump` moves at most
/// READS_PER_PUMP buffers per flow, says it has more work, and the rest follows in later
/// pumps without loss.
#[test]
fn one_pump_moves_at_most_its_budget_and_says_more_is_left() {
    let (mut c, mut m) = setup(1 << 20);
    let data: Vec<u8> = (0..100 * 64).map(|i| i as u8).collect();
    m.p[0].inbox = data.clone();
    all_ready(&mut c);
    let (mut a, mut b) = (vec![0u8; 64], vec![0u8; 64]);
    assert_eq!(c.pump(&mut m, [&mut a, &mut b]), Outcome::Open);
    assert_eq!(m.p[1].out.len(), READS_PER_PUMP as usize * 64, "one pump went past its budget");
    assert!(c.has_work());
    let mut pumps = 1;
    while c.has_work() {
        c.pump(&mut m, [&mut a, &mut b]);
        pumps += 1;
        assert!(pumps < 100);
    }
    assert_eq!(m.p[1].out, data);
    assert_eq!(pumps, 100 / READS_PER_PUMP as usize + 1);
}

#[test]
fn nothing_moves_while_connecting() {
    let mut c = Conn::new();
    let mut m =
        Mem { p: [Peer { inbox: b"x".to_vec(), out_cap: 9, ..Default::default() }, Peer::default()], read_cap: None };
    all_ready(&mut c);
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    assert_eq!(c.pump(&mut m, [&mut a, &mut b]), Outcome::Open);
    assert_eq!(m.p[0].inbox, b"x");
}
