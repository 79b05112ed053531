//! A connection's portable state: what moves from one process to the next at a hot restart,
//! besides its descriptors and buffered bytes. The state machine (`conn`) exports and imports
//! it, the event loop fills in its addresses, the wire format (`codec`) carries it; none of
//! them depends on another for it.

use crate::sansio::addr::Addr;

pub use crate::sansio::limits::NAME_TEXT;

/// Descriptors that travel with one connection: client and upstream sockets, and in splice
/// mode the read and write ends of both pipes (which hold the buffered bytes).
pub const fn fds_per_conn(splice: bool) -> usize {
    if splice {
        MAX_FDS_PER_CONN
    } else {
        2
    }
}

pub use crate::sansio::limits::MAX_FDS_PER_CONN;

/// One direction of a connection as it moves to another process on a hot restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    /// Bytes read from the source and not yet written: they travel as `Data` records (user
    /// buffers) or stay in the pipe that moves with the connection (splice).
    pub pending: u32,
    /// The source sent FIN.
    pub eof: bool,
    /// The FIN was passed on (`shutdown(SHUT_WR)` done on the destination).
    pub shut: bool,
    /// Bytes moved so far (a counter that carries over).
    pub bytes: u64,
}

/// Everything about one established proxied connection besides its descriptors and buffered
/// bytes: what the successor needs to continue its byte stream (docs/hot-restart.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnState {
    /// The listener's configured address (a listener's identity).
    pub listener: Addr,
    /// The cluster name (cut to `NAME_TEXT` bytes).
    pub cluster: heapless::String<NAME_TEXT>,
    /// The upstream host's address.
    pub host: Addr,
    /// `flows[0]`: client to upstream; `flows[1]`: upstream to client.
    pub flows: [FlowState; 2],
    /// Milliseconds left before the idle timeout; `u64::MAX`: none.
    pub idle_left_ms: u64,
}

impl ConnState {
    /// `cluster` is cut at a character boundary to `NAME_TEXT` bytes.
    pub fn new(listener: Addr, cluster: &str, host: Addr, flows: [FlowState; 2], idle_left_ms: u64) -> Self {
        let mut name = heapless::String::new();
        for c in cluster.chars() {
            if name.push(c).is_err() {
                break;
            }
        }
        ConnState { listener, cluster: name, host, flows, idle_left_ms }
    }
}
