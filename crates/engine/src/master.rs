//! The master stage: the last thing the mix goes through before it leaves as f32.
//!
//! In order, per sample: the final guard (a sample that is not finite becomes 0 and is
//! counted), the optional DC blocker, then the mode: `tanh` soft clip (the default, the
//! samples Flux always made), a look-ahead peak `limit`er, a hard `clip` at the ceiling, or
//! `none`. Everything is allocated in [`MasterStage::new`], on the main thread;
//! [`MasterStage::run`] allocates nothing and does bounded work per sample.
//!
//! The limiter delays the mix by [`LOOKAHEAD_MS`] (reported by
//! [`MasterStage::latency_frames`]) and computes its gain from the required gains of the
//! frames still in that window: the smallest one, held with a smooth release, then averaged
//! over the window. Every value averaged for a frame is a minimum over a window that holds
//! that frame, so the frame's gain is never above what it needs: each output sample is at
//! or under the ceiling, and a mix that stays under the ceiling passes unchanged (only
//! delayed). The attack is a ramp over the window; the release a one-pole curve of
//! [`RELEASE_MS`].

use std::fmt;
use std::str::FromStr;

/// Look-ahead of the limiter, in milliseconds: the latency it adds.
pub const LOOKAHEAD_MS: f64 = 2.0;
/// Time constant of the limiter's release, in milliseconds.
pub const RELEASE_MS: f64 = 80.0;
/// Corner frequency of the DC blocker (a one-pole high-pass), in Hz.
pub const DC_CORNER_HZ: f64 = 5.0;
/// The default ceiling of `limit` and `clip`, in dBFS.
pub const DEFAULT_CEILING_DB: f64 = -1.0;
/// The lowest and highest ceilings accepted, in dBFS.
pub const CEILING_RANGE_DB: std::ops::RangeInclusive<f64> = -60.0..=0.0;

/// What the master stage does to the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MasterMode {
    /// Soft clip with `tanh`: always under full scale, colours loud mixes (the default).
    #[default]
    Tanh,
    /// Look-ahead peak limiter at the ceiling: every sample at or under it.
    Limit,
    /// Hard clip at the ceiling.
    Clip,
    /// Nothing: samples beyond ±1 reach the output, where the device clips them.
    None,
}

impl MasterMode {
    /// The mode's name, as `--master` takes it.
    pub fn name(self) -> &'static str {
        match self {
            MasterMode::Tanh => "tanh",
            MasterMode::Limit => "limit",
            MasterMode::Clip => "clip",
            MasterMode::None => "none",
        }
    }
}

impl fmt::Display for MasterMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MasterMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "tanh" => Ok(MasterMode::Tanh),
            "limit" => Ok(MasterMode::Limit),
            "clip" => Ok(MasterMode::Clip),
            "none" => Ok(MasterMode::None),
            other => Err(format!(
                "unknown master mode {other:?}: expected tanh, limit, clip or none"
            )),
        }
    }
}

/// How the master stage is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MasterConfig {
    /// What it does to the mix.
    pub mode: MasterMode,
    /// Ceiling of `limit` and `clip` in dBFS (`tanh` and `none` ignore it).
    pub ceiling_db: f64,
    /// Whether the DC blocker runs (a high-pass at [`DC_CORNER_HZ`]).
    pub dc_block: bool,
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            mode: MasterMode::Tanh,
            ceiling_db: DEFAULT_CEILING_DB,
            dc_block: false,
        }
    }
}

impl MasterConfig {
    /// Checks the ceiling.
    ///
    /// # Errors
    ///
    /// A ceiling outside [`CEILING_RANGE_DB`] or not a number, naming it.
    pub fn check(&self) -> Result<(), String> {
        if CEILING_RANGE_DB.contains(&self.ceiling_db) {
            Ok(())
        } else {
            Err(format!(
                "the ceiling must be from {} to {} dBFS, not {}",
                CEILING_RANGE_DB.start(),
                CEILING_RANGE_DB.end(),
                self.ceiling_db
            ))
        }
    }

    /// The ceiling as a linear amplitude.
    pub fn ceiling(&self) -> f64 {
        10f64.powf(self.ceiling_db / 20.0)
    }
}

