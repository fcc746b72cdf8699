//! Garrison's one outbound HTTP client, a thin layer over reqwest with
//! rustls: one-shot JSON requests and raw POSTs to a running `garrison serve`
//! or a milestone ingest, and a server-sent-events reader. `http://` and
//! `https://`.
//!
//! TLS trusts the webpki roots bundled with reqwest's `rustls-tls`, plus the
//! PEM certificates of the file [`CA_FILE_VAR`] (`GARRISON_TLS_CA_FILE`)
//! names, so a private or self-signed endpoint can be trusted. The file is
//! read once per process, on the first [`ServerUrl::parse`]; a file that
//! cannot be read or holds no usable certificate makes every parse fail.
//! [`Client::with_ca_pem`] takes the PEM directly.
//!
//! A [`ServerUrl`] and its clones share one `reqwest::Client`, so connections
//! are pooled and kept alive per server: a remote worker's claim, heartbeat
//! and report do not each pay a handshake. Proxy variables are ignored:
//! requests go straight to the URL given.
//!
//! A request whose connection closed before a complete answer head arrived
//! is sent once more: reqwest cannot say whether the connection was a pooled
//! one the server had just closed, which is the usual cause. A request that
//! got an answer is never sent again.

use std::path::Path;
use std::sync::OnceLock;

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use serde_json::Value;

/// Names a PEM file of extra CA certificates to trust.
pub const CA_FILE_VAR: &str = "GARRISON_TLS_CA_FILE";

/// Cap on a one-shot response body (a page of 1000 events fits easily).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// How much of a refused event stream's answer is kept for the message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Idle connections kept per server; more concurrent requests than this
/// still work, their connections are just closed afterwards.
const MAX_IDLE: usize = 64;

/// Why a request could not be made or its answer not read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("`{url}`: {reason}")]
    Url { url: String, reason: String },
    /// The extra CA file is unusable.
    #[error("GARRISON_TLS_CA_FILE `{path}`: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// No connection (TCP or TLS handshake) to the server.
    #[error("cannot connect to {origin}: {reason}")]
    Connect { origin: String, reason: String },
    /// The connection ended before an answer arrived.
    #[error("{origin} closed the connection without answering")]
    Closed { origin: String },
    /// The request or its answer failed after connecting.
    #[error("{origin}: {reason}")]
    Transport { origin: String, reason: String },
    /// The answer is not what we can use (too large, bad method, …).
    #[error("{0}")]
    Protocol(String),
    #[error("HTTP {status}: response is not JSON: {snippet}")]
    NotJson { status: u16, snippet: String },
    /// A non-2xx answer where only success can be used (event streams).
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("header `{0}` is not a valid HTTP header")]
    BadHeader(String),
}

pub type Result<T, E = HttpError> = std::result::Result<T, E>;

fn bad_url<T>(url: &str, reason: &str) -> Result<T> {
    Err(HttpError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    })
}

/// `http[s]://host[:port][/base]` into the scheme, `host:port` (the port
/// made explicit) and the base path without a trailing slash.
fn split(url: &str) -> Result<(&'static str, String, String)> {
    let (scheme, rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
        ("http", r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        ("https", r, 443)
    } else {
        return bad_url(
            url,
            "expected a URL like http://127.0.0.1:7878 or https://host:port",
        );
    };
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return bad_url(url, "missing host");
    }
    // The port follows the last colon, except inside an IPv6 `[…]`.
    let port = match authority.rsplit_once(':') {
        Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => Some(port),
        _ => None,
    };
    let authority = match port {
        Some(p) if p.parse::<u16>().is_ok() => authority.to_string(),
        Some(_) => return bad_url(url, "bad port"),
        None => format!("{authority}:{default_port}"),
    };
    // reqwest parses the URL again when sending; refuse here what it would.
    if let Err(e) = reqwest::Url::parse(&format!("{scheme}://{authority}{base}")) {
        return bad_url(url, &e.to_string());
    }
    Ok((scheme, authority, base.to_string()))
}

