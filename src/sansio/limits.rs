//! Every limit baton has, in one place, each with its reason, and `const` assertions for the
//! relations the code relies on. Sans-io: numbers only. The modules that use a limit re-export
//! it under its old path (`config::MAX_HOSTS` is this `MAX_HOSTS`).

// ----- Config: fixed capacities (every table is sized once, from these) (sansio/config/model.rs) -----

/// Proxy listeners per process. A gateway fronts a handful of local services; 16 keeps the
/// handoff manifest in one `SCM_RIGHTS` message with room to spare.
pub const MAX_LISTENERS: usize = 16;

/// Clusters per config: one per listener, or a few behind one listener's routes; a gateway's
/// handful of services fits, and a slot keeps its cluster index in a `u8`.
pub const MAX_CLUSTERS: usize = MAX_LISTENERS;

/// Hosts per cluster. The load balancer keeps its per-attempt exclusion set in a `u64`.
pub const MAX_HOSTS: usize = 32;

/// Listener, cluster and host names (MOSN names are short identifiers).
pub const NAME_LEN: usize = 64;

/// A unix socket path (listener or host): `sun_path` holds 108 bytes with the terminating NUL.
pub const UNIX_PATH_LEN: usize = 107;

/// Runtime directory path. `sun_path` holds 108 bytes; this leaves room for `/reconfig.sock`.
pub const PATH_LEN: usize = 90;

/// Largest config file accepted; it is read into memory once at start-up.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// Upper bound for `max_connections`: each connection costs two descriptors and two buffers.
pub const MAX_CONNECTIONS_LIMIT: u32 = 262_144;

/// Smallest per-direction buffer: below this, system calls per byte dominate.
pub const MIN_BUFFER: u32 = 1024;

/// Largest per-direction buffer (and splice pipe size): beyond 1 MiB nothing gets faster, and
/// the arena (`MAX_BUFFER_MEMORY`) fills with fewer connections.
pub const MAX_BUFFER: u32 = 1 << 20;

/// `max_draining`'s upper bound: each draining generation is a whole process (about 1 MiB
/// resident); 16 is more than any reload rate a gateway sees within a `drain_timeout`.
pub const MAX_DRAINING: u64 = 16;

/// `backlog`'s upper bound: the kernel caps `listen(2)` at `somaxconn`, 65535 at most.
pub const MAX_BACKLOG: u64 = 65_535;

/// A host's largest `weight` (MOSN's `MaxHostWeight`); weights outside 1..=128 are clamped,
/// as MOSN does.
pub const MAX_WEIGHT: u64 = 128;

/// `fail_threshold`'s upper bound: the failure count is a `u8`.
pub const MAX_FAIL_THRESHOLD: u64 = u8::MAX as u64;

// ----- Config values (sansio/config/value.rs) -----

/// Longest duration accepted (one week): keeps millisecond arithmetic far from overflow.
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;

// ----- Config text (the JSON pre-pass and serde-json-core scratch) (sansio/config/json.rs) -----

/// Deepest nesting accepted. MOSN files nest about 8 levels; the bound keeps the recursive
/// walk (and serde-json-core's, which runs afterwards) far from the stack limit.
pub const MAX_DEPTH: usize = 32;

/// Unknown keys remembered for the start-up warnings; more are counted, not named.
pub const MAX_UNKNOWN_KEYS: usize = 8;

/// Longest rendered path in an error message.
pub const PATH_TEXT_LEN: usize = 128;

/// `servers` entries: MOSN runs one server per process, and so does baton.
pub const MAX_SERVERS: usize = 1;

/// Filter chains per listener: baton proxies one chain, as MOSN's tcp_proxy samples have.
pub const MAX_CHAINS: usize = 1;

/// Filters per chain. baton proxies with the first `tcp_proxy` (as MOSN's first tcp_proxy takes
/// the whole stream); four read MOSN's chains far enough to name any other filter and refuse it.
/// With `MAX_ROUTES` and `MAX_CIDRS` this bounds the raw (pre-validation) config, which serde
/// builds on the parse thread's stack (`PARSE_STACK`).
pub const MAX_FILTERS: usize = 4;

/// Routes per `tcp_proxy` (source/destination matching, `sansio::route`). MOSN's samples have
/// one; a gateway splits its clients into a few groups. Each costs about 900 bytes per listener
/// in the raw config on the parse stack (`PARSE_STACK`).
pub const MAX_ROUTES: usize = 4;

/// Address ranges per route matcher (`SourceAddrs`, `DestinationAddrs`).
pub const MAX_CIDRS: usize = 4;

