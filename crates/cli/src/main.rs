//! `flux`: play, render and check Flux signals files.
//!
//! Glue only: the DSP lives in `flux-engine`, JavaScript in `flux-js`, outputs in
//! `flux-audio`.

mod bench;
mod check;
mod control;
mod net;
mod play;
mod render;
mod repl;
mod scope;
mod send;
mod session;
mod status;
mod text;
mod underrun;
mod watch;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Flux: a live-coding sound engine. Write signals in JavaScript, save, hear the change.
#[derive(Debug, Parser)]
#[command(name = "flux", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play a signals file and reload it on every save.
    Play(play::PlayArgs),
    /// Play a signals file with the scope open: `play --scope`, 3 channels on the null output.
    ///
    /// The same options as `play`. The null output gets 3 channels (X, Y and Z for the 3D
    /// view) unless `--channels` says otherwise; a device keeps its own.
    Scope(play::PlayArgs),
    /// Render a signals file to a WAV file, offline and deterministic.
    Render(render::RenderArgs),
    /// Load a signals file, list its signals and print its diagnostics.
    Check(check::CheckArgs),
    /// Measure how fast a signals file renders (no output, no clock).
    Bench(bench::BenchArgs),
    /// Send a file (or `-`, standard input) to a playing `flux play`, which evaluates it in
    /// the running patch; prints the diagnostics, exits 1 when the code fails.
    Send(send::SendArgs),
    /// Type code into a playing `flux play`, with line editing and history.
    Repl(repl::ReplArgs),
    /// List the audio output devices.
    Devices,
}

/// Options of the engine shared by `play` and `render`.
#[derive(Debug, Clone, Args)]
struct EngineArgs {
    /// Sample rate in Hz.
    #[arg(long, value_name = "HZ", value_parser = parse_sample_rate)]
    sample_rate: Option<u32>,
    /// Output channels.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    channels: Option<u16>,
    /// Which tier runs the signals: native where the compiler handles the code (auto),
    /// native for all (a signal it cannot compile fails the load), or JavaScript only.
    #[arg(long, value_enum, default_value_t = TierArg::Auto)]
    tier: TierArg,
    /// Seed of `Math.random` in native signals, for repeatable renders.
    #[arg(long, value_name = "N", default_value_t = 0x5EED)]
    seed: u64,
    /// Crossfade of a reload or swap in milliseconds: old code out, new code in (0: cut).
    #[arg(long, value_name = "MS", default_value_t = 20.0)]
    fade: f64,
    /// Let imports reach files outside the signals file's folder (by default an import
    /// must resolve, after symlinks, inside that folder or below).
    #[arg(long)]
    allow_imports_anywhere: bool,
    /// Tempo of the transport in beats per minute (20 to 999).
    #[arg(long, value_name = "BPM", default_value_t = 120.0, value_parser = parse_bpm)]
    bpm: f64,
    /// When a reload or a swap takes over: at once (none), on the next beat, the next
    /// bar, or the next multiple of N beats; to the frame, the crossfade starting there.
    #[arg(long, value_name = "none|beat|bar|N", default_value = "none",
          value_parser = flux_engine::Quantize::parse)]
    quantize: flux_engine::Quantize,
}

/// Parses `--bpm`: a number of beats per minute from `MIN_BPM` to `MAX_BPM`.
fn parse_bpm(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(bpm) if (flux_engine::MIN_BPM..=flux_engine::MAX_BPM).contains(&bpm) => Ok(bpm),
        _ => Err(format!(
            "the tempo must be a number of beats per minute from {} to {}, not {text:?}",
            flux_engine::MIN_BPM,
            flux_engine::MAX_BPM
        )),
    }
}

/// The sample rates Flux runs at, in Hz.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=768_000;

/// Parses `--sample-rate`: a whole number of Hz in [`SAMPLE_RATES`].
fn parse_sample_rate(text: &str) -> Result<u32, String> {
    let hz: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of Hz"))?;
    check_sample_rate(hz)
}

/// `hz` when Flux runs at it.
///
/// # Errors
///
/// A rate outside [`SAMPLE_RATES`], naming it.
pub fn check_sample_rate(hz: u32) -> Result<u32, String> {
    if SAMPLE_RATES.contains(&hz) {
        Ok(hz)
    } else {
        Err(format!(
            "a sample rate of {hz} Hz is refused: flux runs from {} to {} Hz",
            SAMPLE_RATES.start(),
            SAMPLE_RATES.end()
        ))
    }
}

/// `--tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TierArg {
    Auto,
    Native,
    Js,
}

impl EngineArgs {
    /// Sets the tempo and the quantization of swaps on a new engine's controller.
    fn setup_transport(&self, controller: &mut flux_engine::Controller) {
        controller.set_tempo(self.bpm, 0);
        controller.set_quantize(self.quantize);
    }

    /// The crossfade in frames at `sample_rate`.
    fn fade_frames(&self, sample_rate: u32) -> u32 {
        (self.fade.clamp(0.0, 60_000.0) * f64::from(sample_rate) / 1000.0).round() as u32
    }

    /// Load options for these arguments at `sample_rate` and `channels`.
    fn load_options(&self, sample_rate: u32, channels: usize) -> flux_js::LoadOptions {
        flux_js::LoadOptions {
            sample_rate,
            channels,
            tier: match self.tier {
                TierArg::Auto => flux_js::TierChoice::Auto,
                TierArg::Native => flux_js::TierChoice::Native,
                TierArg::Js => flux_js::TierChoice::Js,
            },
            seed: self.seed,
            imports_anywhere: self.allow_imports_anywhere,
            ..flux_js::LoadOptions::default()
        }
    }
}

/// Where a signals file is, with `signals.js` as the default.
fn default_file() -> PathBuf {
    PathBuf::from("signals.js")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Play(args) => play::run(args),
        Command::Scope(mut args) => {
            args.scope.get_or_insert_with(|| {
                net::parse_loopback_addr(scope::DEFAULT_ADDR)
                    .expect("the default address is loopback")
            });
            args.null_channels = 3;
            play::run(args)
        }
        Command::Render(args) => render::run(args),
        Command::Check(args) => check::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Send(args) => send::run(args),
        Command::Repl(args) => repl::run(args),
        Command::Devices => devices(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", crate::text::escape(&format!("flux: {err:#}")));
            ExitCode::from(2)
        }
    }
}

fn devices() -> anyhow::Result<ExitCode> {
    let devices = flux_audio::list_devices();
    if devices.is_empty() {
        println!("no output devices (flux play falls back to the null output)");
    }
    for d in devices {
        println!("{d}");
    }
    Ok(ExitCode::SUCCESS)
}
