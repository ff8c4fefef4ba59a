//! Events pushed to subscribed control connections (`{"op":"subscribe"}`): faults while
//! playing, failed loads, and signals loaded again without an error.
//!
//! The play loop publishes with [`Subscribers::publish`], which never waits: each
//! subscriber has a queue of [`BACKLOG`] lines, and a line that finds it full is dropped
//! and counted (the connection says `{"event":"dropped","count":N}` before its next line).
//! The connection's own thread writes the lines, so a slow client holds up only itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use crate::session::Notice;

/// Subscribed connections at most; one more is refused.
pub const MAX_SUBSCRIBERS: usize = 4;
/// Lines waiting for one subscriber at most; more are dropped and counted.
pub const BACKLOG: usize = 256;

/// One subscriber, as the publisher sees it.
struct Subscriber {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
}

/// The subscribed connections, shared by the play loop and the server.
#[derive(Clone, Default)]
pub struct Subscribers(Arc<Mutex<Vec<Subscriber>>>);

/// A connection's end of a subscription: its lines, and what was dropped.
pub struct Subscription {
    /// The event lines, newline included.
    pub lines: Receiver<String>,
    dropped: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
}

impl Subscription {
    /// Lines dropped since the last call because the queue was full.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

impl Subscribers {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<Subscriber>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A new subscription, or `None` when [`MAX_SUBSCRIBERS`] are open.
    pub fn add(&self) -> Option<Subscription> {
        self.with(|subs| {
            subs.retain(|s| s.alive.load(Ordering::Relaxed));
            if subs.len() >= MAX_SUBSCRIBERS {
                return None;
            }
            let (tx, lines) = sync_channel(BACKLOG);
            let dropped = Arc::new(AtomicU64::new(0));
            let alive = Arc::new(AtomicBool::new(true));
            subs.push(Subscriber {
                tx,
                dropped: dropped.clone(),
                alive: alive.clone(),
            });
            Some(Subscription {
                lines,
                dropped,
                alive,
            })
        })
    }

    /// Whether anyone listens.
    pub fn is_empty(&self) -> bool {
        self.with(|subs| subs.is_empty())
    }

    /// Queues `line` for every subscriber, never waiting: a full queue drops it (counted),
    /// a closed subscription is forgotten.
    pub fn publish(&self, line: &str) {
        self.with(|subs| {
            subs.retain(|s| match s.tx.try_send(line.to_owned()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        });
    }
}

/// The event line of a notice (newline included).
pub fn event_line(notice: &Notice) -> String {
    let place = |l: Option<&flux_js::Location>| {
        (
            l.map(|l| l.file.clone()),
            l.map(|l| l.line),
            l.map(|l| l.col),
        )
    };
    let value = match notice {
        Notice::Fault {
            id,
            location,
            message,
        } => {
            let (file, line, col) = place(location.as_ref());
            json!({"event": "fault", "id": id, "file": file, "line": line, "col": col,
                   "message": message, "severity": "error"})
        }
        Notice::Error(d) => {
            let (file, line, col) = place(Some(&d.location));
            json!({"event": "error", "file": file, "line": line, "col": col,
                   "message": d.message, "severity": "error"})
        }
        Notice::Cleared { id, file } => json!({"event": "cleared", "id": id, "file": file}),
    };
    format!("{value}\n")
}

/// The line that says `count` events were dropped.
pub fn dropped_line(count: u64) -> String {
    format!("{}\n", json!({"event": "dropped", "count": count}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_and_a_closed_one_is_forgotten() {
        let subs = Subscribers::default();
        let a = subs.add().unwrap();
        for i in 0..BACKLOG + 5 {
            subs.publish(&format!("{i}\n"));
        }
        assert_eq!(a.lines.try_iter().count(), BACKLOG);
        assert_eq!(a.take_dropped(), 5);
        assert_eq!(a.take_dropped(), 0);
        let more: Vec<Subscription> = (1..MAX_SUBSCRIBERS).map(|_| subs.add().unwrap()).collect();
        assert!(subs.add().is_none(), "at most {MAX_SUBSCRIBERS}");
        drop(a);
        assert!(
            subs.add().is_some(),
            "a closed subscription frees its place"
        );
        drop(more);
    }

    #[test]
    fn notices_become_one_json_line_each() {
        let line = event_line(&Notice::Fault {
            id: "bad".into(),
            location: flux_js::Location::parse("song.js:22:26"),
            message: "ReferenceError: frq is not defined".into(),
        });
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "fault");
        assert_eq!(v["file"], "song.js");
        assert_eq!(v["line"], 22);
        assert_eq!(v["col"], 26);
        let v: serde_json::Value = serde_json::from_str(&event_line(&Notice::Cleared {
            id: "bad".into(),
            file: Some("song.js".into()),
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"event": "cleared", "id": "bad", "file": "song.js"})
        );
    }
}
