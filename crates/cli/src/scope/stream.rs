//! The stream thread: drains the scope's tap and sends its frames to every open page.
//!
//! # Protocol
//!
//! A page opens a WebSocket on `/ws` and receives:
//!
//! - first, a text message `{"type":"hello","protocol":1,"sample_rate":…,"channels":…,
//!   "streamed_channels":…}`;
//! - binary messages of frames, every few milliseconds (see [`encode_frames`]): a 16-byte
//!   header of four little-endian `u32` (flags, channels, frames, sample rate) and then the
//!   frames, interleaved little-endian `f32`, every sample of the first
//!   [`MAX_STREAMED_CHANNELS`] channels as it plays (after the clip). Flag bit 0 says frames
//!   were lost just before this message (the tap dropped a block, the stream skipped a
//!   backlog, or this page's queue was full), so the page does not join the trace across
//!   the gap;
//! - a text message `{"type":"status",…}` about four times a second (see [`Status`]).
//!
//! Nothing is decimated on the wire: X-Y, XYZ and the spectrum need every sample. The page
//! thins the trace only where a view has more samples than pixels (Y-T at long time/div).
//!
//! # Bounds
//!
//! Sockets are non-blocking. A page whose socket does not take a message queues it, up to
//! [`MAX_QUEUED_BYTES`]; beyond that its messages are dropped (and the next one flagged),
//! and a page that has taken nothing for [`STUCK_AFTER`] is closed. At most
//! [`MAX_PAGES`] pages are served at once.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flux_engine::{Counters, TapReader};
use serde::Serialize;
use tungstenite::protocol::WebSocket;
use tungstenite::{Bytes, Error as WsError, Message};

/// Channels streamed at most: the page draws channels 1 to 4.
pub const MAX_STREAMED_CHANNELS: usize = 4;
/// Bytes a page may have waiting in its queue before its messages are dropped.
pub const MAX_QUEUED_BYTES: usize = 1 << 20;
/// A page that has taken nothing for this long is closed.
pub const STUCK_AFTER: Duration = Duration::from_secs(5);
/// Pages served at once.
pub const MAX_PAGES: usize = 8;
/// Size of the binary header, in bytes.
pub const HEADER_BYTES: usize = 16;
/// Header flag: frames were lost just before this message.
pub const FLAG_GAP: u32 = 1;

/// Time between two rounds of the stream thread.
const TICK: Duration = Duration::from_millis(8);
/// Time between two status messages.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// Requests being read at once; more connections are closed at once.
const MAX_REQUESTS: usize = 8;

/// What the page shows beside the trace. The play loop sets the file's part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// The signals file.
    pub file: String,
    /// The signals playing: id and tier.
    pub signals: Vec<SignalStatus>,
    /// The last line a load printed (`ok, 2 signals…` or a diagnostic).
    pub message: String,
    /// The output's name.
    pub output: String,
    /// True when the DSP thread runs with a real-time policy.
    pub realtime: bool,
    /// The transport, read for each status message.
    #[serde(skip)]
    pub clock: Option<flux_engine::ClockReader>,
    /// The levels of the master and of each signal, for the meter bars.
    pub levels: crate::levels::LevelsReport,
}

/// One signal, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SignalStatus {
    /// Its id.
    pub id: String,
    /// `js` or `native`.
    pub tier: &'static str,
}

/// The status message: the play loop's [`Status`] and the live counters.
#[derive(Serialize)]
struct StatusMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    status: &'a Status,
    /// Mean DSP load since the last status message (render time / block time).
    dsp_load: f64,
    dsp_load_max: f64,
    underruns: u64,
    frames: u64,
    scope_dropped_frames: u64,
    /// The transport's tempo and position (`bar.beat`, from 1).
    bpm: f64,
    bar_beat: String,
}

#[derive(Serialize)]
struct Hello {
    #[serde(rename = "type")]
    kind: &'static str,
    protocol: u32,
    sample_rate: u32,
    channels: usize,
    streamed_channels: usize,
}

/// Builds one binary message: the header and `frames` (interleaved, `channels` wide), keeping
/// the first `streamed` channels of each frame.
pub fn encode_frames(
    frames: &[f32],
    channels: usize,
    streamed: usize,
    sample_rate: u32,
    flags: u32,
) -> Vec<u8> {
    let count = frames.len() / channels;
    let mut out = Vec::with_capacity(HEADER_BYTES + count * streamed * 4);
    for word in [flags, streamed as u32, count as u32, sample_rate] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for frame in frames.chunks_exact(channels) {
        for sample in &frame[..streamed] {
            out.extend_from_slice(&sample.to_le_bytes());
        }
    }
    out
}

