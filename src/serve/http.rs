//! The HTTP side of `serve`: the server and its handler threads, the checks
//! every request passes before a route sees it (host, origin, body size and
//! deadline), and the parsing of URLs and queries. What each route answers
//! is [`super::api`]'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::json;

use super::api::route;
use super::{Source, State, HANDLERS, MAX_BODY, MAX_CONNECTIONS, MAX_PER_PAGE};

/// A 4xx/5xx answer: `{"error": message}`.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    /// The methods a 405 names in its `Allow` header, as HTTP requires.
    pub allow: Option<&'static str>,
    /// Whether the answer ends its connection: a request body given up half
    /// read leaves bytes that are no request.
    pub close: bool,
}

pub(super) fn err(status: u16, message: impl Into<String>) -> HttpError {
    HttpError {
        status,
        message: message.into(),
        allow: None,
        close: false,
    }
}

/// 405 for a route that takes only `allow`.
pub(super) fn not_allowed(message: impl Into<String>, allow: &'static str) -> HttpError {
    HttpError {
        allow: Some(allow),
        ..err(405, message)
    }
}

/// A successful answer.
pub struct Reply {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

pub(super) fn json_reply(v: &impl Serialize) -> Reply {
    Reply {
        content_type: "application/json",
        // Plain numbers and strings: serializing cannot fail.
        body: serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// A running server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    addr: SocketAddr,
    handlers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Answer requests until the process ends.
    pub fn wait(self) {
        for h in self.handlers {
            let _ = h.join();
        }
    }

    /// Stop listening; the handler threads end.
    pub fn stop(self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..HANDLERS {
            self.http.unblock();
        }
        for h in self.handlers {
            let _ = h.join();
        }
    }
}

/// File descriptors a served connection holds: its socket and the
/// library's two clones of it, for reading and for writing (counted in
/// `/proc/PID/fd`, idle and uploading alike).
const FDS_PER_CONNECTION: u64 = 3;

/// File descriptors kept for the process's own use beside its connections:
/// `train --serve` holds 8 while it trains (standard streams, the listener,
/// the signal thread's), and a checkpoint, model or log being written a
/// few more.
const FDS_KEPT: u64 = 32;

/// Connections served at once: [`MAX_CONNECTIONS`], or fewer where the
/// open-file limit (`ulimit -n`) would not leave [`FDS_KEPT`] descriptors
/// beside them, so that clients of the page cannot cost a training run
/// the files it writes (at `ulimit -n 512`, 256 held connections once
/// left it none for its model). `None`: no limit.
pub fn connection_cap(open_files: Option<u64>) -> usize {
    let most = MAX_CONNECTIONS as u64;
    open_files.map_or(MAX_CONNECTIONS, |n| {
        (n.saturating_sub(FDS_KEPT) / FDS_PER_CONNECTION).clamp(1, most) as usize
    })
}

/// The soft limit on open files (`ulimit -n`); `None` where there is none.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The least a connection can be served with: its socket and the second
/// handle the library reads it through (the third, [`FDS_PER_CONNECTION`],
/// only ends a connection early).
const FDS_LEAST: u64 = 2;

/// Descriptor numbers below the limit `n` that are free now (where
/// `/proc/self/fd` tells): a new descriptor takes the lowest free number,
/// which must be below the limit, so one inherited above it (a parent's
/// pipe at 251) takes no room. None where none was left to list them with.
fn free_descriptors(n: u64) -> Option<u64> {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(fds) => {
            let below = fds
                .filter_map(|f| f.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .filter(|&fd| fd < n)
                .count() as u64;
            // Less the one that lists them, itself below the limit.
            Some(n.saturating_sub(below.saturating_sub(1)))
        }
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => Some(0),
        Err(_) => None,
    }
}

/// Connections a browser may open to one page at once.
const BROWSER_CONNECTIONS: usize = 6;

/// Listen on `host:port` (0: any free port) and answer on [`HANDLERS`] threads.
pub fn start(host: &str, port: u16, state: Arc<State>) -> Result<Server> {
    let host = bare_host(host);
    let open_files = open_file_limit();
    let cap = connection_cap(open_files);
    let http = tiny_http::Server::http_capped((host, port), cap).map_err(|e| {
        use std::io::ErrorKind;
        let kind = e.downcast_ref::<std::io::Error>().map(|e| e.kind());
        // Its accept thread did not start (a bind never says these).
        if let Some(ErrorKind::WouldBlock | ErrorKind::OutOfMemory) = kind {
            return anyhow::anyhow!(
                "cannot start the server's threads: {e}; {}",
                crate::error::THREADS_FIX
            );
        }
        let fix = match kind {
            Some(ErrorKind::AddrInUse) => "choose another port (or stop what uses this one)",
            Some(ErrorKind::PermissionDenied) => {
                "ports below 1024 need privileges; choose a port of 1024 or more"
            }
            // A name that does not resolve, or an address not of this machine.
            _ => "check --host: a name or address of this machine, e.g. 127.0.0.1",
        };
        anyhow::anyhow!("cannot listen on {host}:{port}: {e}; {fix}")
    })?;
    // A limit that leaves no room for one connection beside the
    // descriptors the process holds (`ulimit -n 6` or 7 for `serve`): the
    // page's every request would hang (no descriptor to accept it with) or
    // be reset (none for the second handle on its socket), after a warning
    // of room for one.
    if let Some((n, free)) = open_files.and_then(|n| Some((n, free_descriptors(n)?))) {
        if free < FDS_LEAST {
            anyhow::bail!(
                "the open-file limit (ulimit -n {n}) leaves no room for a page connection: {free} of its descriptors {} free beside the process's own, and a connection needs {FDS_LEAST}; raise it (ulimit -n 1024)",
                if free == 1 { "is" } else { "are" }
            );
        }
    }
    if let (Some(n), true) = (open_files, cap < BROWSER_CONNECTIONS) {
        crate::error::eprint_line(&format!(
            "simplenn: warning: the open-file limit (ulimit -n {n}) leaves room for {cap} page connection{} at once, fewer than the {BROWSER_CONNECTIONS} a browser opens, so the page may be slow; raise it (ulimit -n 1024)",
            if cap == 1 { "" } else { "s" }
        ));
    }
    let addr = http
        .server_addr()
        .to_ip()
        .context("the server has no IP address")?;
    let http = Arc::new(http);
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Only a page on a loopback address can tell which names are its own:
    // the loopback ones, and the --host it was given.
    let guard = is_loopback(addr.ip()).then(|| Arc::new((addr, host.to_ascii_lowercase())));
    // Each thread allocates once before `start` returns, as the worker
    // pool's do: the C library then gives it its malloc arena (64 MiB of
    // address space, under `ulimit -v`), so that `train --serve`'s memory
    // estimate, made after this, sees them all every time (it saw those
    // that happened to have started, and refused one run of a command
    // and let the next one through).
    let (ready, started) = std::sync::mpsc::channel::<()>();
    let handlers = (0..HANDLERS)
        .map(|i| {
            let (http, state, stopping) = (http.clone(), state.clone(), stopping.clone());
            let guard = guard.clone();
            let ready = ready.clone();
            std::thread::Builder::new()
                .name(format!("simplenn-http-{i}"))
                .spawn(move || {
                    drop(std::hint::black_box(Box::new(0u8)));
                    let _ = ready.send(());
                    // Now, not when the loop below ends with the server:
                    // `start` waits until every sender is gone.
                    drop(ready);
                    serve_requests(&http, &state, &stopping, guard)
                })
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot start a server thread: {e}; {}",
                        crate::error::THREADS_FIX
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    drop(ready);
    // A thread that ended first dropped its sender: no wait for it.
    while started.recv().is_ok() {}
    Ok(Server {
        http,
        stopping,
        addr,
        handlers,
    })
}

/// A page thread's loop: take each request the server accepts and answer
/// it, until the server stops.
fn serve_requests(
    http: &tiny_http::Server,
    state: &Arc<State>,
    stopping: &std::sync::atomic::AtomicBool,
    guard: Option<Arc<(SocketAddr, String)>>,
) {
    loop {
        match http.recv() {
            // A body may trickle in for up to BODY_DEADLINE (and a last
            // read's 10 s timeout): it is read on a thread of its own, so
            // slow uploads hold none of the threads that answer the page
            // (at most one per connection: its next request waits for
            // this answer). Should the thread not start, the dropped
            // request gets the library's 500.
            Ok(req) if carries_body(&req) => {
                let (state, guard) = (state.clone(), guard.clone());
                let _ = std::thread::Builder::new()
                    .name("simplenn-upload".into())
                    .spawn(move || answer(&state, req, guard.as_deref()));
            }
            Ok(req) => answer(state, req, guard.as_deref()),
            // A failed accept (e.g. out of file descriptors) is that
            // connection's loss, not this thread's end.
            Err(_) if !stopping.load(std::sync::atomic::Ordering::SeqCst) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
}

/// `host` without the brackets a URL puts around an IPv6 address (`[::1]`
/// is `::1`), which the system's resolver does not take.
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Why an API request that a page of another site made is refused (`None`
/// for the page's own, and for those of curl and scripts, which send
/// neither header): its `Origin` is not the origin of the page it asks
/// (`http://` and its `Host`), or the browser marks it `Sec-Fetch-Site:
/// cross-site` or `same-site` (a page on another port of this machine).
/// No answer could be read there (the server sends no CORS headers), but
/// the asking alone would make the server decode images and score the test
/// set for any site the user visits. The page itself (`/`, its assets)
/// stays open to links from anywhere.
fn cross_site(req: &tiny_http::Request) -> Option<String> {
    let header = |name: &'static str| {
        req.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().trim().to_ascii_lowercase())
    };
    // A request line in absolute form (`POST http://HOST/api/…`) names the
    // page's host and path itself, as in `host_is_local` and `route`.
    let (host, url) = match absolute_form(req.url()) {
        Some((authority, path)) => (authority.to_ascii_lowercase(), path),
        None => (header("Host").unwrap_or_default(), req.url().to_string()),
    };
    // The path `route` will serve (`/%61pi/predict` is `/api/predict`),
    // not the one typed, or an escape would walk past this check.
    let path = unreserved_decoded(url.split('?').next().unwrap_or_default());
    if !path.starts_with("/api/") {
        return None;
    }
    let refused = |from: &str| {
        format!("{path}: requests from pages of other sites ({from}) are refused; open this page itself and use it there")
    };
    // A browser that says where the request comes from is believed: under
    // a no-referrer policy it sends the page's own POSTs with `Origin:
    // null`, which the check below would refuse.
    match header("Sec-Fetch-Site").as_deref() {
        Some(site @ ("cross-site" | "same-site")) => {
            return Some(refused(&format!("Sec-Fetch-Site: {site}")))
        }
        Some("same-origin" | "none") => return None,
        _ => {}
    }
    let origin = header("Origin")?;
    (origin != format!("http://{host}"))
        .then(|| refused(&format!("Origin: {}", crate::show::one_line(&origin))))
}

/// Whether a request announces a body (of any length, or chunked).
fn carries_body(req: &tiny_http::Request) -> bool {
    req.body_length().is_some_and(|n| n > 0)
        || req
            .headers()
            .iter()
            .any(|h| h.field.equiv("Transfer-Encoding") || h.field.equiv("Content-Length"))
}

/// Whether the address the server listens on only reaches this machine
/// (judged by the address bound, not the name typed: `127.1`, `LOCALHOST`,
/// `::ffff:127.0.0.1` and a host name that resolves to 127.0.0.1 all are).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        v4 => v4.is_loopback(),
    }
}

/// The warning printed when the page is reachable from other machines.
pub fn exposed_warning(host: &str) -> String {
    format!(
        "simplenn: warning: serving on {host}, reachable from other machines; the page has no authentication, anyone who can reach it can use it and read the test set; pass --host 127.0.0.1 (the default) to keep it on this machine"
    )
}

/// Whether a request's `Host` header names this machine's loopback
/// (`localhost`, `127.0.0.1`, `[::1]`, with any port) or is `typed`, the
/// `--host` the server was started with: a page on a loopback address
/// answers nothing else, so that a web site whose name was made to resolve
/// to 127.0.0.1 (DNS rebinding) cannot use it from the browser. A request
/// line in absolute form (`GET http://HOST/…`) is judged by its URL's
/// host instead. An HTTP/1.0 request without `Host` is let through (an
/// HTTP/1.1 one is refused before, by [`host_count_error`]).
fn host_is_local(req: &tiny_http::Request, typed: &str) -> bool {
    // A request line in absolute form names its host itself, and the Host
    // header is then ignored (RFC 9112, 3.2.2).
    let host = match absolute_form(req.url()) {
        // User information (`user@host`) is no part of a loopback name,
        // and could hide one behind another: refused below.
        Some((authority, _)) => authority.to_ascii_lowercase(),
        None => {
            let mut hosts = req.headers().iter().filter(|h| h.field.equiv("Host"));
            let (Some(host), None) = (hosts.next(), hosts.next()) else {
                // None (HTTP/1.0), or two, which a proxy may read either
                // way: judged as one that is not ours.
                return req.headers().iter().all(|h| !h.field.equiv("Host"));
            };
            host.value.as_str().trim().to_ascii_lowercase()
        }
    };
    if host.contains('@') {
        return false;
    }
    // Drop a port: after the `]` of an IPv6 literal (nothing else may
    // follow it), or after the only `:`.
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, "")) => v6,
            Some((v6, port)) if port.starts_with(':') => v6,
            _ => return false,
        },
        None => match host.matches(':').count() {
            1 => host.split(':').next().unwrap_or_default(),
            _ => &host,
        },
    };
    // A fully qualified name may end with a dot.
    let name = name.strip_suffix('.').unwrap_or(name);
    name == "localhost" || name == typed || name.parse::<std::net::IpAddr>().is_ok_and(is_loopback)
}

