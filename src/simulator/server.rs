//! The HTTP machinery both simulators share: a hyper HTTP/1.1 server on a tokio listener, the
//! request as the simulators see it ([`SimRequest`]), their answers ([`SimResponse`]), the
//! per-request fault injection and counters ([`Core`]), and a clock whose stamps never repeat.
//!
//! A simulator implements [`Api`]: it labels each request for the counters and answers it
//! synchronously under its own lock. Everything else (body cap, latency, 5xx, 429, closing the
//! connection before or after applying) happens here, the same way for both.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{NaiveDateTime, TimeDelta, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::SimStats;
use super::faults::{Fault, FaultState, Faults};
use crate::error::{Error, Result};

/// Largest request body read; a larger one is answered 413.
pub(crate) const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Most bytes of an oversized body read (and dropped) before answering 413: closing with
/// unread bytes makes the client's kernel see a reset instead of the answer. Beyond this the
/// connection is simply closed.
const MAX_DRAINED_BODY: usize = 16 * 1024 * 1024;

/// Locks `mutex`, recovering from a panic elsewhere: the simulators' state stays usable for
/// the assertions that follow.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request as a simulator sees it: the body already read in full.
#[derive(Debug)]
pub(crate) struct SimRequest {
    pub(crate) method: Method,
    /// The path as received (percent-encoded).
    pub(crate) path: String,
    /// Query parameters, decoded.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl SimRequest {
    /// The first value of header `name`, if it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of query parameter `name`.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments after `prefix` (compared case-insensitively when `ignore_case`),
    /// percent-decoded, empty ones dropped; `None` when the path is not below `prefix`.
    pub(crate) fn segments_below(&self, prefix: &[&str], ignore_case: bool) -> Option<Vec<String>> {
        let mut segments = self
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode);
        for expected in prefix {
            let segment = segments.next()?;
            let same = if ignore_case {
                segment.eq_ignore_ascii_case(expected)
            } else {
                segment == *expected
            };
            if !same {
                return None;
            }
        }
        Some(segments.collect())
    }
}

/// Decodes `%XX` escapes; invalid escapes and non-UTF-8 results are kept as they are.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// A simulator's answer.
#[derive(Debug, Clone)]
pub(crate) struct SimResponse {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl SimResponse {
    /// `status` with `value` as its JSON body.
    pub(crate) fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            body: Bytes::from(value.to_string()),
            headers: Vec::new(),
        }
    }

    /// `status` with `value` serialized as the JSON body.
    pub(crate) fn json_of<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                body: Bytes::from(body),
                headers: Vec::new(),
            },
            Err(error) => Self::error(
                500,
                format!("simulator could not encode its reply: {error}"),
            ),
        }
    }

    /// `status` with the body `{"error": message}`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &json!({ "error": message.into() }))
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn into_hyper(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(self.body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// Counters and fault knobs of one simulator.
///
/// Lock order, to stay free of deadlocks: a simulator's state, then the counters, then the
/// faults; never the other way round.
#[derive(Debug)]
pub(crate) struct Core {
    faults: Mutex<FaultState>,
    stats: Mutex<SimStats>,
}

impl Core {
    /// A core with `faults`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when the faults are invalid.
    pub(crate) fn new(faults: Faults) -> Result<Self> {
        faults.validate()?;
        Ok(Self {
            faults: Mutex::new(FaultState::new(faults)),
            stats: Mutex::default(),
        })
    }

    /// Replaces the faults, restarting their RNG from the new seed.
    pub(crate) fn set_faults(&self, faults: Faults) -> Result<()> {
        faults.validate()?;
        *lock(&self.faults) = FaultState::new(faults);
        Ok(())
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).faults().clone()
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, SimStats> {
        lock(&self.stats)
    }

    pub(crate) fn reset_stats(&self) {
        *lock(&self.stats) = SimStats::default();
    }
}

/// What a simulator implements: labels and answers. Both run under the simulator's own lock,
/// never across an await.
pub(crate) trait Api: Send + Sync + 'static {
    /// The counters and faults.
    fn core(&self) -> &Core;

    /// The label of `request` in [`SimStats::requests`] (and for [`Faults::endpoints`]).
    fn endpoint(&self, request: &SimRequest) -> String;

    /// The answer to `request`, applied to the state.
    fn handle(&self, request: &SimRequest) -> SimResponse;

    /// The provider's answer to an injected internal error.
    fn server_error(&self) -> SimResponse;
}

/// Why a connection was closed without a response (hyper closes it when the service fails).
#[derive(Debug)]
enum Closed {
    /// An injected fault.
    Injected,
    /// The client went away while sending its body.
    ClientGone,
    /// The client sent a body beyond every cap.
    Oversized,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Closed::Injected => "connection closed by an injected fault",
            Closed::ClientGone => "client went away",
            Closed::Oversized => "request body too large to read",
        })
    }
}

impl std::error::Error for Closed {}

/// The whole body, or `None` when it is over [`MAX_REQUEST_BODY`] (then read to its end
/// anyway, up to [`MAX_DRAINED_BODY`], so that the 413 reaches the client).
async fn read_body(mut body: Incoming) -> std::result::Result<Option<Bytes>, Closed> {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Closed::ClientGone)?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total > MAX_DRAINED_BODY {
                return Err(Closed::Oversized);
            }
            if total <= MAX_REQUEST_BODY {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok((total <= MAX_REQUEST_BODY).then(|| kept.freeze()))
}

