//! Trials before a load is swapped in: first the file loads on a copy of the state (what
//! its top level and factories write reaches nothing that plays, and a load that fails
//! there changes nothing); then, pre-flight, each of its signals renders a trial off the
//! DSP thread on that copy, and a signal that throws, gives NaN or runs out of time there
//! refuses the load with its place, as a syntax error does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::{BTreeSet, HashMap};

use flux_engine::{
    trial, Fault, Patch, PatchSignal, Signal, StateAllocator, StateMemory, Tier, TrialSpec,
};

use super::{Loaded, Loader};
use crate::diag::{Diagnostic, Location};

/// Longest a trial of a whole load may take, beyond which it is a time-limit fault.
const TRIAL_LIMIT: Duration = Duration::from_secs(2);

/// What a trial load made, on the copy of the state, and what it wrote there.
pub(super) struct TrialLoad {
    loaded: Loaded,
    scratch: Arc<StateMemory>,
    /// The allocator as the trial load left it.
    alloc: StateAllocator,
    /// The unit names it left, by file (for the next load's report).
    units: HashMap<String, BTreeSet<String>>,
    /// The sounds each signal holds, as it left them.
    sample_users: HashMap<String, BTreeSet<String>>,
    /// Slots handed out before the load whose value the load changed, and the new value.
    writes: Vec<(usize, f64)>,
    /// The first slot past those handed out before, and the values of every slot the load
    /// handed out beyond it.
    fresh: (usize, Vec<f64>),
}

impl TrialLoad {
    /// True when every signal of the load runs natively: its code can move onto the real
    /// memory, so the trial load is the load.
    pub(super) fn all_native(&self) -> bool {
        self.loaded.signals.iter().all(|s| s.tier == Tier::Native)
    }

    /// The copy of the state and the trial load's signals (bound to it).
    pub(super) fn into_parts(self) -> (Arc<StateMemory>, Vec<PatchSignal>) {
        (self.scratch, self.loaded.patch.into_signals())
    }
}

impl Loader {
    /// Loads the file once, on a copy of the state (everything handed out so far, as it is
    /// now) with a copy of the allocator: its top level and factories run there, so what
    /// they write reaches nothing that plays. Its error is the load's. What it wrote is
    /// noted, to be written into the real memory if the load is taken
    /// ([`adopt`](Self::adopt)).
    pub(super) fn trial_load(
        &mut self,
        name: &str,
        source: &str,
        running: &[String],
    ) -> Result<TrialLoad, Diagnostic> {
        // A fresh copy each time (zeroed pages, mapped lazily: only what is copied costs):
        // a trial's code may write anywhere in it, and a later trial must not find that.
        let scratch = Arc::new(StateMemory::new(self.state.len()));
        let alloc = copy_of(&self.alloc);
        let used = alloc.used().min(self.state.len());
        let before: Vec<f64> = (0..used)
            .map(|i| self.state.get(i).unwrap_or(0.0))
            .collect();
        for (i, &v) in before.iter().enumerate() {
            if v.to_bits() != 0 {
                scratch.set(i, v);
            }
        }
        let mut twin = self.twin(scratch.clone(), alloc);
        let result = twin.load_inner(name, source, Instant::now(), running);
        // What a load that fails here leaves behind is the trial's: the imports it reached
        // (watched, so a fix reloads) and what it printed.
        self.last_imports = twin.last_imports.take();
        let logs = twin.drain_logs();
        let loaded = match result {
            Ok(loaded) => loaded,
            Err(e) => {
                self.forward_logs(logs);
                return Err(e);
            }
        };
        let alloc = copy_of(&twin.alloc);
        let writes = (0..used)
            .filter_map(|i| {
                let v = scratch.get(i)?;
                (v.to_bits() != before[i].to_bits()).then_some((i, v))
            })
            .collect();
        let end = alloc.used().min(self.state.len());
        let fresh = (used..end.max(used))
            .map(|i| scratch.get(i).unwrap_or(0.0))
            .collect();
        // What the load printed is shown once: now if the trial load is the load, else by
        // the real load.
        let trial = TrialLoad {
            loaded,
            scratch,
            alloc,
            units: std::mem::take(&mut twin.units),
            sample_users: std::mem::take(&mut twin.sample_users),
            writes,
            fresh: (used, fresh),
        };
        if trial.all_native() {
            self.forward_logs(logs);
        }
        Ok(trial)
    }