/// The port of a `Host` value, as written (`8080` in `127.0.0.1:8080` and
/// `[::1]:8080`; empty in `localhost:`, which RFC 3986 allows), or `None`
/// where it names none (`localhost`, or `::1` with more than one `:`).
fn host_port(host: &str) -> Option<&str> {
    match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.1.strip_prefix(':'),
        None if host.matches(':').count() == 1 => host.split_once(':').map(|(_, p)| p),
        None => None,
    }
}

/// HTTP/1.1 requires one `Host` header in every request (RFC 9112, 3.2:
/// a server "MUST respond with a 400" to a request that lacks it or has
/// more than one); HTTP/1.0 may leave it out. Two could name two hosts,
/// read one way here and another by a proxy in front; so with the headers
/// the cross-site check reads (only the first would be checked).
fn host_count_error(req: &tiny_http::Request) -> Option<HttpError> {
    let count = |name: &'static str| req.headers().iter().filter(|h| h.field.equiv(name)).count();
    let twice = ["Host", "Origin", "Sec-Fetch-Site"]
        .into_iter()
        .map(|name| (name, count(name)))
        .find(|&(_, n)| n > 1);
    // The ports a request names: its Host header's, and its URL's in
    // absolute form (after any user information, `user:pass@`, which is no
    // port: `host_is_local` refuses it); each must be a number.
    let header = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .and_then(|h| host_port(h.value.as_str().trim()));
    let url = absolute_form(req.url()).and_then(|(authority, _)| {
        host_port(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
    });
    // Digits only (`+1` parses as a u16), of a port that can be (RFC 3986
    // allows an empty one).
    let not_number = |p: &Option<&str>| {
        p.is_some_and(|p| {
            !p.bytes().all(|b| b.is_ascii_digit()) || !(p.is_empty() || p.parse::<u16>().is_ok())
        })
    };
    let (named, port) = match not_number(&url) {
        true => ("URL", url),
        false => ("Host header", header),
    };
    let message = match (count("Host"), twice) {
        (_, Some((name, n))) => format!("the request has {n} {name} headers; send one"),
        (0, None) if *req.http_version() >= (1, 1) => {
            "the request has no Host header (required in HTTP/1.1); send the page's address in one (Host: 127.0.0.1:PORT)".to_string()
        }
        // An invalid value (RFC 9112 3.2: 400 too): `localhost:abc` would
        // otherwise pass for localhost.
        _ if not_number(&port) => format!(
            "the request's {named} has the port \"{}\", which is not a port number (0 to 65535); send the page's address (Host: 127.0.0.1:PORT)",
            crate::show::one_line(port.unwrap_or_default())
        ),
        _ => return None,
    };
    // What follows the head (a body) is not read: it would be taken for
    // the next request.
    Some(HttpError {
        close: true,
        ..err(400, message)
    })
}

fn answer(
    state: &State,
    mut req: tiny_http::Request,
    guard: Option<&(std::net::SocketAddr, String)>,
) {
    let reply = if let Some(e) = host_count_error(&req) {
        Err(e)
    } else if let Some((addr, _)) = guard.filter(|(_, typed)| !host_is_local(&req, typed)) {
        // The address it listens on (`[::1]:8080` under --host ::1).
        Err(err(
            403,
            format!(
                "this page answers only requests for localhost or a loopback address; open http://{addr}/{}",
                match state.source {
                    Source::Fixed { .. } => " (a page served with --host NAME answers that name too)",
                    // train --serve has no --host.
                    Source::Live(_) => "",
                }
            ),
        ))
    } else if let Some(why) = cross_site(&req) {
        Err(err(403, why))
    } else {
        // A bug in a route must cost one 500, never a server thread.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(state, &mut req)))
            .unwrap_or_else(|_| Err(err(500, "internal error")))
    };
    let (status, reply, allow) = match reply {
        Ok(r) => (200, r, None),
        Err(e) => {
            if e.close {
                req.close_connection();
            }
            // A value quoted in a message (a log's field, a path) may
            // hold line breaks or direction overrides: written out, as
            // the command line's lines write them.
            (
                e.status,
                json_reply(&json!({ "error": crate::show::controls_written(&e.message) })),
                e.allow,
            )
        }
    };
    let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok();
    let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(status);
    for h in [
        header("Content-Type", reply.content_type),
        header("Cache-Control", "no-store"),
        header("X-Content-Type-Options", "nosniff"),
        header("X-Simplenn-Instance", instance()),
        allow.and_then(|a| header("Allow", a)),
    ]
    .into_iter()
    .flatten()
    {
        resp.add_header(h);
    }
    // The client may have gone: nothing to do about it.
    let _ = req.respond(resp);
}

/// This server's name for itself, different for every process: a page
/// open across a restart on the same port (another model, another run)
/// sees it change on its next request, and reloads.
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// The request's body, at most [`MAX_BODY`] bytes. An error ends the
/// connection: what is left of the body cannot be told from a request.
pub(super) fn body(req: &mut tiny_http::Request) -> Result<Vec<u8>, HttpError> {
    read_body(req).map_err(|e| HttpError { close: true, ..e })
}

fn read_body(req: &mut tiny_http::Request) -> Result<Vec<u8>, HttpError> {
    let too_big = || {
        err(
            413,
            format!("request body over {MAX_BODY} bytes; send a smaller image"),
        )
    };
    // The library takes the first Content-Length, and none where it is not
    // a number (a body then read as the next request): refuse both.
    let mut lengths = Vec::new();
    for h in req
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Content-Length"))
    {
        let v = h.value.as_str().trim();
        // RFC 9110: 1*DIGIT. Rust's parse also takes a leading '+', which
        // a proxy in front may read differently.
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        match v.parse::<u64>() {
            Ok(n) if digits => lengths.push(n),
            _ => {
                return Err(err(
                    400,
                    format!("Content-Length {v:?} is not a number of bytes; send the body's length in bytes"),
                ))
            }
        }
    }
    lengths.sort_unstable();
    lengths.dedup();
    if lengths.len() > 1 {
        return Err(err(
            400,
            format!(
                "the request has {} different Content-Length headers; send one",
                lengths.len()
            ),
        ));
    }
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_big());
    }
    // A compressed body would be read as the image or JSON itself.
    if let Some(h) = req.headers().iter().find(|h| {
        h.field.equiv("Content-Encoding")
            && !h.value.as_str().trim().eq_ignore_ascii_case("identity")
    }) {
        return Err(err(
            415,
            format!(
                "Content-Encoding {}: not accepted; send the body uncompressed",
                crate::show::one_line(h.value.as_str().trim())
            ),
        ));
    }
    // A chunked body's size lines are read without bound by the HTTP
    // library; the page (and curl --data-binary) send a Content-Length.
    // Without one (and without Transfer-Encoding) the library takes the
    // body to be empty and would read it as the next request.
    let coded = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"));
    if req.body_length().is_none() {
        return Err(err(
            411,
            match coded {
                true => "send the body with a Content-Length and no Transfer-Encoding; chunked (or otherwise coded) uploads are not accepted",
                false => "send the body with a Content-Length; the request has none",
            },
        ));
    }
    // However slowly it trickles in, a body gets BODY_DEADLINE to arrive,
    // checked before each read; a read under way may run up to the
    // socket's 10 s timeout past it. (It is read on its upload thread, not
    // one of the threads that answer: see `start`.)
    let deadline = Instant::now() + BODY_DEADLINE;
    let (mut buf, mut piece) = (Vec::new(), [0u8; 8192]);
    let req_len = req.body_length().map(|n| n as u64);
    let reader = req.as_reader();
    loop {
        if Instant::now() > deadline {
            return Err(err(
                408,
                format!(
                    "the request body took over {} s to arrive; send it at once",
                    BODY_DEADLINE.as_secs()
                ),
            ));
        }
        match reader.read(&mut piece) {
            // The client ended its side before the Content-Length: the
            // body is not all there, whatever the part parses as.
            Ok(0) if req_len.is_some_and(|n| (buf.len() as u64) < n) => {
                return Err(err(
                    400,
                    format!(
                        "the request body ended after {} of its {} bytes; send the whole body",
                        buf.len(),
                        req_len.unwrap_or_default()
                    ),
                ))
            }
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&piece[..n]);
                if buf.len() > MAX_BODY {
                    return Err(too_big());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(err(
                    408,
                    "the request body stopped arriving; send it at once",
                ));
            }
            Err(e) => return Err(err(400, format!("cannot read the request body: {e}"))),
        }
    }
}