/// The connection pool and TLS trust that [`ServerUrl`]s send through.
/// Clones share the pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    /// Trusts the webpki roots only.
    pub fn new() -> Result<Client> {
        Self::build(&[])
    }

    /// The webpki roots plus the CA file [`CA_FILE_VAR`] names, if it is
    /// set. The file is read once per process; its error, if any, stays.
    pub fn from_env() -> Result<Client> {
        static ROOTS: OnceLock<Result<Vec<reqwest::Certificate>>> = OnceLock::new();
        let roots = ROOTS.get_or_init(|| match std::env::var_os(CA_FILE_VAR) {
            Some(path) if !path.is_empty() => load_ca_file(Path::new(&path)),
            _ => Ok(Vec::new()),
        });
        Self::build(roots.as_ref().map_err(Clone::clone)?)
    }

    /// The webpki roots plus the certificates of the PEM file at `path`.
    pub fn with_ca_file(path: &Path) -> Result<Client> {
        Self::build(&load_ca_file(path)?)
    }

    /// The webpki roots plus every certificate in `pem`; there must be one.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Client> {
        let roots =
            ca_roots(pem).map_err(|reason| HttpError::Setup(format!("the CA PEM {reason}")))?;
        Self::build(&roots)
    }

    fn build(extra_roots: &[reqwest::Certificate]) -> Result<Client> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(MAX_IDLE);
        for cert in extra_roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        let http = builder.build().map_err(|e| HttpError::Setup(chain(&e)))?;
        Ok(Client { http })
    }
}

fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let ca_err = |reason: String| HttpError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    ca_roots(&pem).map_err(ca_err)
}

/// Every certificate in `pem`, checked to be usable as a root.
fn ca_roots(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| format!("is not PEM ({})", chain(&e)))?;
    if certs.is_empty() {
        return Err("holds no `BEGIN CERTIFICATE` block".into());
    }
    // reqwest checks a root only when a client is built: find out now.
    Client::build(&certs).map_err(|e| format!("holds a certificate that cannot be used: {e}"))?;
    Ok(certs)
}

/// A parsed `http[s]://host:port/base` server URL and the client it uses.
#[derive(Debug, Clone)]
pub struct ServerUrl {
    scheme: &'static str,
    /// `host:port`, the port always explicit.
    authority: String,
    /// Path prefix without a trailing slash ("" for the root).
    base: String,
    client: Client,
}

impl ServerUrl {
    /// Parses `url` for a client of its own (see [`Client::from_env`]),
    /// which the URL's clones share. Not one per process: hyper's pooled
    /// connections belong to the tokio runtime that opened them, and a
    /// process (a test binary, say) may run several.
    pub fn parse(url: &str) -> Result<ServerUrl> {
        let (scheme, authority, base) = split(url)?;
        Ok(ServerUrl {
            scheme,
            authority,
            base,
            client: Client::from_env()?,
        })
    }

    /// Parses `url` for the given client (a test's own CA, say).
    pub fn with_client(url: &str, client: &Client) -> Result<ServerUrl> {
        let (scheme, authority, base) = split(url)?;
        Ok(ServerUrl {
            scheme,
            authority,
            base,
            client: client.clone(),
        })
    }