/// The master stage of one engine: its config and the memory of its filters.
pub struct MasterStage {
    config: MasterConfig,
    channels: usize,
    ceiling: f64,
    /// The largest f32 at or under the ceiling.
    ceiling_f32: f32,
    /// DC blocker: pole, last input and last output per channel.
    dc_pole: f64,
    dc_x: Vec<f64>,
    dc_y: Vec<f64>,
    /// Frames in the limiter's window (its latency plus one).
    window: usize,
    /// The last `window` frames, interleaved, and the next frame's place in them.
    delay: Vec<f64>,
    pos: usize,
    /// Held gains of the last `window` frames and their sum.
    held: Vec<f64>,
    held_sum: f64,
    /// Sliding minimum of the required gains: a ring of (frame, gain), increasing gains.
    min_frame: Vec<u64>,
    min_gain: Vec<f64>,
    min_head: usize,
    min_len: usize,
    /// The held gain (attack at once, smooth release) and its release coefficient.
    hold: f64,
    release: f64,
    frame: u64,
    /// One frame of input, guarded and DC-blocked.
    scratch: Vec<f64>,
}

impl MasterStage {
    /// A stage for `channels` channels at `sample_rate`, set up as `config` says.
    ///
    /// Allocates: call on the main thread (or before rendering starts).
    pub fn new(config: MasterConfig, sample_rate: u32, channels: usize) -> Self {
        let sr = f64::from(sample_rate);
        let window = (LOOKAHEAD_MS * sr / 1000.0).round() as usize + 1;
        let mut stage = Self {
            config,
            channels,
            ceiling: 1.0,
            ceiling_f32: 1.0,
            dc_pole: (-2.0 * std::f64::consts::PI * DC_CORNER_HZ / sr).exp(),
            dc_x: vec![0.0; channels],
            dc_y: vec![0.0; channels],
            window,
            delay: vec![0.0; window * channels],
            pos: 0,
            held: vec![1.0; window],
            held_sum: window as f64,
            min_frame: vec![0; window],
            min_gain: vec![1.0; window],
            min_head: 0,
            min_len: 0,
            hold: 1.0,
            release: 1.0 - (-1000.0 / (RELEASE_MS * sr)).exp(),
            frame: 0,
            scratch: vec![0.0; channels],
        };
        stage.configure(config);
        stage
    }

    /// Changes the mode, ceiling or DC blocker, keeping the filters' memory. Real-time
    /// safe. A change while sound plays may click (the limiter's delay comes or goes).
    pub fn configure(&mut self, config: MasterConfig) {
        self.config = config;
        self.ceiling = config.ceiling().min(1.0);
        let c = self.ceiling as f32;
        self.ceiling_f32 = if f64::from(c) > self.ceiling {
            f32::from_bits(c.to_bits() - 1)
        } else {
            c
        };
    }

    /// The stage's setup.
    pub fn config(&self) -> MasterConfig {
        self.config
    }

    /// Frames the stage delays the mix by: the limiter's look-ahead, 0 for other modes.
    pub fn latency_frames(&self) -> usize {
        match self.config.mode {
            MasterMode::Limit => self.window - 1,
            _ => 0,
        }
    }

    /// Runs `mix` (interleaved, whole frames) through the stage into `out` (as long).
    /// Returns how many samples were not finite (written as 0).
    ///
    /// Real-time safe: no allocation, lock or wait; bounded work per sample.
    pub fn run(&mut self, mix: &[f64], out: &mut [f32]) -> u64 {
        debug_assert_eq!(mix.len(), out.len());
        let ch = self.channels;
        let mut guarded = 0u64;
        match (self.config.mode, self.config.dc_block) {
            // Exactly the samples Flux always made.
            (MasterMode::Tanh, false) => {
                for (o, m) in out.iter_mut().zip(mix) {
                    *o = if m.is_finite() {
                        m.tanh() as f32
                    } else {
                        guarded += 1;
                        0.0
                    };
                }
            }
            (mode, _) => {
                let mut x = std::mem::take(&mut self.scratch);
                for (o, m) in out.chunks_exact_mut(ch).zip(mix.chunks_exact(ch)) {
                    for (c, x) in x.iter_mut().enumerate() {
                        let v = m[c];
                        *x = if v.is_finite() {
                            v
                        } else {
                            guarded += 1;
                            0.0
                        };
                        if self.config.dc_block {
                            let y = *x - self.dc_x[c] + self.dc_pole * self.dc_y[c];
                            self.dc_x[c] = *x;
                            self.dc_y[c] = y;
                            *x = y;
                        }
                    }
                    match mode {
                        MasterMode::Tanh => {
                            for (o, x) in o.iter_mut().zip(x.iter()) {
                                *o = x.tanh() as f32;
                            }
                        }
                        MasterMode::Clip => {
                            let c = self.ceiling;
                            for (o, x) in o.iter_mut().zip(x.iter()) {
                                *o = (x.clamp(-c, c) as f32)
                                    .clamp(-self.ceiling_f32, self.ceiling_f32);
                            }
                        }
                        MasterMode::None => {
                            for (o, x) in o.iter_mut().zip(x.iter()) {
                                *o = *x as f32;
                            }
                        }
                        MasterMode::Limit => self.limit(&x, o),
                    }
                }
                self.scratch = x;
            }
        }
        guarded
    }