/// The longest a request body may take to arrive.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// `?a=1&b=2` as pairs.
/// Names and values are percent-decoded (`%31` is `1`, `+` a space), as a
/// browser or `curl --data-urlencode` may send them.
pub(super) fn query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The byte a `%XX` escape at `b[i]` stands for; `None` where none begins
/// there, or where it is malformed.
fn escaped_byte(b: &[u8], i: usize) -> Option<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    match b.get(i..i + 3)? {
        [b'%', h, l] => Some((hex(*h)? * 16 + hex(*l)?) as u8),
        _ => None,
    }
}

/// `%XX` escapes and `+` decoded; a malformed escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(c) = escaped_byte(b, i) {
            out.push(c);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path with the escapes of unreserved characters (letters, digits,
/// `-._~`) decoded: `/api/%6dodel` is `/api/model` (RFC 3986, 6.2.2.2). Any
/// other escape stays, so `%2F` is not a `/` that would name a route.
pub(super) fn unreserved_decoded(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match escaped_byte(b, i) {
            Some(c) if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                out.push(c as char);
                i += 3;
                continue;
            }
            _ => {}
        }
        // Whole characters: the path is a `str`, and `%` is ASCII.
        let len = path[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[i..i + len]);
        i += len;
    }
    out.into()
}

