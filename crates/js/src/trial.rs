//! A short trial of each signal of a load, for `flux check`: the faults that would silence
//! a signal as soon as it plays, found before it plays.

use flux_engine::{first_bad_sample, Block, Fault, MAX_BLOCK};

use crate::loader::Loaded;

/// How a signal's trial went.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Channels `update` returned on the first frame; `None` when that frame failed.
    pub channels: Option<usize>,
    /// The first fault: a throw, a time limit, or a sample that is NaN, infinite or louder
    /// than [`flux_engine::MAX_SAMPLE`] (its frame counted from the trial's start, its channel from 0).
    pub fault: Option<Fault>,
}

impl Loaded {
    /// Renders `frames` frames of every signal (at least one) on the JavaScript tier, each
    /// block under the load's time limit for `update`, and returns what each gave.
    ///
    /// This advances the signals' state: use it only on a loader whose state memory plays
    /// nothing (as `flux check` does). The clock stands still at 0.
    pub fn trial(&self, frames: usize) -> Vec<Trial> {
        let Some(cartridge) = &self.cartridge else {
            return Vec::new();
        };
        let sample_rate = f64::from(cartridge.sample_rate);
        // The render hook's buffer holds MAX_BLOCK frames of the load's channels.
        let room = MAX_BLOCK * cartridge.channels;
        let mut out = vec![0.0; room];
        (0..self.signals.len())
            .map(|index| {
                let render = |frames: usize, channels: usize, out: &mut [f64]| {
                    let mut block = Block {
                        frames,
                        channels,
                        sample_rate,
                        clock: &flux_engine::STILL,
                        out: &mut out[..frames * channels],
                    };
                    cartridge.render(index, &mut block)
                };
                // The first frame tells the signal's own width; the rest render at it.
                let channels = match render(1, cartridge.channels, &mut out) {
                    Ok(n) => n.clamp(1, 64),
                    Err(fault) => {
                        return Trial {
                            channels: None,
                            fault: Some(fault),
                        }
                    }
                };
                let step = (room / channels).max(1);
                let mut done = 1;
                let mut fault = None;
                while done < frames.max(1) && fault.is_none() {
                    let n = step.min(frames - done);
                    fault = match render(n, channels, &mut out) {
                        Ok(_) => first_bad_sample(&out[..n * channels], channels, done as u64)
                            .map(|(_, fault)| fault),
                        Err(f) => Some(f),
                    };
                    done += n;
                }
                Trial {
                    channels: Some(channels),
                    fault,
                }
            })
            .collect()
    }
}
