//! Edge-triggered epoll (see epoll(7)) and the token that names what an event is for.
//!
//! A token packs a kind, a slot index and, for connections, the slot's generation and side, so a
//! late event for a slot that was closed and reused is recognised and dropped.

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::os::fd::AsFd;

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
            _ => return None,
        };
        Some(Token { kind, index: v as u32, gen: (v >> 32) as u16, side: (v >> 48) as u8 })
    }
}

/// What an event says about its descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub token: Option<Token>,
    pub readable: bool,
    pub writable: bool,
    /// The peer sent FIN, or the socket has an error or hung up.
    pub hup: bool,
    /// The socket has an error or hung up (EPOLLERR / EPOLLHUP).
    pub err: bool,
}

pub struct Poller {
    epoll: Epoll,
    events: Vec<EpollEvent>,
}

/// Events taken per `epoll_wait`; more wait for the next call, nothing is lost.
pub const EVENTS_PER_WAIT: usize = 256;

impl Poller {
    pub fn new() -> Result<Self, Errno> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            events: vec![EpollEvent::empty(); EVENTS_PER_WAIT],
        })
    }

    /// Registers for reading and writing, edge-triggered.
    pub fn add(&self, fd: &impl AsFd, token: Token) -> Result<(), Errno> {
        self.epoll.add(fd, EpollEvent::new(Self::flags(true), token.encode()))
    }

    /// Changes whether writability is reported. Proxied sockets ask for it only while a write
    /// is blocked: with it on, every ACK that frees send buffer space would wake the loop.
    pub fn want_writable(&self, fd: &impl AsFd, token: Token, on: bool) -> Result<(), Errno> {
        self.epoll.modify(fd, &mut EpollEvent::new(Self::flags(on), token.encode()))
    }

    fn flags(out: bool) -> EpollFlags {
        let f = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if out {
            f | EpollFlags::EPOLLOUT
        } else {
            f
        }
    }

    /// Registers for reading only, edge-triggered (listeners, signalfd, control sockets).
    pub fn add_read(&self, fd: &impl AsFd, token: Token) -> Result<(), Errno> {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        self.epoll.add(fd, EpollEvent::new(flags, token.encode()))
    }

    pub fn delete(&self, fd: &impl AsFd) {
        let _ = self.epoll.delete(fd);
    }

    /// Waits up to `timeout_ms` and returns the number of events ready; read them with `event`.
    pub fn wait(&mut self, timeout_ms: u16) -> Result<usize, Errno> {
        match self.epoll.wait(&mut self.events, EpollTimeout::from(timeout_ms)) {
            Ok(n) => Ok(n),
            Err(Errno::EINTR) => Ok(0),
            Err(e) => Err(e),
        }
    }

    pub fn event(&self, i: usize) -> Event {
        let e = &self.events[i];
        let f = e.events();
        let err = f.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
        Event {
            token: Token::decode(e.data()),
            readable: err || f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP),
            writable: err || f.contains(EpollFlags::EPOLLOUT),
            hup: err || f.contains(EpollFlags::EPOLLRDHUP),
            err,
        }
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
