//! Watching a signals file: file-system events, filtered to the file, the target of its
//! symlink and the files it imports. A completed save (a close after a write, a rename into
//! place) reloads at once; a write still in progress is waited for, until it is closed or
//! has been quiet for [`DEBOUNCE`].
//!
//! The debounce logic is pure and tested without a file system; [`Watcher`] feeds it from
//! `notify`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};

/// Quiet time after the last event of a write still in progress before a reload: long
/// enough to see most saves through (truncate then write), short enough not to be heard.
/// A completed write (closed, or renamed into place) reloads at once.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// What an event says of the file it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// The save is complete: the file was closed after a write, or renamed into place.
    Complete,
    /// A write may still be going on (a modification, a creation, a rename away).
    InProgress,
    /// Only its metadata changed (a `chmod`, a `touch`).
    Touched,
}

impl Save {
    /// What `event` says of its path number `index`, or `None` when it says nothing of it
    /// (an open, a read, a removal).
    pub fn of(event: &notify::EventKind, index: usize) -> Option<Save> {
        use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
        use notify::EventKind;
        match event {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Save::Complete),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Some(Save::Complete),
            // From the first path to the second: only the second was moved into place.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if index == 1 => {
                Some(Save::Complete)
            }
            EventKind::Modify(ModifyKind::Metadata(_)) => Some(Save::Touched),
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any => Some(Save::InProgress),
            _ => None,
        }
    }
}

/// Turns a burst of events into one reload: at once when the save is complete, otherwise
/// once the burst has been quiet for a while.
#[derive(Debug)]
pub struct Debounce {
    quiet: Duration,
    due: Option<Instant>,
    /// When the first event of the pending burst came.
    since: Option<Instant>,
}

