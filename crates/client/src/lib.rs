//! A minimal HTTP/1.1 client over `tokio::net::TcpStream` for talking to a
//! running `garrison serve` or a milestone ingest: one-shot JSON GETs, raw
//! POSTs and a server-sent-events reader. `http://` only; TLS belongs in front
//! of the server, not here.
//!
//! One-shot requests reuse idle keep-alive connections (shared by clones of a
//! [`ServerUrl`]): a remote worker's claim, heartbeat and report would
//! otherwise each pay a TCP handshake and leave a socket in TIME_WAIT.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Cap on a one-shot response body (a page of 1000 events fits easily).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Idle connections kept per server; more concurrent requests than this
/// still work, their connections are just closed afterwards.
const MAX_IDLE: usize = 64;

/// Why a request could not be made or its answer not read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("`{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer's answer is not the HTTP we understand.
    #[error("{0}")]
    Protocol(String),
    /// The connection ended before any byte of an answer arrived.
    #[error("the server closed the connection without answering")]
    Closed,
    #[error("HTTP {status}: response is not JSON: {snippet}")]
    NotJson { status: u16, snippet: String },
    /// A non-2xx answer where only success can be used (event streams).
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("header `{0}` is not a valid HTTP header")]
    BadHeader(String),
}

pub type Result<T, E = HttpError> = std::result::Result<T, E>;

fn protocol<T>(msg: impl Into<String>) -> Result<T> {
    Err(HttpError::Protocol(msg.into()))
}

fn bad_url<T>(url: &str, reason: &str) -> Result<T> {
    Err(HttpError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    })
}

/// A parsed `http://host:port/base` server URL, with its idle connections.
#[derive(Debug, Clone)]
pub struct ServerUrl {
    /// `host:port`, as sent in `Host:` and used to connect.
    authority: String,
    /// Path prefix without a trailing slash ("" for the root).
    base: String,
    idle: Arc<Idle>,
}

type Conn = BufReader<TcpStream>;

/// Keep-alive connections waiting for their next request.
#[derive(Debug, Default)]
struct Idle(Mutex<Vec<Conn>>);

