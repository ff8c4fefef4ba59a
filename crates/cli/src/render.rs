//! `flux render`: offline, as fast as the CPU allows, deterministic.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Args;
use flux_audio::WavWriter;
use flux_engine::{
    engine, EngineConfig, StateAllocator, StateMemory, DEFAULT_BLOCK_SLOTS, DEFAULT_GUARD_SLOTS,
    DEFAULT_SLOTS,
};

use crate::session::{Reload, Session};
use crate::EngineArgs;

/// Arguments of `flux render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The signals file.
    file: PathBuf,
    /// The WAV file to write (32-bit float).
    #[arg(short, long, value_name = "OUT.wav")]
    output: PathBuf,
    /// Length of the render in seconds.
    #[arg(long, value_name = "S")]
    seconds: f64,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    master: crate::levels::MasterArgs,
    /// Print the levels at the end, in one line: peak, RMS and clips of the master and of
    /// each signal, and the master's largest short-term loudness (LUFS).
    #[arg(long)]
    levels: bool,
    /// Load FILE at exactly SECONDS, as a save would while playing (repeatable).
    #[arg(long = "swap", value_name = "SECONDS:FILE", value_parser = parse_swap)]
    swaps: Vec<Swap>,
    /// Write over the output even when it is an existing file that is not a WAV file, or
    /// one of the render's own inputs.
    #[arg(long)]
    force: bool,
}

/// A file to load at a set time.
#[derive(Debug, Clone)]
pub struct Swap {
    at: f64,
    file: PathBuf,
}

fn parse_swap(s: &str) -> Result<Swap, String> {
    let (at, file) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not SECONDS:FILE"))?;
    let at: f64 = at
        .parse()
        .map_err(|_| format!("{at:?} in {s:?} is not a number of seconds"))?;
    if !(at >= 0.0 && at.is_finite()) {
        return Err(format!("the swap time {at} must be zero or more seconds"));
    }
    if file.is_empty() {
        return Err(format!("{s:?} names no file"));
    }
    Ok(Swap {
        at,
        file: file.into(),
    })
}

/// Frames rendered between two looks at the command queue, progress and faults.
const CHUNK: usize = 8192;

/// Runs `flux render`.
pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        bail!("--seconds must be a positive number, not {}", args.seconds);
    }
    let sample_rate = args.engine.sample_rate.unwrap_or(48_000);
    let channels = match args.engine.channels {
        Some(n) => usize::from(n),
        None => widest(&args, sample_rate),
    };
    let total = (args.seconds * f64::from(sample_rate)).round() as u64;
    let most = WavWriter::max_frames(channels as u16);
    if total > most {
        bail!(
            "--seconds {} at {sample_rate} Hz with {channels} channel{} is {} of samples; a WAV \
             file holds at most 4 GiB: at most {:.0} s at this rate and channel count",
            args.seconds,
            if channels == 1 { "" } else { "s" },
            size(total * channels as u64 * 4),
            most as f64 / f64::from(sample_rate)
        );
    }

    let state = Arc::new(StateMemory::new(DEFAULT_SLOTS));
    let (mut controller, mut engine) =
        engine(EngineConfig::new(sample_rate, channels), state.clone());
    args.engine.setup_transport(&mut controller);
    for note in args.master.setup(&mut controller, sample_rate)? {
        eprintln!("{note}");
    }
    let mut levels = args
        .levels
        .then(|| crate::levels::Levels::new(controller.meters(), sample_rate, channels));
    let options = args.engine.load_options(sample_rate, channels);
    let alloc =
        StateAllocator::new(DEFAULT_SLOTS, DEFAULT_BLOCK_SLOTS).with_guard(DEFAULT_GUARD_SLOTS);
    let mut session = Session::new(state, alloc, options, controller);
    session.set_fade(args.engine.fade_frames(sample_rate));

    let file_name = args.file.display().to_string();
    let source =
        flux_js::read_source(&args.file).map_err(|e| anyhow::anyhow!("{}", e.line(&file_name)))?;
    if let Reload::Failed { diagnostic, .. } = session.load(&args.file, &source) {
        eprintln!("{}", crate::text::escape(&diagnostic.to_string()));
        return Ok(ExitCode::FAILURE);
    }
    // Swaps in time order; equal times keep the order they were given in.
    let mut swaps = args.swaps.clone();
    swaps.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut swaps = swaps
        .into_iter()
        .map(|s| ((s.at * f64::from(sample_rate)).round() as u64, s.file))
        .peekable();

    let mut inputs: Vec<PathBuf> = vec![args.file.clone()];
    inputs.extend(session.imports().iter().cloned());
    inputs.extend(args.swaps.iter().map(|s| s.file.clone()));
    if !args.force {
        check_output(&args.output, &inputs)?;
    }
    let mut wav = WavWriter::create(&args.output, sample_rate, channels as u16)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let say = |line: &str| match &progress {
        Some(bar) => bar.println(crate::text::escape(line)),
        None => eprintln!("{}", crate::text::escape(line)),
    };

    let started = Instant::now();
    let mut buf = vec![0.0f32; CHUNK * channels];
    let mut done = 0u64;
    while done < total {
        while let Some((at, file)) = swaps.next_if(|(at, _)| *at <= done) {
            let name = file.display().to_string();
            let line = match flux_js::read_source(&file) {
                Ok(text) => session.load(&file, &text).line(&name),
                Err(e) => format!("{} (sound unchanged)", e.line(&name)),
            };
            say(&format!(
                "{:.3} s: {line}",
                at as f64 / f64::from(sample_rate)
            ));
        }
        let until = swaps.peek().map_or(total, |(at, _)| (*at).min(total));
        let frames = ((until - done) as usize).min(CHUNK);
        let out = &mut buf[..frames * channels];
        engine.process(out);
        if let Some(levels) = &mut levels {
            levels.set_signals(session.signals());
            levels.feed(out);
            levels.update();
        }
        wav.write(out)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        done += frames as u64;
        for line in session.poll() {
            say(&line);
        }
        if let Some(bar) = &progress {
            bar.set_position(done);
            bar.set_message(format!("{} written", size(done * channels as u64 * 4)));
        }
    }
    if let Some(levels) = &levels {
        say(&format!("levels: {}", levels.run().line()));
    }
    wav.finish()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = total as f64 / secs.max(1e-9);
    eprintln!(
        "rendered {:.3} s ({total} frames, {channels} ch, {sample_rate} Hz) to {} in {:.3} s: {:.0} frames/s, {:.1}x real time",
        total as f64 / f64::from(sample_rate),
        args.output.display(),
        secs,
        rate,
        rate / f64::from(sample_rate)
    );
    Ok(ExitCode::SUCCESS)
}

