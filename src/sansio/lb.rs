//! Load balancing, and passive and active health per cluster (sans-io).
//!
//! Passive: failed connects mark a host down for `down_time` (`on_failure`, `on_success`).
//! Active (a cluster's `health_check`): connect checks mark it down after `unhealthy_threshold`
//! failures in a row and up after `healthy_threshold` successes, as MOSN's session checker does
//! (`on_check`). A host is down when either says so.
//!
//! `pick` chooses a host among those not yet tried for this client (a `u64` bitmask) and not
//! marked down; when every untried host is down it still picks one (failing open: a cluster that
//! is all down is retried rather than refused for the whole cool-down).

use crate::sansio::config::{Host, LbPolicy};

/// Live state of one host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    pub active: u32,
    pub total: u64,
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive: u8,
    /// Monotonic ms until which the host is skipped; 0 when up.
    pub down_until: u64,
    /// Marked down by active health checks (until `healthy_threshold` checks pass).
    pub check_down: bool,
    /// Active checks in a row that passed / failed (the other count is reset).
    pub checks_passed: u8,
    pub checks_failed: u8,
    /// Smooth weighted round-robin's current weight.
    current: i64,
}

impl HostState {
    pub fn is_down(&self, now: u64) -> bool {
        self.check_down || self.down_until > now
    }

    /// Why the host is down: `"active"` (health checks), `"passive"` (failed connects), or
    /// `""` when it is up.
    pub fn down_reason(&self, now: u64) -> &'static str {
        if self.check_down {
            "active"
        } else if self.down_until > now {
            "passive"
        } else {
            ""
        }
    }
}

/// An active health check of the host passed (`ok`) or failed; MOSN's thresholds: a host is
/// marked down at the `unhealthy`-th failure in a row and up at the `healthy`-th success in a
/// row.
pub fn on_check(h: &mut HostState, ok: bool, healthy: u8, unhealthy: u8) -> HealthChange {
    if ok {
        h.checks_failed = 0;
        h.checks_passed = h.checks_passed.saturating_add(1);
        if h.check_down && h.checks_passed >= healthy {
            h.check_down = false;
            return HealthChange::MarkedUp;
        }
    } else {
        h.checks_passed = 0;
        h.checks_failed = h.checks_failed.saturating_add(1);
        if !h.check_down && h.checks_failed >= unhealthy {
            h.check_down = true;
            return HealthChange::MarkedDown;
        }
    }
    HealthChange::None
}

/// What a health update changed, for the one log line it deserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthChange {
    None,
    MarkedDown,
    MarkedUp,
}

/// A connect to the host failed or timed out.
pub fn on_failure(h: &mut HostState, now: u64, threshold: u8, down_ms: u64) -> HealthChange {
    h.failures += 1;
    h.consecutive = h.consecutive.saturating_add(1);
    if h.consecutive >= threshold && !h.is_down(now) {
        h.down_until = now + down_ms.max(1);
        return HealthChange::MarkedDown;
    }
    HealthChange::None
}

/// A connect to the host succeeded.
pub fn on_success(h: &mut HostState) -> HealthChange {
    let was_marked = h.down_until != 0;
    h.consecutive = 0;
    h.down_until = 0;
    if was_marked {
        HealthChange::MarkedUp
    } else {
        HealthChange::None
    }
}

