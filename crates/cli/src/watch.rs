//! Watching a signals file: file-system events, debounced, filtered to one file.
//!
//! The debounce logic is pure and tested without a file system; [`Watcher`] feeds it from
//! `notify`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};

/// Quiet time after the last event before a reload: long enough to see a save through
/// (truncate then write, or write a temporary file then rename it), short enough not to be
/// heard.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// Turns a burst of events into one reload once the burst has been quiet for a while.
#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    due: Option<Instant>,
}

impl Debounce {
    /// A debounce that waits `quiet` after the last event.
    pub fn new(quiet: Duration) -> Self {
        Self { quiet, due: None }
    }

    /// Notes an event at `now`.
    pub fn event(&mut self, now: Instant) {
        self.due = Some(now + self.quiet);
    }

    /// True once, when the last burst has been quiet long enough at `now`.
    pub fn ready(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if now >= due => {
                self.due = None;
                true
            }
            _ => false,
        }
    }

    /// How long until the pending reload is due, if one is.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.due.map(|due| due.saturating_duration_since(now))
    }
}

/// Watches one file through its directory, so saves by rename are seen too.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    name: OsString,
    debounce: Debounce,
}

impl Watcher {
    /// Starts watching `file`.
    ///
    /// # Errors
    ///
    /// When the directory cannot be watched.
    pub fn new(file: &Path) -> anyhow::Result<Self> {
        let name = file
            .file_name()
            .with_context(|| format!("{} is not a file name", file.display()))?
            .to_owned();
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (tx, events) = channel();
        let mut inner = notify::recommended_watcher(tx).context("cannot start the file watcher")?;
        inner
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
        Ok(Self {
            _inner: inner,
            events,
            name,
            debounce: Debounce::new(DEBOUNCE),
        })
    }

    /// Waits up to `timeout` for events; true when the file changed and the burst is over.
    pub fn changed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if self.debounce.ready(now) {
                return true;
            }
            let wait = self
                .debounce
                .wait(now)
                .map_or(deadline.saturating_duration_since(now), |w| {
                    w.min(deadline.saturating_duration_since(now))
                });
            match self.events.recv_timeout(wait) {
                Ok(Ok(event)) => {
                    if self.concerns_file(&event) {
                        self.debounce.event(Instant::now());
                    }
                }
                Ok(Err(_)) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        return self.debounce.ready(Instant::now());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    fn concerns_file(&self, event: &notify::Event) -> bool {
        use notify::EventKind;
        matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any
        ) && event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(self.name.as_os_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_events_gives_one_reload_after_the_quiet_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debounce::new(ms(25));
        assert!(!d.ready(t0));
        d.event(t0);
        d.event(t0 + ms(10));
        d.event(t0 + ms(20));
        assert!(!d.ready(t0 + ms(40)));
        assert_eq!(d.wait(t0 + ms(40)), Some(ms(5)));
        assert!(d.ready(t0 + ms(45)));
        assert!(!d.ready(t0 + ms(100)));
        assert_eq!(d.wait(t0 + ms(100)), None);
    }
}
