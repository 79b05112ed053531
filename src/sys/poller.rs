//! Edge-triggered epoll (see epoll(7)). A registration carries an opaque 64-bit token, handed
//! back with each event; what tokens mean is the event loop's business (`server::token`).

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::os::fd::AsFd;

/// What an event says about its descriptor.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// The token the descriptor was registered with.
    pub token: u64,
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

pub use crate::sansio::limits::EVENTS_PER_WAIT;

impl Poller {
    pub fn new() -> Result<Self, Errno> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            events: vec![EpollEvent::empty(); EVENTS_PER_WAIT],
        })
    }

    /// Registers for reading and writing, edge-triggered.
    pub fn add(&self, fd: &impl AsFd, token: impl Into<u64>) -> Result<(), Errno> {
        self.epoll.add(fd, EpollEvent::new(Self::flags(true), token.into()))
    }

    /// Changes whether writability is reported. Proxied sockets ask for it only while a write
    /// is blocked: with it on, every ACK that frees send buffer space would wake the loop.
    pub fn want_writable(&self, fd: &impl AsFd, token: impl Into<u64>, on: bool) -> Result<(), Errno> {
        self.epoll.modify(fd, &mut EpollEvent::new(Self::flags(on), token.into()))
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
    pub fn add_read(&self, fd: &impl AsFd, token: impl Into<u64>) -> Result<(), Errno> {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        self.epoll.add(fd, EpollEvent::new(flags, token.into()))
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
            token: e.data(),
            readable: err || f.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP),
            writable: err || f.contains(EpollFlags::EPOLLOUT),
            hup: err || f.contains(EpollFlags::EPOLLRDHUP),
            err,
        }
    }
}
