//! The daemon's HTTP server: serves the router on a listener with hyper's HTTP/1.1
//! connection settings, so that no client can hold it open, starve it or outlast a
//! shutdown; and the graceful shutdown with a deadline.
//!
//! What a client cannot do, and which setting sees to it:
//!
//! - Hold a connection without sending a request: hyper's header-read timeout
//!   ([`HEADER_READ_TIMEOUT`]) closes a connection whose request head (line and
//!   headers) has not fully arrived that long after the connection started waiting
//!   for it, whether new or kept alive after an answer (hyper starts the timer when
//!   it waits for a head, so it is the idle keep-alive timeout too). Idle and
//!   byte-by-byte ("slowloris") connections both end there.
//! - Send huge heads: [`MAX_REQUEST_HEAD_BYTES`] (`431` beyond it).
//! - Send a body slowly, or have a request run forever: tower-http's
//!   `RequestBodyTimeoutLayer` ([`REQUEST_BODY_TIMEOUT`]) and `TimeoutLayer`
//!   ([`REQUEST_TIMEOUT`], then `503`).
//! - Use up the file descriptors: at most [`MAX_CONNECTIONS`] connections are open
//!   (fewer when the process's descriptor limit leaves less room: [`connection_cap`]).
//!   A connection beyond the cap takes the place of the oldest one that has no
//!   request in flight (an idle, slow or attacking one, which is closed), so a new
//!   client, such as Prometheus, is served at once however many idle connections are
//!   open; only when every connection is busy answering is the new one refused (closed
//!   right after it is accepted, before anything is read). The listener never meets
//!   `EMFILE` under its own connections; if the process runs out of descriptors
//!   anyway, an idle connection is closed to make room, and the error is logged at
//!   most once per [`ERROR_LOG_INTERVAL`].
//!
//! HTTP/2 is not served (hyper has no header-read or idle timeout for it); every
//! client of the daemon (Prometheus, probes, browsers on plain `http://`) speaks
//! HTTP/1.1.
//!
//! Shutdown ([`serve`]'s `shutdown` token): the listener is closed at once, every
//! connection is told to close after its current answer, and the server waits until
//! no request is in flight (a request is in flight from its head until hyper has
//! taken the whole answer), at most `grace`; then connections get up to
//! [`SHUTDOWN_FLUSH_WAIT`] to finish writing and close, and every connection still
//! open (idle, half-sent, or still answering at the deadline) is closed.
//!
//! Not here: the routes (`exporter`, `report`), what the scheduler does at shutdown
//! (`daemon`).

use axum::Router;
use http_body_util::BodyExt as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long a request's head may take to arrive, counted from when the connection
/// starts waiting for it (accepted, or done with its previous answer). Prometheus,
/// probes and browsers send a head in one write; ten seconds is slack for a slow
/// network and short for a connection that only occupies a slot.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request body may take to arrive between two of its parts (the
/// push API and webhooks read bodies, each also within a deadline of its own).
pub const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a handler may take before the client gets `503`: a backstop for a
/// request that never ends. The slowest route, `/report`, waits up to 30 s for its
/// turn and then computes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest request head (request line and headers) read; a larger one is
/// answered `431`. Real clients send well under 8 KiB.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// The most client connections open at once. Prometheus, a few probes and a few
/// people need a handful; beyond this, idle connections make room for new ones.
pub const MAX_CONNECTIONS: usize = 256;

/// File descriptors the process keeps for itself besides client connections: the
/// store (the database, its WAL and shared-memory files, for the writer, up to four
/// readers and the live report), GitHub connections, the runtime, the log, and in
/// `demo` the simulated GitHub. About 50 are used; the rest is margin.
pub const RESERVED_DESCRIPTORS: usize = 128;

/// The fewest connections allowed whatever the descriptor limit.
const MIN_CONNECTIONS: usize = 8;

/// The pause after a failed `accept` (out of descriptors, ...), so that a
/// persistent error does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// At shutdown, once no request is in flight: how long connections may take to
/// finish writing their last answer and close by themselves before the rest (idle,
/// half-sent) are closed.
const SHUTDOWN_FLUSH_WAIT: Duration = Duration::from_millis(500);

