//! The scope: a page on loopback that draws what plays (Y-T, X-Y, XYZ, spectrum).
//!
//! The DSP thread copies every block it plays into a tap of its own
//! ([`flux_engine::tap`]). A stream thread here drains that tap and sends the frames to every
//! open page over a WebSocket ([`stream`]); the page, its script and its style are built
//! into the binary and served by a small HTTP handler ([`http`]). Nothing here runs on the
//! DSP thread or in the play loop, and every queue is bounded: a slow or stuck browser loses
//! frames, never the sound.

pub mod http;
pub mod stream;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::Context as _;
use flux_engine::{Counters, TapReader};
use flux_js::SignalInfo;

pub use stream::Status;
use stream::{Feed, SignalStatus};

/// Where `--scope` listens when no address is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7780";

/// Parses a scope address: `HOST:PORT` or a bare `PORT` (on 127.0.0.1), loopback only.
///
/// # Errors
///
/// When the address does not parse, does not resolve, or is not a loopback address.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let full = if text.parse::<u16>().is_ok() {
        format!("127.0.0.1:{text}")
    } else {
        text.to_owned()
    };
    let addrs: Vec<SocketAddr> = full
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not an address (HOST:PORT or PORT): {e}"))?
        .collect();
    match addrs.iter().find(|a| a.ip().is_loopback()) {
        Some(addr) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(*addr),
        _ => Err(format!(
            "{text:?} is not a loopback address; the scope serves this machine only \
             (use 127.0.0.1, localhost or [::1])"
        )),
    }
}

/// A listening scope that has not started streaming yet.
///
/// Binding comes first, so a busy port is reported before the sound starts.
pub struct Listener {
    listener: TcpListener,
    url: String,
}

impl Listener {
    /// Listens on `addr`.
    ///
    /// # Errors
    ///
    /// When the address cannot be listened on (in use, not permitted).
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} for the scope"))?;
        let local = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            url: format!("http://{local}/"),
        })
    }

    /// Starts streaming what `tap` copies (played at `sample_rate`), with the engine's
    /// `counters` and `status` for the page's panel.
    ///
    /// # Errors
    ///
    /// When the operating system cannot start a thread.
    pub fn start(
        self,
        tap: TapReader,
        counters: Arc<Counters>,
        sample_rate: u32,
        status: Status,
    ) -> anyhow::Result<Scope> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(status));
        let feed = Feed {
            tap,
            counters,
            sample_rate,
            status: status.clone(),
        };
        let flag = stop.clone();
        let listener = self.listener;
        let thread = std::thread::Builder::new()
            .name("flux-scope".into())
            .spawn(move || stream::run(listener, feed, &flag))
            .context("cannot start the scope thread")?;
        Ok(Scope {
            url: self.url,
            stop,
            status,
            thread: Some(thread),
        })
    }
}

/// A running scope. Stops on [`stop`](Scope::stop) or drop.
pub struct Scope {
    url: String,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<Status>>,
    thread: Option<JoinHandle<u64>>,
}

impl Scope {
    /// The page's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Tells the page which signals play and what the last load said.
    pub fn set_signals(&self, signals: &[SignalInfo], message: &str) {
        let signals = signals
            .iter()
            .map(|s| SignalStatus {
                id: s.id.clone(),
                tier: s.tier.name(),
            })
            .collect();
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.signals = signals;
        status.message = message.to_owned();
    }

    /// Stops the scope; returns the frames its tap dropped.
    pub fn stop(mut self) -> u64 {
        self.join()
    }

    fn join(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_address_must_be_loopback() {
        assert_eq!(parse_addr("127.0.0.1:7780").unwrap().port(), 7780);
        assert_eq!(
            parse_addr("9000").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert!(parse_addr("[::1]:0").unwrap().ip().is_loopback());
        assert!(parse_addr("localhost:7780").unwrap().ip().is_loopback());
        let err = parse_addr("0.0.0.0:7780").unwrap_err();
        assert!(
            err.starts_with("\"0.0.0.0:7780\" is not a loopback address"),
            "{err}"
        );
        assert!(parse_addr("192.168.1.2:7780").is_err());
        assert!(parse_addr("signals.js")
            .unwrap_err()
            .contains("is not an address"));
    }
}
