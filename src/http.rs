//! The venue's one HTTP endpoint, `[network] http` (default `127.0.0.1:9880`), shared by the
//! satellites: monitoring (`/metrics`, `/livez`, `/readyz`, the dashboard at `/`), the ledger and
//! payments API (`/v1/...`, `/openapi.json`) and the market-data WebSocket (`/ws`). Each
//! satellite hands its `axum::Router` to [`HttpRoutes`]; the server runs them on a thread of its
//! own with a single-threaded tokio runtime, so HTTP work never runs on the gateway thread and
//! the gateway crate never links tokio.

use std::net::SocketAddr;
use std::thread::JoinHandle;

/// Why the HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} (network.http): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The runtime or its thread could not start.
    #[error("HTTP server: {0}")]
    Start(std::io::Error),
}

/// The routes of every satellite, merged.
#[derive(Default)]
pub struct HttpRoutes {
    router: axum::Router,
}

impl HttpRoutes {
    /// No route yet.
    pub fn new() -> HttpRoutes {
        HttpRoutes::default()
    }

    /// Adds a satellite's routes (paths must not overlap: axum refuses a duplicate at start).
    pub fn merge(mut self, routes: axum::Router) -> HttpRoutes {
        self.router = self.router.merge(routes);
        self
    }
}

/// A running HTTP endpoint; stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free one) and serves `routes` on a thread of its own.
    pub fn start(addr: SocketAddr, routes: HttpRoutes) -> Result<HttpServer, HttpError> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
        let bound = listener.local_addr().map_err(HttpError::Start)?;
        listener.set_nonblocking(true).map_err(HttpError::Start)?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(HttpError::Start)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let router = routes.router;
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("http: cannot use the bound socket: {e}");
                            return;
                        }
                    };
                    let shutdown = async {
                        let _ = stop_rx.await;
                    };
                    if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                        eprintln!("http: server stopped: {e}");
                    }
                })
            })
            .map_err(HttpError::Start)?;
        Ok(HttpServer { addr: bound, stop: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn serves_merged_routes_and_stops_when_dropped() {
        let routes = HttpRoutes::new()
            .merge(axum::Router::new().route("/a", axum::routing::get(|| async { "from a" })))
            .merge(axum::Router::new().route("/b", axum::routing::get(|| async { "from b" })));
        let server = HttpServer::start("127.0.0.1:0".parse().unwrap(), routes).unwrap();
        for (path, body) in [("/a", "from a"), ("/b", "from b")] {
            let mut s = std::net::TcpStream::connect(server.addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            assert!(text.starts_with("HTTP/1.1 200") && text.ends_with(body), "{text}");
        }
        let addr = server.addr;
        drop(server);
        assert!(std::net::TcpStream::connect(addr).is_err(), "the port is closed once dropped");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = HttpServer::start(taken.local_addr().unwrap(), HttpRoutes::new()).unwrap_err();
        assert!(err.to_string().contains("network.http"), "{err}");
    }
}
