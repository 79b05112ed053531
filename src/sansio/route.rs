//! tcp_proxy routes: which cluster a new connection goes to, by its source and destination, as
//! MOSN's stream proxy decides it (`pkg/filter/network/streamproxy`, `GetRouteFromEntries`).
//!
//! MOSN's rules, kept here exactly: a listener whose tcp_proxy names a `cluster` sends every
//! connection there and never looks at its routes; otherwise the routes are tried in order and the
//! first whose four matchers all match wins. Each matcher is a list, and a list matches when one
//! of its entries does, so an empty list matches nothing (a route must give all four). An IPv4
//! range also matches the IPv4-mapped IPv6 form of its addresses (Go's `IPNet.Contains`).
//! No match: the connection is closed. Pure, `core` + `heapless`.

use core::net::{IpAddr, SocketAddr};
use heapless::Vec;

pub use crate::sansio::limits::{MAX_CIDRS, MAX_PORT_RANGES, MAX_ROUTES};

/// An address range: `addr/len` (MOSN's `CidrRange`, `{"address": ..., "length": ...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    /// `None` when `len` is longer than the address (Go's `ParseCIDR` fails, and MOSN's range
    /// then never matches).
    pub fn new(addr: IpAddr, len: u64) -> Option<Self> {
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (len <= bits).then_some(Self { addr, len: len as u8 })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(u32::from(net) as u128, u32::from(ip) as u128, 32, self.len),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(u128::from(net), u128::from(ip), 128, self.len),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u32, len: u8) -> bool {
    let len = len as u32;
    len == 0 || (a ^ b) >> (bits - len) == 0
}

/// An inclusive port range (`"8080"`, `"1-65535"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

/// Parses MOSN's port list: ranges and ports separated by commas (`"80,443,8000-8999"`).
/// Unlike MOSN, which logs and skips a bad item, a bad item is an error (`None`): a skipped item
/// silently narrows what the route matches.
pub fn parse_ports(s: &str) -> Option<Vec<PortRange, MAX_PORT_RANGES>> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let (min, max) = (port(lo)?, port(hi)?);
        if min > max {
            return None;
        }
        out.push(PortRange { min, max }).ok()?;
    }
    Some(out)
}

/// Digits only: MOSN's `strconv.Atoi` fails on a space and MOSN then skips the item, so a
/// list such as "80, 443" would match only 80 there; baton refuses it instead.
fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One route of a tcp_proxy: a cluster and the four matchers.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Index into `Config::clusters`.
    pub cluster: usize,
    pub sources: Vec<Cidr, MAX_CIDRS>,
    pub destinations: Vec<Cidr, MAX_CIDRS>,
    pub source_ports: Vec<PortRange, MAX_PORT_RANGES>,
    pub destination_ports: Vec<PortRange, MAX_PORT_RANGES>,
}

impl Route {
    /// Whether any connection can match (every matcher has an entry).
    pub fn can_match(&self) -> bool {
        !(self.sources.is_empty()
            || self.destinations.is_empty()
            || self.source_ports.is_empty()
            || self.destination_ports.is_empty())
    }

    /// `peer`: the client's address; `local`: the address it connected to.
    pub fn matches(&self, peer: &SocketAddr, local: &SocketAddr) -> bool {
        let in_ports = |l: &[PortRange], p: u16| p != 0 && l.iter().any(|r| (r.min..=r.max).contains(&p));
        self.sources.iter().any(|c| c.contains(peer.ip()))
            && in_ports(&self.source_ports, peer.port())
            && self.destinations.iter().any(|c| c.contains(local.ip()))
            && in_ports(&self.destination_ports, local.port())
    }
}

/// The cluster of the first route that matches, as MOSN tries them.
pub fn pick(routes: &[Route], peer: &SocketAddr, local: &SocketAddr) -> Option<usize> {
    routes.iter().find(|r| r.matches(peer, local)).map(|r| r.cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str, len: u64) -> Cidr {
        Cidr::new(s.parse().unwrap(), len).unwrap()
    }

    fn route(cluster: usize, src: Cidr, sports: &str, dst: Cidr, dports: &str) -> Route {
        Route {
            cluster,
            sources: Vec::from_slice(&[src]).unwrap(),
            destinations: Vec::from_slice(&[dst]).unwrap(),
            source_ports: parse_ports(sports).unwrap(),
            destination_ports: parse_ports(dports).unwrap(),
        }
    }

    #[test]
    fn cidr_prefixes_and_mapped_ipv4() {
        let net = cidr("10.1.0.0", 16);
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()), "Go's IPNet.Contains maps IPv4-in-IPv6");
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(cidr("0.0.0.0", 0).contains("192.0.2.1".parse().unwrap()));
        assert!(cidr("127.0.0.2", 32).contains("127.0.0.2".parse().unwrap()));
        assert!(!cidr("127.0.0.2", 32).contains("127.0.0.1".parse().unwrap()));
        assert!(cidr("fd00::", 8).contains("fdab::1".parse().unwrap()));
        assert!(!cidr("fd00::", 8).contains("fe80::1".parse().unwrap()));
        assert_eq!(Cidr::new("10.0.0.0".parse().unwrap(), 33), None);
        assert!(Cidr::new("::".parse().unwrap(), 128).is_some());
    }

    #[test]
    fn port_lists() {
        let p = parse_ports("80,443,8000-8999").unwrap();
        assert_eq!(
            p.as_slice(),
            &[PortRange { min: 80, max: 80 }, PortRange { min: 443, max: 443 }, PortRange { min: 8000, max: 8999 }]
        );
        for bad in ["", "x", "1-", "-1", "9-1", "65536", "1,,2", "+1", "80, 443", " 80"] {
            assert_eq!(parse_ports(bad), None, "{bad:?}");
        }
        assert_eq!(parse_ports("1,2,3,4,5,6,7,8,9"), None, "more than MAX_PORT_RANGES");
    }

    #[test]
    fn first_matching_route_wins_and_every_matcher_counts() {
        let local: SocketAddr = "127.0.0.1:2045".parse().unwrap();
        let routes = [
            route(1, cidr("127.0.0.2", 32), "1-65535", cidr("127.0.0.0", 8), "2045"),
            route(2, cidr("127.0.0.0", 8), "1-65535", cidr("127.0.0.0", 8), "1-65535"),
        ];
        assert_eq!(pick(&routes, &"127.0.0.2:40000".parse().unwrap(), &local), Some(1));
        assert_eq!(pick(&routes, &"127.0.0.1:40000".parse().unwrap(), &local), Some(2));
        assert_eq!(pick(&routes, &"192.0.2.1:40000".parse().unwrap(), &local), None);
        // the destination port of route 0 does not match: route 1 takes it
        assert_eq!(pick(&routes, &"127.0.0.2:40000".parse().unwrap(), &"127.0.0.1:2046".parse().unwrap()), Some(2));
        let mut empty = routes[1].clone();
        empty.source_ports.clear();
        assert!(!empty.can_match());
        assert_eq!(pick(&[empty], &"127.0.0.1:40000".parse().unwrap(), &local), None, "an empty list matches nothing");
    }
}
