//! The proxied connection as a state machine that never calls a system call (sans-io).
//!
//! A connection has two sides (client, upstream) and two flows (client→upstream and
//! upstream→client). Each flow owns a window `[head, tail)` into a buffer the caller lends on each
//! call, so a `Conn` itself is a few dozen bytes and idle connections cost no buffer memory that
//! was ever touched. The caller performs I/O through `Transport` and feeds readiness from epoll.
//!
//! Invariants: a flow reads from its source only when its window is empty, so a slow writer stops
//! the proxy from reading the other side (backpressure, no growth); `shut` is set once, after the
//! source's EOF and an empty window, and sends exactly one `shutdown(SHUT_WR)`; a connection is
//! finished when both flows are shut.

use crate::sansio::portable::FlowState;

/// One end of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client = 0,
    Upstream = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Upstream,
            Side::Upstream => Side::Client,
        }
    }
}

/// The result of one read or write, as the state machine needs to see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    Done(usize),
    /// Read returned 0 (peer sent FIN).
    Eof,
    WouldBlock,
    /// ECONNRESET, EPIPE or any other hard error: the connection is reset on both sides.
    Reset,
}

/// The I/O the state machine asks for. Implemented over sockets by the server, in memory by tests.
pub trait Transport {
    fn recv(&mut self, from: Side, buf: &mut [u8]) -> Io;
    fn send(&mut self, to: Side, buf: &[u8]) -> Io;
    fn shutdown_write(&mut self, to: Side);
    /// Whether a read that returned less than asked proves the source had nothing more at that
    /// moment (true for `recv` on a TCP socket, which copies everything queued). Not for
    /// splice(2), which also stops when the pipe is full.
    fn short_read_drains(&self) -> bool {
        true
    }
}

/// Bytes read from one side and not yet written to the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub head: u32,
    pub tail: u32,
    /// The source sent FIN.
    pub eof: bool,
    /// FIN was passed on to the destination.
    pub shut: bool,
    /// Bytes moved through this flow.
    pub bytes: u64,
}

impl Flow {
    pub fn pending(&self) -> usize {
        (self.tail - self.head) as usize
    }
}

/// Edge-triggered readiness cache for one socket (epoll reports edges; we remember levels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// epoll reported the peer's FIN or an error: read until EOF or the error, even after a
    /// short read.
    pub hup: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a non-blocking upstream connect to complete.
    Connecting,
    Open,
}

/// What the caller must do after `pump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep the connection; wait for readiness.
    Open,
    /// Both directions finished cleanly: close both sockets.
    Done,
    /// One side reset or failed: reset both sockets (close with SO_LINGER 0).
    Reset,
}

pub use crate::sansio::limits::READS_PER_PUMP;

/// Index of the flow whose source is `side`.
fn flow_from(side: Side) -> usize {
    side as usize
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    pub phase: Phase,
    /// Readiness per side, indexed by `Side as usize`.
    pub ready: [Ready; 2],
    /// `flows[0]`: client→upstream, `flows[1]`: upstream→client.
    pub flows: [Flow; 2],
    /// True while anything moved since the caller last cleared it (drives the idle timer).
    pub touched: bool,
}

impl Conn {
    pub fn new() -> Self {
        // a fresh connected socket has an empty send buffer: writable until a write says EAGAIN
        let fresh = Ready { readable: false, writable: true, hup: false };
        Conn { phase: Phase::Connecting, ready: [fresh; 2], flows: [Flow::default(); 2], touched: false }
    }

    /// Records readiness reported by epoll for one side.
    pub fn on_ready(&mut self, side: Side, readable: bool, writable: bool, hup: bool) {
        let r = &mut self.ready[side as usize];
        r.readable |= readable;
        r.writable |= writable;
        r.hup |= hup;
    }

    /// Whether side `s` has bytes waiting to be written to it while it cannot take them; the
    /// driver then asks epoll for writability (and only then, to spare wake-ups on every ACK).
    pub fn wants_writable(&self, s: Side) -> bool {
        self.flows[s.other() as usize].pending() > 0 && !self.ready[s as usize].writable
    }

    /// The upstream connect completed; data may flow.
    pub fn on_connected(&mut self) {
        self.phase = Phase::Open;
    }

    /// The flows as they leave this process. Only an open connection moves; its pending bytes
    /// are `[head, tail)` of each flow's buffer.
    pub fn export(&self) -> [FlowState; 2] {
        self.flows.map(|f| FlowState { pending: f.tail - f.head, eof: f.eof, shut: f.shut, bytes: f.bytes })
    }