/// What the stream thread needs besides its sockets.
pub struct Feed {
    /// The scope's tap.
    pub tap: TapReader,
    /// The engine's counters, for the status messages.
    pub counters: Arc<Counters>,
    /// The sample rate.
    pub sample_rate: u32,
    /// Set by the play loop.
    pub status: Arc<Mutex<Status>>,
}

/// An open page.
struct Page {
    ws: WebSocket<TcpStream>,
    /// Frames were lost for this page since its last message.
    gap: bool,
    /// When the socket last took a message.
    progress: Instant,
}

enum Sent {
    Yes,
    Dropped,
    Closed,
}

impl Page {
    fn send(&mut self, message: Message) -> Sent {
        match self.ws.write(message) {
            Ok(()) => {}
            // Queued: the socket takes it later.
            Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(WsError::WriteBufferFull(_)) => {
                self.gap = true;
                return if self.progress.elapsed() > STUCK_AFTER {
                    Sent::Closed
                } else {
                    Sent::Dropped
                };
            }
            Err(_) => return Sent::Closed,
        }
        self.progress = Instant::now();
        Sent::Yes
    }

    /// Reads what the page sent (nothing but closes and pings is expected) and writes out
    /// what is queued; false once the page is gone.
    fn service(&mut self) -> bool {
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        match self.ws.flush() {
            Ok(()) => true,
            Err(WsError::Io(e)) => e.kind() == std::io::ErrorKind::WouldBlock,
            Err(_) => false,
        }
    }
}

/// Runs the stream thread until `stop` is set; returns the frames the tap dropped.
///
/// Accepts connections on `listener` (non-blocking) and gives each request a thread of its
/// own ([`super::http::serve`]); upgraded sockets come back on a queue.
pub fn run(listener: TcpListener, mut feed: Feed, stop: &AtomicBool) -> u64 {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let (upgraded_tx, upgraded_rx) = sync_channel(MAX_PAGES);
    let requests = Arc::new(AtomicUsize::new(0));
    let channels = feed.tap.channels();
    let streamed = channels.min(MAX_STREAMED_CHANNELS);
    // Older frames than this are skipped, so a page shows what plays now.
    let max_backlog = (feed.sample_rate / 5).max(1) as usize;
    let mut pages: Vec<Page> = Vec::new();
    let mut buf = Vec::with_capacity(max_backlog * channels);
    let mut tap_dropped = feed.tap.dropped_frames();
    // Frames were lost before the next message.
    let mut lost = false;
    let mut status_due = Instant::now();
    let mut load = LoadWindow::default();
    while !stop.load(Ordering::Relaxed) {
        accept(&listener, port, &upgraded_tx, &requests);
        if take_pages(&upgraded_rx, &mut pages, &feed, streamed) {
            status_due = Instant::now();
        }

        // Frames. The tap drops blocks only while it is full, and it stays full until this
        // thread reads: every frame read here came before a drop counted after the read, so
        // such a gap goes on the next message. Skipped frames come before these.
        let waiting = feed.tap.available_frames();
        if waiting > max_backlog {
            feed.tap.skip(waiting - max_backlog);
            lost = true;
        }
        buf.clear();
        let frames = feed.tap.read_into(&mut buf, max_backlog);
        let gap = lost;
        if frames > 0 {
            lost = false;
        }
        let dropped = feed.tap.dropped_frames();
        if dropped != tap_dropped {
            (lost, tap_dropped) = (true, dropped);
        }
        if frames > 0 && !pages.is_empty() {
            let flags = if gap { FLAG_GAP } else { 0 };
            let message = Bytes::from(encode_frames(
                &buf,
                channels,
                streamed,
                feed.sample_rate,
                flags,
            ));
            pages.retain_mut(|page| {
                let message = if page.gap && !gap {
                    // This page alone lost frames: its copy carries the flag.
                    let mut own = message.to_vec();
                    own[..4].copy_from_slice(&FLAG_GAP.to_le_bytes());
                    Bytes::from(own)
                } else {
                    message.clone()
                };
                match page.send(Message::Binary(message)) {
                    Sent::Yes => {
                        page.gap = false;
                        true
                    }
                    Sent::Dropped => true,
                    Sent::Closed => false,
                }
            });
        }

        // Status.
        if Instant::now() >= status_due {
            status_due = Instant::now() + STATUS_EVERY;
            let stats = feed.counters.snapshot();
            let status = feed
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let message = StatusMessage {
                kind: "status",
                status: &status,
                dsp_load: load.update(stats.blocks, stats.dsp_load_mean),
                dsp_load_max: stats.dsp_load_max,
                underruns: stats.underruns,
                frames: stats.frames_played,
                scope_dropped_frames: tap_dropped,
                bpm: status.clock.as_ref().map_or(0.0, |c| c.read().bpm),
                bar_beat: status
                    .clock
                    .as_ref()
                    .map_or_else(String::new, |c| c.read().bar_beat()),
            };
            if let Ok(json) = serde_json::to_string(&message) {
                pages.retain_mut(|page| !matches!(page.send(json.as_str().into()), Sent::Closed));
            }
        }

        pages.retain_mut(Page::service);
        std::thread::sleep(TICK);
    }
    for page in &mut pages {
        let _ = page.ws.close(None);
        let _ = page.ws.flush();
    }
    feed.tap.dropped_frames()
}

