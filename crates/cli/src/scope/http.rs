//! The scope's HTTP side: serves the page and upgrades `/ws` to a WebSocket.
//!
//! Each connection gets a short-lived thread that reads one request (bounded in size and
//! time), answers it and closes, or hands an upgraded socket to the stream thread. The
//! decision is a pure function ([`route`]) so it is tested without sockets.
//!
//! Only requests addressed to this machine by a loopback name are served: the `Host`
//! header must name a loopback host and the server's port, and a WebSocket's `Origin`,
//! when there is one, must be such a page too. A web page from elsewhere that the browser
//! opens (directly, or through DNS rebinding) cannot read the stream.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

const INDEX_HTML: &str = include_str!("assets/index.html");
const SCOPE_JS: &str = include_str!("assets/scope.js");
const SCOPE_CSS: &str = include_str!("assets/scope.css");

/// Largest request head read, in bytes.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request.
const REQUEST_TIME: Duration = Duration::from_secs(3);
/// Time an answer may take to write.
const WRITE_TIME: Duration = Duration::from_secs(3);
/// Headers parsed at most.
const MAX_HEADERS: usize = 32;

/// What a request asks for, as far as routing cares.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, with any query string.
    pub path: &'a str,
    /// Header names and values.
    pub headers: Vec<(&'a str, &'a str)>,
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// How to answer a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// A complete response: status line, content type, body.
    Page {
        /// `200 OK`, `404 Not Found`, ...
        status: &'static str,
        /// The `Content-Type`.
        content_type: &'static str,
        /// The body.
        body: &'static str,
    },
    /// Switch to the WebSocket protocol, answering with this `Sec-WebSocket-Accept`.
    Upgrade {
        /// The accept key derived from the client's `Sec-WebSocket-Key`.
        accept: String,
    },
}

fn text(status: &'static str, body: &'static str) -> Answer {
    Answer::Page {
        status,
        content_type: "text/plain; charset=utf-8",
        body,
    }
}

/// Decides how to answer `request` on a server listening on `port`.
pub fn route(request: &Request<'_>, port: u16) -> Answer {
    if !request
        .header("host")
        .is_some_and(|h| host_allowed(h, port))
    {
        return text(
            "403 Forbidden",
            "the scope answers only to a loopback host name\n",
        );
    }
    if request.method != "GET" {
        return text("405 Method Not Allowed", "only GET is served\n");
    }
    let path = request.path.split('?').next().unwrap_or("");
    let page = |content_type, body| Answer::Page {
        status: "200 OK",
        content_type,
        body,
    };
    match path {
        "/" | "/index.html" => page("text/html; charset=utf-8", INDEX_HTML),
        "/scope.js" => page("text/javascript; charset=utf-8", SCOPE_JS),
        "/scope.css" => page("text/css; charset=utf-8", SCOPE_CSS),
        "/ws" => upgrade(request, port),
        "/favicon.ico" => Answer::Page {
            status: "204 No Content",
            content_type: "image/x-icon",
            body: "",
        },
        _ => text("404 Not Found", "not found\n"),
    }
}

fn upgrade(request: &Request<'_>, port: u16) -> Answer {
    let has_token = |name: &str, token: &str| {
        request
            .header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return text("426 Upgrade Required", "/ws is a WebSocket\n");
    }
    if request.header("sec-websocket-version") != Some("13") {
        return text("400 Bad Request", "only WebSocket version 13 is spoken\n");
    }
    if let Some(origin) = request.header("origin") {
        if !origin_allowed(origin, port) {
            return text(
                "403 Forbidden",
                "the stream is only for the scope's own page\n",
            );
        }
    }
    match request.header("sec-websocket-key") {
        Some(key) if !key.trim().is_empty() => Answer::Upgrade {
            accept: derive_accept_key(key.trim().as_bytes()),
        },
        _ => text("400 Bad Request", "no Sec-WebSocket-Key\n"),
    }
}

