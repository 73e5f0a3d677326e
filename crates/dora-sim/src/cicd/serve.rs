//! The HTTP side shared by the simulated Argo CD and Jenkins: a server on
//! `127.0.0.1` that hands every request, with what its `Authorization` carried,
//! to the simulated API ([`CicdApi`]), counts it per route template and status,
//! records it (bounded), and gives a [`CicdHandle`] to read and change the
//! served state while it runs. With the `chaos` feature, faults on purpose
//! ([`super::faults`]) sit in front of the API.
//!
//! Not here: what a request means (each API's module) and the data.

use super::super::server::{log_request, RequestCounts, RequestRecord, TokenUse};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The route template of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// What the simulated server accepts in `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>` (Argo CD).
    Bearer(String),
    /// `Authorization: Basic base64(user:token)` (Jenkins' API tokens).
    Basic {
        /// The user name.
        user: String,
        /// The user's API token.
        token: String,
    },
}

impl Credentials {
    /// What `headers` carried, compared with these credentials.
    fn check(&self, headers: &HeaderMap) -> TokenUse {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return TokenUse::Missing;
        };
        let Some((scheme, rest)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
            return TokenUse::Invalid;
        };
        let rest = rest.trim();
        let valid = match self {
            Credentials::Bearer(token) => scheme.eq_ignore_ascii_case("bearer") && rest == token,
            Credentials::Basic { user, token } => {
                scheme.eq_ignore_ascii_case("basic")
                    && base64::engine::general_purpose::STANDARD
                        .decode(rest)
                        .ok()
                        .is_some_and(|decoded| decoded == format!("{user}:{token}").as_bytes())
            }
        };
        if valid {
            TokenUse::Valid
        } else {
            TokenUse::Invalid
        }
    }
}

/// One request as a simulated API sees it.
#[derive(Debug)]
pub struct ApiRequest<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The path, still percent-encoded, without the server's context path.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// What `Authorization` carried.
    pub auth: TokenUse,
    /// The user `Authorization` named (basic authentication), when it did.
    pub user: Option<String>,
    /// `http://127.0.0.1:PORT` plus the context path: absolute URLs in answers
    /// start with it.
    pub base_url: &'a str,
}

/// A simulated API's answer.
#[derive(Debug, Clone)]
pub struct ApiReply {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: &'static str,
    /// The route template it is counted under.
    pub route: &'static str,
    /// Headers of the API's own (`X-Jenkins`, ...).
    pub headers: Vec<(&'static str, String)>,
}

/// A simulated API served by [`CicdHandle::start`].
pub trait CicdApi: Send + Sync + 'static {
    /// Answers one request (the server counts and records it).
    fn respond(&self, request: &ApiRequest<'_>) -> ApiReply;
}

/// How a simulated Argo CD or Jenkins server behaves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CicdOptions {
    /// A path every route is under (`/jenkins` for a Jenkins behind a context
    /// path); empty for the root.
    pub context_path: String,
    /// Faults to inject (none by default; with the `chaos` feature).
    #[cfg(feature = "chaos")]
    pub faults: super::faults::FaultOptions,
}

struct Counters {
    counts: RequestCounts,
    records: VecDeque<RequestRecord>,
}

pub(super) struct Shared<S> {
    state: RwLock<S>,
    credentials: RwLock<Credentials>,
    base_url: String,
    context_path: String,
    counters: Mutex<Counters>,
    #[cfg(feature = "chaos")]
    pub(super) faults: Mutex<super::faults::FaultState>,
}

impl<S> Shared<S> {
    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn auth_of(&self, headers: &HeaderMap) -> TokenUse {
        self.credentials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .check(headers)
    }
}

