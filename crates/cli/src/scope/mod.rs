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

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use flux_engine::{Counters, TapReader};
use flux_js::SignalInfo;

pub use stream::Status;
use stream::{Feed, SignalStatus};

use crate::worker::Worker;

/// Where `--scope` listens when no address is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7780";

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
        let status = Arc::new(Mutex::new(status));
        let feed = Feed {
            tap,
            counters,
            sample_rate,
            status: status.clone(),
        };
        let listener = self.listener;
        let worker = Worker::spawn("flux-scope", move |stop| stream::run(listener, feed, stop))
            .context("cannot start the scope thread")?;
        Ok(Scope {
            url: self.url,
            status,
            worker,
        })
    }
}

/// A running scope. Stops on [`stop`](Scope::stop) or drop.
pub struct Scope {
    url: String,
    status: Arc<Mutex<Status>>,
    /// The stream thread; stops when dropped. A panic there ends the scope, not the sound.
    worker: Worker<u64>,
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

    /// Gives the page the levels for its meter bars.
    pub fn set_levels(&self, levels: crate::levels::LevelsReport) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.levels = levels;
    }

    /// Stops the scope; returns the frames its tap dropped.
    pub fn stop(self) -> u64 {
        self.worker.stop().unwrap_or(0)
    }
}