/// Takes every waiting connection; each request is read on a thread of its own.
fn accept(
    listener: &TcpListener,
    port: u16,
    upgraded: &SyncSender<WebSocket<TcpStream>>,
    requests: &Arc<AtomicUsize>,
) {
    while let Ok((stream, _)) = listener.accept() {
        if requests.load(Ordering::Relaxed) >= MAX_REQUESTS
            || stream.set_nonblocking(false).is_err()
        {
            continue;
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let (upgraded, count) = (upgraded.clone(), requests.clone());
        let spawned = crate::worker::spawn_guarded(
            "flux-scope-http",
            move || super::http::serve(stream, port, &upgraded),
            move || {
                count.fetch_sub(1, Ordering::Relaxed);
            },
        );
        if spawned.is_err() {
            requests.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Adds the pages whose sockets were upgraded; true when there is a new one.
fn take_pages(
    upgraded: &Receiver<WebSocket<TcpStream>>,
    pages: &mut Vec<Page>,
    feed: &Feed,
    streamed: usize,
) -> bool {
    let mut added = false;
    loop {
        let ws = match upgraded.try_recv() {
            Ok(ws) => ws,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return added,
        };
        let mut page = Page {
            ws,
            gap: true,
            progress: Instant::now(),
        };
        if pages.len() >= MAX_PAGES {
            let _ = page.ws.close(None);
            let _ = page.ws.flush();
            continue;
        }
        let hello = Hello {
            kind: "hello",
            protocol: 1,
            sample_rate: feed.sample_rate,
            channels: feed.tap.channels(),
            streamed_channels: streamed,
        };
        let json = serde_json::to_string(&hello).unwrap_or_default();
        if matches!(page.send(json.into()), Sent::Yes) {
            pages.push(page);
            added = true;
        }
    }
}

/// The mean DSP load over the time since the last reading, from the running mean.
#[derive(Default)]
struct LoadWindow {
    blocks: u64,
    mean: f64,
}

impl LoadWindow {
    fn update(&mut self, blocks: u64, mean: f64) -> f64 {
        let new = blocks.saturating_sub(self.blocks);
        let recent = if new == 0 {
            0.0
        } else {
            (mean * blocks as f64 - self.mean * self.blocks as f64) / new as f64
        };
        (self.blocks, self.mean) = (blocks, mean);
        recent.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_a_header_and_the_first_channels_of_each_frame() {
        let frames = [0.5, -0.5, 0.25, 1.0, -1.0, 0.75];
        let bytes = encode_frames(&frames, 3, 2, 48_000, FLAG_GAP);
        let word = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!([word(0), word(1), word(2), word(3)], [1, 2, 2, 48_000]);
        let samples: Vec<f32> = bytes[HEADER_BYTES..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(samples, [0.5, -0.5, 1.0, -1.0]);
    }

    #[test]
    fn a_page_that_does_not_read_loses_messages_then_is_closed_without_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // The page's end: connected, never read.
        let _page = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let ws = WebSocket::from_raw_socket(
            server,
            tungstenite::protocol::Role::Server,
            Some(super::super::http::ws_config()),
        );
        let mut page = Page {
            ws,
            gap: false,
            progress: Instant::now(),
        };
        let message = Bytes::from(vec![0u8; 64 * 1024]);
        let started = Instant::now();
        let mut sent = 0;
        while matches!(page.send(Message::Binary(message.clone())), Sent::Yes) {
            sent += 1;
            assert!(sent < 10_000, "the queue never filled");
        }
        assert!(page.gap, "a dropped message marks a gap");
        // Socket buffers and the queue, never an unbounded amount.
        assert!(sent * 64 * 1024 < 64 << 20, "{sent} messages queued");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "sending blocked"
        );
        page.progress = Instant::now() - STUCK_AFTER - Duration::from_secs(1);
        assert!(matches!(
            page.send(Message::Binary(message.clone())),
            Sent::Closed
        ));
    }

    #[test]
    fn the_load_window_is_the_mean_of_the_latest_blocks() {
        let mut w = LoadWindow::default();
        assert!((w.update(10, 0.2) - 0.2).abs() < 1e-12);
        // Ten more blocks at 0.4 make the running mean 0.3.
        assert!((w.update(20, 0.3) - 0.4).abs() < 1e-12);
        assert_eq!(w.update(20, 0.3), 0.0);
    }
}