    /// `scheme://host:port`, for messages.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    fn url(&self, path_and_query: &str) -> String {
        let mut target = format!("{}{}", self.base, path_and_query);
        if target.is_empty() {
            target.push('/');
        }
        format!("{}://{}{}", self.scheme, self.authority, target)
    }

    /// Sends the request `make` builds, once more if the connection closed
    /// before a complete answer head (see the crate doc).
    async fn send(&self, make: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response> {
        match make().send().await {
            Ok(resp) => Ok(resp),
            Err(e) if closed_unanswered(&e) => {
                make().send().await.map_err(|e| self.transport_error(&e))
            }
            Err(e) => Err(self.transport_error(&e)),
        }
    }

    /// One-shot request: sends it and reads its whole answer.
    async fn exchange(&self, make: impl Fn() -> reqwest::RequestBuilder) -> Result<Response> {
        let mut resp = self.send(make).await?;
        let status_line = status_line(&resp);
        let body = self.read_body(&mut resp).await?;
        Ok(Response {
            status: resp.status().as_u16(),
            status_line,
            body,
        })
    }

    async fn read_body(&self, resp: &mut reqwest::Response) -> Result<Vec<u8>> {
        let too_large = || HttpError::Protocol(format!("response larger than {MAX_BODY} bytes"));
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn get(&self, path_and_query: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.client.http.get(self.url(path_and_query));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GET returning the status and the JSON body.
    pub async fn get_json(
        &self,
        path_and_query: &str,
        token: Option<&str>,
    ) -> Result<(u16, Value)> {
        let resp = self.exchange(|| self.get(path_and_query, token)).await?;
        json_answer(resp)
    }

    /// A request with an optional JSON body and the bearer token, returning
    /// the status and the JSON answer (the admin API's writes).
    pub async fn send_json(
        &self,
        method: &str,
        path_and_query: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let bad_method = || HttpError::Protocol(format!("bad method `{method}`"));
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad_method());
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| bad_method())?;
        let bytes = match body {
            Some(v) => serde_json::to_vec(v)
                .map_err(|e| HttpError::Protocol(format!("cannot encode the body: {e}")))?,
            None => Vec::new(),
        };
        let resp = self
            .exchange(|| {
                let mut req = self
                    .client
                    .http
                    .request(method.clone(), self.url(path_and_query))
                    .body(bytes.clone());
                if body.is_some() {
                    req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
                }
                match token {
                    Some(t) => req.bearer_auth(t),
                    None => req,
                }
            })
            .await?;
        json_answer(resp)
    }

    /// POSTs `body` as is (the caller signs these exact bytes) with the
    /// given extra headers; any status is returned, not turned into an error.
    pub async fn post(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let bad = || HttpError::BadHeader((*name).to_string());
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value).map_err(|_| bad())?;
            map.append(name, value);
        }
        self.exchange(|| {
            self.client
                .http
                .post(self.url(path_and_query))
                .headers(map.clone())
                .body(body.to_vec())
        })
        .await
    }

    /// Opens a server-sent-events stream. Non-2xx answers become errors that
    /// carry the server's message.
    pub async fn sse(&self, path_and_query: &str, token: Option<&str>) -> Result<SseStream> {
        let mut resp = self
            .send(|| {
                self.get(path_and_query, token)
                    .header(ACCEPT, "text/event-stream")
            })
            .await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let mut body = Vec::new();
            // The message is at the start; an endless answer is not read to its end.
            while body.len() < MAX_ERROR_BODY {
                match resp.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            body.truncate(MAX_ERROR_BODY);
            return Err(HttpError::Status {
                status,
                message: error_message(&body),
            });
        }
        Ok(SseStream {
            origin: self.origin(),
            resp,
            buf: Vec::new(),
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> HttpError {
        let origin = self.origin();
        let reason = chain(e);
        if e.is_connect() {
            let hint = if self.scheme == "https" && reason.contains("certificate") {
                format!(" (a private CA's certificate can be trusted with {CA_FILE_VAR})")
            } else {
                String::new()
            };
            HttpError::Connect {
                origin,
                reason: format!("{reason}{hint}"),
            }
        } else if incomplete_message(e) {
            HttpError::Closed { origin }
        } else {
            HttpError::Transport { origin, reason }
        }
    }
}

/// What the error says beyond reqwest's own "error sending request for
/// url (…)": the causes, without hyper-util's wrapper labels.
fn chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.starts_with("client error (") && parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// hyper's "connection closed before message completed": the connection
/// ended before a whole answer head arrived.
fn incomplete_message(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The request was sent on a connection that then closed or was reset with
/// no answer head: the server had closed it (an idle pooled connection) or
/// dropped the request unanswered. Never true once an answer head arrived:
/// `send` has returned by then, and body errors come later.
fn closed_unanswered(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if e.is_connect() || e.is_timeout() || e.is_builder() || e.is_body() || e.is_decode() {
        return false;
    }
    if incomplete_message(e) {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.kind(), BrokenPipe | ConnectionAborted | ConnectionReset))
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// `HTTP/1.1 200 OK`, with the reason phrase the server sent when it was
/// not the standard one.
fn status_line(resp: &reqwest::Response) -> String {
    let status = resp.status();
    let reason = match resp.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
        None => status.canonical_reason().unwrap_or_default().to_string(),
    };
    format!("{:?} {} {reason}", resp.version(), status.as_u16())
        .trim_end()
        .to_string()
}

fn json_answer(resp: Response) -> Result<(u16, Value)> {
    let json = serde_json::from_slice(&resp.body).map_err(|_| HttpError::NotJson {
        status: resp.status,
        snippet: String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]).into_owned(),
    })?;
    Ok((resp.status, json))
}

