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
#[path = "conn_tests.rs"]
mod tests;
