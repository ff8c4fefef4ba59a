//! What the engine does around each signal's render: zeroing, checking the samples and the
//! guards, putting the state back after a fault, and the soft tail a faulted signal fades
//! out with.

use rtrb::Producer;

use crate::engine::Event;
use crate::signal::{Block, Fault, PatchSignal, Signal};
use crate::state::{StateBlock, StateMemory};
use crate::transport::{Clock, Transport};
use crate::{DEFAULT_BLOCK, MAX_SAMPLE};

/// What one block asks of a signal: how many frames, how wide, at what rate, at what time.
#[derive(Clone, Copy)]
pub(crate) struct Shape<'c> {
    pub(crate) frames: usize,
    pub(crate) channels: usize,
    pub(crate) sample_rate: f64,
    pub(crate) clock: &'c Clock,
}

impl Shape<'_> {
    /// Lets `signal` render into `buf`, zeroed first unless the signal fills it.
    fn render(self, signal: &mut PatchSignal, buf: &mut [f64]) -> Result<(), Fault> {
        if !signal.code.fills_block() {
            buf.fill(0.0);
        }
        signal.code.render(&mut Block {
            frames: self.frames,
            channels: self.channels,
            sample_rate: self.sample_rate,
            clock: self.clock,
            out: buf,
        })
    }
}

/// Renders one signal into `buf` and checks it. On a fault the signal is disabled, its
/// state is put back as it was, the frames from the bad one on are dropped and its tail
/// (the last good frame, fading out) plays in their place. A disabled signal renders the
/// rest of its tail.
pub(crate) fn render_checked(
    state: &StateMemory,
    signal: &mut PatchSignal,
    buf: &mut [f64],
    shape: Shape<'_>,
    frame: u64,
) -> Option<Fault> {
    let ch = shape.channels;
    if !signal.enabled {
        signal.tail.play(buf, ch, 0);
        return None;
    }
    signal.save(state, false);
    let fault = render_settled(state, signal, buf, shape, frame);
    if fault.is_some() {
        signal.restore(state, false);
    }
    fault
}

/// Renders `signal` into `buf` and checks it: on a fault the signal is disabled and its
/// tail starts where the good frames end; otherwise its last frame is kept for a tail.
fn render_settled(
    state: &StateMemory,
    signal: &mut PatchSignal,
    buf: &mut [f64],
    shape: Shape<'_>,
    frame: u64,
) -> Option<Fault> {
    let ch = shape.channels;
    let result = shape.render(signal, buf);
    let fault =
        check(result, buf, ch, frame).or_else(|| overrun(state, signal).inspect(|_| buf.fill(0.0)));
    match &fault {
        Some(fault) => {
            signal.enabled = false;
            signal.tail.start(buf, ch, good_frames(fault, frame));
        }
        None => signal.tail.keep(buf, ch),
    }
    fault
}

/// Frames of the block from `frame` on that were played before `fault`.
fn good_frames(fault: &Fault, frame: u64) -> usize {
    match fault {
        Fault::NonFinite { frame: at, .. } | Fault::TooLoud { frame: at, .. } => {
            at.saturating_sub(frame) as usize
        }
        _ => 0,
    }
}

/// Checks what a signal rendered into `buf` (frames of `ch` channels from `frame` on): on
/// an error the block is silenced; on NaN or an infinity, the frames from the bad one on.
fn check(result: Result<(), Fault>, buf: &mut [f64], ch: usize, frame: u64) -> Option<Fault> {
    match result {
        // A branch-free pass first (it vectorizes); the search only when something is wrong.
        // NaN fails `<=` too.
        Ok(()) if buf.iter().fold(true, |ok, x| ok & (x.abs() <= MAX_SAMPLE)) => None,
        Ok(()) => first_bad_sample(buf, ch, frame).map(|(pos, fault)| {
            buf[pos - pos % ch..].fill(0.0);
            fault
        }),
        Err(fault) => {
            buf.fill(0.0);
            Some(fault)
        }
    }
}

/// The first sample of `buf` (frames of `channels` channels from frame `first` on) that
/// the engine silences a signal for, NaN, an infinity or one louder than [`MAX_SAMPLE`]:
/// its index in `buf` and the fault the engine reports for it.
pub fn first_bad_sample(buf: &[f64], channels: usize, first: u64) -> Option<(usize, Fault)> {
    let pos = buf
        .iter()
        .position(|x| x.is_nan() || x.abs() > MAX_SAMPLE)?;
    let ch = channels.max(1);
    let (value, channel, frame) = (buf[pos], pos % ch, first + (pos / ch) as u64);
    let fault = if value.is_finite() {
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
    };
    Some((pos, fault))
}

/// Sends a fault of `signal` to the main thread. Never frees: when the queue is full (the
/// main thread is not listening) the report is lost and its message, if any, leaked.
pub(crate) fn report(events: &mut Producer<Event>, signal: &PatchSignal, fault: Fault) {
    let event = Event::Fault {
        key: signal.key,
        block: signal.block.offset,
        fault,
    };
    if let Err(rtrb::PushError::Full(event)) = events.push(event) {
        std::mem::forget(event);
    }
}

