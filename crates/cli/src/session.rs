//! A playing session: the loader and the engine's controller, and what reloads say.
//!
//! Shared by `play` (reloads on save) and `render` (swaps at set times), so both go through
//! the same path: load, swap, report.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_engine::{Controller, Fault, SignalFault, StateAllocator, StateMemory};
use flux_js::{Diagnostic, LoadOptions, Loader, SignalInfo};

/// How a reload went.
#[derive(Debug)]
pub enum Reload {
    /// The new patch is playing.
    Ok {
        /// Signals in the new patch.
        signals: usize,
        /// Load time.
        elapsed: Duration,
    },
    /// The file failed; the old patch plays on.
    Failed {
        /// What went wrong.
        diagnostic: Diagnostic,
        /// Signals still playing.
        playing: usize,
        /// Time spent before failing.
        elapsed: Duration,
    },
}

impl Reload {
    /// The one line a reload prints.
    pub fn line(&self, file: &str) -> String {
        match self {
            Reload::Ok { signals, elapsed } => format!(
                "{file}: ok, {signals} signal{}, loaded in {:.1} ms",
                plural(*signals),
                ms(*elapsed)
            ),
            Reload::Failed {
                diagnostic,
                playing,
                elapsed,
            } => format!(
                "{diagnostic} (still playing {playing} signal{}; {:.1} ms)",
                plural(*playing),
                ms(*elapsed)
            ),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The loader, the controller and the record of reloads.
pub struct Session {
    loader: Loader,
    controller: Controller,
    /// Signals of the patch last sent, and of the one before (faults may name either).
    current: Vec<SignalInfo>,
    previous: Vec<SignalInfo>,
    /// Reloads after the first load.
    pub reloads: u64,
    /// Reloads that failed.
    pub reload_errors: u64,
    /// Load time of every reload, in ms.
    pub reload_ms: Vec<f64>,
    loads: u64,
}

impl Session {
    /// A session whose engine is driven by `controller`.
    pub fn new(
        state: Arc<StateMemory>,
        alloc: StateAllocator,
        options: LoadOptions,
        controller: Controller,
    ) -> Self {
        Self {
            loader: Loader::new(state, alloc, options),
            controller,
            current: Vec::new(),
            previous: Vec::new(),
            reloads: 0,
            reload_errors: 0,
            reload_ms: Vec::new(),
            loads: 0,
        }
    }

    /// Loads `source` (the text of `path`) and, when it loads, swaps it in.
    pub fn load(&mut self, path: &Path, source: &str) -> Reload {
        let name = path.to_string_lossy();
        let started = Instant::now();
        let result = self.loader.load_source(&name, source);
        let took = started.elapsed();
        let first = self.loads == 0;
        self.loads += 1;
        let reload = match result {
            Ok(loaded) => {
                let elapsed = took;
                let signals = loaded.signals.len();
                self.previous = std::mem::replace(&mut self.current, loaded.signals);
                self.controller.swap(loaded.patch);
                Reload::Ok { signals, elapsed }
            }
            Err(diagnostic) => Reload::Failed {
                diagnostic,
                playing: self.current.len(),
                elapsed: took,
            },
        };
        if !first {
            self.reloads += 1;
            if matches!(reload, Reload::Failed { .. }) {
                self.reload_errors += 1;
            }
            self.reload_ms.push(ms(took));
        }
        reload
    }

    /// Signals of the patch last sent.
    pub fn signals(&self) -> &[SignalInfo] {
        &self.current
    }

    /// Drops retired patches; returns the lines to print for faults and `console.log`.
    pub fn poll(&mut self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .controller
            .collect()
            .into_iter()
            .map(|f| self.fault_line(&f))
            .collect();
        let (logs, dropped) = self.loader.drain_logs();
        lines.extend(logs);
        if dropped > 0 {
            lines.push(format!(
                "({dropped} console.log line{} dropped)",
                plural(dropped as usize)
            ));
        }
        lines
    }

    /// `FILE:LINE:COL: message (signal 'id' silenced)`.
    fn fault_line(&self, f: &SignalFault) -> String {
        let silenced = format!("(signal '{}' silenced)", f.id);
        match &f.fault {
            // Errors from the code carry their own location.
            Fault::Error(message) => format!("{message} {silenced}"),
            other => {
                let place = self
                    .current
                    .iter()
                    .chain(&self.previous)
                    .find(|s| s.id == f.id)
                    .and_then(|s| s.location.as_ref());
                match place {
                    Some(l) => format!("{l}: {other} {silenced}"),
                    None => format!("{other} {silenced}"),
                }
            }
        }
    }
}