async fn serve(
    api: Arc<dyn Api>,
    request: hyper::Request<Incoming>,
) -> std::result::Result<hyper::Response<Full<Bytes>>, Closed> {
    let (parts, body) = request.into_parts();
    let Some(body) = read_body(body).await? else {
        api.core().stats().bad_requests += 1;
        return Ok(
            SimResponse::error(413, format!("request body over {MAX_REQUEST_BODY} bytes"))
                .into_hyper(),
        );
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let request = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body,
    };
    let endpoint = api.endpoint(&request);
    let injection = {
        let core = api.core();
        let mut stats = core.stats();
        *stats.requests.entry(endpoint.clone()).or_insert(0) += 1;
        lock(&core.faults).draw(&endpoint, &mut stats.faults)
    };
    if !injection.delay.is_zero() {
        delay(injection.delay).await;
    }
    match injection.fault {
        Fault::ServerError => return Ok(api.server_error().into_hyper()),
        Fault::RateLimited { retry_after_secs } => {
            return Ok(SimResponse::error(429, "Too many requests")
                .with_header(RETRY_AFTER.as_str(), retry_after_secs.to_string())
                .into_hyper());
        }
        Fault::Reset => return Err(Closed::Injected),
        Fault::None | Fault::LostAfterApply | Fault::ServerErrorAfterApply => {}
    }
    let response = api.handle(&request);
    match injection.fault {
        Fault::LostAfterApply => Err(Closed::Injected),
        Fault::ServerErrorAfterApply => Ok(api.server_error().into_hyper()),
        _ => Ok(response.into_hyper()),
    }
}

/// A running server: the accept loop and every connection it serves, stopped together.
pub(crate) struct Server {
    addr: SocketAddr,
    task: Option<JoinHandle<Infallible>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("running", &self.task.is_some())
            .finish()
    }
}

impl Server {
    /// Binds `addr` and serves `api` on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Transport`] when the address cannot be bound.
    pub(crate) async fn start(name: &str, addr: SocketAddr, api: Arc<dyn Api>) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::transport(format!("binding the {name} simulator to {addr}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::transport(format!("reading the {name} simulator's address"), e))?;
        let task = tokio::spawn(accept_loop(listener, api));
        Ok(Self {
            addr,
            task: Some(task),
        })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address clients connect to: the bound one, with an unspecified IP (`0.0.0.0`,
    /// `::`) replaced by loopback.
    pub(crate) fn connect_addr(&self) -> SocketAddr {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        addr
    }

    /// Stops accepting and closes every open connection; returns once the loop is gone.
    pub(crate) async fn shutdown(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The only possible outcome is the cancellation just asked for.
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until aborted. The connections live in a [`JoinSet`] owned by this
/// future, so aborting it closes them too (a pooled keep-alive connection must not outlive
/// the simulator).
async fn accept_loop(listener: TcpListener, api: Arc<dyn Api>) -> Infallible {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(%error, "simulator could not accept a connection");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small JSON answers: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| serve(api.clone(), request));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::trace!(%error, "simulator connection ended");
            }
        });
    }
}

/// A clock for the simulators' timestamps: UTC now, but always at least 1 ms after the
/// previous stamp, so that a status history never has two entries at one instant.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: Option<NaiveDateTime>,
}

impl Clock {
    pub(crate) fn now(&mut self) -> NaiveDateTime {
        let now = Utc::now().naive_utc();
        // Millisecond precision: what the wire formats carry.
        let now = now
            .checked_sub_signed(TimeDelta::nanoseconds(i64::from(
                now.and_utc().timestamp_subsec_nanos() % 1_000_000,
            )))
            .unwrap_or(now);
        let stamp = match self.last {
            Some(last) if now <= last => last + TimeDelta::milliseconds(1),
            _ => now,
        };
        self.last = Some(stamp);
        stamp
    }
}

/// Waits `duration` to within tens of microseconds. tokio's timer counts whole milliseconds and
/// rounds a deadline up to the next one, and the runtime parks in whole milliseconds, so a
/// 20 ms sleep lasts 21–22 ms: 5–10 % more latency than configured, which the load harness
/// would book to the client. All but the last 2 ms are waited on tokio's timer; the rest on a
/// blocking thread, whose sleep the kernel keeps precise.
async fn delay(duration: Duration) {
    const TAIL: Duration = Duration::from_millis(2);
    let deadline = std::time::Instant::now() + duration;
    if let Some(coarse) = duration.checked_sub(TAIL) {
        tokio::time::sleep(coarse).await;
    }
    let rest = deadline.saturating_duration_since(std::time::Instant::now());
    if !rest.is_zero() {
        // A failed join (runtime shutting down) only shortens the simulated latency.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("Demo%20Product-1"), "Demo Product-1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%FF"), "%FF");
    }

    #[test]
    fn clock_never_repeats() {
        let mut clock = Clock::default();
        let stamps: Vec<_> = (0..50).map(|_| clock.now()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
        assert!(
            stamps
                .iter()
                .all(|s| s.and_utc().timestamp_subsec_nanos() % 1_000_000 == 0)
        );
    }
}