/// Renders an old signal during a crossfade on its shadow copy of the state: the shadow is
/// swapped into the real slots for the call and back out after it. A fault silences the
/// old code for the rest of the fade (its tail fading out) and is returned to be reported.
pub(crate) fn render_on_shadow(
    state: &StateMemory,
    signal: &mut PatchSignal,
    buf: &mut [f64],
    shape: Shape<'_>,
    frame: u64,
) -> Option<Fault> {
    if !signal.enabled {
        signal.tail.play(buf, shape.channels, 0);
        return None;
    }
    signal.save(state, false);
    signal.restore(state, true);
    let fault = render_settled(state, signal, buf, shape, frame);
    signal.save(state, true);
    signal.restore(state, false);
    fault
}

/// A write outside the signal's block, into one of its guards: the fault, with the guard
/// cleared. Guards are checked right after the signal renders, so a write is blamed on the
/// signal that made it.
fn overrun(state: &StateMemory, signal: &PatchSignal) -> Option<Fault> {
    for &guard in &signal.footprint.guards {
        if let Some(slot) = state.first_nonzero(guard) {
            state.zero(guard);
            return Some(Fault::Overrun {
                slot: slot as i64 - signal.block.offset as i64,
                len: signal.block.len,
            });
        }
    }
    None
}

/// How long a trial renders and at what time it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialSpec {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: usize,
    /// Frames to render.
    pub frames: usize,
    /// Tempo the transport runs at.
    pub bpm: f64,
    /// Beat the transport starts at.
    pub beat: f64,
    /// Longest the whole trial may take.
    pub limit: std::time::Duration,
}

/// Renders `code` for `spec.frames` frames, in blocks as the engine does, on `state` (a copy
/// of the playing memory, so nothing that plays is touched), and checks every block as the
/// engine does: a fault (a throw, NaN, a sample louder than [`MAX_SAMPLE`], a write into
/// `guards`, around the signal's `block`) or a trial longer than `spec.limit` ends it. Runs on the main thread, before a
/// swap: faults of the first moments of new code are found before they can be heard.
///
/// # Errors
///
/// The first fault, its `frame` counted from the trial's start.
pub fn trial(
    code: &mut dyn Signal,
    block: StateBlock,
    guards: &[StateBlock],
    state: &StateMemory,
    spec: TrialSpec,
) -> Result<(), Fault> {
    let started = std::time::Instant::now();
    let mut transport = Transport::new(spec.sample_rate);
    transport.set_tempo(spec.bpm, 0);
    transport.locate(spec.beat);
    let mut clock = Box::<Clock>::default();
    let ch = spec.channels;
    let mut buf = vec![0.0; DEFAULT_BLOCK * ch];
    let mut at = 0;
    while at < spec.frames {
        let frames = DEFAULT_BLOCK.min(spec.frames - at);
        transport.fill(&mut clock, frames);
        let buf = &mut buf[..frames * ch];
        if !code.fills_block() {
            buf.fill(0.0);
        }
        let result = code.render(&mut Block {
            frames,
            channels: ch,
            sample_rate: f64::from(spec.sample_rate),
            clock: &clock,
            out: buf,
        });
        if let Some(fault) = check(result, buf, ch, at as u64) {
            return Err(fault);
        }
        for &guard in guards {
            if let Some(slot) = state.first_nonzero(guard) {
                return Err(Fault::Overrun {
                    slot: slot as i64 - block.offset as i64,
                    len: block.len,
                });
            }
        }
        at += frames;
        if started.elapsed() > spec.limit {
            return Err(Fault::TimeLimit {
                limit_ms: spec.limit.as_millis() as u64,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_sample_is_found_with_its_frame_and_channel() {
        assert_eq!(first_bad_sample(&[0.1, 0.2, 0.3, 0.4], 2, 10), None);
        assert!(matches!(
            first_bad_sample(&[0.1, 0.2, 0.3, f64::NAN], 2, 10),
            Some((
                3,
                Fault::NonFinite {
                    channel: 1,
                    frame: 11,
                    ..
                }
            ))
        ));
        assert!(matches!(
            first_bad_sample(&[0.0, -2000.0], 1, 0),
            Some((
                1,
                Fault::TooLoud {
                    channel: 0,
                    frame: 1,
                    ..
                }
            ))
        ));
        // A buffer of frames of 3 channels.
        let mut buf = [0.5; 9];
        buf[7] = f64::INFINITY;
        let (pos, fault) = first_bad_sample(&buf, 3, 100).unwrap();
        assert_eq!(pos, 7);
        assert_eq!(
            fault,
            Fault::NonFinite {
                value: f64::INFINITY,
                channel: 1,
                frame: 102
            }
        );
    }
}