impl Idle {
    /// An idle connection the server has not closed meanwhile.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.0.lock().ok()?;
        while let Some(conn) = idle.pop() {
            // A live idle connection has nothing to read: end of stream means
            // the server closed it, stray bytes mean it is out of step.
            let mut probe = [0u8; 1];
            if conn.buffer().is_empty()
                && matches!(conn.get_ref().try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, conn: Conn) {
        if let Ok(mut idle) = self.0.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }
}

impl ServerUrl {
    pub fn parse(url: &str) -> Result<ServerUrl> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return bad_url(
                url,
                "https is not supported by this client; use http:// (the server listens on plain HTTP)",
            );
        } else {
            return bad_url(url, "expected a URL like http://127.0.0.1:7878");
        };
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return bad_url(url, "missing host");
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            || authority.ends_with(']')
        {
            authority.to_string()
        } else if authority.contains(':') && !authority.starts_with('[') {
            return bad_url(url, "bad port");
        } else {
            format!("{authority}:80")
        };
        Ok(ServerUrl {
            authority,
            base: base.to_string(),
            idle: Arc::default(),
        })
    }

    fn target(&self, path_and_query: &str) -> String {
        let mut target = format!("{}{}", self.base, path_and_query);
        if target.is_empty() {
            target.push('/');
        }
        target
    }

    /// Sends one complete request and reads its whole answer, on an idle
    /// connection when there is one. A reused connection that the server
    /// closed before answering is retried once on a fresh one: the server
    /// only closes between requests, so the first send was never processed.
    async fn exchange(&self, request: &[u8]) -> Result<Response> {
        loop {
            let (mut conn, reused) = match self.idle.take() {
                Some(conn) => (conn, true),
                None => {
                    let stream = self.connect().await?;
                    let _ = stream.set_nodelay(true);
                    (BufReader::new(stream), false)
                }
            };
            let answer = async {
                conn.get_mut().write_all(request).await?;
                let head = read_head(&mut conn).await?;
                let body = read_body(&mut conn, &head).await?;
                Ok::<_, HttpError>((head, body))
            }
            .await;
            match answer {
                Ok((head, body)) => {
                    if head.keep_alive && head.framed(body.len()) {
                        self.idle.put(conn);
                    }
                    return Ok(Response {
                        status: head.status,
                        status_line: head.status_line,
                        body,
                    });
                }
                Err(e) if reused && e.before_answer() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn connect(&self) -> Result<TcpStream> {
        TcpStream::connect(&self.authority)
            .await
            .map_err(|source| HttpError::Connect {
                authority: self.authority.clone(),
                source,
            })
    }

    /// Sends a GET on a connection of its own (event streams never end
    /// in a reusable state).
    async fn send(
        &self,
        path_and_query: &str,
        token: Option<&str>,
        extra: &str,
    ) -> Result<TcpStream> {
        let mut stream = self.connect().await?;
        let _ = stream.set_nodelay(true);
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n{extra}",
            self.target(path_and_query),
            self.authority
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        Ok(stream)
    }

    /// GET returning the status and the JSON body.
    pub async fn get_json(
        &self,
        path_and_query: &str,
        token: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n",
            self.target(path_and_query),
            self.authority
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let resp = self.exchange(head.as_bytes()).await?;
        let json = serde_json::from_slice(&resp.body).map_err(|_| HttpError::NotJson {
            status: resp.status,
            snippet: String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]).into_owned(),
        })?;
        Ok((resp.status, json))
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
        if !method.bytes().all(|b| b.is_ascii_uppercase()) || method.is_empty() {
            return Err(HttpError::Protocol(format!("bad method `{method}`")));
        }
        let bytes = match body {
            Some(v) => serde_json::to_vec(v)
                .map_err(|e| HttpError::Protocol(format!("cannot encode the body: {e}")))?,
            None => Vec::new(),
        };
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nContent-Length: {}\r\n",
            self.target(path_and_query),
            self.authority,
            bytes.len()
        );
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(&bytes);
        let resp = self.exchange(&request).await?;
        let json = serde_json::from_slice(&resp.body).map_err(|_| HttpError::NotJson {
            status: resp.status,
            snippet: String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)]).into_owned(),
        })?;
        Ok((resp.status, json))
    }

    /// POSTs `body` as is (the caller signs these exact bytes) with the
    /// given extra headers; any status is returned, not turned into an error.
    pub async fn post(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nContent-Length: {}\r\n",
            self.target(path_and_query),
            self.authority,
            body.len()
        );
        for (name, value) in headers {
            if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                return Err(HttpError::BadHeader((*name).to_string()));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.exchange(&request).await
    }

    /// Opens a server-sent-events stream. Non-2xx answers become errors that
    /// carry the server's message.
    pub async fn sse(&self, path_and_query: &str, token: Option<&str>) -> Result<SseStream> {
        let stream = self
            .send(path_and_query, token, "Accept: text/event-stream\r\n")
            .await?;
        let mut reader = BufReader::new(stream);
        let head = read_head(&mut reader).await?;
        if !(200..300).contains(&head.status) {
            let mut body = Vec::new();
            if head.chunked {
                if let Some(c) = read_chunk(&mut reader).await? {
                    body = c;
                }
            } else if let Some(n) = head.content_length {
                (&mut reader).take(n as u64).read_to_end(&mut body).await?;
            }
            return Err(HttpError::Status {
                status: head.status,
                message: error_message(&body),
            });
        }
        Ok(SseStream {
            reader,
            chunked: head.chunked,
            buf: Vec::new(),
        })
    }
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
    /// As received, e.g. `HTTP/1.1 200 OK`.
    pub status_line: String,
    pub body: Vec<u8>,
}

