//! Watching a signals file: file-system events, debounced, filtered to the file, the
//! target of its symlink and the files it imports.
//!
//! The debounce logic is pure and tested without a file system; [`Watcher`] feeds it from
//! `notify`.

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

/// What changed, once a burst of events is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// The signals file (or the target of its symlink), or its folder came back.
    File,
    /// A file the signals file imports: reload even when the signals file's text is the
    /// same.
    Import,
}

/// A folder being watched, and which one it is (device and inode), to see it removed and
/// re-created.
struct Dir {
    path: PathBuf,
    id: Option<(u64, u64)>,
    /// Whether it existed once (a folder that appears for the first time is no news).
    seen: bool,
}

/// How often folders are checked for having been removed or re-created.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Watches a signals file, the target of its symlink and the files it imports, through
/// their folders (so saves by rename are seen too). A folder that is removed and
/// re-created is watched again (and said so).
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    /// The signals file as given.
    file: PathBuf,
    /// The signals file in its canonical folder, and the target of its symlink(s).
    targets: Vec<PathBuf>,
    /// Imported files (canonical).
    imports: Vec<PathBuf>,
    dirs: Vec<Dir>,
    debounce: Debounce,
    import_changed: bool,
    notes: Vec<String>,
    next_check: Instant,
}

impl Watcher {
    /// Starts watching `file`.
    ///
    /// # Errors
    ///
    /// When its folder cannot be watched.
    pub fn new(file: &Path) -> anyhow::Result<Self> {
        file.file_name()
            .with_context(|| format!("{} is not a file name", file.display()))?;
        let (tx, events) = channel();
        let inner = notify::recommended_watcher(tx).context("cannot start the file watcher")?;
        let mut watcher = Self {
            inner,
            events,
            file: file.to_owned(),
            targets: Vec::new(),
            imports: Vec::new(),
            dirs: Vec::new(),
            debounce: Debounce::new(DEBOUNCE),
            import_changed: false,
            notes: Vec::new(),
            next_check: Instant::now() + CHECK_EVERY,
        };
        watcher.refresh();
        let dir = folder(file);
        if !watcher.dirs.iter().any(|d| d.id.is_some()) {
            anyhow::bail!("cannot watch {}: it cannot be found", dir.display());
        }
        Ok(watcher)
    }

    /// Watches these imported files too (the list of the last load), instead of those
    /// of the load before.
    pub fn watch_imports(&mut self, imports: &[PathBuf]) {
        if self.imports != imports {
            imports.clone_into(&mut self.imports);
            self.refresh();
        }
    }

    /// Lines to print: folders gone or watched again.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Works out the files to watch (the symlink may point elsewhere now) and watches
    /// their folders.
    fn refresh(&mut self) {
        let dir = folder(&self.file);
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut targets = Vec::new();
        if let Some(name) = self.file.file_name() {
            targets.push(dir.join(name));
        }
        if let Ok(real) = self.file.canonicalize() {
            if !targets.contains(&real) {
                targets.push(real);
            }
        }
        self.targets = targets;
        let mut wanted: Vec<PathBuf> = vec![dir];
        for p in self.targets.iter().chain(&self.imports) {
            if let Some(parent) = p.parent() {
                if !wanted.iter().any(|w| w == parent) {
                    wanted.push(parent.to_owned());
                }
            }
        }
        // Folders no longer needed are given up; new ones are watched.
        let inner = &mut self.inner;
        self.dirs.retain(|d| {
            let keep = wanted.contains(&d.path);
            if !keep {
                let _ = inner.unwatch(&d.path);
            }
            keep
        });
        for path in wanted {
            if self.dirs.iter().all(|d| d.path != path) {
                let id = identity(&path);
                let id =
                    id.filter(|_| self.inner.watch(&path, RecursiveMode::NonRecursive).is_ok());
                let seen = id.is_some();
                self.dirs.push(Dir { path, id, seen });
            }
        }
    }

    /// Watches again each folder that was removed and re-created; true when one was.
    fn check_dirs(&mut self) -> bool {
        let mut back = false;
        for d in &mut self.dirs {
            let now = identity(&d.path);
            if now == d.id {
                continue;
            }
            let _ = self.inner.unwatch(&d.path);
            let watched = now.is_some()
                && self
                    .inner
                    .watch(&d.path, RecursiveMode::NonRecursive)
                    .is_ok();
            let note = match (watched, now.is_some(), d.seen) {
                (true, _, true) => "the folder was removed and re-created; watching it again",
                (false, false, true) => "the folder is gone; watching for it to come back",
                _ => "",
            };
            if !note.is_empty() {
                self.notes.push(format!("{}: {note}", d.path.display()));
            }
            if watched {
                d.seen = true;
                back = true;
            }
            // A folder that could not be watched is tried again at the next check.
            d.id = if watched { now } else { None };
        }
        back
    }

    /// Waits up to `timeout` for events; says what changed once a burst is over.
    pub fn changed(&mut self, timeout: Duration) -> Change {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= self.next_check {
                self.next_check = now + CHECK_EVERY;
                if self.check_dirs() {
                    self.refresh();
                    self.debounce.event(now);
                }
            }
            if self.debounce.ready(now) {
                return self.take_change();
            }
            // A flood of events (a busy folder) never holds the play loop past its tick.
            if now >= deadline {
                return Change::None;
            }
            let until = deadline.min(self.next_check);
            let wait = self
                .debounce
                .wait(now)
                .map_or(until.saturating_duration_since(now), |w| {
                    w.min(until.saturating_duration_since(now))
                });
            match self.events.recv_timeout(wait) {
                Ok(Ok(event)) => match self.concerns(&event) {
                    Change::None => {}
                    change => {
                        self.import_changed |= change == Change::Import;
                        self.debounce.event(Instant::now());
                    }
                },
                Ok(Err(_)) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= deadline {
                        return if self.debounce.ready(Instant::now()) {
                            self.take_change()
                        } else {
                            Change::None
                        };
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Change::None,
            }
        }
    }

    fn take_change(&mut self) -> Change {
        if std::mem::take(&mut self.import_changed) {
            Change::Import
        } else {
            Change::File
        }
    }

    fn concerns(&self, event: &notify::Event) -> Change {
        use notify::EventKind;
        if !matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any
        ) {
            return Change::None;
        }
        if event.paths.iter().any(|p| self.targets.contains(p)) {
            Change::File
        } else if event.paths.iter().any(|p| self.imports.contains(p)) {
            Change::Import
        } else {
            Change::None
        }
    }
}

/// The folder of `file` (`.` for a bare name).
fn folder(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Which file `path` is (device and inode), or `None` when it does not exist.
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `path` exists (other systems: a re-created folder is not told apart).
#[cfg(not(unix))]
fn identity(path: &Path) -> Option<(u64, u64)> {
    path.exists().then_some((0, 0))
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
