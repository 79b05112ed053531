//! Detaching and adopting established connections for a hot restart (driven by `transfer`;
//! see docs/hot-restart.md).

use super::*;

/// Why a connection offered by a predecessor stays with it.
pub type Decline = &'static str;

impl Server {
    /// Connections that can move to a successor: established, with both sockets open. Those
    /// still connecting upstream stay and drain.
    pub fn transferable(&self) -> Vec<u32> {
        let open = |s: &Slot| s.used && s.conn.phase == Phase::Open && s.fds[0].is_some() && s.fds[1].is_some();
        (0..self.slots.len() as u32).filter(|&i| open(&self.slots[i as usize])).collect()
    }

    /// Stops touching connection `idx` (removes it from epoll) and describes it. The slot keeps
    /// its descriptors until `release_moved` or `resume`.
    pub fn detach(&mut self, idx: usize) -> ConnState {
        let s = &self.slots[idx];
        for fd in s.fds.iter().flatten() {
            self.poller.delete(fd);
        }
        let l = &self.cfg.listeners[s.listener as usize];
        let c = &self.cfg.clusters[l.cluster];
        let idle_left_ms = if s.conn.active {
            self.cfg.settings.idle_timeout_ms
        } else if s.deadline == u64::MAX {
            u64::MAX
        } else {
            s.deadline.saturating_sub(self.now)
        };
        ConnState {
            listener: l.addr,
            cluster: crate::sansio::codec::text(&c.name),
            // the upstream socket's real peer: a host that has left the cluster is still where
            // the connection goes, and the next successor checks the socket against it
            host: s.fds[1]
                .as_ref()
                .and_then(net::peer_addr)
                .or_else(|| c.hosts.get(s.host as usize).map(|h| h.addr))
                .unwrap_or(l.addr),
            flows: s.conn.export(),
            idle_left_ms,
        }
    }

    /// The descriptors that travel with connection `idx`: client, upstream, and in splice mode
    /// both pipes' read and write ends.
    pub fn conn_fds(&self, idx: usize) -> heapless::Vec<std::os::fd::RawFd, 6> {
        let s = &self.slots[idx];
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

    /// The bytes of `flow` read and not yet written (user-buffer mode; empty in splice mode,
    /// where they stay in the pipe).
    pub fn pending(&self, idx: usize, flow: usize) -> &[u8] {
        if self.cfg.settings.splice {
            return &[];
        }
        let f = &self.slots[idx].conn.flows[flow];
        let base = (idx * 2 + flow) * self.buf_size;
        &self.bufs[base + f.head as usize..base + f.tail as usize]
    }

    /// The successor took connection `idx`: close this process's copies of its descriptors
    /// (a plain close: the sockets live on in the successor) and free the slot.
    pub fn release_moved(&mut self, idx: usize) {
        self.free_slot(idx);
        self.transfer.sent += 1;
    }

    /// A detached connection did not move: register it again and carry on (it drains here).
    pub fn resume(&mut self, idx: usize) {
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
        let splice = self.cfg.settings.splice;
        if fds.len() != crate::sansio::codec::fds_per_conn(splice) {
            return Err("its relay mode (splice) differs from this process's");
        }
        let li = self
            .cfg
            .listeners
            .iter()
            .position(|l| l.addr == st.listener)
            .ok_or("its listener is not in the new config")?;
        let l = &self.cfg.listeners[li];
        let ci = l.cluster;
        if self.cfg.clusters[ci].name.as_str() != st.cluster.as_str() {
            return Err("its listener now routes to another cluster (or its cluster is gone)");
        }
        let host = self.cfg.clusters[ci].hosts.iter().position(|h| h.addr == st.host).map_or(NO_HOST, |h| h as u8);
        // in splice mode too: the bytes stay in the pipe, but the flow's window, which counts
        // them, is at most buffer_size
        if st.flows.iter().any(|f| f.pending as usize > self.buf_size) {
            return Err("it holds more buffered bytes than this process's buffer_size");
        }
        let mut fds = fds.into_iter();
        let (Some(client), Some(upstream)) = (fds.next(), fds.next()) else {
            return Err("descriptors missing");
        };
        let (local, _) = net::verify_tcp_stream(&client)?;
        if local.port() != l.addr.port() || !(l.addr.ip().is_unspecified() || local.ip() == l.addr.ip()) {
            return Err("its client socket is not on the listener's address");
        }
        let (_, peer) = net::verify_tcp_stream(&upstream)?;
        if peer != st.host {
            return Err("its upstream socket is not connected to the announced host");
        }
        let pipes = if splice {
            let (Some(r0), Some(w0), Some(r1), Some(w1)) = (fds.next(), fds.next(), fds.next(), fds.next()) else {
                return Err("pipe descriptors missing");
            };
            for p in [&r0, &w0, &r1, &w1] {
                net::verify_pipe(p)?;
            }
            Some([(r0, w0), (r1, w1)])
        } else {
            None
        };
        let idx = self.free.pop().ok_or("no free connection slot (max_connections)")? as usize;
        let now = self.now;
        let s = &mut self.slots[idx];
        s.gen = s.gen.wrapping_add(1);
        s.used = true;
        s.conn = Conn::import(st.flows);
        s.listener = li as u8;
        s.host = host;
        s.attempts = 0;
        s.tried = 0;
        s.out = [false, false];
        s.deadline = if st.idle_left_ms == u64::MAX { u64::MAX } else { now.saturating_add(st.idle_left_ms) };
        let _ = self.poller.add_read(&client, conn_token(idx, s.gen, Side::Client));
        let _ = self.poller.add_read(&upstream, conn_token(idx, s.gen, Side::Upstream));
        s.fds = [Some(client), Some(upstream)];
        s.pipes = pipes;
        Ok(idx)
    }

    /// Where `Data` records for `flow` of an adopted connection go (user-buffer mode).
    pub fn inbound(&mut self, idx: usize, flow: usize) -> &mut [u8] {
        let base = (idx * 2 + flow) * self.buf_size;
        &mut self.bufs[base..base + self.buf_size]
    }

    /// The predecessor let go of an adopted connection: count it and run it.
    pub fn commit(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &self.slots[idx];
        if s.host != NO_HOST {
            self.hosts[ci][s.host as usize].active += 1;
        }
        self.listener_counters[s.listener as usize].active += 1;
        self.active += 1;
        self.transfer.received += 1;
        self.transfer.received_bytes += s.conn.flows.iter().map(|f| f.pending() as u64).sum::<u64>();
        self.drive(idx);
    }

    /// The transfer of an adopted connection failed before `commit`: forget it untouched (a
    /// plain close of this process's copies; the predecessor still has it).
    pub fn abandon(&mut self, idx: usize) {
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
