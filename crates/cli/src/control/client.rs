//! The client side of the control protocol, for `flux send` and `flux repl`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::protocol::{Reply, Request, MAX_FRAME};

/// A connection to a playing `flux play`.
pub struct Client {
    /// What the user named, for messages.
    name: String,
    /// Every address it resolves to, tried in order.
    addrs: Vec<SocketAddr>,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `addr` (`HOST:PORT` or `PORT`), sending `token` with every
    /// request when given.
    ///
    /// # Errors
    ///
    /// When `addr` is not an address.
    pub fn new(addr: &str, token: Option<String>) -> anyhow::Result<Self> {
        let first = crate::net::parse_addr(addr).map_err(anyhow::Error::msg)?;
        // `localhost` may name ::1 and 127.0.0.1; the server listens on one of them.
        let mut addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        if addrs.is_empty() {
            addrs.push(first);
        }
        Ok(Self {
            name: addr.to_owned(),
            addrs,
            token,
        })
    }

    /// Connects to the first address that answers.
    fn connect(&self) -> anyhow::Result<TcpStream> {
        let mut last = None;
        for addr in &self.addrs {
            match TcpStream::connect_timeout(addr, Duration::from_secs(3)) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        let e = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        bail!(
            "cannot connect to {} (is `flux play` running?): {e}",
            self.name
        )
    }

    /// Sends `request` on a new connection and returns the reply.
    ///
    /// # Errors
    ///
    /// When nothing listens at the address, the request is over 1 MiB, or the reply does
    /// not come or cannot be read.
    pub fn request(&self, request: &Request) -> anyhow::Result<Reply> {
        let mut value = serde_json::to_value(request)?;
        if let (Some(token), Some(map)) = (&self.token, value.as_object_mut()) {
            map.insert("token".into(), token.clone().into());
        }
        let mut line = serde_json::to_string(&value)?;
        line.push('\n');
        if line.len() > MAX_FRAME {
            bail!(
                "the request is {} bytes; the server takes at most {MAX_FRAME} (1 MiB)",
                line.len()
            );
        }
        let stream = self.connect()?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        (&stream).write_all(line.as_bytes())?;
        let mut reply = String::new();
        BufReader::new(stream.take(MAX_FRAME as u64))
            .read_line(&mut reply)
            .with_context(|| format!("no reply from {}", self.name))?;
        if reply.is_empty() {
            bail!("{} closed the connection without a reply", self.name);
        }
        serde_json::from_str(&reply)
            .with_context(|| format!("cannot read the reply of {}: {}", self.name, reply.trim()))
    }
}
