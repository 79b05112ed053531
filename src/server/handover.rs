//! Detaching and adopting established connections for a hot restart (driven by `transfer`;
//! see docs/hot-restart.md).

use super::*;

/// Why a connection offered by a predecessor stays with it.
pub type Decline = &'static str;

/// Connections lifted out of the event loop for a move (`Server::detach`); `k` is a
/// connection's position in the batch.
pub struct Detached<'a> {
    server: &'a Server,
    idxs: &'a [u32],
}

impl Detached<'_> {
    /// What the successor needs to continue connection `k`'s byte stream.
    pub fn state(&self, k: usize) -> ConnState {
        let srv = self.server;
        let s = &srv.slots[self.idxs[k] as usize];
        let l = &srv.cfg.listeners[s.listener as usize];
        let c = &srv.cfg.clusters[s.cluster as usize];
        let idle_left_ms = if s.conn.touched {
            srv.cfg.idle_timeout_ms(s.listener as usize)
        } else if s.deadline == u64::MAX {
            u64::MAX
        } else {
            s.deadline.saturating_sub(srv.now)
        };
        // the upstream socket's real peer: a host that has left the cluster is still where the
        // connection goes, and the next successor checks the socket against it
        let host = s.fds[1]
            .as_ref()
            .and_then(net::peer)
            .or_else(|| c.hosts.get(s.host as usize).map(|h| h.addr.clone()))
            .unwrap_or_else(|| l.addr.clone());
        ConnState::new(l.addr.clone(), &c.name, host, s.conn.export(), idle_left_ms)
    }

    /// Connection `k`'s descriptors: client, upstream, and in splice mode both pipes' read and
    /// write ends (`portable::fds_per_conn`).
    pub fn fds(&self, k: usize) -> heapless::Vec<RawFd, MAX_FDS_PER_CONN> {
        let s = &self.server.slots[self.idxs[k] as usize];
        let mut v = heapless::Vec::new();
        for fd in s.fds.iter().flatten() {
            let _ = v.push(fd.as_raw_fd());
        }
        for (r, w) in s.pipes.iter().flatten() {
            let _ = v.push(r.as_raw_fd());
            let _ = v.push(w.as_raw_fd());
        }
        v
    }

    /// The bytes of connection `k`'s `flow` read and not yet written (user-buffer mode; empty
    /// in splice mode, where they stay in the pipe that moves with it).
    pub fn pending(&self, k: usize, flow: usize) -> &[u8] {
        let srv = self.server;
        if srv.cfg.settings.splice {
            return &[];
        }
        let idx = self.idxs[k] as usize;
        let f = &srv.slots[idx].conn.flows[flow];
        let base = (idx * 2 + flow) * srv.buf_size;
        &srv.bufs[base + f.head as usize..base + f.tail as usize]
    }
}

impl Server {
    /// Connections that can move to a successor: established, with both sockets open. Those
    /// still connecting upstream stay and drain.
    pub fn transferable(&self) -> Vec<u32> {
        let open = |s: &Slot| s.used && s.conn.phase == Phase::Open && s.fds[0].is_some() && s.fds[1].is_some();
        (0..self.slots.len() as u32).filter(|&i| open(&self.slots[i as usize])).collect()
    }

    /// Stops touching connections `idxs` (out of epoll) and returns what a successor needs of
    /// them: state, descriptors and buffered bytes. Each must then be `settle`d.
    pub fn detach<'a>(&'a mut self, idxs: &'a [u32]) -> Detached<'a> {
        for &i in idxs {
            for fd in self.slots[i as usize].fds.iter().flatten() {
                self.poller.delete(fd);
            }
        }
        Detached { server: self, idxs }
    }

    /// After a move: the successor took connection `idx` (`moved`: this process closes its
    /// copies, a plain close, and frees the slot), or it did not (it is registered again and
    /// drains here).
    pub fn settle(&mut self, idx: usize, moved: bool) {
        if moved {
            self.free_slot(idx);
            self.transfer.sent += 1;
            return;
        }
        let s = &mut self.slots[idx];
        for (side, fd) in s.fds.iter().enumerate() {
            if let Some(fd) = fd {
                let side = if side == 0 { Side::Client } else { Side::Upstream };
                let _ = self.poller.add_read(fd, conn_token(idx, s.gen, side));
            }
        }
        s.out = [false, false];
        s.conn.resume();
        self.drive(idx);
    }

    /// Takes a connection offered by the predecessor into a free slot and registers its
    /// sockets, without touching them: it runs only after `commit`. `fds` are checked with the
    /// kernel against what the state says.
    pub fn adopt(&mut self, st: &ConnState, fds: Vec<OwnedFd>) -> Result<usize, Decline> {
        let (li, ci, host) = self.place(st)?;
        let (socks, pipes) = self.check_fds(st, li, fds)?;
        let idx = self.free.pop().ok_or("no free connection slot (max_connections)")? as usize;
        let now = self.now;
        let s = &mut self.slots[idx];
        s.gen = s.gen.wrapping_add(1);
        s.used = true;
        s.conn = Conn::import(st.flows);
        s.listener = li as u8;
        s.cluster = ci as u8;
        s.host = host;
        s.attempts = 0;
        s.tried = 0;
        s.started = now;
        s.id = 0;
        s.out = [false, false];
        s.deadline = if st.idle_left_ms == u64::MAX { u64::MAX } else { now.saturating_add(st.idle_left_ms) };
        let [client, upstream] = socks;
        let _ = self.poller.add_read(&client, conn_token(idx, s.gen, Side::Client));
        let _ = self.poller.add_read(&upstream, conn_token(idx, s.gen, Side::Upstream));
        s.fds = [Some(client), Some(upstream)];
        s.pipes = pipes;
        Ok(idx)
    }

