//! The process's main loop: the server's events plus signals (through `signalfd(2)`) and the
//! hot-restart sockets. One thread; no work happens in signal handlers.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::restart::{Request, Restart};
use crate::server::{Kind, Token};
use crate::server::{Mode, Server};
use crate::sys::poller::Event;

/// Signals baton handles; they are blocked and read from a signalfd.
pub fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGHUP, Signal::SIGCHLD, Signal::SIGUSR1] {
        s.add(sig);
    }
    s
}

/// Blocks the handled signals in the calling thread (threads it starts inherit the mask).
pub fn block_signal_mask() -> Result<(), Errno> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled_signals()), None)
}

/// Blocks the handled signals and ignores SIGPIPE (writes use MSG_NOSIGNAL anyway).
pub fn block_signals() -> Result<SignalFd, Errno> {
    let set = handled_signals();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    crate::sys::ignore_sigpipe();
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Registers the signalfd with the server's poller.
pub fn watch_signals(server: &Server, signals: &SignalFd) -> Result<(), Errno> {
    server.poller().add_read(signals, Token::new(Kind::Signal, 0))
}

pub struct Runtime {
    pub server: Server,
    pub signals: SignalFd,
    pub restart: Restart,
}

impl Runtime {
    /// Boxed: the server's fixed-capacity tables make it tens of KiB, which belong on the heap
    /// rather than in the long-running thread's stack.
    /// `signals` must already be registered with `watch_signals` (a fallible step, done before
    /// a takeover's ack).
    pub fn new(server: Server, signals: SignalFd, restart: Restart) -> Box<Self> {
        Box::new(Runtime { server, signals, restart })
    }

    /// Runs until the server stops. Returns the process exit code.
    pub fn run(&mut self) -> i32 {
        loop {
            let n = match self.server.poll() {
                Ok(n) => n,
                Err(e) => {
                    log::error!("event loop failed: {}", e.desc());
                    return 1;
                }
            };
            for i in 0..n {
                if let Some(ev) = self.server.handle(i) {
                    self.foreign(ev);
                }
            }
            match self.restart.take_request() {
                Some(Request::Reload(client)) => {
                    self.reload(Some(client));
                }
                Some(Request::Stop { now, client }) => {
                    // not in the middle of a handoff accepted in the same loop turn
                    if self.server.mode() == Mode::Serving && self.restart.idle() {
                        self.restart.stop_answer(client, now, self.server.cfg().settings.drain_timeout_ms);
                        self.stop(now);
                    } else {
                        crate::restart::reply(client, format_args!("busy: a hot restart or stop is under way; retry"));
                    }
                }
                None => {}
            }
            self.server.after_events();
            self.restart.tick(&mut self.server);
            if self.server.mode() == Mode::Stopped {
                self.restart.finish();
                let t = &self.server.transfer();
                log::info!(
                    "stopped (pid {}): {} connections handed to the successor, {} kept, {} ended while draining",
                    std::process::id(),
                    t.sent,
                    t.kept,
                    t.drained
                );
                return 0;
            }
        }
    }

    fn foreign(&mut self, ev: Event) {
        let Some(tok) = Token::decode(ev.token) else { return };
        match tok.kind {
            Kind::Signal => self.signals(),
            _ => self.restart.on_event(tok, &mut self.server),
        }
    }

    fn signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM | Signal::SIGINT) => self.stop(true),
                Ok(Signal::SIGQUIT) if self.server.mode() == Mode::Serving => self.stop(false),
                Ok(Signal::SIGHUP) => {
                    // the forked child reads its signals from a new signalfd from now on
                    let forked_child = self.reload(None);
                    if forked_child {
                        return;
                    }
                }
                Ok(Signal::SIGCHLD) => reap(),
                // logrotate's convention: the access log files are opened anew, by name
                Ok(Signal::SIGUSR1) => match crate::logfiles::open(self.server.cfg()) {
                    Ok(logs) => {
                        self.server.set_access_logs(logs);
                        log::info!("SIGUSR1: access logs opened again");
                    }
                    Err(e) => log::error!("SIGUSR1: {e}; writing on to the files open now"),
                },
                _ => {}
            }
        }
    }

    /// SIGTERM, SIGINT, `baton stop --now` (`now`): close every connection and exit, and tell
    /// the draining generations to do the same. SIGQUIT, `baton stop`: stop accepting, drain
    /// for at most `drain_timeout`, exit; draining generations finish their own drains.
    fn stop(&mut self, now: bool) {
        // only the serving process speaks for the service; a draining old generation told to
        // stop (max_draining) must not make it look stopped
        if self.server.mode() == Mode::Serving {
            crate::notify::stopping();
            if now {
                self.restart.stop_predecessors();
            }
        }
        if now {
            log::info!("stopping: closing listeners and {} connections", self.server.active());
            self.server.close_all();
            self.server.start_draining(0);
            self.server.set_mode(Mode::Stopped);
        } else {
            log::info!("graceful stop requested");
            self.server.start_draining(self.server.cfg().settings.drain_timeout_ms);
        }
    }

    /// SIGHUP or `baton reload` (`client`): a hot restart in place. `true` in the forked child
    /// that serves on as the old generation (its signalfd is renewed here).
    fn reload(&mut self, client: Option<std::os::fd::OwnedFd>) -> bool {
        let forked_child = self.restart.on_sighup(&mut self.server, client);
        if forked_child {
            self.renew_signalfd();
        }
        forked_child
    }
}

impl Runtime {
    /// In a forked child: a signalfd inherited from the parent would wake the parent's epoll
    /// wait queue, not ours, so open a new one and register it instead.
    fn renew_signalfd(&mut self) {
        self.server.poller().delete(&self.signals);
        match SignalFd::with_flags(&handled_signals(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => {
                if self.server.poller().add_read(&fd, Token::new(Kind::Signal, 0)).is_err() {
                    log::error!("cannot register signals after fork; stop this process with SIGKILL");
                }
                self.signals = fd;
            }
            Err(e) => log::error!("cannot create a signalfd after fork: {}", e.desc()),
        }
    }
}

/// Collects exited children (old generations forked by SIGHUP) so none stays a zombie.
fn reap() {
    while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        match st {
            WaitStatus::StillAlive => break,
            WaitStatus::Exited(pid, code) => {
                log::debug!("previous generation {pid} exited with {code}")
            }
            WaitStatus::Signaled(pid, sig, _) => {
                log::debug!("previous generation {pid} ended by {sig}")
            }
            _ => {}
        }
    }
}
