//! Live connection transfer: right after the listener ACK, the old process moves its established
//! connections to the new one over the same `listen.sock` connection (docs/hot-restart.md,
//! "Connection transfer"). Per batch:
//!
//! ```text
//! old: detach (out of epoll) -> CONNS (state + descriptors) -> DATA* (buffered bytes)
//! new: adopt into free slots, register, touch nothing   -> TAKEN (bitmask)
//! old: close its copies of the taken ones, resume the rest -> COMMIT
//! new: run the taken ones
//! ```
//!
//! A connection runs in exactly one process at any time: the old process stops touching it
//! before it leaves, the new one starts only at COMMIT, which the old process sends only after
//! it has let go. Whatever arrives on the sockets meanwhile waits in the kernel's buffers, so no
//! byte is lost or doubled. Any failure (timeout, a dead or misbehaving peer) before COMMIT
//! leaves the batch with the old process, which resumes and drains it; the new process forgets
//! its untouched copies. Both sides run this synchronously, every wait bounded by
//! `handoff_timeout`; it is not on the data path, so it may allocate.

use std::os::fd::{OwnedFd, RawFd};
use std::time::Instant;

use crate::restart::channel::{self, HandoffError};
use crate::sansio::codec::{Msg, MAX_CONNS_PER_BATCH, MAX_DATA, MAX_FDS_PER_MSG, MAX_FRAME};
use crate::sansio::portable::{fds_per_conn, ConnState};
use crate::server::Server;

/// The old process's account of a transfer.
pub struct Sent {
    pub moved: u32,
    /// Connections that stay here and drain.
    pub kept: u32,
    pub elapsed_ms: f64,
    /// Why the transfer stopped early, if it did.
    pub error: Option<HandoffError>,
}