    /// A connection continued from another process: open, its pending bytes at the start of
    /// each flow's buffer, and every side assumed ready (a read or write that finds nothing to
    /// do returns EAGAIN and clears it), since no readiness edge comes for what was already
    /// there before it arrived; `hup` makes it read on to EAGAIN, so a FIN that came while
    /// the connection moved is seen.
    pub fn import(flows: [FlowState; 2]) -> Self {
        let ready = Ready { readable: true, writable: true, hup: true };
        let flows = flows.map(|f| Flow { head: 0, tail: f.pending, eof: f.eof, shut: f.shut, bytes: f.bytes });
        Conn { phase: Phase::Open, ready: [ready; 2], flows, touched: false }
    }

    /// After a move that failed: carry on here, and look at every side again.
    pub fn resume(&mut self) {
        self.ready = [Ready { readable: true, writable: true, hup: true }; 2];
    }

    /// Moves as many bytes as readiness allows in both directions. `bufs[i]` is the buffer of
    /// `flows[i]`; it must be the same buffer on every call for this connection.
    pub fn pump(&mut self, t: &mut impl Transport, bufs: [&mut [u8]; 2]) -> Outcome {
        if self.phase != Phase::Open {
            return Outcome::Open;
        }
        let [b0, b1] = bufs;
        if self.pump_flow(Side::Client, t, b0).is_err() || self.pump_flow(Side::Upstream, t, b1).is_err() {
            return Outcome::Reset;
        }
        if self.flows[0].shut && self.flows[1].shut {
            Outcome::Done
        } else {
            Outcome::Open
        }
    }

    /// Whether a `pump` now would move something: bytes waiting for a writable side, or a
    /// readable side whose flow has room. True after a `pump` that stopped at its budget.
    pub fn has_work(&self) -> bool {
        self.phase == Phase::Open
            && (0..2).any(|fi| {
                let (f, src, dst) = (&self.flows[fi], &self.ready[fi], &self.ready[1 - fi]);
                (f.pending() > 0 && dst.writable) || (f.pending() == 0 && !f.eof && src.readable)
            })
    }

    fn pump_flow(&mut self, src: Side, t: &mut impl Transport, buf: &mut [u8]) -> Result<(), ()> {
        let dst = src.other();
        let fi = flow_from(src);
        let mut reads = 0;
        loop {
            let f = self.flows[fi];
            if f.pending() > 0 {
                if !self.ready[dst as usize].writable {
                    break;
                }
                match t.send(dst, &buf[f.head as usize..f.tail as usize]) {
                    Io::Done(n) => self.consumed(fi, n),
                    Io::WouldBlock => self.ready[dst as usize].writable = false,
                    Io::Eof | Io::Reset => return Err(()),
                }
                continue;
            }
            if f.eof || !self.ready[src as usize].readable || reads == READS_PER_PUMP {
                break;
            }
            match t.recv(src, buf) {
                Io::Done(n) => {
                    reads += 1;
                    self.flows[fi].head = 0;
                    self.flows[fi].tail = n as u32;
                    self.touched = true;
                    // A short read drained the socket; with edge-triggered epoll new data brings
                    // a new event, so skip the read that would only return EAGAIN. Not when a FIN
                    // or error was reported: that needs a read to be seen.
                    if n < buf.len() && !self.ready[src as usize].hup && t.short_read_drains() {
                        self.ready[src as usize].readable = false;
                    }
                }
                Io::Eof => self.flows[fi].eof = true,
                Io::WouldBlock => {
                    // EAGAIN: no FIN or error is pending (either would have been returned)
                    self.ready[src as usize].readable = false;
                    self.ready[src as usize].hup = false;
                }
                Io::Reset => return Err(()),
            }
        }
        let other_done = self.flows[1 - fi].shut;
        let f = &mut self.flows[fi];
        if f.eof && f.pending() == 0 && !f.shut {
            f.shut = true;
            // when the other direction has finished too, the close that follows sends the FIN
            if !other_done {
                t.shutdown_write(dst);
            }
        }
        Ok(())
    }

    fn consumed(&mut self, fi: usize, n: usize) {
        let f = &mut self.flows[fi];
        f.head += n as u32;
        f.bytes += n as u64;
        if f.head == f.tail {
            f.head = 0;
            f.tail = 0;
        }
        self.touched = true;
    }
}

impl Default for Conn {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
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
        let mut m = Mem {
            p: [Peer { inbox: b"x".to_vec(), out_cap: 9, ..Default::default() }, Peer::default()],
            read_cap: None,
        };
        all_ready(&mut c);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        assert_eq!(c.pump(&mut m, [&mut a, &mut b]), Outcome::Open);
        assert_eq!(m.p[0].inbox, b"x");
    }
}
