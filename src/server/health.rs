//! Active health checks: a non-blocking TCP connect to each host of a cluster with a
//! `health_check`, every `interval`, on the event loop. The socket's writability reports the
//! outcome (`SO_ERROR`); a check still pending at its deadline fails. Each host has one probe
//! slot, sized at start: no allocation. The verdicts go through `lb::on_check` (MOSN's
//! thresholds).

use super::*;
use crate::sansio::codec::HostHealth;

/// One host's check: the connect in flight, if any, and when the next one is due (monotonic ms).
#[derive(Default)]
pub(super) struct Probe {
    fd: Option<OwnedFd>,
    deadline: u64,
    next_at: u64,
}

pub(super) type Probes = heapless::Vec<heapless::Vec<Probe, MAX_HOSTS>, MAX_LISTENERS>;

/// A probe slot for every host of every cluster; the first checks run at the first tick.
pub(super) fn probes(cfg: &Config) -> Probes {
    cfg.clusters.iter().map(|c| c.hosts.iter().map(|_| Probe::default()).collect()).collect()
}

/// Descriptors the checks may hold at once (one per checked host).
pub(super) fn checked_hosts(cfg: &Config) -> u64 {
    cfg.clusters.iter().filter(|c| c.health.is_some()).map(|c| c.hosts.len() as u64).sum()
}

impl Server {
    /// Starts the checks that are due and fails the ones past their deadline (every tick).
    pub(super) fn run_checks(&mut self) {
        if self.mode != Mode::Serving {
            return;
        }
        let now = self.now;
        for ci in 0..self.cfg.clusters.len() {
            let Some(hc) = self.cfg.clusters[ci].health else { continue };
            for h in 0..self.probes[ci].len() {
                let p = &mut self.probes[ci][h];
                if p.fd.is_some() && p.deadline <= now {
                    self.check_done(ci, h, Err(Errno::ETIMEDOUT));
                } else if p.fd.is_none() && p.next_at <= now {
                    p.next_at = now + hc.interval_ms;
                    match net::connect_to(&self.cfg.clusters[ci].hosts[h].addr) {
                        Ok(fd) => {
                            let tok = Token::new(Kind::Health, ci * MAX_HOSTS + h);
                            if self.poller.add(&fd, tok).is_ok() {
                                p.deadline = now + hc.timeout_ms;
                                p.fd = Some(fd);
                            }
                        }
                        // out of descriptors: not the host's fault, try at the next interval
                        Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {}
                        Err(e) => self.check_done(ci, h, Err(e)),
                    }
                }
            }
        }
    }

    /// The connect of probe `index` completed (or failed): its verdict.
    pub(super) fn probe_event(&mut self, index: u32) {
        let (ci, h) = (index as usize / MAX_HOSTS, index as usize % MAX_HOSTS);
        let Some(fd) = self.probes.get(ci).and_then(|p| p.get(h)).and_then(|p| p.fd.as_ref()) else {
            return;
        };
        let verdict = match net::take_error(fd) {
            None => Ok(()),
            Some(e) => Err(e),
        };
        self.check_done(ci, h, verdict);
    }

    fn check_done(&mut self, ci: usize, h: usize, verdict: Result<(), Errno>) {
        if let Some(fd) = self.probes[ci][h].fd.take() {
            self.poller.delete(&fd);
        }
        let Some(hc) = self.cfg.clusters[ci].health else { return };
        let change =
            lb::on_check(&mut self.hosts[ci][h], verdict.is_ok(), hc.healthy_threshold, hc.unhealthy_threshold);
        let c = &self.cfg.clusters[ci];
        match (change, verdict) {
            (HealthChange::MarkedDown, Err(e)) => log::warn!(
                "cluster \"{}\": host {} marked down by health checks ({} failed in a row, last: {})",
                c.name,
                c.hosts[h].addr,
                hc.unhealthy_threshold,
                e.desc()
            ),
            (HealthChange::MarkedUp, _) => log::info!(
                "cluster \"{}\": host {} passed {} health checks: up again",
                c.name,
                c.hosts[h].addr,
                hc.healthy_threshold
            ),
            _ => {}
        }
    }
}

impl Server {
    /// Hosts marked down now (by checks or by failed connects), for the successor of a hot
    /// restart (`codec::Msg::Health`).
    pub fn hosts_down(&self) -> impl Iterator<Item = HostHealth> + '_ {
        let now = self.now;
        self.cfg.clusters.iter().zip(&self.hosts).flat_map(move |(c, hs)| {
            c.hosts.iter().zip(hs).filter(move |(_, st)| st.is_down(now)).map(move |(h, st)| HostHealth {
                cluster: crate::sansio::codec::text(&c.name),
                host: h.addr.clone(),
                check_down: st.check_down,
                checks_passed: st.checks_passed,
                checks_failed: st.checks_failed,
                passive_left_ms: st.down_until.saturating_sub(now),
                consecutive: st.consecutive,
            })
        })
    }

    /// Takes over a predecessor's verdict on a host still in this config: a passive mark keeps
    /// its remaining `down_time`; an active mark stays until this process's checks clear it,
    /// and is dropped when its cluster no longer has checks (nothing would ever clear it).
    /// Returns whether the host was found.
    pub fn adopt_health(&mut self, h: &HostHealth) -> bool {
        let Some(ci) = self.cfg.cluster_by_name(&h.cluster) else { return false };
        let Some(hi) = self.cfg.clusters[ci].hosts.iter().position(|x| x.addr == h.host) else { return false };
        let checked = self.cfg.clusters[ci].health.is_some();
        let st = &mut self.hosts[ci][hi];
        if checked {
            st.check_down = h.check_down;
            st.checks_passed = h.checks_passed;
            st.checks_failed = h.checks_failed;
        }
        if h.passive_left_ms > 0 {
            st.down_until = self.now + h.passive_left_ms;
            st.consecutive = h.consecutive;
        }
        true
    }
}