/// Old side: moves every established connection it can, in batches. Returns when all are
/// moved, or at the first failure (the batch in flight and the rest stay here).
pub fn send(chan: &OwnedFd, server: &mut Server, timeout_ms: u64) -> Sent {
    let t0 = Instant::now();
    let candidates = server.transferable();
    let per_batch = (MAX_FDS_PER_MSG / fds_per_conn(server.cfg().settings.splice)).min(MAX_CONNS_PER_BATCH);
    let mut moved = 0;
    let mut error = None;
    for (b, chunk) in candidates.chunks(per_batch).enumerate() {
        match send_batch(chan, server, b as u16, chunk, timeout_ms) {
            Ok(m) => moved += m,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let kept = server.active();
    if error.is_none() {
        if let Err(e) = channel::send_wait(chan, &Msg::Done { moved, kept }, &[], timeout_ms) {
            error = Some(e);
        }
    }
    Sent { moved, kept, elapsed_ms: t0.elapsed().as_secs_f64() * 1e3, error }
}

fn send_batch(
    chan: &OwnedFd,
    server: &mut Server,
    batch: u16,
    idxs: &[u32],
    timeout_ms: u64,
) -> Result<u32, HandoffError> {
    let splice = server.cfg().settings.splice;
    let d = server.detach(idxs);
    let mut conns = heapless::Vec::new();
    let mut fds: heapless::Vec<RawFd, MAX_FDS_PER_MSG> = heapless::Vec::new();
    for k in 0..idxs.len() {
        let _ = conns.push(d.state(k));
        let _ = fds.extend_from_slice(&d.fds(k));
    }
    let offer = || -> Result<u64, HandoffError> {
        channel::send_wait(chan, &Msg::Conns { batch, splice, conns }, &fds, timeout_ms)?;
        for k in 0..idxs.len() {
            for flow in 0..2 {
                for part in d.pending(k, flow).chunks(MAX_DATA) {
                    channel::send_data(chan, k as u8, flow as u8, part, timeout_ms)?;
                }
            }
        }
        crate::fault::point(crate::fault::OLD_MID_TRANSFER);
        let mask = match channel::recv_wait(chan, timeout_ms, "the new process to take the connections")?.0 {
            Msg::Taken { batch: b, mask } if b == batch => mask,
            _ => return Err(HandoffError::Unexpected("expected TAKEN for this batch")),
        };
        channel::send_wait(chan, &Msg::Commit { batch }, &[], timeout_ms)?;
        Ok(mask)
    };
    let result = offer();
    // on an error nothing moved: every connection of the batch resumes here
    let mask = *result.as_ref().unwrap_or(&0);
    for (k, &i) in idxs.iter().enumerate() {
        server.settle(i as usize, mask & (1 << k) != 0);
    }
    result.map(|m| m.count_ones())
}

/// The new process's account of a transfer.
#[derive(Default)]
pub struct Received {
    pub moved: u32,
    pub declined: u32,
    /// What the old process reported keeping (`DONE`); unknown if it never said.
    pub kept_by_old: Option<u32>,
    pub elapsed_ms: f64,
}

/// New side: takes what the old process offers until DONE or until it closes the connection
/// (it has nothing to move, or does not move connections). An error ends the transfer; what
/// was committed before it runs here, the rest stays with the old process.
pub fn receive(chan: &OwnedFd, server: &mut Server, timeout_ms: u64) -> Result<Received, (Received, HandoffError)> {
    let t0 = Instant::now();
    let mut r = Received::default();
    let mut buf = [0u8; MAX_FRAME];
    let mut expect = 0u16;
    loop {
        let got = channel::recv_wait_into(chan, &mut buf, timeout_ms, "the old process's connections");
        let (m, fds, _) = match got {
            Ok(x) => x,
            Err(HandoffError::Closed) => break,
            Err(e) => return Err(finish(r, t0, e)),
        };
        match m {
            Msg::Conns { batch, splice, conns } if batch == expect => {
                expect = expect.wrapping_add(1);
                if let Err(e) = receive_batch(chan, server, &mut buf, batch, splice, &conns, fds, timeout_ms, &mut r) {
                    return Err(finish(r, t0, e));
                }
            }
            Msg::Done { moved, kept } => {
                if moved != r.moved {
                    log::warn!("hot restart: the old process counts {moved} moved connections, this one {}", r.moved);
                }
                r.kept_by_old = Some(kept);
                break;
            }
            _ => return Err(finish(r, t0, HandoffError::Unexpected("expected a batch of connections or DONE"))),
        }
    }
    r.elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(r)
}

fn finish(mut r: Received, t0: Instant, e: HandoffError) -> (Received, HandoffError) {
    r.elapsed_ms = t0.elapsed().as_secs_f64() * 1e3;
    (r, e)
}

#[allow(clippy::too_many_arguments)]
fn receive_batch(
    chan: &OwnedFd,
    server: &mut Server,
    buf: &mut [u8; MAX_FRAME],
    batch: u16,
    splice: bool,
    conns: &[ConnState],
    fds: Vec<OwnedFd>,
    timeout_ms: u64,
    r: &mut Received,
) -> Result<(), HandoffError> {
    let adopted = adopt_batch(server, splice, conns, fds, r);
    let mut take = || -> Result<(), HandoffError> {
        if !splice {
            receive_data(chan, server, buf, conns, &adopted, timeout_ms)?;
        }
        crate::fault::point(crate::fault::NEW_MID_TRANSFER);
        let mask = adopted.iter().enumerate().filter(|(_, a)| a.is_some()).fold(0u64, |m, (k, _)| m | 1 << k);
        channel::send_wait(chan, &Msg::Taken { batch, mask }, &[], timeout_ms)?;
        match channel::recv_wait(chan, timeout_ms, "the old process's COMMIT")?.0 {
            Msg::Commit { batch: b } if b == batch => Ok(()),
            _ => Err(HandoffError::Unexpected("expected COMMIT for this batch")),
        }
    };
    let result = take();
    for idx in adopted.iter().flatten() {
        server.settle_adopted(*idx, result.is_ok());
        r.moved += result.is_ok() as u32;
    }
    result
}

/// Adopts what it can of a batch into free slots (`None`: declined, it stays with the old
/// process; counted in `r`).
fn adopt_batch(
    server: &mut Server,
    splice: bool,
    conns: &[ConnState],
    fds: Vec<OwnedFd>,
    r: &mut Received,
) -> heapless::Vec<Option<usize>, MAX_CONNS_PER_BATCH> {
    let per = fds_per_conn(splice);
    let mut fds = fds.into_iter();
    let mut adopted: heapless::Vec<Option<usize>, MAX_CONNS_PER_BATCH> = heapless::Vec::new();
    for c in conns {
        let own: Vec<OwnedFd> = fds.by_ref().take(per).collect();
        let slot = match server.adopt(c, own) {
            Ok(i) => Some(i),
            Err(why) => {
                // one line per batch at warn: a whole table declined must not flood the log
                if adopted.iter().all(Option::is_some) {
                    log::warn!("hot restart: a connection on {} stays with the old process: {why}", c.listener);
                } else {
                    log::debug!("hot restart: a connection on {} stays with the old process: {why}", c.listener);
                }
                r.declined += 1;
                None
            }
        };
        let _ = adopted.push(slot);
    }
    adopted
}

/// Reads the batch's DATA records into the adopted connections' buffers (declined ones'
/// bytes are read and dropped: they stay with the old process, which still has them).
fn receive_data(
    chan: &OwnedFd,
    server: &mut Server,
    buf: &mut [u8; MAX_FRAME],
    conns: &[ConnState],
    adopted: &[Option<usize>],
    timeout_ms: u64,
) -> Result<(), HandoffError> {
    let mut got = [[0u32; 2]; MAX_CONNS_PER_BATCH];
    let mut left: u64 = conns.iter().flat_map(|c| c.flows.iter()).map(|f| f.pending as u64).sum();
    while left > 0 {
        let (m, _, n) = channel::recv_wait_into(chan, buf, timeout_ms, "the old process's buffered bytes")?;
        let Msg::Data { conn, flow, len } = m else {
            return Err(HandoffError::Unexpected("expected buffered bytes (DATA)"));
        };
        let (k, f, len) = (conn as usize, flow as usize, len as u32);
        let Some(c) = conns.get(k) else {
            return Err(HandoffError::Unexpected("DATA for a connection not in the batch"));
        };
        let at = got[k][f];
        // in u64: a declined connection may announce up to u32::MAX bytes
        if at as u64 + len as u64 > c.flows[f].pending as u64 {
            return Err(HandoffError::Unexpected("more DATA than the connection announced"));
        }
        if let Some(idx) = adopted[k] {
            let bytes = &buf[n - len as usize..n];
            server.inbound(idx, f)[at as usize..(at + len) as usize].copy_from_slice(bytes);
        }
        got[k][f] = at + len;
        left -= len as u64;
    }
    Ok(())
}
