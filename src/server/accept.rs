//! Accepting clients: pausing when the table is full or descriptors run out, and resuming.

use super::*;

/// Why accepting stops for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pause {
    /// Every slot of `max_connections` is taken: new clients wait in the backlog until one frees.
    TableFull,
    /// Out of descriptors or memory (accept, pipe2 or the upstream socket failed): retried
    /// every tick.
    Starved(Errno),
}

impl Server {
    pub(super) fn accept_from(&mut self, li: usize) {
        if self.mode != Mode::Serving {
            return;
        }
        while let Some(&idx) = self.free.last() {
            if self.listeners[li].is_none() {
                return;
            }
            // splice mode: the connection's pipes come first, so a failed pipe2 (out of
            // descriptors or pipe memory) leaves the client waiting in the backlog, as EMFILE does
            if self.cfg.settings.splice && self.spare_pipes.is_none() {
                match (net::pipe(self.pipe_size), net::pipe(self.pipe_size)) {
                    (Ok(a), Ok(b)) => self.spare_pipes = Some([a, b]),
                    (Err(e), _) | (_, Err(e)) => return self.pause(Pause::Starved(e)),
                }
            }
            let Some(fd) = self.listeners[li].as_ref() else {
                return;
            };
            match net::accept(fd) {
                Ok(Some(client)) => self.open(li, idx as usize, client),
                Ok(None) => return,
                Err(e @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    self.pause(Pause::Starved(e));
                    return;
                }
                Err(e) => {
                    log::warn!("listener \"{}\": accept failed: {}", self.cfg.listeners[li].name, e.desc());
                    return;
                }
            }
        }
        self.pause(Pause::TableFull);
    }

    pub(super) fn pause(&mut self, why: Pause) {
        let starving = matches!(why, Pause::Starved(_));
        // logged once: when a pause starts, and once per starvation episode (ticks retry)
        let already_said = self.paused || (starving && self.starved);
        if !already_said {
            match why {
                Pause::TableFull => log::warn!(
                    "max_connections ({}) reached: new clients wait in the backlog",
                    self.cfg.settings.max_connections
                ),
                Pause::Starved(e) => {
                    log::warn!("accept paused until descriptors free up (retried every tick): {}", e.desc())
                }
            }
        }
        self.paused = true;
        self.starved |= starving;
    }

    pub(super) fn resume_accepting(&mut self) {
        if !self.paused || self.free.is_empty() {
            return;
        }
        self.paused = false;
        for li in 0..self.listeners.len() {
            self.accept_from(li);
        }
    }

    /// The cluster a new client of listener `li` goes to: the listener's, or the first route
    /// that matches its addresses; the reason (counted) when no route matches or the cluster
    /// is at its `circuit_breakers` ceiling.
    fn cluster_for(&mut self, li: usize, client: &OwnedFd) -> Result<usize, &'static str> {
        let l = &self.cfg.listeners[li];
        let ci = match l.cluster {
            Some(ci) => Some(ci),
            None => match (net::peer_addr(client), net::local_addr(client)) {
                (Some(peer), Some(local)) => route::pick(&l.routes, &peer, &local),
                _ => None,
            },
        };
        let c = &mut self.listener_counters[li];
        let Some(ci) = ci else {
            c.no_route += 1;
            log::debug!("listener \"{}\": no route matches a client, closing it", l.name);
            return Err("no route matched");
        };
        let max = self.cfg.clusters[ci].max_connections;
        if max != 0 && self.cluster_active[ci] >= max {
            c.overflow += 1;
            log::debug!(
                "cluster \"{}\": at its circuit_breakers max_connections ({max}), closing a client",
                self.cfg.clusters[ci].name
            );
            return Err("circuit breaker: the cluster is at its max_connections");
        }
        Ok(ci)
    }

    pub(super) fn open(&mut self, li: usize, idx: usize, client: OwnedFd) {
        self.totals.accepted += 1;
        self.listener_counters[li].accepted += 1;
        let ci = match self.cluster_for(li, &client) {
            Ok(ci) => ci,
            Err(why) => {
                self.totals.refused += 1;
                self.log_refused(li, &client, why);
                return net::reset(client);
            }
        };
        self.cluster_active[ci] += 1;
        self.free.pop();
        let s = &mut self.slots[idx];
        s.gen = s.gen.wrapping_add(1);
        s.used = true;
        s.conn = Conn::new();
        s.listener = li as u8;
        s.cluster = ci as u8;
        s.tried = 0;
        s.attempts = 0;
        s.started = self.now;
        s.id = self.totals.accepted;
        let tok = conn_token(idx, s.gen, Side::Client);
        let _ = self.poller.add_read(&client, tok);
        s.fds = [Some(client), None];
        s.out = [false, false];
        if self.cfg.settings.splice {
            s.pipes = self.spare_pipes.take();
        }
        self.active += 1;
        self.listener_counters[li].active += 1;
        log::debug!("conn {idx}: accepted on listener {li}");
        if self.cfg.settings.splice && self.slots[idx].pipes.is_none() {
            self.totals.refused += 1;
            return self.close(idx, true);
        }
        self.connect_next(idx);
    }
}