/// At most one log line per this interval for each repeated condition (refused
/// connections, failed accepts), with the count since the last line.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The connection cap under a descriptor limit of `limit` (`None`: unlimited or
/// unknown): [`MAX_CONNECTIONS`], or less when the limit leaves less room beside
/// [`RESERVED_DESCRIPTORS`].
pub fn connection_cap(limit: Option<u64>) -> usize {
    let room = limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(RESERVED_DESCRIPTORS)
    });
    MAX_CONNECTIONS.min(room).max(MIN_CONNECTIONS)
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`); `None` when
/// unlimited or unknown.
pub fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `getrlimit` writes one `rlimit` into the valid, exclusively
        // borrowed struct and reads nothing else.
        let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let soft: u64 = limit.rlim_cur;
        (result == 0 && soft != libc::RLIM_INFINITY).then_some(soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Serves `app` on `listener` until `shutdown`, then shuts down within `grace`
/// (module docs). Errors: none today (a failed accept is logged and retried);
/// the `Result` is the server task's contract.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let limit = descriptor_limit();
    let cap = connection_cap(limit);
    if cap < MAX_CONNECTIONS {
        tracing::warn!(
            descriptor_limit = limit,
            max_connections = cap,
            "the file-descriptor limit is low: at most {cap} HTTP connections at once \
             (raise it to {} for {MAX_CONNECTIONS})",
            MAX_CONNECTIONS + RESERVED_DESCRIPTORS
        );
    } else {
        tracing::debug!(
            descriptor_limit = limit,
            max_connections = cap,
            "HTTP limits"
        );
    }
    let app = app
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            REQUEST_BODY_TIMEOUT,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ));
    let connections = Connections::new(cap);
    let mut tasks = JoinSet::new();
    let mut refused = Throttled::default();
    let mut failed = Throttled::default();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Finished connections' tasks are collected as we go.
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors (or another transient failure): make room and
                // try again shortly.
                connections.evict_idle();
                if let Some(more) = failed.count(Instant::now()) {
                    tracing::warn!(%error, since_last_report = more, "cannot accept a connection");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        let Some(entry) = connections.admit() else {
            // Every connection is answering a request: refuse this one before
            // reading anything from it.
            drop(stream);
            if let Some(more) = refused.count(Instant::now()) {
                tracing::warn!(
                    max_connections = cap,
                    refused = more,
                    "refusing connections: every connection is busy"
                );
            }
            continue;
        };
        tasks.spawn(connection(stream, app.clone(), entry, shutdown.clone()));
    }
    drop(listener);
    let in_flight = connections.in_flight();
    tracing::info!(
        connections = tasks.len(),
        requests_in_flight = in_flight,
        grace_seconds = grace.as_secs_f64(),
        "the HTTP server stopped accepting; waiting for the requests in flight"
    );
    let deadline = tokio::time::Instant::now() + grace;
    let mut idle = connections.watch_in_flight();
    let drained = tokio::time::timeout_at(deadline, async {
        tokio::select! {
            // Every connection closed by itself (after its answer).
            () = join_all(&mut tasks) => {}
            // Or no request is in flight: what is left is idle, half-sent, or
            // writing out the end of an answer.
            _ = idle.wait_for(|n| *n == 0) => {}
        }
    })
    .await
    .is_ok();
    if drained {
        let flushed = deadline.min(tokio::time::Instant::now() + SHUTDOWN_FLUSH_WAIT);
        let _ = tokio::time::timeout_at(flushed, join_all(&mut tasks)).await;
    }
    let open = tasks.len();
    tasks.shutdown().await;
    if drained {
        tracing::info!(closed_idle = open, "the HTTP server has stopped");
    } else {
        tracing::warn!(
            closed = open,
            requests_in_flight = connections.in_flight(),
            "the shutdown grace period ran out; closed the connections still open"
        );
    }
    Ok(())
}

/// Waits until every task of `tasks` has finished.
async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// Serves one connection until it ends, is evicted, or shutdown has closed it
/// gracefully (after its current answer).
async fn connection(stream: TcpStream, app: Router, entry: Entry, shutdown: CancellationToken) {
    let counter = Arc::clone(&entry.connections);
    let id = entry.id;
    let service = hyper::service::service_fn(move |request| {
        let in_flight = InFlight::start(&counter, id);
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
            // In flight until hyper has taken the whole body (it drops it then).
            Ok::<_, Infallible>(response.map(|body| {
                axum::body::Body::new(body.map_err(move |error| {
                    let _in_flight = &in_flight;
                    error
                }))
            }))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_REQUEST_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = entry.evicted.cancelled() => return,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = entry.evicted.cancelled() => return,
            }
        }
    };
    if let Err(error) = result {
        // Timeouts, resets and malformed requests: the client's business.
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

/// Counts a request in flight on connection `id` while it lives.
struct InFlight {
    connections: Arc<Shared>,
    id: u64,
}

impl InFlight {
    fn start(connections: &Arc<Shared>, id: u64) -> InFlight {
        connections.request(id, 1);
        InFlight {
            connections: Arc::clone(connections),
            id,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.connections.request(self.id, -1);
    }
}

/// The open connections, oldest first, each with its requests in flight.
struct Connections {
    shared: Arc<Shared>,
    cap: usize,
}

struct Shared {
    open: Mutex<Open>,
    /// Requests in flight over every connection.
    in_flight: watch::Sender<usize>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// By accept order: the oldest first.
    by_id: BTreeMap<u64, Slot>,
}

struct Slot {
    in_flight: Arc<AtomicUsize>,
    evicted: CancellationToken,
}

/// One admitted connection; leaves the table when dropped.
struct Entry {
    id: u64,
    evicted: CancellationToken,
    connections: Arc<Shared>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.connections.lock().by_id.remove(&self.id);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Open> {
        // Every critical section leaves the table whole.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request(&self, id: u64, delta: isize) {
        if let Some(slot) = self.lock().by_id.get(&id) {
            if delta > 0 {
                slot.in_flight.fetch_add(1, Ordering::SeqCst);
            } else {
                slot.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.in_flight.send_modify(|n| {
            *n = n.saturating_add_signed(delta);
        });
    }
}

impl Connections {
    fn new(cap: usize) -> Self {
        Connections {
            shared: Arc::new(Shared {
                open: Mutex::new(Open::default()),
                in_flight: watch::Sender::new(0),
            }),
            cap,
        }
    }

    /// A slot for a new connection: a free one, or that of the oldest connection
    /// with no request in flight (which is closed). `None` when every connection
    /// is busy.
    fn admit(&self) -> Option<Entry> {
        let mut open = self.shared.lock();
        if open.by_id.len() >= self.cap && !evict_oldest_idle(&mut open) {
            return None;
        }
        let id = open.next_id;
        open.next_id += 1;
        let evicted = CancellationToken::new();
        open.by_id.insert(
            id,
            Slot {
                in_flight: Arc::new(AtomicUsize::new(0)),
                evicted: evicted.clone(),
            },
        );
        Some(Entry {
            id,
            evicted,
            connections: Arc::clone(&self.shared),
        })
    }

    /// Closes the oldest connection with no request in flight, if any.
    fn evict_idle(&self) {
        evict_oldest_idle(&mut self.shared.lock());
    }

    fn in_flight(&self) -> usize {
        *self.shared.in_flight.borrow()
    }

    fn watch_in_flight(&self) -> watch::Receiver<usize> {
        self.shared.in_flight.subscribe()
    }
}

fn evict_oldest_idle(open: &mut Open) -> bool {
    let idle = open
        .by_id
        .iter()
        .find(|(_, slot)| slot.in_flight.load(Ordering::SeqCst) == 0)
        .map(|(id, _)| *id);
    match idle.and_then(|id| open.by_id.remove(&id)) {
        Some(slot) => {
            slot.evicted.cancel();
            true
        }
        None => false,
    }
}

/// A condition that is logged at most once per [`ERROR_LOG_INTERVAL`].
#[derive(Default)]
struct Throttled {
    last_logged: Option<Instant>,
    since: u64,
}

impl Throttled {
    /// Counts one occurrence; `Some(count since the last line)` when it is time
    /// for a line.
    fn count(&mut self, now: Instant) -> Option<u64> {
        self.since += 1;
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= ERROR_LOG_INTERVAL);
        if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.since))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_process_own_descriptors() {
        assert_eq!(connection_cap(None), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(1_048_576)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(1024)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(256)), 256 - RESERVED_DESCRIPTORS);
        assert_eq!(connection_cap(Some(64)), MIN_CONNECTIONS);
    }

    #[test]
    fn a_new_connection_takes_the_place_of_the_oldest_idle_one() {
        let connections = Connections::new(2);
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        // The first is answering a request: the second, idle, makes room.
        let busy = InFlight::start(&connections.shared, first.id);
        let third = connections.admit().unwrap();
        assert!(!first.evicted.is_cancelled());
        assert!(second.evicted.is_cancelled());
        // Both busy: refused.
        let _busy_too = InFlight::start(&connections.shared, third.id);
        assert!(connections.admit().is_none());
        assert_eq!(connections.in_flight(), 2);
        drop(busy);
        assert_eq!(connections.in_flight(), 1);
        let fourth = connections.admit().unwrap();
        assert!(first.evicted.is_cancelled());
        // A connection that ends leaves its slot.
        drop(fourth);
        assert!(connections.admit().is_some());
    }

    #[test]
    fn a_repeated_condition_is_logged_once_per_interval() {
        let mut throttled = Throttled::default();
        let start = Instant::now();
        assert_eq!(throttled.count(start), Some(1));
        assert_eq!(throttled.count(start + Duration::from_secs(1)), None);
        assert_eq!(throttled.count(start + Duration::from_secs(2)), None);
        assert_eq!(throttled.count(start + ERROR_LOG_INTERVAL), Some(3));
    }
}
