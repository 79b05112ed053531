//! The admin endpoint (MOSN's "service listener"): a few HTTP/1.x GETs, one response per
//! connection. The metrics listener (MOSN's prometheus sink) is a second instance that serves
//! `/metrics` only (`Role::Metrics`). Kept off the proxy's budget: a fixed number of connections with fixed buffers,
//! a deadline per connection, and nothing it does can block the event loop.

use core::fmt::Write;
use core::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self as so, MsgFlags};

use super::token::{Kind, Token};
use crate::sansio::config::render;
use crate::sansio::http::{self, Parsed, Route, SliceWriter, HEAD_ROOM, MAX_REQUEST};
use crate::sansio::stats::{self, Snapshot};
use crate::sys::net;
use crate::sys::poller::Poller;

pub use crate::sansio::limits::ADMIN_BACKLOG;
pub use crate::sansio::limits::ADMIN_TIMEOUT_MS;
pub use crate::sansio::limits::MAX_ADMIN_CONNS;
pub use crate::sansio::limits::MAX_RESPONSE;

struct AdminConn {
    fd: Option<OwnedFd>,
    gen: u16,
    req: [u8; MAX_REQUEST],
    req_len: usize,
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    /// Response sent and FIN passed; input is discarded until the peer closes (a lingering
    /// close, so unread request bytes do not turn our close into an RST that eats the answer).
    lingering: bool,
    deadline: u64,
}

/// What an instance serves, and the token kinds of its listener and connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Every admin route.
    #[default]
    Admin,
    /// `/metrics` only (MOSN's prometheus sink); the rest is 404.
    Metrics,
}

impl Role {
    fn kinds(self) -> (Kind, Kind) {
        match self {
            Role::Admin => (Kind::AdminListener, Kind::Admin),
            Role::Metrics => (Kind::MetricsListener, Kind::Metrics),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Metrics => "metrics",
        }
    }
}

#[derive(Default)]
pub struct Admin {
    pub addr: Option<SocketAddr>,
    pub listener: Option<OwnedFd>,
    role: Role,
    conns: Vec<AdminConn>,
}

impl Admin {
    /// Binds the admin listener, or adopts `inherited` (the predecessor's) when it is on the
    /// same address. Errors: the address and why it could not be bound or registered.
    pub fn new(
        addr: Option<SocketAddr>,
        role: Role,
        poller: &Poller,
        inherited: Option<(SocketAddr, OwnedFd)>,
    ) -> Result<Admin, (SocketAddr, Errno)> {
        let Some(addr) = addr else {
            return Ok(Admin { role, ..Admin::default() });
        };
        let name = role.name();
        let fd = match inherited {
            Some((a, fd)) if crate::sansio::addr::same_listen_addr(&a, &addr) => {
                log::info!("{name} on {addr}: adopted from the previous process");
                fd
            }
            other => {
                if let Some((a, _)) = other {
                    log::info!("{name} on {a}: not in the new config, closed");
                }
                let fd = net::listen(&addr, ADMIN_BACKLOG).map_err(|errno| (addr, errno))?;
                log::info!("{name} on {addr}: bound");
                fd
            }
        };
        poller.add_read(&fd, Token::new(role.kinds().0, 0)).map_err(|errno| (addr, errno))?;
        if !addr.ip().is_loopback() {
            log::warn!(
                "{name} on {addr}: not a loopback address, and it has no authentication: anyone who can reach it \
                 reads {}; firewall the port{}{}",
                if role == Role::Admin { "the config, hosts and counters" } else { "the counters and host addresses" },
                if role == Role::Admin {
                    " or bind it to 127.0.0.1"
                } else {
                    " (MOSN's prometheus sink binds every address)"
                },
                if addr.ip().is_unspecified() { ", for IPv6 too: a wildcard takes both families" } else { "" }
            );
        }
        let conns = (0..MAX_ADMIN_CONNS)
            .map(|_| AdminConn {
                fd: None,
                gen: 0,
                req: [0; MAX_REQUEST],
                req_len: 0,
                out: vec![0; MAX_RESPONSE].into_boxed_slice(),
                out_start: 0,
                out_end: 0,
                lingering: false,
                deadline: 0,
            })
            .collect();
        Ok(Admin { addr: Some(addr), listener: Some(fd), role, conns })
    }

    /// Stops taking admin requests (hot restart): closes this process's copy of the listener.
    /// Requests already accepted are answered, within their deadline.
    pub fn shut(&mut self, poller: &Poller) {
        if let Some(fd) = self.listener.take() {
            poller.delete(&fd);
        }
    }

    /// Whether a request is still being answered.
    pub fn busy(&self) -> bool {
        self.conns.iter().any(|c| c.fd.is_some())
    }