/// True when `host` (a `Host` header) is a loopback name or address with the port `port`.
pub fn host_allowed(host: &str, port: u16) -> bool {
    let (name, host_port) = match host.rsplit_once(':') {
        // `[::1]` alone: the colon belongs to the address.
        Some((name, p)) if !p.ends_with(']') => (name, p.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    if host_port != Some(port) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when `origin` (an `Origin` header) is a page served from a loopback `host` on `port`.
pub fn origin_allowed(origin: &str, port: u16) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|host| host_allowed(host, port))
}

/// Answers one connection; a WebSocket goes to `upgraded`, anything else is closed.
pub fn serve(mut stream: TcpStream, port: u16, upgraded: &SyncSender<WebSocket<TcpStream>>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIME));
    let Ok((head, rest)) = read_head(&mut stream) else {
        return;
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let answer = match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {
            let request = Request {
                method: parsed.method.unwrap_or(""),
                path: parsed.path.unwrap_or(""),
                headers: parsed
                    .headers
                    .iter()
                    .filter_map(|h| Some((h.name, std::str::from_utf8(h.value).ok()?)))
                    .collect(),
            };
            route(&request, port)
        }
        _ => text("400 Bad Request", "bad request\n"),
    };
    match answer {
        Answer::Page {
            status,
            content_type,
            body,
        } => {
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {}\r\nCache-Control: no-store\r\n\
                 X-Content-Type-Options: nosniff\r\n\
                 Content-Security-Policy: default-src 'self'; connect-src 'self'\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(body.as_bytes()));
        }
        Answer::Upgrade { accept } => {
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).is_err() || stream.set_nonblocking(true).is_err() {
                return;
            }
            let ws = WebSocket::from_partially_read(stream, rest, Role::Server, Some(ws_config()));
            // A full hand-over queue means the stream thread is busy: this page retries.
            let _ = upgraded.try_send(ws);
        }
    }
}

/// Limits of a page's WebSocket: small messages in, a bounded queue out.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
        // Every message goes to the socket at once; what the socket does not take waits,
        // up to this many bytes, and later messages are dropped until it drains.
        .write_buffer_size(0)
        .max_write_buffer_size(super::stream::MAX_QUEUED_BYTES)
}

/// Reads a request head: the bytes up to the blank line, and any bytes after it.
fn read_head(stream: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let deadline = Instant::now() + REQUEST_TIME;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            stream.set_read_timeout(None)?;
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(path: &'a str, headers: &[(&'a str, &'a str)]) -> Request<'a> {
        Request {
            method: "GET",
            path,
            headers: headers.to_vec(),
        }
    }

    fn status(answer: &Answer) -> &'static str {
        match answer {
            Answer::Page { status, .. } => status,
            Answer::Upgrade { .. } => "101",
        }
    }

    #[test]
    fn loopback_hosts_on_the_right_port_are_allowed() {
        for host in [
            "127.0.0.1:7780",
            "localhost:7780",
            "LocalHost:7780",
            "[::1]:7780",
        ] {
            assert!(host_allowed(host, 7780), "{host}");
        }
        for host in [
            "127.0.0.1:7781",
            "evil.example:7780",
            "192.168.1.2:7780",
            "127.0.0.1",
            "[::1]",
            "localhost.evil.example:7780",
            "",
        ] {
            assert!(!host_allowed(host, 7780), "{host}");
        }
        assert!(host_allowed("localhost", 80));
        assert!(host_allowed("[::1]", 80));
    }

    #[test]
    fn pages_are_served_to_a_loopback_host_only() {
        let ok = route(&get("/", &[("Host", "127.0.0.1:7780")]), 7780);
        assert!(
            matches!(ok, Answer::Page { status: "200 OK", content_type, body }
                if content_type.starts_with("text/html") && body.contains("scope.js")),
            "{ok:?}"
        );
        let js = route(&get("/scope.js?v=1", &[("host", "localhost:7780")]), 7780);
        assert_eq!(status(&js), "200 OK");
        let rebound = route(&get("/", &[("Host", "attacker.example:7780")]), 7780);
        assert_eq!(status(&rebound), "403 Forbidden");
        assert_eq!(status(&route(&get("/", &[]), 7780)), "403 Forbidden");
        let missing = route(&get("/etc/passwd", &[("Host", "127.0.0.1:7780")]), 7780);
        assert_eq!(status(&missing), "404 Not Found");
        let post = Request {
            method: "POST",
            ..get("/", &[("Host", "127.0.0.1:7780")])
        };
        assert_eq!(status(&route(&post, 7780)), "405 Method Not Allowed");
    }

    #[test]
    fn a_websocket_upgrade_needs_the_handshake_headers_and_a_local_origin() {
        let mut headers = vec![
            ("Host", "127.0.0.1:7780"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            // The example of RFC 6455, section 1.3.
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            route(&get("/ws", &headers), 7780),
            Answer::Upgrade {
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
        headers.push(("Origin", "http://localhost:7780"));
        assert_eq!(status(&route(&get("/ws", &headers), 7780)), "101");
        headers.pop();
        headers.push(("Origin", "https://attacker.example"));
        assert_eq!(status(&route(&get("/ws", &headers), 7780)), "403 Forbidden");
        headers.pop();
        headers.push(("Origin", "null"));
        assert_eq!(status(&route(&get("/ws", &headers), 7780)), "403 Forbidden");
        let plain = route(&get("/ws", &[("Host", "127.0.0.1:7780")]), 7780);
        assert_eq!(status(&plain), "426 Upgrade Required");
    }
}