    /// One frame through the limiter: `x` in, the frame `window - 1` frames older out.
    fn limit(&mut self, x: &[f64], out: &mut [f32]) {
        let ch = self.channels;
        let w = self.window;
        let peak = x.iter().fold(0.0f64, |p, v| p.max(v.abs()));
        let need = if peak > self.ceiling {
            self.ceiling / peak
        } else {
            1.0
        };
        // Sliding minimum over the window: drop larger gains from the back, old frames
        // from the front.
        while self.min_len > 0 {
            let back = (self.min_head + self.min_len - 1) % w;
            if self.min_gain[back] >= need {
                self.min_len -= 1;
            } else {
                break;
            }
        }
        let at = (self.min_head + self.min_len) % w;
        self.min_frame[at] = self.frame;
        self.min_gain[at] = need;
        self.min_len += 1;
        while self.min_frame[self.min_head] + (w as u64) <= self.frame {
            self.min_head = (self.min_head + 1) % w;
            self.min_len -= 1;
        }
        let least = self.min_gain[self.min_head];
        // Attack at once, release smoothly; never above `least`.
        self.hold = if least < self.hold {
            least
        } else {
            let h = self.hold + (least - self.hold) * self.release;
            if least >= 1.0 && h > 1.0 - 1e-9 {
                1.0
            } else {
                h
            }
        };
        // Average of the held gains over the window.
        self.held_sum += self.hold - self.held[self.pos];
        self.held[self.pos] = self.hold;
        let gain = (self.held_sum / w as f64).min(1.0);
        let base = self.pos * ch;
        self.delay[base..base + ch].copy_from_slice(x);
        let oldest = (self.pos + 1) % w;
        self.pos = oldest;
        if oldest == 0 {
            // Once per window, the sum again from scratch: rounding never builds up, and a
            // window of unit gains sums to exactly `window`.
            self.held_sum = self.held.iter().sum();
        }
        let c = self.ceiling;
        for (o, d) in out
            .iter_mut()
            .zip(&self.delay[oldest * ch..oldest * ch + ch])
        {
            let y = if gain == 1.0 { *d } else { d * gain };
            // The bound holds in exact arithmetic; this only catches rounding.
            *o = (y.clamp(-c, c) as f32).clamp(-self.ceiling_f32, self.ceiling_f32);
        }
        self.frame += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f64, freq: f64, frames: usize, ch: usize) -> Vec<f64> {
        (0..frames * ch)
            .map(|i| amp * (2.0 * std::f64::consts::PI * freq * (i / ch) as f64 / 48_000.0).sin())
            .collect()
    }

    fn limit(ceiling_db: f64) -> MasterStage {
        let config = MasterConfig {
            mode: MasterMode::Limit,
            ceiling_db,
            dc_block: false,
        };
        MasterStage::new(config, 48_000, 2)
    }

    #[test]
    fn limit_keeps_every_sample_under_the_ceiling() {
        let mut stage = limit(-1.0);
        let ceiling = 10f64.powf(-1.0 / 20.0) as f32;
        // Bursts: quiet, loud, a single spike, quiet again.
        let mut mix = sine(0.3, 440.0, 4800, 2);
        mix.extend(sine(2.0, 97.0, 9600, 2));
        mix.extend(vec![0.0; 200]);
        mix.extend([5.0, -5.0]);
        mix.extend(sine(0.3, 440.0, 9600, 2));
        let mut out = vec![0.0f32; mix.len()];
        for (m, o) in mix.chunks(256).zip(out.chunks_mut(256)) {
            stage.run(m, o);
        }
        let peak = out.iter().fold(0.0f32, |p, x| p.max(x.abs()));
        assert!(peak <= ceiling, "{peak} > {ceiling}");
        assert!(peak > ceiling * 0.99, "{peak}: the limiter pulls too far");
    }