    /// Where an offered connection belongs in this config: its listener's index, its cluster's
    /// (one the listener still sends to, by its `cluster` or a route) and its host's (`NO_HOST`
    /// when the host has left the cluster; the connection still goes on).
    fn place(&self, st: &ConnState) -> Result<(usize, usize, u8), Decline> {
        let li = self
            .cfg
            .listeners
            .iter()
            .position(|l| l.addr == st.listener)
            .ok_or("its listener is not in the new config")?;
        let ci = self.cfg.listeners[li]
            .clusters()
            .find(|&ci| self.cfg.clusters[ci].name.as_str() == st.cluster.as_str())
            .ok_or("its listener no longer sends to its cluster (or the cluster is gone)")?;
        let c = &self.cfg.clusters[ci];
        // in splice mode too: the bytes stay in the pipe, but the flow's window, which counts
        // them, is at most buffer_size
        if st.flows.iter().any(|f| f.pending as usize > self.buf_size) {
            return Err("it holds more buffered bytes than this process's buffer_size");
        }
        let host = c.hosts.iter().position(|h| h.addr == st.host).map_or(NO_HOST, |h| h as u8);
        Ok((li, ci, host))
    }

    /// Checks an offered connection's descriptors with the kernel against what its state says:
    /// the client socket on listener `li`'s address, the upstream connected to its host, and in
    /// splice mode four pipe ends.
    fn check_fds(
        &self,
        st: &ConnState,
        li: usize,
        fds: Vec<OwnedFd>,
    ) -> Result<([OwnedFd; 2], Option<[net::Pipe; 2]>), Decline> {
        let splice = self.cfg.settings.splice;
        if fds.len() != fds_per_conn(splice) {
            return Err("its relay mode (splice) differs from this process's");
        }
        let l = &self.cfg.listeners[li];
        let mut fds = fds.into_iter();
        let (Some(client), Some(upstream)) = (fds.next(), fds.next()) else {
            return Err("descriptors missing");
        };
        let on_listener = match (net::verify_stream(&client)?.0, &l.addr) {
            (Some(Addr::Ip(local)), Addr::Ip(la)) => {
                local.port() == la.port() && (la.ip().is_unspecified() || local.ip() == la.ip())
            }
            (Some(local @ Addr::Unix(_)), la @ Addr::Unix(_)) => local == *la,
            _ => false,
        };
        if !on_listener {
            return Err("its client socket is not on the listener's address");
        }
        if net::verify_stream(&upstream)?.1.as_ref() != Some(&st.host) {
            return Err("its upstream socket is not connected to the announced host");
        }
        if !splice {
            return Ok(([client, upstream], None));
        }
        let (Some(r0), Some(w0), Some(r1), Some(w1)) = (fds.next(), fds.next(), fds.next(), fds.next()) else {
            return Err("pipe descriptors missing");
        };
        for p in [&r0, &w0, &r1, &w1] {
            net::verify_pipe(p)?;
        }
        Ok(([client, upstream], Some([(r0, w0), (r1, w1)])))
    }

    /// Where `Data` records for `flow` of an adopted connection go (user-buffer mode).
    pub fn inbound(&mut self, idx: usize, flow: usize) -> &mut [u8] {
        let base = (idx * 2 + flow) * self.buf_size;
        &mut self.bufs[base..base + self.buf_size]
    }

    /// The predecessor let go of an adopted connection (`committed`): count it and run it.
    /// Otherwise the transfer failed before COMMIT: forget it untouched (a plain close of this
    /// process's copies; the predecessor still has it).
    pub fn settle_adopted(&mut self, idx: usize, committed: bool) {
        if committed {
            self.commit(idx)
        } else {
            self.abandon(idx)
        }
    }

    fn commit(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &self.slots[idx];
        if s.host != NO_HOST {
            self.hosts[ci][s.host as usize].active += 1;
        }
        self.listener_counters[s.listener as usize].active += 1;
        self.cluster_active[ci] += 1;
        self.active += 1;
        self.transfer.received += 1;
        self.transfer.received_bytes += s.conn.flows.iter().map(|f| f.pending() as u64).sum::<u64>();
        self.drive(idx);
    }

    fn abandon(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        for fd in s.fds.iter().flatten() {
            self.poller.delete(fd);
        }
        s.fds = [None, None];
        s.pipes = None;
        s.used = false;
        s.conn = Conn::new();
        self.free.push(idx as u32);
    }
}