/// Query parameter `name` as a whole number, or `None` when absent.
pub(super) fn number(q: &[(String, String)], name: &str) -> Result<Option<usize>, HttpError> {
    if q.iter().filter(|(k, _)| *k == name).count() > 1 {
        return Err(err(
            400,
            format!("?{name} given more than once; give it once"),
        ));
    }
    match q.iter().find(|(k, _)| *k == name) {
        None => Ok(None),
        // Digits only: Rust's parse also takes a leading '+'.
        Some((_, v)) => v
            .parse()
            .ok()
            .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
            .map(Some)
            .ok_or_else(|| {
                let range = match name {
                    "per_page" => format!("from 1 to {MAX_PER_PAGE}"),
                    "label" | "predicted" => "naming a class: 0, 1, 2, …".to_string(),
                    _ => "0, 1, 2, …".to_string(),
                };
                // Digits that overflow are a number, just not one it takes.
                let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                match digits {
                    true => err(
                        400,
                        format!("?{name}={v}: too large; give a whole number {range}"),
                    ),
                    false => err(400, format!("?{name}={v}: not a whole number {range}")),
                }
            }),
    }
}

/// `http://HOST[:PORT]/path?q` (a request line's absolute form, which a
/// server must take as well as `/path?q`): its authority, and the rest
/// (`/` where there is none).
pub(super) fn absolute_form(url: &str) -> Option<(&str, String)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = match path.starts_with('/') {
        true => path.to_string(),
        false => format!("/{path}"),
    };
    Some((authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_descriptors_for_the_process() {
        assert_eq!(connection_cap(None), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(1024)), MAX_CONNECTIONS);
        assert_eq!(connection_cap(Some(512)), 160);
        assert_eq!(connection_cap(Some(100)), 22);
        assert_eq!(connection_cap(Some(35)), 1);
        assert_eq!(connection_cap(Some(3)), 1);
    }

    #[test]
    fn queries() {
        let q = query("/api/digits?label=3&predicted=%35&x&n%61me=a+b&y=%zz%4");
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("label", "3"),
                ("predicted", "5"),
                ("x", ""),
                ("name", "a b"),
                ("y", "%zz%4")
            ]
        );
        assert_eq!(number(&q, "predicted").unwrap(), Some(5));
        assert_eq!(number(&q, "label").unwrap(), Some(3));
        assert_eq!(number(&q, "page").unwrap(), None);
        assert_eq!(number(&q, "x").unwrap_err().status, 400);
        let twice = query("/api/digits?label=4&label=5");
        let e = number(&twice, "label").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (400, "?label given more than once; give it once")
        );
        let huge = query("/api/digits?label=99999999999999999999");
        assert_eq!(
            number(&huge, "label").unwrap_err().message,
            "?label=99999999999999999999: too large; give a whole number naming a class: 0, 1, 2, …"
        );
        let signed = query("/api/digits?label=%2B3");
        assert!(number(&signed, "label")
            .unwrap_err()
            .message
            .ends_with(": not a whole number naming a class: 0, 1, 2, …"));
    }

    #[test]
    fn escapes_of_unreserved_characters_in_a_path_are_decoded() {
        assert_eq!(unreserved_decoded("/api/%6dodel"), "/api/model");
        assert_eq!(unreserved_decoded("/page%2Ejs"), "/page.js");
        assert_eq!(unreserved_decoded("/api%2Fmodel"), "/api%2Fmodel");
        assert_eq!(unreserved_decoded("/a%20b%zz%4"), "/a%20b%zz%4");
        assert_eq!(unreserved_decoded("/é%41"), "/éA");
    }

    #[test]
    fn bracketed_ipv6_hosts_are_bare() {
        assert_eq!(bare_host("[::1]"), "::1");
        assert_eq!(bare_host("::1"), "::1");
        assert_eq!(bare_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(bare_host("[::1"), "[::1");
    }

    #[test]
    fn ports_of_host_values() {
        assert_eq!(host_port("127.0.0.1:8080"), Some("8080"));
        assert_eq!(host_port("[::1]:8080"), Some("8080"));
        assert_eq!(host_port("localhost:abc"), Some("abc"));
        assert_eq!(host_port("localhost:"), Some(""));
        assert_eq!(host_port("localhost"), None);
        assert_eq!(host_port("[::1]"), None);
        assert_eq!(host_port("::1"), None);
    }

    #[test]
    fn loopback_hosts() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for host in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip(host)), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.1.2", "::ffff:192.168.1.2"] {
            assert!(!is_loopback(ip(host)), "{host}");
        }
    }
}