/// The `error.message` of an IronClaw envelope, else the raw text.
pub fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match (v["error"]["code"].as_str(), v["error"]["message"].as_str()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => v.to_string(),
        },
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// A one-shot response, read to its end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// E.g. `HTTP/1.1 200 OK`, with the server's own reason phrase.
    pub status_line: String,
    pub body: Vec<u8>,
}

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

pub struct SseStream {
    origin: String,
    resp: reqwest::Response,
    /// Body bytes not yet split into lines.
    buf: Vec<u8>,
}

impl SseStream {
    /// The next event; `None` when the server ends the stream. Comments
    /// (keep-alives) are skipped.
    pub async fn next_event(&mut self) -> Result<Option<SseEvent>> {
        let mut ev = SseEvent::default();
        let mut has_data = false;
        loop {
            let Some(line) = self.next_line().await? else {
                return Ok(None);
            };
            if line.is_empty() {
                if has_data {
                    return Ok(Some(ev));
                }
                ev = SseEvent::default();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "data" => {
                    if has_data {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(value);
                    has_data = true;
                }
                "id" => ev.id = Some(value.to_string()),
                "event" => ev.event = Some(value.to_string()),
                _ => {}
            }
        }
    }

    async fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            let more = self.resp.chunk().await.map_err(|e| HttpError::Transport {
                origin: self.origin.clone(),
                reason: chain(&e),
            })?;
            match more {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
            if self.buf.len() > MAX_BODY {
                return Err(HttpError::Protocol("event too large".into()));
            }
        }
    }
}

