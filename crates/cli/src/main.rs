//! `flux`: play, render and check Flux signals files.
//!
//! Glue only: the DSP lives in `flux-engine`, JavaScript in `flux-js`, outputs in
//! `flux-audio`.

mod bench;
mod check;
mod control;
mod levels;
#[cfg(feature = "link")]
mod link;
mod midi;
mod net;
mod panic;
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
    #[command(after_help = PLAY_EXAMPLES)]
    Play(play::PlayArgs),
    /// Play a signals file with the scope open: `play --scope`, 3 channels on the null output.
    ///
    /// The same options as `play`. The null output gets 3 channels (X, Y and Z for the 3D
    /// view) unless `--channels` says otherwise; a device keeps its own.
    #[command(after_help = SCOPE_EXAMPLES)]
    Scope(play::PlayArgs),
    /// Render a signals file to a WAV file, offline and deterministic.
    #[command(after_help = RENDER_EXAMPLES)]
    Render(render::RenderArgs),
    /// Load a signals file, list its signals and print its diagnostics.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(check::CheckArgs),
    /// Measure how fast a signals file renders (no output, no clock).
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(bench::BenchArgs),
    /// Send a file (or `-`, standard input) to a playing `flux play`, which evaluates it in
    /// the running patch; prints the diagnostics, exits 1 when the code fails.
    #[command(after_help = SEND_EXAMPLES)]
    Send(send::SendArgs),
    /// Type code into a playing `flux play`, with line editing and history.
    #[command(after_help = REPL_EXAMPLES)]
    Repl(repl::ReplArgs),
    /// Fade everything out within 50 ms in a playing `flux play` and keep it stopped, until
    /// `flux panic --start` (or `:start` in the REPL).
    #[command(after_help = PANIC_EXAMPLES)]
    Panic(panic::PanicArgs),
    /// List the audio output devices.
    #[command(after_help = DEVICES_EXAMPLES)]
    Devices,
    /// List the MIDI input ports, and JACK's MIDI ports when a JACK server runs (for
    /// `flux play --midi`).
    #[command(after_help = MIDI_EXAMPLES)]
    Midi,
}

// The examples each command's `--help` ends with.
const PLAY_EXAMPLES: &str = "\
Examples:
  flux play examples/vortex-morph.js            play; edit the file and save to hear the change
  flux play examples/all-six.js --null --seconds 10
                                                on the null output (no sound card), for 10 s
  flux play set.js --device jack --fade 50      on JACK, with 50 ms crossfades
  flux play set.js --quantize bar --bpm 128     saves take over on the next bar line
  flux play set.js --record take.wav --stats st.json";
const SCOPE_EXAMPLES: &str = "\
Examples:
  flux scope examples/lissajous.js              then open http://127.0.0.1:7780/#mode=xy
  flux scope examples/torus-knot.js --scope=9000
                                                the page on port 9000 (#mode=xyz, #mode=fft...)";
const RENDER_EXAMPLES: &str = "\
Examples:
  flux render examples/all-six.js -o all-six.wav --seconds 30
  flux render examples/sine-440.js -o morph.wav --seconds 10 --swap 2.5:examples/vortex-morph.js
                                                a save at 2.5 s, as it would sound live
  flux render examples/lissajous.js -o l.wav --seconds 5 --channels 2 --sample-rate 44100";
const CHECK_EXAMPLES: &str = "\
Examples:
  flux check examples/all-six.js                its signals, their tier and channels
  flux check --json set.js                      the same for editors
  flux check --strict set.js                    exit 1 when a signal fails its trial too";
const BENCH_EXAMPLES: &str = "\
Examples:
  flux bench examples/all-six.js
  flux bench examples/all-six.js --tier js --json  the JavaScript tier alone, as JSON";
const SEND_EXAMPLES: &str = "\
Examples:
  flux send bass.js                             to the flux play on 127.0.0.1:7770
  sed -n 12,14p set.js | flux send - --name set.js --line 12
                                                errors name set.js and its own lines
  echo \"mute('bass', 2)\" | flux send -";
const REPL_EXAMPLES: &str = "\
Examples:
  flux repl                                     then: play('hum', s => Math.sin(2 * Math.PI * 110 * s.t) * 0.3)
  flux repl --to 127.0.0.1:7771 --token SECRET  a flux play started with --listen and --token";
const PANIC_EXAMPLES: &str = "\
Examples:
  flux panic                                     everything out within 50 ms, stays stopped
  flux panic --start                             fade back in
  flux panic --to 127.0.0.1:7771 --token s3cret  a flux play listening elsewhere";

const DEVICES_EXAMPLES: &str = "\
Examples:
  flux devices
  flux play set.js --device \"hw:CARD=PCH\"       play on one of them, by id or part of its name";
const MIDI_EXAMPLES: &str = "\
Examples:
  flux midi
  flux play set.js --midi                        notes from the first MIDI input port
  flux play set.js --midi Keystation             from the port whose name contains it
  flux play set.js --midi jack                   a JACK MIDI port flux:midi_in to connect to
  flux play set.js --midi jack:a2j               connected from the JACK port whose name contains it
  flux play set.js --midi jack --midi-clock out  send MIDI clock on flux:midi_out
  flux play set.js --midi Keystation --midi-clock in   follow its tempo, start and stop";

/// Options of the engine shared by `play` and `render`.
#[derive(Debug, Clone, Args)]
struct EngineArgs {
    /// Sample rate in Hz.
    #[arg(long, value_name = "HZ", value_parser = parse_sample_rate)]
    sample_rate: Option<u32>,
    /// Output channels (render: as many as the widest signal gives, unless given).
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
    /// Trial each signal of a load renders, off the DSP thread on a copy of the state,
    /// before it is swapped in, in milliseconds: a throw, NaN or endless loop there refuses
    /// the load and the old code plays on (0: no trial).
    #[arg(long, value_name = "MS", default_value_t = 100.0, value_parser = parse_preflight)]
    preflight: f64,
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

/// Parses `--preflight`: milliseconds from 0 to 10000.
fn parse_preflight(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ms) if (0.0..=10_000.0).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "the pre-flight trial must be a number of milliseconds from 0 to 10000, not {text:?}"
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
            preflight: std::time::Duration::from_secs_f64(self.preflight / 1000.0),
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
    // Commands that print a report and end die quietly when the reader of their output goes
    // away (`flux check | head`), as Unix tools do; the ones that play or keep a file open
    // keep ignoring SIGPIPE, so a closed pipe never takes the sound or a render down.
    if matches!(
        cli.command,
        Command::Check(_)
            | Command::Bench(_)
            | Command::Send(_)
            | Command::Panic(_)
            | Command::Devices
            | Command::Midi
    ) {
        default_sigpipe();
    }
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
        Command::Panic(args) => panic::run(args),
        Command::Devices => devices(),
        Command::Midi => midi::list(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", crate::text::escape(&format!("flux: {err:#}")));
            ExitCode::from(2)
        }
    }
}

/// Lets SIGPIPE end the process, as it does for other Unix tools (Rust ignores it).
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default is async-signal-safe and
    // touches no memory of ours; it happens before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
