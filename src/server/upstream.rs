//! Upstream connect, failover between hosts, and passive health.

use super::*;

impl Server {
    pub(super) fn connect_next(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        // MOSN's tcp_proxy max_connect_attempts is ignored, as MOSN does: one setting for all
        let attempts = self.cfg.settings.connect_attempts;
        loop {
            let s = &mut self.slots[idx];
            let cluster = &self.cfg.clusters[ci];
            let picked = if s.attempts < attempts {
                lb::pick(cluster.lb, &cluster.hosts, &mut self.hosts[ci], s.tried, self.now, &mut self.rng)
            } else {
                None
            };
            let Some(h) = picked else {
                self.totals.refused += 1;
                log::debug!("conn {idx}: no upstream reachable, closing the client");
                return self.close(idx, true);
            };
            s.tried |= 1 << h;
            s.attempts += 1;
            s.host = h as u8;
            match net::connect_to(&cluster.hosts[h].addr) {
                Ok(fd) => {
                    if self.starved {
                        self.starved = false;
                        log::info!("descriptors available again: accepting");
                    }
                    // writability reports the connect's completion; dropped once connected
                    let _ = self.poller.add(&fd, conn_token(idx, s.gen, Side::Upstream));
                    s.out[1] = true;
                    s.fds[1] = Some(fd);
                    s.deadline = self.now + self.cfg.connect_timeout_ms(ci);
                    return;
                }
                // out of descriptors or memory here: not the host's fault; the client is
                // closed and accepting pauses until a connection frees what it holds
                Err(e @ (Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)) => {
                    self.totals.refused += 1;
                    self.close(idx, true);
                    return self.pause(accept::Pause::Starved(e));
                }
                Err(e) => self.host_failed(ci, h, e),
            }
        }
    }

    pub(super) fn host_failed(&mut self, ci: usize, h: usize, e: Errno) {
        self.totals.upstream_failures += 1;
        let st = &self.cfg.settings;
        let change = lb::on_failure(&mut self.hosts[ci][h], self.now, st.fail_threshold, st.down_time_ms);
        if change == HealthChange::MarkedDown {
            let c = &self.cfg.clusters[ci];
            log::warn!(
                "cluster \"{}\": host {} marked down for {} ms after {} failed connects (last: {})",
                c.name,
                c.hosts[h].addr,
                st.down_time_ms,
                st.fail_threshold,
                e.desc()
            );
        }
    }

    pub(super) fn connected(&mut self, idx: usize) {
        let ci = self.cluster_of(idx);
        let s = &mut self.slots[idx];
        let h = s.host as usize;
        s.conn.on_connected();
        s.deadline = idle_deadline(self.now, self.cfg.idle_timeout_ms(s.listener as usize));
        let hs = &mut self.hosts[ci][h];
        hs.active += 1;
        hs.total += 1;
        if lb::on_success(hs) == HealthChange::MarkedUp {
            let c = &self.cfg.clusters[ci];
            log::info!("cluster \"{}\": host {} is up again", c.name, c.hosts[h].addr);
        }
    }

    pub(super) fn cluster_of(&self, idx: usize) -> usize {
        self.slots[idx].cluster as usize
    }
}