struct Head {
    status: u16,
    status_line: String,
    chunked: bool,
    content_length: Option<usize>,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
}

impl Head {
    /// Whether a body of `read` bytes ended where the framing says, so the
    /// next answer on this connection starts at its first byte.
    fn framed(&self, read: usize) -> bool {
        self.chunked || self.content_length == Some(read)
    }
}

impl HttpError {
    /// The connection failed before any answer arrived (a stale keep-alive).
    fn before_answer(&self) -> bool {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        match self {
            HttpError::Closed => true,
            HttpError::Io(e) => {
                matches!(e.kind(), BrokenPipe | ConnectionAborted | ConnectionReset)
            }
            _ => false,
        }
    }
}

/// The body after `head`: chunked, `Content-Length`, or up to the close.
async fn read_body(reader: &mut Conn, head: &Head) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.chunked {
        while let Some(chunk) = read_chunk(reader).await? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return protocol("response too large");
            }
        }
    } else {
        let limit = head.content_length.unwrap_or(MAX_BODY).min(MAX_BODY) as u64;
        reader.take(limit).read_to_end(&mut body).await?;
    }
    Ok(body)
}

async fn read_head(reader: &mut Conn) -> Result<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(HttpError::Closed);
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| HttpError::Protocol(format!("not an HTTP response: {}", line.trim())))?;
    let mut head = Head {
        status,
        status_line: line.trim_end().to_string(),
        chunked: false,
        content_length: None,
        keep_alive: line.starts_with("HTTP/1.1 "),
    };
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return protocol("connection closed inside the response headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(head);
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
                head.chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                head.content_length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                head.keep_alive = false;
            }
        }
    }
}

/// One chunk of a chunked body; `None` at the terminating zero-size chunk.
async fn read_chunk(reader: &mut Conn) -> Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let size_text = line.trim().split(';').next().unwrap_or_default();
    let size = usize::from_str_radix(size_text, 16)
        .map_err(|_| HttpError::Protocol(format!("bad chunk size `{}`", line.trim())))?;
    if size > MAX_BODY {
        return protocol("chunk too large");
    }
    if size == 0 {
        // Trailer fields, then the blank line that ends the message.
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                return Ok(None);
            }
        }
    }
    let mut chunk = vec![0u8; size];
    reader.read_exact(&mut chunk).await?;
    let mut crlf = [0u8; 2];
    reader.read_exact(&mut crlf).await?;
    Ok(Some(chunk))
}

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

pub struct SseStream {
    reader: Conn,
    chunked: bool,
    /// Decoded body bytes not yet split into lines.
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
            let more = if self.chunked {
                read_chunk(&mut self.reader).await?
            } else {
                let mut tmp = vec![0u8; 8192];
                let n = self.reader.read(&mut tmp).await?;
                tmp.truncate(n);
                Some(tmp).filter(|t| !t.is_empty())
            };
            match more {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
            if self.buf.len() > MAX_BODY {
                return protocol("event too large");
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
    use super::*;

    #[test]
    fn parses_server_urls() {
        let u = ServerUrl::parse("http://127.0.0.1:7878").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.base.as_str()),
            ("127.0.0.1:7878", "")
        );
        let u = ServerUrl::parse("http://localhost/garrison/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.base.as_str()),
            ("localhost:80", "/garrison")
        );
        let u = ServerUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!(u.authority, "[::1]:9000");
        let e = ServerUrl::parse("https://x:1").unwrap_err().to_string();
        assert!(e.contains("https is not supported"), "{e}");
        assert!(ServerUrl::parse("127.0.0.1:7878").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        assert!(ServerUrl::parse("http://h:port").is_err());
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
                        let mut len = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line.trim_end().is_empty() {
                                break;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0u8; len];
                        conn.read_exact(&mut body).await.unwrap();
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

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode("ORDER CLAIMED"), "ORDER%20CLAIMED");
        assert_eq!(encode("a/b&c"), "a%2Fb%26c");
    }
}