    /// Handles one admin event at `now` (monotonic ms). `snap` builds what the routes show; it
    /// walks every connection slot, so it is called only for a complete request.
    pub fn on_event<'a>(&mut self, tok: Token, poller: &Poller, now: u64, snap: &dyn Fn() -> Snapshot<'a>) {
        if tok.kind == self.role.kinds().0 {
            self.accept(poller, now, snap)
        } else {
            self.serve(tok, snap)
        }
    }

    fn accept<'a>(&mut self, poller: &Poller, now: u64, snap: &dyn Fn() -> Snapshot<'a>) {
        loop {
            let Some(l) = self.listener.as_ref() else {
                return;
            };
            let Ok(Some(fd)) = net::accept(l) else {
                return;
            };
            let Some(i) = self.free_or_evict() else {
                log::debug!("admin: {MAX_ADMIN_CONNS} responses already in progress, closing a new request");
                continue;
            };
            let c = &mut self.conns[i];
            c.gen = c.gen.wrapping_add(1);
            c.req_len = 0;
            c.out_start = 0;
            c.out_end = 0;
            c.lingering = false;
            c.deadline = now + ADMIN_TIMEOUT_MS;
            let tok = Token { kind: self.role.kinds().1, index: i as u32, gen: c.gen, side: 0 };
            let _ = poller.add(&fd, tok);
            c.fd = Some(fd);
            // a request usually arrives with the connection: answer it now, before a flood of
            // new connections could evict it
            self.serve(tok, snap);
        }
    }

    /// A free slot, or the oldest one that is idle, still reading its request, or lingering
    /// after its response; `None` when every slot is sending a response.
    fn free_or_evict(&mut self) -> Option<usize> {
        if let Some(i) = self.conns.iter().position(|c| c.fd.is_none()) {
            return Some(i);
        }
        let i = (0..self.conns.len())
            .filter(|&i| self.conns[i].out_end == 0 || self.conns[i].lingering)
            .min_by_key(|&i| self.conns[i].deadline)?;
        log::debug!("admin: all {MAX_ADMIN_CONNS} slots taken; closing the oldest idle request");
        self.conns[i].fd = None;
        Some(i)
    }

    fn serve<'a>(&mut self, tok: Token, snap: &dyn Fn() -> Snapshot<'a>) {
        let Some(c) = self.conns.get_mut(tok.index as usize) else {
            return;
        };
        if c.gen != tok.gen {
            return;
        }
        let Some(fd) = c.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        if c.out_end == 0 {
            match read_request(fd, c) {
                Ok(Parsed::Incomplete) => return,
                Ok(Parsed::Get(route)) if self.role == Role::Metrics && route != Route::Metrics => {
                    respond_error(c, 404)
                }
                Ok(Parsed::Get(route)) => respond(c, route, &snap()),
                Ok(Parsed::Error(status)) => respond_error(c, status),
                Err(()) => {
                    c.fd = None;
                    return;
                }
            }
        }
        while c.out_start < c.out_end {
            match so::send(fd, &c.out[c.out_start..c.out_end], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => c.out_start += n,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    c.fd = None;
                    return;
                }
            }
        }
        let _ = so::shutdown(fd, so::Shutdown::Write);
        c.lingering = true;
        if !discard_input(fd) {
            c.fd = None;
        }
    }

    /// Closes connections past their deadline.
    pub fn tick(&mut self, now: u64) {
        for c in self.conns.iter_mut().filter(|c| c.fd.is_some() && c.deadline <= now) {
            log::debug!("{}: request timed out", self.role.name());
            c.fd = None;
        }
    }
}

/// Reads and drops what the peer sent; false once it closed or failed.
fn discard_input(fd: i32) -> bool {
    let mut sink = [0u8; 512];
    loop {
        match so::recv(fd, &mut sink, MsgFlags::empty()) {
            Ok(0) => return false,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return true,
            Err(_) => return false,
        }
    }
}

/// Reads what is available; `Err` when the peer closed or failed before a full request.
fn read_request(fd: i32, c: &mut AdminConn) -> Result<Parsed, ()> {
    loop {
        if c.req_len == MAX_REQUEST {
            return Ok(http::parse(&c.req));
        }
        match so::recv(fd, &mut c.req[c.req_len..], MsgFlags::empty()) {
            Ok(0) => return Err(()),
            Ok(n) => c.req_len += n,
            Err(Errno::EAGAIN) => return Ok(http::parse(&c.req[..c.req_len])),
            Err(Errno::EINTR) => {}
            Err(_) => return Err(()),
        }
    }
}

fn respond(c: &mut AdminConn, route: Route, snap: &Snapshot<'_>) {
    let head_only = c.req.starts_with(b"HEAD ");
    let mut w = SliceWriter::new(&mut c.out[HEAD_ROOM..]);
    let ctype = match route {
        Route::Page { refresh } => {
            let _ = crate::sansio::page::write_html(&mut w, snap, refresh, super::wall_ms());
            "text/html; charset=utf-8"
        }
        Route::Stats => {
            let _ = stats::write_json(&mut w, snap);
            "application/json"
        }
        Route::Metrics => {
            // the process figures cost a few reads of /proc: only this route shows them
            let snap = Snapshot { process: crate::sys::process::stats(snap.started_unix_s), ..*snap };
            let _ = stats::write_prometheus(&mut w, &snap);
            "text/plain; version=0.0.4; charset=utf-8"
        }
        Route::Health => {
            let _ = w.write_str("ok\n");
            "text/plain"
        }
        Route::Config => {
            let _ = render::write_json(&mut w, snap.cfg);
            let _ = w.write_str("\n");
            "application/json"
        }
    };
    if w.overflow {
        return respond_error(c, 500);
    }
    let len = w.len;
    let start = http::frame(&mut c.out, 200, ctype, len);
    c.out_start = start;
    c.out_end = if head_only { HEAD_ROOM } else { HEAD_ROOM + len };
}

fn respond_error(c: &mut AdminConn, status: u16) {
    let mut w = SliceWriter::new(&mut c.out[HEAD_ROOM..]);
    let _ = writeln!(w, "{} {}", status, http::reason(status));
    let len = w.len;
    c.out_start = http::frame(&mut c.out, status, "text/plain", len);
    c.out_end = HEAD_ROOM + len;
}