/// Percent-encodes a query-string value.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;

    #[test]
    fn parses_server_urls() {
        let u = ServerUrl::parse("http://127.0.0.1:7878").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.base.as_str()),
            ("127.0.0.1:7878", "")
        );
        assert_eq!(u.url(""), "http://127.0.0.1:7878/");
        let u = ServerUrl::parse("http://localhost/garrison/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.base.as_str()),
            ("localhost:80", "/garrison")
        );
        assert_eq!(u.url("/runs?x=1"), "http://localhost:80/garrison/runs?x=1");
        let u = ServerUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!(u.authority, "[::1]:9000");
        let u = ServerUrl::parse("https://example.com/ingest").unwrap();
        assert_eq!(u.origin(), "https://example.com:443");
        assert_eq!(u.url(""), "https://example.com:443/ingest");
        let u = ServerUrl::parse("https://[::1]").unwrap();
        assert_eq!(u.authority, "[::1]:443");
        let e = ServerUrl::parse("ftp://x:1").unwrap_err().to_string();
        assert!(e.contains("expected a URL like"), "{e}");
        assert!(ServerUrl::parse("127.0.0.1:7878").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        assert!(ServerUrl::parse("http://h:port").is_err());
        assert!(ServerUrl::parse("http://bad host:1").is_err());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let missing = dir.join("missing.pem");
        let e = Client::with_ca_file(&missing).unwrap_err().to_string();
        assert!(e.starts_with("GARRISON_TLS_CA_FILE `"), "{e}");
        assert!(e.contains("missing.pem"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Client::with_ca_file(&empty).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no `BEGIN CERTIFICATE`"),
            "{e}"
        );
        let garbled = dir.join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Client::with_ca_file(&garbled).unwrap_err().to_string();
        assert!(
            e.contains("garbled.pem") && e.contains("cannot be used"),
            "{e}"
        );
        let e = Client::with_ca_pem(b"").unwrap_err().to_string();
        assert!(e.contains("the CA PEM holds no"), "{e}");
    }

    /// A bare HTTP/1.1 server that answers `answers_per_conn` requests on
    /// each connection (then closes it without warning) and counts accepts.
    async fn counting_server(
        answers_per_conn: usize,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut conn = BufReader::new(stream);
                    for _ in 0..answers_per_conn {
                        let Some(len) = read_request(&mut conn).await else {
                            return;
                        };
                        let answer = format!("{{\"conn\":{n},\"got\":{len}}}");
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (format!("http://{addr}"), accepted)
    }

    /// Reads one request; its body length, `None` at the end of the stream.
    async fn read_request(conn: &mut BufReader<tokio::net::TcpStream>) -> Option<usize> {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                return None;
            }
            if line.trim_end().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await.unwrap();
        Some(len)
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (url, accepted) = counting_server(usize::MAX).await;
        let server = ServerUrl::parse(&url).unwrap();
        let clone = server.clone();
        for i in 0..5 {
            let resp = server.post("/x", &[], &vec![b'a'; i]).await.unwrap();
            let v: Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(v["got"], i);
            let (status, _) = clone.get_json("/y", None).await.unwrap();
            assert_eq!(status, 200);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_dropped_is_replaced() {
        let (url, accepted) = counting_server(1).await;
        let server = ServerUrl::parse(&url).unwrap();
        for i in 1..=3 {
            let resp = server.post("/x", &[], b"{}").await.unwrap();
            let v: Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(
                v["conn"], i,
                "each request after a drop gets a fresh connection"
            );
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// A server that reads each request and closes without answering the
    /// first `drop_first` of them; counts the requests it read.
    async fn unanswering_server(
        drop_first: usize,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut conn = BufReader::new(stream);
                if read_request(&mut conn).await.is_none() {
                    continue;
                }
                if count.fetch_add(1, Ordering::SeqCst) < drop_first {
                    continue; // dropped: closed with no answer
                }
                let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
            }
        });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn an_unanswered_request_is_sent_once_more_and_no_more() {
        use std::sync::atomic::Ordering;
        let (url, seen) = unanswering_server(1).await;
        let server = ServerUrl::parse(&url).unwrap();
        let resp = server.post("/x", &[], b"{}").await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(seen.load(Ordering::SeqCst), 2);

        let (url, seen) = unanswering_server(usize::MAX).await;
        let server = ServerUrl::parse(&url).unwrap();
        let e = server.post("/x", &[], b"{}").await.unwrap_err();
        assert!(matches!(e, HttpError::Closed { .. }), "{e}");
        assert!(e.to_string().contains("without answering"), "{e}");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_that_got_an_answer_is_never_sent_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Answers with a head and half the promised body, then closes.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut conn = BufReader::new(stream);
                if read_request(&mut conn).await.is_some() {
                    count.fetch_add(1, Ordering::SeqCst);
                    let reply = "HTTP/1.1 500 Oops\r\ncontent-length: 10\r\n\r\n{\"a\"";
                    conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            }
        });
        let server = ServerUrl::parse(&format!("http://{addr}")).unwrap();
        let e = server.post("/x", &[], b"{}").await.unwrap_err();
        assert!(matches!(e, HttpError::Transport { .. }), "{e}");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn keeps_the_servers_reason_phrase() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(stream);
            read_request(&mut conn).await.unwrap();
            let reply = "HTTP/1.1 202 Taken In\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
            conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
        });
        let server = ServerUrl::parse(&format!("http://{addr}")).unwrap();
        let resp = server.post("", &[("x-a", "b")], b"").await.unwrap();
        assert_eq!(resp.status_line, "HTTP/1.1 202 Taken In");
        assert_eq!(resp.body, b"abcde");
        let e = server
            .post("", &[("bad\nname", "v")], b"")
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::BadHeader(_)), "{e}");
    }

    #[tokio::test]
    async fn reads_server_sent_events_and_refusals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // First connection: a stream; second: a refusal.
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(stream);
            read_request(&mut conn).await.unwrap();
            let events =
                ": keep-alive\n\nid: 1\nevent: a\ndata: x\ndata: y\n\r\nid: 2\ndata: z\n\n";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{events}"
            );
            conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
            drop(conn);
            let (stream, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(stream);
            read_request(&mut conn).await.unwrap();
            let body = r#"{"error":{"code":"UNAUTHORIZED","message":"no token"}}"#;
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
        });
        let server = ServerUrl::parse(&format!("http://{addr}")).unwrap();
        let mut stream = server.sse("/events", Some("t")).await.unwrap();
        let first = stream.next_event().await.unwrap().unwrap();
        assert_eq!(
            first,
            SseEvent {
                id: Some("1".into()),
                event: Some("a".into()),
                data: "x\ny".into()
            }
        );
        let second = stream.next_event().await.unwrap().unwrap();
        assert_eq!(
            (second.id.as_deref(), second.data.as_str()),
            (Some("2"), "z")
        );
        assert_eq!(stream.next_event().await.unwrap(), None);
        let e = server.sse("/events", None).await.err().unwrap();
        assert_eq!(e.to_string(), "HTTP 401: UNAUTHORIZED: no token");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("ORDER CLAIMED"), "ORDER%20CLAIMED");
        assert_eq!(encode("a/b&c"), "a%2Fb%26c");
    }
}
