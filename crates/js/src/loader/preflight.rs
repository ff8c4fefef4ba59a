//! Trials before a load is swapped in: first the file loads on a copy of the state (what
//! its top level and factories write reaches nothing that plays, and a load that fails
//! there changes nothing); then, pre-flight, each of its signals renders a trial off the
//! DSP thread on that copy, and a signal that throws, gives NaN or runs out of time there
//! refuses the load with its place, as a syntax error does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_engine::{trial, Fault, Signal, StateAllocator, StateBlock, StateMemory, TrialSpec};

use super::{Loaded, Loader, TierChoice};
use crate::diag::{Diagnostic, Location};

/// Longest a trial of a whole load may take, beyond which it is a time-limit fault.
const TRIAL_LIMIT: Duration = Duration::from_secs(2);

/// What a trial load made: its signals (on the JavaScript tier), on the copy of the state.
pub(super) struct TrialLoad {
    loaded: Loaded,
    scratch: Arc<StateMemory>,
}

impl Loader {
    /// Loads the file once on the JavaScript tier, on a copy of the state (everything
    /// handed out so far, as it is now) with a copy of the allocator: its top level and
    /// factories run there, so what they write reaches nothing that plays. Its error is
    /// the load's; the real load runs only after it succeeds, and gets the same blocks.
    pub(super) fn trial_load(
        &mut self,
        name: &str,
        source: &str,
        running: &[String],
    ) -> Result<TrialLoad, Diagnostic> {
        // A fresh copy each time (zeroed pages, mapped lazily: only what is copied costs):
        // a trial's code may write anywhere in it, and a later trial must not find that.
        let scratch = Arc::new(StateMemory::new(self.state.len()));
        let alloc = self
            .alloc
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        scratch.copy_from(
            &self.state,
            StateBlock {
                offset: 0,
                len: alloc.used(),
            },
        );
        let mut twin = self.twin(scratch.clone(), alloc);
        let result = twin.load_inner(name, source, Instant::now(), running);
        // What a load that fails here leaves behind is the trial's: the imports it reached
        // (watched, so a fix reloads) and what it printed.
        self.last_imports = twin.last_imports.take();
        if result.is_err() {
            let (lines, dropped) = twin.drain_logs();
            for line in lines {
                if self.log_tx.try_send(line).is_err() {
                    self.logs_dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            self.logs_dropped
                .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(TrialLoad {
            loaded: result?,
            scratch,
        })
    }

    /// Runs the pre-flight trial of every signal of `loaded` on the copy of the state its
    /// trial load left (native code moved onto it; interpreted code is bound to the memory
    /// its runtime was made with, so the trial load's twin of it runs).
    pub(super) fn preflight(
        &mut self,
        name: &str,
        loaded: Loaded,
        trial_load: TrialLoad,
    ) -> Result<Loaded, Diagnostic> {
        let frames = (self.options.preflight.as_secs_f64() * f64::from(self.options.sample_rate))
            .ceil() as usize;
        if frames == 0 || loaded.patch.is_empty() {
            return Ok(loaded);
        }
        let TrialLoad {
            loaded: twin,
            scratch,
        } = trial_load;
        let mut codes: Vec<Option<Box<dyn Signal>>> = loaded
            .patch
            .signals()
            .iter()
            .map(|s| s.code.rebased(&scratch))
            .collect();
        let mut others = twin.patch.into_signals();
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

    /// A loader like this one, on `state` with `alloc`, that runs everything on the
    /// JavaScript tier, keeps its logs to itself and runs no trials of its own.
    fn twin(&self, state: Arc<StateMemory>, alloc: StateAllocator) -> Loader {
        let mut options = self.options.clone();
        options.tier = TierChoice::Js;
        options.preflight = Duration::ZERO;
        let mut twin = Loader::new(state, alloc, options);
        twin.samples = self.samples.clone();
        twin.twin = true;
        twin
    }
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