    /// Shows lines a trial load printed as this loader's.
    fn forward_logs(&mut self, (lines, dropped): (Vec<String>, u64)) {
        use std::sync::atomic::Ordering;
        for line in lines {
            if self.log_tx.try_send(line).is_err() {
                self.logs_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.logs_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Takes a trial load whose signals are all native as the load: their code moves onto
    /// the real memory, pre-flight runs on the copy, and only when that passes are the
    /// trial's allocator and unit names taken and what it wrote written into the real
    /// memory.
    pub(super) fn adopt(&mut self, name: &str, trial: TrialLoad) -> Result<Loaded, Diagnostic> {
        let TrialLoad {
            mut loaded,
            scratch,
            alloc,
            units,
            sample_users,
            writes,
            fresh,
        } = trial;
        let moved = std::mem::replace(&mut loaded.patch, Patch::new(Vec::new()));
        let mut signals = Vec::new();
        for s in moved.into_signals() {
            let Some(code) = s.code.rebased(&self.state) else {
                return Err(Diagnostic {
                    location: Location {
                        file: name.to_owned(),
                        line: 1,
                        col: 1,
                    },
                    message: format!("internal error: the native code of '{}' cannot move", s.id),
                });
            };
            signals.push(PatchSignal::with_footprint(
                s.id,
                s.block,
                s.footprint,
                code,
            ));
        }
        loaded.patch = Patch::new(signals);
        let loaded = self.preflight(name, loaded, &scratch, Vec::new())?;
        if let Ok(mut a) = self.alloc.lock() {
            *a = alloc;
        }
        self.units = units;
        self.sample_users = sample_users;
        // No load on the real memory follows: the samples the trial decoded are written.
        if let Ok(mut cache) = self.samples.lock() {
            for known in cache.values_mut() {
                known.2 = None;
            }
        }
        for (i, v) in writes {
            self.state.set(i, v);
        }
        let (start, values) = fresh;
        for (k, v) in values.into_iter().enumerate() {
            // Every slot, zeros too: the pages are faulted in here, not on the DSP thread.
            self.state.set(start + k, v);
        }
        Ok(loaded)
    }

    /// Runs the pre-flight trial of every signal of `loaded` on the copy of the state its
    /// trial load left (native code moved onto it; interpreted code is bound to the memory
    /// its runtime was made with, so the trial load's twin of it runs).
    pub(super) fn preflight(
        &mut self,
        name: &str,
        loaded: Loaded,
        scratch: &Arc<StateMemory>,
        mut others: Vec<PatchSignal>,
    ) -> Result<Loaded, Diagnostic> {
        let frames = (self.options.preflight.as_secs_f64() * f64::from(self.options.sample_rate))
            .ceil() as usize;
        if frames == 0 || loaded.patch.is_empty() {
            return Ok(loaded);
        }
        let scratch = scratch.clone();
        let mut codes: Vec<Option<Box<dyn Signal>>> = loaded
            .patch
            .signals()
            .iter()
            .map(|s| s.code.rebased(&scratch))
            .collect();
        for (code, s) in codes.iter_mut().zip(loaded.patch.signals()) {
            if code.is_none() {
                if let Some(i) = others.iter().position(|o| o.id == s.id) {
                    *code = Some(others.swap_remove(i).code);
                }
            }
        }
        let reading = self.clock.as_ref().map(flux_engine::ClockReader::read);
        let spec = TrialSpec {
            sample_rate: self.options.sample_rate,
            channels: self.options.channels,
            frames,
            bpm: reading.map_or(flux_engine::DEFAULT_BPM, |r| r.bpm),
            beat: reading.map_or(0.0, |r| r.beat),
            limit: TRIAL_LIMIT,
        };
        for ((code, signal), info) in codes
            .iter_mut()
            .zip(loaded.patch.signals())
            .zip(&loaded.signals)
        {
            let Some(code) = code else { continue };
            let guards = &signal.footprint.guards;
            if let Err(fault) = trial(code.as_mut(), signal.block, guards, &scratch, spec) {
                let place = signal
                    .code
                    .location()
                    .and_then(Location::parse)
                    .or_else(|| info.location.clone())
                    .unwrap_or(Location {
                        file: name.to_owned(),
                        line: 1,
                        col: 1,
                    });
                return Err(refusal(&signal.id, fault, place, self.options.preflight));
            }
        }
        Ok(loaded)
    }

    /// A loader like this one, on `state` with `alloc`, that keeps its logs to itself and
    /// runs no trials of its own.
    fn twin(&self, state: Arc<StateMemory>, alloc: StateAllocator) -> Loader {
        let mut options = self.options.clone();
        options.preflight = Duration::ZERO;
        let mut twin = Loader::new(state, alloc, options);
        twin.samples = self.samples.clone();
        twin.units = self.units.clone();
        twin.sample_users = self.sample_users.clone();
        twin.twin = true;
        twin
    }
}

/// A copy of the allocator behind `alloc` (as it stands, even if a load panicked holding it).
fn copy_of(alloc: &std::sync::Mutex<StateAllocator>) -> StateAllocator {
    alloc
        .lock()
        .map(|a| a.clone())
        .unwrap_or_else(|e| e.into_inner().clone())
}

/// The diagnostic of a signal refused by its trial: at the place the fault names, or else
/// at `place` (its `update`, or its `flux()` call).
fn refusal(id: &str, fault: Fault, place: Location, length: Duration) -> Diagnostic {
    let trial = format!("pre-flight of '{id}', {} ms: refused", length.as_millis());
    match fault {
        Fault::Error(message) => match split_located(&message) {
            Some((location, text)) => Diagnostic {
                location,
                message: format!("{text} ({trial})"),
            },
            None => Diagnostic {
                location: place,
                message: format!("{message} ({trial})"),
            },
        },
        Fault::TimeLimit { limit_ms } if u128::from(limit_ms) == TRIAL_LIMIT.as_millis() => {
            Diagnostic {
                location: place,
                message: format!(
                    "update is far slower than real time: {} ms of audio took longer than \
                     {limit_ms} ms to render ({trial})",
                    length.as_millis()
                ),
            }
        }
        Fault::OutOfFuel { iterations } => Diagnostic {
            location: place,
            message: format!(
                "update ran {iterations} loop iterations in one block, an endless loop? ({trial})"
            ),
        },
        other => Diagnostic {
            location: place,
            message: format!("{other} ({trial})"),
        },
    }
}

/// Splits `file:line:col: text` into its place and its text.
fn split_located(message: &str) -> Option<(Location, &str)> {
    let mut from = 0;
    while let Some(i) = message[from..].find(": ") {
        let end = from + i;
        if let Some(location) = Location::parse(&message[..end]) {
            return Some((location, &message[end + 2..]));
        }
        from = end + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_located_message_splits_at_its_place() {
        let (at, text) = split_located("a/b.js:5:30: ReferenceError: x: y").unwrap();
        assert_eq!(at.to_string(), "a/b.js:5:30");
        assert_eq!(text, "ReferenceError: x: y");
        assert!(split_located("Error: no place: here").is_none());
    }

    #[test]
    fn a_trial_that_runs_out_of_time_says_the_code_is_too_slow() {
        let place = Location {
            file: "a.js".to_owned(),
            line: 3,
            col: 5,
        };
        let limit_ms = TRIAL_LIMIT.as_millis() as u64;
        let d = refusal(
            "hog",
            Fault::TimeLimit { limit_ms },
            place.clone(),
            Duration::from_millis(100),
        );
        assert_eq!(
            d.to_string(),
            format!(
                "a.js:3:5: update is far slower than real time: 100 ms of audio took longer \
                 than {limit_ms} ms to render (pre-flight of 'hog', 100 ms: refused)"
            )
        );
        // One block over the JavaScript tier's limit says so.
        let d = refusal(
            "hog",
            Fault::TimeLimit { limit_ms: 250 },
            place,
            Duration::from_millis(100),
        );
        assert!(
            d.to_string().contains("longer than 250 ms for one block"),
            "{d}"
        );
    }
}