/// Ports and port ranges per route matcher (`"80,443,8000-8999"`).
pub const MAX_PORT_RANGES: usize = 8;

/// `circuit_breakers` entries read: MOSN builds its limits from the first one.
pub const MAX_THRESHOLDS: usize = 4;

/// `metrics.sinks` entries read: MOSN has one prometheus sink per process.
pub const MAX_SINKS: usize = 4;

/// Values read from the config text without serde (`config::json::CAPTURED`): per cluster a
/// health check's seven and `MAX_THRESHOLDS` circuit breakers, per sink five, per listener an
/// access log's three and `use_original_dst`, and once each the admin address (three), `pid` and the `"baton"` object
/// (seventeen); the array limits bound them, so the list never overflows.
pub const MAX_CAPTURES: usize =
    MAX_CLUSTERS * (7 + MAX_THRESHOLDS) + MAX_SINKS * 5 + MAX_LISTENERS * (3 * MAX_ACCESS_LOGS + 1) + 3 + 1 + 17;

/// Access logs per listener: one file per listener is what a gateway keeps (MOSN allows a list;
/// more than one is refused with this limit's name).
pub const MAX_ACCESS_LOGS: usize = 1;

/// Longest string with a JSON escape (`\n`, `\\`, `\u00e9`) anywhere in a config, read or
/// skipped: serde-json-core decodes each such string into a scratch buffer of this size on the
/// parse thread's stack, and refuses the whole config ("Invalid JSON") if one is longer. Covers
/// an access log format (`ACCESS_FORMAT_LEN`) and what MOSN keeps in sections baton skips (a
/// PEM certificate in a `tls_context` is 1-2 KiB).
pub const MAX_ESCAPED_STRING: usize = 4096;

/// Hot restarts the status page lists (the last ones, carried from process to process in a
/// HISTORY record).
pub const MAX_HISTORY: usize = 8;

/// Longest access log format: MOSN's default is 330 bytes.
pub const ACCESS_FORMAT_LEN: usize = 512;

/// Longest access log line; a longer one is cut (and ends in `...`).
pub const ACCESS_LINE_MAX: usize = 1024;

/// Bytes of access log lines held per file between writes (one write per event-loop turn).
/// Lines that do not fit while the file cannot take more (a full pipe) are dropped and counted.
pub const ACCESS_LOG_BUF: usize = 16 * 1024;

/// Longest address text in a route matcher: an IPv6 address with an IPv4 tail is 45 bytes.
pub const CIDR_ADDR_LEN: usize = 48;

/// Longest name, address, type or duration string in the raw config.
pub const RAW_STR_LEN: usize = 64;

/// Longest path string (runtime directory, PID file) in the raw config.
pub const PATH_STR_LEN: usize = 128;

// ----- Hot-restart wire format (sansio/codec.rs) -----

/// Record header: magic, protocol version, type, payload length (docs/hot-restart.md).
pub const HEADER_LEN: usize = 8;

/// Largest record: a full manifest batch is about 6 KiB.
pub const MAX_FRAME: usize = 16 * 1024;

/// Descriptors per record. Linux allows 253 (`SCM_MAX_FD`); batches of 64 keep each record
/// small and make batching an everyday path rather than an untested corner.
pub const MAX_FDS_PER_MSG: usize = 64;

/// Longest name or text carried (listener names are `NAME_LEN`).
pub const TEXT_LEN: usize = 64;

/// Connections per transfer batch: two sockets each fill a record's `MAX_FDS_PER_MSG`
/// descriptors (splice mode adds four pipe ends per connection, see `fds_per_conn`).
pub const MAX_CONNS_PER_BATCH: usize = MAX_FDS_PER_MSG / 2;

/// Buffered bytes carried by one `Data` record (a frame less its header and fields).
pub const MAX_DATA: usize = MAX_FRAME - HEADER_LEN - 4;

/// Hosts per `Health` record: each takes at most 1 + 64 (cluster) + 109 (a unix path) + 12
/// bytes, so 64 fit in `MAX_FRAME` with room.
pub const MAX_HEALTH_PER_MSG: usize = 64;

/// Hosts a predecessor may report down at a hot restart: every host of every cluster, at most.
pub const MAX_HEALTH_HOSTS: usize = MAX_CLUSTERS * MAX_HOSTS;

// ----- Admin requests and responses (sansio/http.rs) -----

/// Largest request accepted; curl and Prometheus send about 100-250 bytes.
pub const MAX_REQUEST: usize = 2048;

/// Room reserved in front of a body for the status line and headers.
pub const HEAD_ROOM: usize = 192;

