//! Where a listener listens or a host is reached: an IP socket address or a unix domain socket
//! path (MOSN's `"network": "unix"` listeners and `"unix:/path"` hosts). Pure, `core` + `heapless`.

use core::fmt;
use core::net::SocketAddr;
use heapless::String;

pub use crate::sansio::limits::UNIX_PATH_LEN;

pub type UnixPath = String<UNIX_PATH_LEN>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Ip(SocketAddr),
    Unix(UnixPath),
}

impl Addr {
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            Addr::Ip(a) => Some(*a),
            Addr::Unix(_) => None,
        }
    }

    /// A unix socket path: absolute, without NUL (which would end it early) and at most
    /// `UNIX_PATH_LEN` bytes (`sun_path` with its terminating NUL).
    pub fn unix(path: &str) -> Option<Addr> {
        if !path.starts_with('/') || path.contains('\0') {
            return None;
        }
        UnixPath::try_from(path).ok().map(Addr::Unix)
    }
}

/// Whether a listening socket bound to `a` serves a listener configured at `b`: the same
/// address, or both a wildcard (`0.0.0.0`, `::`, Go's `:PORT`) on the same port. A wildcard
/// listens on IPv4 and IPv6 at once, as Go's `net.Listen("tcp", ...)` does in MOSN, whichever
/// family it is written in (`sys::net::listen`).
pub fn same_listen_addr(a: &SocketAddr, b: &SocketAddr) -> bool {
    a == b || (a.port() == b.port() && a.ip().is_unspecified() && b.ip().is_unspecified())
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Ip(a)
    }
}

/// The `Display` form back: `unix:/path`, or an IP socket address.
impl core::str::FromStr for Addr {
    type Err = ();
    fn from_str(s: &str) -> Result<Addr, ()> {
        match s.strip_prefix("unix:") {
            Some(p) => Addr::unix(p).ok_or(()),
            None => s.parse::<SocketAddr>().map(Addr::Ip).map_err(|_| ()),
        }
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, or `unix:/path` (MOSN's spelling of a unix host).
impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Ip(a) => write!(f, "{a}"),
            Addr::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_paths_and_display() {
        assert_eq!(Addr::unix("/tmp/x.sock").unwrap().to_string(), "unix:/tmp/x.sock");
        assert_eq!(Addr::unix("tmp/x.sock"), None);
        assert_eq!(Addr::unix("/a\0b"), None);
        let long = "/".repeat(UNIX_PATH_LEN + 1);
        assert_eq!(Addr::unix(&long), None);
        assert!(Addr::unix(&long[..UNIX_PATH_LEN]).is_some());
        let ip: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(Addr::from(ip).to_string(), "[::1]:80");
        assert_eq!(Addr::from(ip).ip(), Some(ip));
    }
}
