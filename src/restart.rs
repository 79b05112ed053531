//! Hot restart (stub while the core is brought up).
use nix::sys::signalfd::SignalFd;

use crate::poller::{Event, Token};
use crate::server::Server;

pub struct Restart {
    pub pid_file: Option<String>,
}

impl Restart {
    pub fn on_event(&mut self, _tok: Token, _ev: Event, _server: &mut Server) {}
    pub fn on_sighup(&mut self, _server: &mut Server, _signals: &SignalFd) {
        log::warn!("SIGHUP: hot restart is not implemented yet");
    }
    pub fn tick(&mut self, _server: &mut Server) {}
    pub fn finish(&mut self, _server: &Server) {
        if let Some(p) = &self.pid_file {
            crate::pidfile::remove_if_mine(p, std::process::id());
        }
    }
}