// ----- Relaying (sansio/conn.rs) -----

/// Reads per flow in one `pump`: a stream at full speed would otherwise keep its socket
/// readable and hold the one event loop thread for as long as it lasts (213 ms per wake-up
/// was measured). With 16 KiB buffers this is 128 KiB per flow per turn, a few tens of
/// microseconds; the caller re-queues a connection that still has work (`has_work`), since
/// edge-triggered epoll will not report it again.
pub const READS_PER_PUMP: u32 = 8;

// ----- Moving connections (sansio/portable.rs) -----

/// Longest cluster name carried (listener and cluster names are at most `config::NAME_LEN`).
pub const NAME_TEXT: usize = 64;

/// The most descriptors one connection holds (splice mode).
pub const MAX_FDS_PER_CONN: usize = 6;

// ----- The event loop (server/mod.rs) -----

/// Timer resolution: connect, idle, admin and drain deadlines are checked this often.
pub const TICK_MS: u64 = 250;

/// Descriptors needed besides two per connection: listeners, admin, epoll, signalfd,
/// control sockets, the lock, stdio, and slack for a handoff in progress.
pub const FD_OVERHEAD: u64 = 64 + MAX_LISTENERS as u64;

/// Largest buffer arena (`max_connections × 2 × buffer_size`) baton reserves.
pub const MAX_BUFFER_MEMORY: u64 = 1 << 30;

// ----- The admin endpoint (server/admin.rs) -----

/// Admin connections served at once. When all are taken, a new one evicts the oldest that is
/// idle or still sending its request (a client that holds a slot without asking cannot lock
/// the endpoint out); only when every slot is mid-response is the new one closed.
pub const MAX_ADMIN_CONNS: usize = 4;

/// Largest response: `/stats` with every listener and host at their limits is about 80 KiB.
pub const MAX_RESPONSE: usize = 128 * 1024;

/// A client must send its request and read the answer within this time (slowloris guard).
pub const ADMIN_TIMEOUT_MS: u64 = 5_000;

/// The admin listener's `listen(2)` backlog: connections beyond the slots wait here briefly
/// (each new one evicts an idle slot, see `MAX_ADMIN_CONNS`).
pub const ADMIN_BACKLOG: u32 = 64;

// ----- epoll (sys/poller.rs) -----

/// Events taken per `epoll_wait`; more wait for the next call, nothing is lost.
pub const EVENTS_PER_WAIT: usize = 256;

// ----- Pipes (splice mode) (sys/net.rs) -----

/// A pipe's capacity unless set otherwise (pipe(7)).
pub const PIPE_DEFAULT_BYTES: usize = 64 * 1024;

// ----- Start-up stacks (config_file.rs) -----

/// Stack for `load`'s parsing thread: serde-json-core builds the raw config (about 124 KiB,
/// mostly `MAX_LISTENERS` x `MAX_ROUTES` routes) by value and moves it through many frames; the
/// largest config overflows 2 MiB and parses in 4 MiB with the dev profile, so 8 MiB leaves a
/// margin. Only the pages touched become resident, and only while the thread lives;
/// `config::parse::tests::largest_config_parses_on_parse_stack` checks it.
pub const PARSE_STACK: usize = 8 << 20;

// ----- Files (restart/pidfile.rs) -----

/// Temporary names tried before giving up (another user may have taken the predictable ones
/// in a shared sticky directory, where they cannot be removed).
pub const TMP_ATTEMPTS: u32 = 8;

// ----- Hot-restart channel (restart/channel.rs) -----

/// The most descriptors Linux passes in one message (include/net/scm.h); more is EINVAL at
/// the sender.
pub const SCM_MAX_FD: usize = 253;

// ----- Hot restart, old side (restart/mod.rs) -----

/// How often the owner checks that its runtime directory's files still exist.
pub const RUNDIR_CHECK_MS: u64 = 2_000;

/// How long a refused peer's HELLO is waited for before it is answered anyway (a HELLO is
/// sent right after connecting, so this only matters for a peer that says nothing).
pub const REFUSE_WAIT_MS: u64 = 200;

/// Refused peers waiting for their answer at once; more are answered immediately. A handful
/// covers an init system retrying; a flood costs nothing but immediate answers.
pub const MAX_REFUSING: usize = 8;

// ----- Socket activation (activation.rs) -----

/// At most this many descriptors are taken: every listener plus the admin listener.
pub const MAX_ACTIVATED: usize = crate::sansio::config::MAX_LISTENERS + 1;

// ----- Fault injection (test builds only) (fault.rs) -----

/// How long a `pause` fault stalls: long enough for a test to act, short of handoff_timeout.
pub const PAUSE_MS: u64 = 2_000;

