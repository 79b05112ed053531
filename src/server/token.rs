//! What an epoll event is for: the event loop's tokens. The poller below carries them as opaque
//! 64-bit values; this module packs a kind, a slot index and, for connections, the slot's
//! generation and side, so a late event for a slot that was closed and reused is recognised and
//! dropped. The kinds of the layers above (`restart`, the signal loop) are named here so that
//! one table covers every registration.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Listener = 1,
    AdminListener = 2,
    Admin = 3,
    Signal = 4,
    Conn = 5,
    ReconfigListener = 6,
    /// A process that connected to `reconfig.sock` (a would-be successor).
    ReconfigPeer = 7,
    /// The `listen.sock` connection to the successor, waiting for its ack.
    Handoff = 8,
    /// A draining predecessor's pidfd (readable when it exits).
    Predecessor = 9,
    /// An active health check's connect (index: cluster x `MAX_HOSTS` + host).
    Health = 10,
    /// The metrics listener (MOSN's prometheus sink) and its connections.
    MetricsListener = 11,
    Metrics = 12,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub index: u32,
    pub gen: u16,
    pub side: u8,
}

impl Token {
    pub fn new(kind: Kind, index: usize) -> Self {
        Token { kind, index: index as u32, gen: 0, side: 0 }
    }

    pub fn encode(self) -> u64 {
        (self.kind as u64) << 56 | (self.side as u64) << 48 | (self.gen as u64) << 32 | self.index as u64
    }

    pub fn decode(v: u64) -> Option<Self> {
        let kind = match v >> 56 {
            1 => Kind::Listener,
            2 => Kind::AdminListener,
            3 => Kind::Admin,
            4 => Kind::Signal,
            5 => Kind::Conn,
            6 => Kind::ReconfigListener,
            7 => Kind::ReconfigPeer,
            8 => Kind::Handoff,
            9 => Kind::Predecessor,
            10 => Kind::Health,
            11 => Kind::MetricsListener,
            12 => Kind::Metrics,
            _ => return None,
        };
        Some(Token { kind, index: v as u32, gen: (v >> 32) as u16, side: (v >> 48) as u8 })
    }
}

impl From<Token> for u64 {
    fn from(t: Token) -> u64 {
        t.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        let t = Token { kind: Kind::Conn, index: 123_456, gen: 65_535, side: 1 };
        assert_eq!(Token::decode(t.encode()), Some(t));
        assert_eq!(Token::decode(0), None);
    }
}