/// A running simulated Argo CD or Jenkins. Dropping it stops the server
/// (without waiting); [`CicdHandle::shutdown`] stops it and waits.
pub struct CicdHandle<S> {
    shared: Arc<Shared<S>>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl<S: CicdApi> CicdHandle<S> {
    /// Serves `state` on `127.0.0.1` at a free port, accepting `credentials`.
    pub async fn start(
        state: S,
        credentials: Credentials,
        options: CicdOptions,
    ) -> std::io::Result<CicdHandle<S>> {
        #[cfg(feature = "chaos")]
        options
            .faults
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let context_path = options.context_path.trim_end_matches('/').to_owned();
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            credentials: RwLock::new(credentials),
            base_url: format!("http://{addr}{context_path}"),
            context_path,
            counters: Mutex::new(Counters {
                counts: RequestCounts::default(),
                records: VecDeque::new(),
            }),
            #[cfg(feature = "chaos")]
            faults: Mutex::new(super::faults::FaultState::new(options.faults)),
        });
        let router = Router::new().fallback(handle::<S>);
        #[cfg(feature = "chaos")]
        let router = router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            super::faults::layer::<S>,
        ));
        let app = router.with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        #[cfg(feature = "chaos")]
        let task = tokio::spawn(crate::server::chaos::serve_resettable(
            listener, app, stopped,
        ));
        #[cfg(not(feature = "chaos"))]
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        });
        Ok(CicdHandle {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` plus the context path: what the collector's
    /// `api_url` or `url` points at.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts `credentials` instead from now on (the old ones are refused).
    pub fn set_credentials(&self, credentials: Credentials) {
        *self
            .shared
            .credentials
            .write()
            .unwrap_or_else(|p| p.into_inner()) = credentials;
    }

    /// Reads the served state.
    pub fn with_state<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.shared.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the served state; later requests see the change.
    pub fn with_state_mut<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.shared.state.write().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of the request counters (what the API answered; faults are
    /// counted apart).
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.counters().counts.clone()
    }

    /// The recorded requests, oldest first (at most [`crate::MAX_RECORDED_REQUESTS`]).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.counters().records.iter().cloned().collect()
    }

    /// Clears the counters and records.
    pub fn reset_counts(&self) {
        let mut counters = self.shared.counters();
        counters.counts = RequestCounts::default();
        counters.records.clear();
    }

    /// Stops accepting requests, finishes those in flight and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    #[cfg(feature = "chaos")]
    pub(super) fn shared(&self) -> &Shared<S> {
        &self.shared
    }
}

impl<S> Drop for CicdHandle<S> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The user of a basic `Authorization` header, whatever its password.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(user, _)| user.to_owned())
}

async fn handle<S: CicdApi>(State(shared): State<Arc<Shared<S>>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let method = request.method().clone();
    let auth = shared.auth_of(request.headers());
    let reply = match uri.path().strip_prefix(shared.context_path.as_str()) {
        Some(path) if path.starts_with('/') || path.is_empty() => {
            let state = shared.state.read().unwrap_or_else(|p| p.into_inner());
            state.respond(&ApiRequest {
                method: &method,
                path,
                query: uri.query(),
                auth,
                user: basic_user(request.headers()),
                base_url: &shared.base_url,
            })
        }
        _ => ApiReply {
            status: StatusCode::NOT_FOUND,
            body: b"Not Found".to_vec(),
            content_type: "text/plain;charset=utf-8",
            route: UNMATCHED_ROUTE,
            headers: Vec::new(),
        },
    };
    {
        let mut guard = shared.counters();
        let counters = &mut *guard;
        let record = RequestRecord::new(
            method.as_str(),
            &uri,
            reply.route,
            reply.status.as_u16(),
            auth,
            false,
        );
        log_request(&mut counters.counts, &mut counters.records, record);
    }
    let mut builder = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type);
    for (name, value) in &reply.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(*name, value);
        }
    }
    builder
        .body(Body::from(reply.body))
        .unwrap_or_else(|_| Response::new(Body::from("internal error")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_as_each_server_reads_them() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        let bearer = Credentials::Bearer("t0k".into());
        assert_eq!(bearer.check(&with("Bearer t0k")), TokenUse::Valid);
        assert_eq!(bearer.check(&with("Bearer t0kx")), TokenUse::Invalid);
        assert_eq!(bearer.check(&HeaderMap::new()), TokenUse::Missing);
        let basic = Credentials::Basic {
            user: "dora".into(),
            token: "t0k".into(),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode("dora:t0k");
        assert_eq!(
            basic.check(&with(&format!("Basic {encoded}"))),
            TokenUse::Valid
        );
        let other = base64::engine::general_purpose::STANDARD.encode("dora:nope");
        assert_eq!(
            basic.check(&with(&format!("Basic {other}"))),
            TokenUse::Invalid
        );
        assert_eq!(basic.check(&with("Bearer t0k")), TokenUse::Invalid);
        assert_eq!(
            basic_user(&with(&format!("Basic {other}"))).as_deref(),
            Some("dora")
        );
    }
}