/// xorshift64*: a fast, allocation-free generator for LB_RANDOM. Not for anything secret.
pub fn next_random(state: &mut u64) -> u64 {
    let mut x = *state | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Chooses a host index, or `None` when every host was tried already.
pub fn pick(
    policy: LbPolicy,
    hosts: &[Host],
    st: &mut [HostState],
    tried: u64,
    now: u64,
    rng: &mut u64,
) -> Option<usize> {
    let untried = |i: usize| tried & (1u64 << i) == 0;
    let up = |i: usize, st: &[HostState]| untried(i) && !st[i].is_down(now);
    let any_up = (0..hosts.len()).any(|i| up(i, st));
    let eligible = |i: usize, st: &[HostState]| if any_up { up(i, st) } else { untried(i) };
    if !(0..hosts.len()).any(|i| eligible(i, st)) {
        return None;
    }
    let weight = |i: usize| hosts[i].weight as u64;
    let one = |_: usize| 1u64;
    Some(match policy {
        LbPolicy::RoundRobin => smooth_wrr(st, one, |i, st| eligible(i, st), hosts.len()),
        LbPolicy::WeightedRoundRobin => smooth_wrr(st, weight, |i, st| eligible(i, st), hosts.len()),
        LbPolicy::Random => weighted_random(st, one, rng, |i, st| eligible(i, st), hosts.len()),
        LbPolicy::RequestRoundRobin => (0..hosts.len()).find(|&i| eligible(i, st)).unwrap_or(0),
        LbPolicy::LeastConn => least_conn(hosts, st, |i, st| eligible(i, st)),
        LbPolicy::LeastRequest if equal_weights(hosts) => {
            weighted_random(st, one, rng, |i, st| eligible(i, st), hosts.len())
        }
        LbPolicy::LeastRequest => smooth_wrr(st, weight, |i, st| eligible(i, st), hosts.len()),
    })
}

/// Whether every host has the same weight (then weighted and unweighted policies agree).
pub fn equal_weights(hosts: &[Host]) -> bool {
    hosts.iter().all(|h| h.weight == hosts[0].weight)
}

/// nginx's smooth weighted round-robin: spreads picks evenly in proportion to the weights
/// (all 1: plain round robin).
fn smooth_wrr(
    st: &mut [HostState],
    weight: impl Fn(usize) -> u64,
    ok: impl Fn(usize, &[HostState]) -> bool,
    n: usize,
) -> usize {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for i in 0..n {
        if !ok(i, st) {
            continue;
        }
        st[i].current += weight(i) as i64;
        total += weight(i) as i64;
        if best.is_none_or(|b| st[i].current > st[b].current) {
            best = Some(i);
        }
    }
    let b = best.unwrap_or(0);
    st[b].current -= total;
    b
}

fn weighted_random(
    st: &[HostState],
    weight: impl Fn(usize) -> u64,
    rng: &mut u64,
    ok: impl Fn(usize, &[HostState]) -> bool,
    n: usize,
) -> usize {
    let total: u64 = (0..n).filter(|&i| ok(i, st)).map(&weight).sum();
    let mut r = next_random(rng) % total.max(1);
    let mut last = 0;
    for i in (0..n).filter(|&i| ok(i, st)) {
        last = i;
        let w = weight(i);
        if r < w {
            return i;
        }
        r -= w;
    }
    last
}

/// Fewest active connections per unit of weight; ties go to the lower index.
fn least_conn(hosts: &[Host], st: &[HostState], ok: impl Fn(usize, &[HostState]) -> bool) -> usize {
    let mut best: Option<usize> = None;
    for i in (0..hosts.len()).filter(|&i| ok(i, st)) {
        let better = |b: usize| {
            (st[i].active as u64) * (hosts[b].weight as u64) < (st[b].active as u64) * (hosts[i].weight as u64)
        };
        if best.is_none_or(better) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::SocketAddr;

    fn hosts(weights: &[u16]) -> heapless::Vec<Host, 8> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Host { addr: SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)).into(), weight: w })
            .collect()
    }

    fn counts(policy: LbPolicy, weights: &[u16], n: usize) -> [usize; 4] {
        let h = hosts(weights);
        let mut st = [HostState::default(); 4];
        let mut rng = 42;
        let mut c = [0; 4];
        for _ in 0..n {
            c[pick(policy, &h, &mut st, 0, 0, &mut rng).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn round_robin_ignores_weights_and_weighted_round_robin_follows_them_exactly() {
        assert_eq!(counts(LbPolicy::RoundRobin, &[1, 1, 1], 300), [100, 100, 100, 0]);
        assert_eq!(counts(LbPolicy::RoundRobin, &[3, 1], 400), [200, 200, 0, 0], "MOSN's LB_ROUNDROBIN");
        assert_eq!(counts(LbPolicy::WeightedRoundRobin, &[3, 1], 400), [300, 100, 0, 0]);
    }

    #[test]
    fn random_is_uniform_whatever_the_weights() {
        let c = counts(LbPolicy::Random, &[1, 3], 40_000);
        assert!((19_000..21_000).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn request_round_robin_takes_the_first_healthy_host_then_the_next_on_failover() {
        assert_eq!(counts(LbPolicy::RequestRoundRobin, &[1, 5, 1], 30), [30, 0, 0, 0]);
        let h = hosts(&[1, 1, 1]);
        let mut st = [HostState::default(); 3];
        assert_eq!(pick(LbPolicy::RequestRoundRobin, &h, &mut st, 0b001, 0, &mut 1), Some(1), "host 0 failed");
        st[0].down_until = 1000;
        assert_eq!(pick(LbPolicy::RequestRoundRobin, &h, &mut st, 0, 500, &mut 1), Some(1), "host 0 down");
    }

    #[test]
    fn least_request_is_weighted_round_robin_or_random_as_in_mosns_tcp_proxy() {
        assert_eq!(counts(LbPolicy::LeastRequest, &[3, 1], 400), [300, 100, 0, 0]);
        let c = counts(LbPolicy::LeastRequest, &[2, 2], 40_000);
        assert!((19_000..21_000).contains(&c[0]), "{c:?}");
        assert_ne!(counts(LbPolicy::LeastRequest, &[2, 2], 40), [20, 20, 0, 0], "random, not alternating");
    }

    #[test]
    fn least_conn_prefers_idle_hosts() {
        let h = hosts(&[1, 1, 2]);
        let mut st = [HostState::default(); 3];
        st[0].active = 5;
        st[1].active = 2;
        st[2].active = 3; // 1.5 per unit of weight
        assert_eq!(pick(LbPolicy::LeastConn, &h, &mut st, 0, 0, &mut 1), Some(2));
    }

    #[test]
    fn tried_and_down_hosts_are_skipped_but_fail_open() {
        let h = hosts(&[1, 1, 1]);
        let mut st = [HostState::default(); 3];
        assert_eq!(on_failure(&mut st[0], 100, 2, 1000), HealthChange::None);
        assert_eq!(on_failure(&mut st[0], 100, 2, 1000), HealthChange::MarkedDown);
        for _ in 0..10 {
            let p = pick(LbPolicy::RoundRobin, &h, &mut st, 0b010, 500, &mut 1);
            assert_eq!(p, Some(2));
        }
        // all untried hosts down: still one is tried
        st[2].down_until = 2000;
        assert_eq!(pick(LbPolicy::RoundRobin, &h, &mut st, 0b010, 500, &mut 1).map(|i| i != 1), Some(true));
        assert_eq!(pick(LbPolicy::RoundRobin, &h, &mut st, 0b111, 500, &mut 1), None);
        // cool-down over: back in rotation; a success marks it up
        assert!(!st[0].is_down(1100));
        assert_eq!(on_success(&mut st[0]), HealthChange::MarkedUp);
        assert_eq!(on_success(&mut st[0]), HealthChange::None);
    }

    #[test]
    fn active_checks_follow_the_thresholds_and_keep_the_host_down() {
        let h = hosts(&[1, 1]);
        let mut st = [HostState::default(); 2];
        assert_eq!(on_check(&mut st[0], false, 2, 2), HealthChange::None);
        assert_eq!(on_check(&mut st[0], true, 2, 2), HealthChange::None, "a pass resets the failures");
        assert_eq!(on_check(&mut st[0], false, 2, 2), HealthChange::None);
        assert_eq!(on_check(&mut st[0], false, 2, 2), HealthChange::MarkedDown);
        assert_eq!((st[0].is_down(u64::MAX), st[0].down_reason(0)), (true, "active"));
        for _ in 0..10 {
            assert_eq!(pick(LbPolicy::RoundRobin, &h, &mut st, 0, 0, &mut 1), Some(1));
        }
        // a passive success does not clear an active mark; two passing checks do
        on_success(&mut st[0]);
        assert!(st[0].is_down(0));
        assert_eq!(on_check(&mut st[0], true, 2, 2), HealthChange::None);
        assert_eq!(on_check(&mut st[0], true, 2, 2), HealthChange::MarkedUp);
        assert_eq!(st[0].down_reason(0), "");
        on_failure(&mut st[1], 0, 1, 1000);
        assert_eq!(st[1].down_reason(10), "passive");
    }
}
