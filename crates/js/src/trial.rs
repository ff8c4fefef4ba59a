//! A short trial of each signal of a load, for `flux check`: the faults that would silence
//! a signal as soon as it plays, found before it plays.

use flux_engine::{Block, Fault, MAX_BLOCK, MAX_SAMPLE};

use crate::loader::Loaded;

/// How a signal's trial went.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Channels `update` returned on the first frame; `None` when that frame failed.
    pub channels: Option<usize>,
    /// The first fault: a throw, a time limit, or a sample that is NaN, infinite or louder
    /// than [`MAX_SAMPLE`] (its frame counted from the trial's start, its channel from 0).
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
                        Ok(_) => bad_sample(&out[..n * channels], channels, done as u64),
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

/// The fault of the first sample in `buf` (frames of `channels` from frame `first`) the
/// engine would silence the signal for, as the engine reports it.
fn bad_sample(buf: &[f64], channels: usize, first: u64) -> Option<Fault> {
    let pos = buf
        .iter()
        .position(|x| x.is_nan() || x.abs() > MAX_SAMPLE)?;
    let (value, channel, frame) = (buf[pos], pos % channels, first + (pos / channels) as u64);
    Some(if value.is_finite() {
        Fault::TooLoud {
            value,
            channel,
            frame,
        }
    } else {
        Fault::NonFinite {
            value,
            channel,
            frame,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_sample_is_found_with_its_frame_and_channel() {
        assert_eq!(bad_sample(&[0.1, 0.2, 0.3, 0.4], 2, 10), None);
        assert!(matches!(
            bad_sample(&[0.1, 0.2, 0.3, f64::NAN], 2, 10),
            Some(Fault::NonFinite {
                channel: 1,
                frame: 11,
                ..
            })
        ));
        assert!(matches!(
            bad_sample(&[2000.0], 1, 0),
            Some(Fault::TooLoud {
                channel: 0,
                frame: 0,
                ..
            })
        ));
    }
}