/// The channels of the widest signal of the file and the `--swap` files (1 when none
/// loads): each is loaded on its own, on the JavaScript tier, with a state memory of its
/// own, and every signal's first frame is rendered.
fn widest(args: &RenderArgs, sample_rate: u32) -> usize {
    let files = std::iter::once(&args.file).chain(args.swaps.iter().map(|s| &s.file));
    let mut widest = 1;
    for file in files {
        let mut loader = flux_js::Loader::new(
            Arc::new(StateMemory::new(DEFAULT_SLOTS)),
            StateAllocator::new(DEFAULT_SLOTS, DEFAULT_BLOCK_SLOTS).with_guard(DEFAULT_GUARD_SLOTS),
            flux_js::LoadOptions {
                tier: flux_js::TierChoice::Js,
                ..args.engine.load_options(sample_rate, 1)
            },
        );
        if let Ok(loaded) = loader.load_file(file) {
            for trial in loaded.trial(1) {
                widest = widest.max(trial.channels.unwrap_or(1));
            }
        }
    }
    widest.min(64)
}

/// Refuses an output that is one of the render's `inputs` (the same file, through any
/// path or link) or an existing file that is not a WAV file: both would lose data.
fn check_output(output: &Path, inputs: &[PathBuf]) -> anyhow::Result<()> {
    if let Some(input) = same_file_as(output, inputs) {
        bail!(
            "-o {} is an input of this render ({}): refusing to write over it \
             (--force writes anyway)",
            output.display(),
            input.display()
        );
    }
    check_wav_or_new(output, "-o", "(--force writes anyway)")
}

/// The input among `inputs` that `output` is (through any path or link), if any.
pub fn same_file_as<'a>(output: &Path, inputs: &'a [PathBuf]) -> Option<&'a PathBuf> {
    let out = output.canonicalize().ok()?;
    inputs
        .iter()
        .find(|input| input.canonicalize().is_ok_and(|i| i == out))
}

/// Refuses `output` (given with `flag`) when it exists and is not a WAV file; `hint` says
/// what to do instead.
pub fn check_wav_or_new(output: &Path, flag: &str, hint: &str) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::metadata(output) else {
        return Ok(());
    };
    if meta.is_file() {
        let mut head = [0u8; 12];
        let is_wav = std::fs::File::open(output)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
            && &head[..4] == b"RIFF"
            && &head[8..] == b"WAVE";
        if !is_wav {
            bail!(
                "{flag} {} exists and is not a WAV file: refusing to write over it {hint}",
                output.display()
            );
        }
    }
    Ok(())
}

/// A byte count for people: `512 B`, `3.2 MiB`, `4.0 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 << 20), "3.0 MiB");
        assert_eq!(size(u64::from(u32::MAX)), "4.0 GiB");
    }
}