impl Debounce {
    /// A debounce that waits `quiet` after the last event of a write in progress.
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            due: None,
            since: None,
        }
    }

    /// Notes an event of a write that may still be going on at `now`: the reload waits
    /// for the quiet time (or for the write to complete).
    pub fn event(&mut self, now: Instant) {
        self.since.get_or_insert(now);
        self.due = Some(now + self.quiet);
    }

    /// Notes a completed save at `now`: the reload is due at once.
    pub fn complete(&mut self, now: Instant) {
        self.since.get_or_insert(now);
        self.due = Some(now);
    }

    /// Notes a change of metadata at `now`: it never holds back a reload already due, and
    /// waits the quiet time otherwise.
    pub fn touched(&mut self, now: Instant) {
        self.since.get_or_insert(now);
        self.due.get_or_insert(now + self.quiet);
    }

    /// Notes what an event says.
    pub fn note(&mut self, save: Save, now: Instant) {
        match save {
            Save::Complete => self.complete(now),
            Save::InProgress => self.event(now),
            Save::Touched => self.touched(now),
        }
    }

    /// When the reload is due at `now`: once, with the time of the burst's first event.
    pub fn ready(&mut self, now: Instant) -> Option<Instant> {
        match self.due {
            Some(due) if now >= due => {
                self.due = None;
                self.since.take()
            }
            _ => None,
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

/// Most events taken at once after the first, before a due reload is acted on.
const DRAIN: usize = 256;

/// How often folders are checked for having been removed or re-created.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// What wakes [`Watcher::changed`]: a file-system event, or another thread with work for
/// the play loop.
enum Wake {
    Fs(notify::Result<notify::Event>),
    Other,
}

/// Wakes the play loop out of [`Watcher::changed`] at once, from any thread (the control
/// server, when it queues a request), so the loop can wait long between ticks.
#[derive(Clone, Debug)]
pub struct Waker(Sender<Wake>);

impl Waker {
    /// Wakes the loop; a loop that has ended is not woken.
    pub fn wake(&self) {
        let _ = self.0.send(Wake::Other);
    }
}

/// Watches a signals file, the target of its symlink and the files it imports, through
/// their folders (so saves by rename are seen too). A folder that is removed and
/// re-created is watched again (and said so).
pub struct Watcher {
    inner: notify::RecommendedWatcher,
    events: Receiver<Wake>,
    /// A sender for [`Waker`]s.
    wake: Sender<Wake>,
    /// The signals file as given.
    file: PathBuf,
    /// The signals file in its canonical folder, and the target of its symlink(s).
    targets: Vec<PathBuf>,
    /// Imported files (canonical).
    imports: Vec<PathBuf>,
    dirs: Vec<Dir>,
    debounce: Debounce,
    /// When the first event of the change last returned came.
    saved_at: Option<Instant>,
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
        let wake = tx.clone();
        let inner = notify::recommended_watcher(move |event| {
            let _ = tx.send(Wake::Fs(event));
        })
        .context("cannot start the file watcher")?;
        let mut watcher = Self {
            inner,
            events,
            wake,
            file: file.to_owned(),
            targets: Vec::new(),
            imports: Vec::new(),
            dirs: Vec::new(),
            debounce: Debounce::new(DEBOUNCE),
            saved_at: None,
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

    /// A waker for this watcher's [`changed`](Watcher::changed).
    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// Watches these imported files too (the list of the last load), instead of those
    /// of the load before.
    pub fn watch_imports(&mut self, imports: &[PathBuf]) {
        if self.imports != imports {
            imports.clone_into(&mut self.imports);
            self.refresh();
        }
    }

    /// When the first event of the change [`changed`](Watcher::changed) returned last came
    /// (taken as it was received): where a save's time to the ear starts.
    pub fn saved_at(&self) -> Option<Instant> {
        self.saved_at
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
            if let Some(since) = self.debounce.ready(now) {
                return self.take_change(since);
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
                Ok(wake) => {
                    let mut woken = self.note(wake);
                    // Take what came with it (a rename's second event) before acting.
                    for _ in 0..DRAIN {
                        match self.events.try_recv() {
                            Ok(wake) => woken |= self.note(wake),
                            Err(_) => break,
                        }
                    }
                    // Another thread has work for the loop now.
                    if woken {
                        return match self.debounce.ready(Instant::now()) {
                            Some(since) => self.take_change(since),
                            None => Change::None,
                        };
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return match self.debounce.ready(now) {
                            Some(since) => self.take_change(since),
                            None => Change::None,
                        };
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Change::None,
            }
        }
    }

    /// Notes an event as it is received; true when it is a [`Waker`]'s.
    fn note(&mut self, wake: Wake) -> bool {
        let Wake::Fs(Ok(event)) = wake else {
            return matches!(wake, Wake::Other);
        };
        let now = Instant::now();
        for (change, save) in self.concerns(&event) {
            self.import_changed |= change == Change::Import;
            self.debounce.note(save, now);
        }
        false
    }

    fn take_change(&mut self, since: Instant) -> Change {
        self.saved_at = Some(since);
        if std::mem::take(&mut self.import_changed) {
            Change::Import
        } else {
            Change::File
        }
    }

    /// What `event` says of the watched files: which, and how far their save is.
    fn concerns(&self, event: &notify::Event) -> Vec<(Change, Save)> {
        event
            .paths
            .iter()
            .enumerate()
            .filter_map(|(index, p)| {
                let change = if self.targets.contains(p) {
                    Change::File
                } else if self.imports.contains(p) {
                    Change::Import
                } else {
                    return None;
                };
                Some((change, Save::of(&event.kind, index)?))
            })
            .collect()
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

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_waker_ends_the_wait_at_once_and_a_save_is_still_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.js");
        std::fs::write(&file, "// a\n").unwrap();
        let mut watcher = Watcher::new(&file).unwrap();
        let waker = watcher.waker();
        let woke = std::thread::spawn(move || waker.wake());
        // Woken long before the minute is up, with no change.
        let asked = Instant::now();
        assert_eq!(watcher.changed(Duration::from_secs(60)), Change::None);
        assert!(asked.elapsed() < Duration::from_secs(30));
        woke.join().unwrap();
        // A save after the wake is a change as before.
        std::fs::write(&file, "// b\n").unwrap();
        let mut change = Change::None;
        for _ in 0..50 {
            change = watcher.changed(ms(100));
            if change != Change::None {
                break;
            }
        }
        assert_eq!(change, Change::File);
    }

    #[test]
    fn a_burst_of_events_gives_one_reload_after_the_quiet_time() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(25));
        assert_eq!(d.ready(t0), None);
        d.event(t0);
        d.event(t0 + ms(10));
        d.event(t0 + ms(20));
        assert_eq!(d.ready(t0 + ms(40)), None);
        assert_eq!(d.wait(t0 + ms(40)), Some(ms(5)));
        // The reload is timed from the burst's first event.
        assert_eq!(d.ready(t0 + ms(45)), Some(t0));
        assert_eq!(d.ready(t0 + ms(100)), None);
        assert_eq!(d.wait(t0 + ms(100)), None);
    }

    #[test]
    fn a_completed_save_reloads_at_once() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(25));
        // Truncate, write, close.
        d.note(Save::InProgress, t0);
        d.note(Save::InProgress, t0 + ms(1));
        assert_eq!(d.ready(t0 + ms(2)), None);
        d.note(Save::Complete, t0 + ms(2));
        // A change of mode after the close does not hold the reload back.
        d.note(Save::Touched, t0 + ms(2));
        assert_eq!(d.wait(t0 + ms(2)), Some(ms(0)));
        assert_eq!(d.ready(t0 + ms(2)), Some(t0));
        assert_eq!(d.ready(t0 + ms(30)), None);
    }

    #[test]
    fn a_write_begun_after_a_close_is_waited_for() {
        let t0 = Instant::now();
        let mut d = Debounce::new(ms(25));
        d.note(Save::Complete, t0);
        d.note(Save::InProgress, t0 + ms(1));
        assert_eq!(d.ready(t0 + ms(1)), None);
        // Its close, or the quiet time, whichever comes first.
        assert_eq!(d.ready(t0 + ms(26)), Some(t0));
        d.note(Save::InProgress, t0 + ms(40));
        d.note(Save::Complete, t0 + ms(45));
        assert_eq!(d.ready(t0 + ms(45)), Some(t0 + ms(40)));
    }

    #[test]
    fn events_say_how_far_a_save_is() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RenameMode,
        };
        use notify::EventKind as K;
        let close = K::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(Save::of(&close, 0), Some(Save::Complete));
        let to = K::Modify(ModifyKind::Name(RenameMode::To));
        assert_eq!(Save::of(&to, 0), Some(Save::Complete));
        let both = K::Modify(ModifyKind::Name(RenameMode::Both));
        assert_eq!(Save::of(&both, 1), Some(Save::Complete));
        // The file renamed away (a backup) is gone until the new one is written.
        assert_eq!(Save::of(&both, 0), Some(Save::InProgress));
        let from = K::Modify(ModifyKind::Name(RenameMode::From));
        assert_eq!(Save::of(&from, 0), Some(Save::InProgress));
        let data = K::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(Save::of(&data, 0), Some(Save::InProgress));
        assert_eq!(
            Save::of(&K::Create(CreateKind::File), 0),
            Some(Save::InProgress)
        );
        let attrib = K::Modify(ModifyKind::Metadata(MetadataKind::Any));
        assert_eq!(Save::of(&attrib, 0), Some(Save::Touched));
        let read = K::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(Save::of(&read, 0), None);
        assert_eq!(
            Save::of(&K::Access(AccessKind::Open(AccessMode::Any)), 0),
            None
        );
    }
}
