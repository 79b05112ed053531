//! A bounded, checked load of short and long connections.

use super::*;

/// The longest any load runs, whatever the test does (a test normally stops it within a minute).
const LOAD_LIMIT: Duration = Duration::from_secs(240);

/// A bounded load: `short` workers each loop on new connections (send, half-close, read all,
/// compare); `long` workers each hold a stream of `chunks` checked round trips 10 ms apart.
/// Every failure (refused, reset, timeout, short or corrupt data) is counted and described.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub ok: Arc<AtomicUsize>,
    pub failed: Arc<AtomicUsize>,
    pub errors: Arc<std::sync::Mutex<Vec<String>>>,
}

pub struct LoadResult {
    pub ok: usize,
    pub failed: usize,
    pub errors: Vec<String>,
}

impl Load {
    pub fn start(port: u16, short: usize, long: usize, chunks: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for w in 0..short + long {
            let (stop, ok, failed, errors) = (stop.clone(), ok.clone(), failed.clone(), errors.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0u64;
                let t0 = Instant::now();
                // bounded in time too: a test stuck before `stop` must not load on for ever
                while !stop.load(Ordering::Relaxed) && t0.elapsed() < LOAD_LIMIT {
                    let id = (w as u64) << 32 | n;
                    n += 1;
                    let r = if w < short { short_conn(port, id) } else { long_conn(port, id, chunks) };
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            let mut v = errors.lock().unwrap();
                            if v.len() < 20 {
                                v.push(format!("worker {w} conn {n}: {e}"));
                            }
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        Load { stop, threads, ok, failed, errors }
    }

    pub fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        LoadResult {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            errors: self.errors.lock().unwrap().clone(),
        }
    }
}

fn short_conn(port: u16, id: u64) -> Result<(), String> {
    let data = payload(id, 1 + (id as usize % 7919));
    let back = small_roundtrip(port, &data).map_err(|e| format!("short: {e}"))?;
    if back.len() != data.len() {
        return Err(format!("short: truncated {} of {}", back.len(), data.len()));
    }
    if back != data {
        return Err("short: corrupted".into());
    }
    Ok(())
}

/// `echo_roundtrip` without its writer thread: a payload this small fits the socket buffers, so
/// writing it all before reading cannot block. (Thousands of short-lived threads per test make
/// qemu-user grow by gigabytes and, forking meanwhile, deadlock: seen in CI.)
fn small_roundtrip(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(data)?;
    s.shutdown(Shutdown::Write)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn long_conn(port: u16, id: u64, chunks: usize) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("long connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let data = payload(id, 4096);
    let mut back = vec![0u8; data.len()];
    for k in 0..chunks {
        s.write_all(&data).map_err(|e| format!("long write {k}: {e}"))?;
        s.read_exact(&mut back).map_err(|e| format!("long read {k}: {e}"))?;
        if back != data {
            return Err(format!("long: chunk {k} corrupted"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    s.shutdown(Shutdown::Write).map_err(|e| format!("long shutdown: {e}"))?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).map_err(|e| format!("long final read: {e}"))?;
    if !rest.is_empty() {
        return Err("long: unexpected trailing bytes".into());
    }
    Ok(())
}
