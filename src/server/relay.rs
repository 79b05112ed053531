//! Proxying: readiness events, pumping bytes with a per-wake-up budget, closing, and the
//! timers that bound connects and idle connections.

use super::*;

impl Server {
    pub(super) fn conn_event(&mut self, tok: Token, ev: Event) {
        let idx = tok.index as usize;
        let Some(s) = self.slots.get_mut(idx) else {
            return;
        };
        if !s.used || s.gen != tok.gen {
            return; // a late event for a closed or reused slot
        }
        let side = if tok.side == 0 { Side::Client } else { Side::Upstream };
        if side == Side::Upstream && s.conn.phase == Phase::Connecting {
            if !(ev.writable || ev.readable) {
                return;
            }
            // writable without an error means connected; SO_ERROR is read only to name a failure
            let failed = if ev.err {
                s.fds[1].as_ref().map_or(Some(Errno::EBADF), |fd| net::take_error(fd).or(Some(Errno::ECONNREFUSED)))
            } else {
                None
            };
            match failed {
                None => self.connected(idx),
                Some(e) => {
                    self.slots[idx].fds[1] = None;
                    let (ci, h) = (self.cluster_of(idx), self.slots[idx].host as usize);
                    self.host_failed(ci, h, e);
                    return self.connect_next(idx);
                }
            }
        }
        // an error or hang-up on an open connection (e.g. a client that sent its data and FIN,
        // then reset): the reading side may be finished already and would never look again, so
        // the error is read here and the other side is reset at once
        if ev.err && self.slots[idx].conn.phase == Phase::Open {
            if let Some(e) = self.slots[idx].fds[side as usize].as_ref().and_then(net::take_error) {
                log::debug!("conn {idx}: {side:?} side failed ({}); resetting the other side", e.desc());
                return self.close(idx, true);
            }
        }
        self.slots[idx].conn.on_ready(side, ev.readable, ev.writable, ev.hup);
        self.drive(idx);
    }

    /// Asks epoll for writability of a side exactly while a write to it is blocked.
    pub(super) fn sync_interest(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        if s.conn.phase != Phase::Open {
            return; // while connecting, writability is how the connect reports completion
        }
        for side in [Side::Client, Side::Upstream] {
            let want = s.conn.wants_writable(side);
            if want != s.out[side as usize] {
                if let Some(fd) = &s.fds[side as usize] {
                    let _ = self.poller.want_writable(fd, conn_token(idx, s.gen, side), want);
                }
                s.out[side as usize] = want;
            }
        }
    }

    pub(super) fn drive(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        let (Some(c), Some(u)) = (&s.fds[0], &s.fds[1]) else {
            return;
        };
        // splice mode moves bytes inside the kernel; the arena is one scratch pair whose lengths
        // serve as byte counts
        let base = if self.cfg.settings.splice { 0 } else { idx * 2 * self.buf_size };
        let (b0, b1) = self.bufs[base..base + 2 * self.buf_size].split_at_mut(self.buf_size);
        let outcome = match &s.pipes {
            Some(pipes) => s.conn.pump(&mut SpliceTransport { socks: [c, u], pipes }, [b0, b1]),
            None => s.conn.pump(&mut FdTransport { fds: [c.as_raw_fd(), u.as_raw_fd()] }, [b0, b1]),
        };
        match outcome {
            Outcome::Open => {
                self.sync_interest(idx);
                let s = &mut self.slots[idx];
                if s.conn.has_work() && !s.queued {
                    s.queued = true;
                    self.requeue.push(idx as u32);
                }
            }
            Outcome::Done => self.close(idx, false),
            Outcome::Reset => self.close(idx, true),
        }
    }

    /// Pumps once more every connection that stopped at its budget (those still with work
    /// left queue themselves again, behind the others). No allocation: `requeue` never grows
    /// past its start-up capacity (one entry per slot, guarded by `queued`).
    pub(super) fn run_requeued(&mut self) {
        let n = self.requeue.len();
        for k in 0..n {
            let idx = self.requeue[k] as usize;
            self.slots[idx].queued = false;
            if self.slots[idx].used {
                // whoever holds the slot now: an extra pump finds nothing to do at worst
                self.drive(idx);
            }
        }
        self.requeue.drain(..n);
    }

    /// Closes both sockets (with RST when `reset`) and frees the slot.
    pub(super) fn close(&mut self, idx: usize, reset: bool) {
        if self.access.enabled(self.slots[idx].listener as usize) {
            self.log_closed(idx);
        }
        let s = &mut self.slots[idx];
        for fd in s.fds.iter_mut().filter_map(Option::take) {
            if reset {
                net::reset(fd);
            }
        }
        if let Mode::Draining { .. } = self.mode {
            self.transfer.drained += 1;
        }
        self.totals.rx += s.conn.flows[0].bytes;
        self.totals.tx += s.conn.flows[1].bytes;
        self.free_slot(idx);
        log::debug!("conn {idx}: closed{}", if reset { " with reset" } else { "" });
    }

