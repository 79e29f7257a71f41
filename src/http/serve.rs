//! The HTTP listener: accepting connections within a descriptor budget, with deadlines that a
//! slow or idle client cannot stretch (slowloris).
//!
//! `axum::serve` has no knobs: hyper's header-read timeout needs a timer it does not set, and
//! it accepts as long as the process has descriptors, so a few hundred half-sent requests took
//! the descriptors the SMPP links, the store and the auth core need. Here a connection is
//! accepted only with a permit from a fixed pool: past the cap, new connections wait in the
//! kernel's backlog, costing this process nothing. A request head must arrive within
//! `header_read_timeout` of the connection starting to wait for it (hyper starts that clock
//! for every request, the first and each keep-alive one, so it also bounds an idle
//! connection), and a kept-alive connection with no request in flight is closed
//! `idle_timeout` after its last answer. Long-polls are requests in flight: never idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, trace, warn};

/// Descriptors kept out of the HTTP connection budget for everything else the daemon opens:
/// SMPP links, the store's files, the auth core's and webhooks' client connections, the
/// runtime's own (epoll, eventfd), stdio and the notify socket.
pub const RESERVED_DESCRIPTORS: u64 = 128;

/// After a failed `accept` (EMFILE, ENFILE, ENOBUFS), wait this long before the next: the
/// error persists until something closes, and retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ServeLimits {
    /// `max_connections` lowered, if need be, so that `RESERVED_DESCRIPTORS` stay free under
    /// the process's open-file limit `nofile` (the soft `RLIMIT_NOFILE`, if known).
    pub fn within(self, nofile: Option<u64>) -> ServeLimits {
        let Some(nofile) = nofile else { return self };
        let budget = nofile.saturating_sub(RESERVED_DESCRIPTORS).max(1);
        let cap = usize::try_from(budget).unwrap_or(usize::MAX);
        if cap < self.max_connections {
            warn!(
                configured = self.max_connections,
                allowed = cap,
                open_file_limit = nofile,
                "[http] max_connections lowered to leave descriptors for SMPP, the store and the auth core; raise LimitNOFILE to allow more"
            );
        }
        ServeLimits {
            max_connections: self.max_connections.min(cap),
            ..self
        }
    }
}

/// The soft open-file limit of this process, from `/proc/self/limits` (Linux); `None` where
/// it cannot be read or is unlimited.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `app` on `listener` until `stop`, then lets requests in flight finish and returns
/// once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "http accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        trace!(%peer, "http connection accepted");
        let connection = Connection {
            app: app.clone(),
            peer,
            idle_timeout: limits.idle_timeout,
            in_flight: Arc::default(),
            done: Arc::default(),
        };
        let http = http.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection.run(http, stream, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a permit until it ends: all of them back means all closed.
    let _ = permits
        .acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .await;
}

struct Connection {
    app: Router,
    peer: SocketAddr,
    idle_timeout: Duration,
    in_flight: Arc<AtomicUsize>,
    /// Woken when a request ends, so the idle clock restarts from then.
    done: Arc<Notify>,
}

impl Connection {
    async fn run(
        self,
        http: hyper::server::conn::http1::Builder,
        stream: tokio::net::TcpStream,
        stop: CancellationToken,
    ) {
        let app = self.app.clone();
        let peer = self.peer;
        let in_flight = self.in_flight.clone();
        let done = self.done.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            // What `into_make_service_with_connect_info` would add: the poll limits are per client.
            request.extensions_mut().insert(ConnectInfo(peer));
            let guard = InFlight::enter(in_flight.clone(), done.clone());
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(guard);
                response
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        let mut stopping = false;
        // Armed when a request ends: the time a kept-alive connection may sit unused.
        let mut idle_since: Option<Instant> = None;
        loop {
            let idle = async {
                match idle_since {
                    Some(since) => tokio::time::sleep_until(since + self.idle_timeout).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(error = %e, "http connection ended");
                    }
                    return;
                }
                _ = stop.cancelled(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = self.done.notified() => idle_since = Some(Instant::now()),
                _ = idle, if !stopping => {
                    idle_since = None;
                    if self.in_flight.load(Ordering::Acquire) == 0 {
                        // Closes at once between requests; never cuts an answer short.
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Counts a request in flight on its connection for as long as it lives.
struct InFlight {
    count: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl InFlight {
    fn enter(count: Arc<AtomicUsize>, done: Arc<Notify>) -> InFlight {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight { count, done }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.done.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize) -> ServeLimits {
        ServeLimits {
            max_connections,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_rest_of_the_daemon() {
        assert_eq!(limits(1024).within(Some(300)).max_connections, 172);
        assert_eq!(limits(1024).within(Some(8192)).max_connections, 1024);
        assert_eq!(limits(1024).within(None).max_connections, 1024);
        assert_eq!(limits(1024).within(Some(10)).max_connections, 1);
    }

    #[test]
    fn this_process_has_an_open_file_limit() {
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }
}