// ----- Start-up stacks (main.rs) -----

/// Stack for the start-up thread (config parsing, takeover, binding).
pub const STARTUP_STACK: usize = 8 << 20;

/// Longest `baton status` answer: what the admin's `/stats` may be (`MAX_RESPONSE`). The
/// control connection's send buffer is raised to hold it, so it goes out without waiting.
pub const STATUS_MAX: usize = MAX_RESPONSE;

/// How long `baton reload` waits for the outcome beyond the config's `handoff_timeout` (the
/// re-executed process's start: reading the config, binding new listeners).
pub const RELOAD_GRACE_MS: u64 = 10_000;

/// How long `baton stop` waits beyond the drain deadline for the processes to exit.
pub const STOP_GRACE_MS: u64 = 5_000;

/// How long the child of a SIGHUP waits to learn whether the parent's `execve` worked (the
/// parent writes a byte on failure; the pipe closes on success). An exec takes milliseconds.
pub const EXEC_CONFIRM_MS: u64 = 5_000;

/// Page size assumed by the `pipe-pages` fault (test builds): pipes are sized in pages.
pub const FAULT_PAGE_BYTES: usize = 4096;

/// Deepest directory tree walked when checking a runtime directory's real ancestors (`PATH_LEN`
/// bytes cannot name more levels, whatever links led there).
pub const MAX_ANCESTORS: usize = 64;

/// First read of a config file: most are under 4 KiB; it grows to `MAX_CONFIG_BYTES` at most.
pub const CONFIG_READ_START: usize = 4096;

// ----- Relations the code relies on -----

const _: () = assert!(MAX_HOSTS <= 64, "the LB exclusion set (tried hosts) is a u64 bitmask");
const _: () = assert!(MAX_HOSTS < u8::MAX as usize, "a slot's host index is a u8 and u8::MAX means no host");
const _: () = assert!(MAX_LISTENERS <= u8::MAX as usize, "a slot's listener index is a u8");
const _: () = assert!(MAX_CLUSTERS <= u8::MAX as usize, "a slot's cluster index is a u8");
const _: () = assert!(
    HEADER_LEN + 1 + MAX_HEALTH_PER_MSG * (1 + TEXT_LEN + 2 + UNIX_PATH_LEN + 3 + 8 + 1) <= MAX_FRAME,
    "a full Health record fits in a frame"
);
const _: () = assert!(PATH_LEN + "/reconfig.sock".len() < 108, "sun_path is 108 bytes");
const _: () = assert!(PATH_LEN <= PATH_STR_LEN, "a valid path fits the raw config's string");
const _: () = assert!(NAME_LEN <= RAW_STR_LEN, "a valid name fits the raw config's string");
const _: () =
    assert!(HEADER_LEN + 1 + MAX_HISTORY * (8 + 1 + 1 + TEXT_LEN) <= MAX_FRAME, "a HISTORY record fits a frame");
const _: () = assert!(NAME_LEN <= NAME_TEXT && NAME_LEN <= TEXT_LEN, "names travel whole in handoff records");
const _: () = assert!(MAX_CONNS_PER_BATCH <= 64, "TAKEN's mask is a u64, one bit per connection of a batch");
const _: () = assert!(MAX_CONNS_PER_BATCH * 2 <= MAX_FDS_PER_MSG, "a batch's sockets fit one record");
const _: () = assert!(MAX_FDS_PER_MSG <= SCM_MAX_FD, "the kernel passes at most SCM_MAX_FD per message");
const _: () = assert!(MAX_FDS_PER_MSG >= MAX_FDS_PER_CONN, "one connection's descriptors fit one record");
const _: () = assert!(MAX_LISTENERS + 4 <= MAX_FDS_PER_MSG * 4, "a manifest fits a few batches");
const _: () = assert!(MAX_DATA + HEADER_LEN + 4 <= MAX_FRAME, "a DATA record fits a frame");
const _: () = assert!(MAX_BUFFER <= u32::MAX / 2, "flow offsets are u32");
const _: () = assert!(MAX_CONNECTIONS_LIMIT as u64 <= u32::MAX as u64, "slot indices travel in 32-bit tokens");
const _: () = assert!(MAX_REQUEST + HEAD_ROOM < MAX_RESPONSE, "an error response fits the response buffer");
const _: () = assert!(REFUSE_WAIT_MS < TICK_MS * 4, "a refused peer is answered within a few ticks");
const _: () = assert!(MAX_CONFIG_BYTES >= CONFIG_READ_START, "the first read is no larger than the limit");