    /// The access log line of slot `idx`'s connection, which is closing.
    fn log_closed(&mut self, idx: usize) {
        let s = &self.slots[idx];
        let (client, upstream) = (s.fds[0].as_ref(), s.fds[1].as_ref());
        let open = s.conn.phase == Phase::Open;
        let (dl, dr) = (client.and_then(net::local), client.and_then(net::peer));
        let ul = upstream.filter(|_| open).and_then(net::local);
        let cluster = &self.cfg.clusters[s.cluster as usize];
        let e = Entry {
            start_unix_ms: wall_ms().saturating_sub(self.now - s.started),
            duration_ms: self.now - s.started,
            bytes_received: s.conn.flows[0].bytes,
            bytes_sent: s.conn.flows[1].bytes,
            connection_id: (s.id != 0).then_some(s.id),
            downstream_local: dl.as_ref(),
            downstream_remote: dr.as_ref(),
            upstream_local: ul.as_ref(),
            upstream_host: cluster.hosts.get(s.host as usize).map(|h| &h.addr),
            cluster: Some(cluster.name.as_str()),
            failure: (!open).then_some("no upstream host could be reached"),
        };
        let li = s.listener as usize;
        let format = self.cfg.listeners[li].access_log.as_ref().map_or(DEFAULT_FORMAT, |a| a.format());
        self.access.log(li, |w| write_line(w, format, &e));
    }

    /// The access log line of a client closed at accept (no route, circuit breaker).
    pub(super) fn log_refused(&mut self, li: usize, client: &OwnedFd, why: &'static str) {
        if !self.access.enabled(li) {
            return;
        }
        let (dl, dr) = (net::local(client), net::peer(client));
        let e = Entry {
            start_unix_ms: wall_ms(),
            duration_ms: 0,
            bytes_received: 0,
            bytes_sent: 0,
            connection_id: Some(self.totals.accepted),
            downstream_local: dl.as_ref(),
            downstream_remote: dr.as_ref(),
            upstream_local: None,
            upstream_host: None,
            cluster: None,
            failure: Some(why),
        };
        let format = self.cfg.listeners[li].access_log.as_ref().map_or(DEFAULT_FORMAT, |a| a.format());
        self.access.log(li, |w| write_line(w, format, &e));
    }

    /// Frees slot `idx` after its connection has ended here or moved away: drops whatever
    /// descriptors it still holds (a plain close) and takes it out of every gauge.
    pub(super) fn free_slot(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &mut self.slots[idx];
        s.fds = [None, None];
        s.pipes = None;
        if s.conn.phase == Phase::Open && s.host != NO_HOST {
            let hs = &mut self.hosts[ci][s.host as usize];
            hs.active = hs.active.saturating_sub(1);
        }
        s.used = false;
        s.conn = Conn::new();
        let c = &mut self.listener_counters[s.listener as usize];
        c.active = c.active.saturating_sub(1);
        self.cluster_active[ci] = self.cluster_active[ci].saturating_sub(1);
        self.active -= 1;
        self.free.push(idx as u32);
        self.resume |= self.paused;
    }

    // ----- timers -----

    pub(super) fn tick(&mut self) {
        let now = self.now;
        // paused for lack of descriptors or memory: try again each tick, in case the limit was
        // raised or another process freed some (a full table waits for a close instead)
        self.resume |= self.paused;
        for idx in 0..self.slots.len() {
            let s = &mut self.slots[idx];
            if !s.used {
                continue;
            }
            if s.conn.phase == Phase::Connecting {
                if s.deadline <= now {
                    s.fds[1] = None;
                    let (ci, h) = (self.cluster_of(idx), self.slots[idx].host as usize);
                    self.host_failed(ci, h, Errno::ETIMEDOUT);
                    self.connect_next(idx);
                }
            } else if s.conn.touched {
                s.conn.touched = false;
                s.deadline = idle_deadline(now, self.cfg.idle_timeout_ms(s.listener as usize));
            } else if s.deadline <= now {
                self.totals.idle_timeouts += 1;
                log::debug!("conn {idx}: idle timeout");
                self.close(idx, false);
            }
        }
        self.admin.tick(now);
        self.metrics.tick(now);
        self.run_checks();
        if let Mode::Draining { deadline } = self.mode {
            if now >= deadline {
                log::warn!("drain deadline reached: closing {} connections still open", self.active);
                self.close_all();
            }
        }
    }

    /// Closes every connection (used at a hard stop and at the drain deadline).
    pub fn close_all(&mut self) {
        for idx in 0..self.slots.len() {
            if self.slots[idx].used {
                self.close(idx, false);
            }
        }
    }
}