    #[test]
    fn limit_holds_any_ceiling_on_noise_with_wild_peaks() {
        // A small LCG: noise whose level jumps between 0.01 and 100 every few frames.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for ceiling_db in [0.0, -1.0, -12.0, -60.0] {
            let mut stage = limit(ceiling_db);
            let ceiling = stage.ceiling_f32;
            let mut level = 1.0;
            let mut mix = Vec::new();
            for f in 0..48_000 {
                if f % 37 == 0 {
                    level = 10f64.powf(next() * 4.0 - 2.0);
                }
                mix.extend([(next() * 2.0 - 1.0) * level, (next() * 2.0 - 1.0) * level]);
            }
            let mut out = vec![0.0f32; mix.len()];
            let mut at = 0;
            while at < mix.len() {
                let n = (2 + (next() * 300.0) as usize * 2).min(mix.len() - at);
                stage.run(&mix[at..at + n], &mut out[at..at + n]);
                at += n;
            }
            let peak = out.iter().fold(0.0f32, |p, x| p.max(x.abs()));
            assert!(peak <= ceiling, "{ceiling_db} dBFS: {peak} > {ceiling}");
            assert!(f64::from(ceiling) <= 10f64.powf(ceiling_db / 20.0));
        }
    }

    #[test]
    fn limit_leaves_a_quiet_mix_alone_but_for_the_delay() {
        let mut stage = limit(-1.0);
        let d = stage.latency_frames();
        assert_eq!(d, 96);
        let mix = sine(0.5, 1000.0, 4800, 2);
        let mut out = vec![0.0f32; mix.len()];
        stage.run(&mix, &mut out);
        assert!(out[..d * 2].iter().all(|&x| x == 0.0));
        for (o, m) in out[d * 2..].iter().zip(&mix) {
            assert_eq!(*o, *m as f32);
        }
    }

    #[test]
    fn tanh_clip_and_none_do_what_they_say() {
        let mix = [0.5, -2.0, f64::NAN, 3.0];
        let mut out = [0.0f32; 4];
        let mut stage = MasterStage::new(MasterConfig::default(), 48_000, 2);
        assert_eq!(stage.run(&mix, &mut out), 1);
        assert_eq!(
            out,
            [
                0.5f64.tanh() as f32,
                (-2.0f64).tanh() as f32,
                0.0,
                3f64.tanh() as f32
            ]
        );
        let clip = MasterConfig {
            mode: MasterMode::Clip,
            ceiling_db: -6.0,
            dc_block: false,
        };
        let c = 10f64.powf(-6.0 / 20.0) as f32;
        let mut stage = MasterStage::new(clip, 48_000, 2);
        stage.run(&mix, &mut out);
        assert_eq!(out[0], 0.5);
        assert!(out[1] >= -c && out[1] < -c + 1e-6);
        assert_eq!(out[2], 0.0);
        let none = MasterConfig {
            mode: MasterMode::None,
            ..MasterConfig::default()
        };
        let mut stage = MasterStage::new(none, 48_000, 2);
        stage.run(&mix, &mut out);
        assert_eq!(out, [0.5, -2.0, 0.0, 3.0]);
    }

    #[test]
    fn dc_blocker_removes_an_offset() {
        let config = MasterConfig {
            mode: MasterMode::None,
            dc_block: true,
            ..MasterConfig::default()
        };
        let mut stage = MasterStage::new(config, 48_000, 1);
        let mix = vec![0.5; 48_000];
        let mut out = vec![0.0f32; 48_000];
        stage.run(&mix, &mut out);
        // After one second (five time constants of a 5 Hz corner) the offset is gone.
        assert!(out[47_999].abs() < 1e-3, "{}", out[47_999]);
    }

    #[test]
    fn modes_parse_and_ceilings_are_checked() {
        assert_eq!("limit".parse::<MasterMode>(), Ok(MasterMode::Limit));
        let e = "loud".parse::<MasterMode>().unwrap_err();
        assert!(e.contains("\"loud\""), "{e}");
        let bad = MasterConfig {
            ceiling_db: 3.0,
            ..MasterConfig::default()
        };
        assert!(bad.check().unwrap_err().contains("not 3"));
    }
}
