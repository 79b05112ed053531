//! Loopback upstreams (echo, silent, reset, source) and checked round trips.

use super::*;

/// What a backend does with each connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Echo everything back; FIN after the client's FIN.
    Echo,
    /// Accept and never read or write (until stopped).
    Silent,
    /// Read N bytes then reset the connection.
    ResetAfter(usize),
    /// Write 16 KiB chunks as fast as the connection takes them, never read (until stopped).
    Source,
}

/// A threaded loopback backend; stops (and closes every connection) on drop.
pub struct Backend {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    pub fn start(mode: Mode) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        Self::on(l, mode)
    }

    pub fn on(l: TcpListener, mode: Mode) -> Backend {
        Self::serve_with(l, Arc::new(AtomicBool::new(false)), move |c, stop| serve(c, mode, stop))
    }

    /// Runs `handler` on a thread per accepted connection until `stop` is set (also on drop),
    /// then waits for the handlers, which are given `stop` to finish on.
    pub fn serve_with(
        l: TcpListener,
        stop: Arc<AtomicBool>,
        handler: impl Fn(TcpStream, Arc<AtomicBool>) + Clone + Send + 'static,
    ) -> Backend {
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (st, acc) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        let (st, handler) = (st.clone(), handler.clone());
                        workers.push(std::thread::spawn(move || handler(c, st)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
                workers.retain(|w: &JoinHandle<()>| !w.is_finished());
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Backend { port, stop, accepted, thread: Some(thread) }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut c: TcpStream, mode: Mode, stop: Arc<AtomicBool>) {
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut seen = 0;
    c.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
    while !stop.load(Ordering::Relaxed) {
        if mode == Mode::Silent {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if mode == Mode::Source {
            match c.write(&buf[..16384]) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
            continue;
        }
        match c.read(&mut buf) {
            Ok(0) => {
                let _ = c.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                seen += n;
                if let Mode::ResetAfter(limit) = mode {
                    if seen >= limit {
                        let _ = nix::sys::socket::setsockopt(
                            &c,
                            nix::sys::socket::sockopt::Linger,
                            &nix::libc::linger { l_onoff: 1, l_linger: 0 },
                        );
                        return;
                    }
                    continue;
                }
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Deterministic pseudo-random payload for stream `id` (so corruption is detected, not masked).
pub fn payload(id: u64, len: usize) -> Vec<u8> {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `data` through `port`, half-closes, and returns everything read back.
pub fn echo_roundtrip(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        w.write_all(&data)?;
        w.shutdown(Shutdown::Write)
    });
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    writer.join().unwrap()?;
    Ok(out)
}
