//! `flux bench`: how fast a file renders through the engine, without writing anything.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use flux_engine::{
    engine, EngineConfig, StateAllocator, StateMemory, Tier, DEFAULT_BLOCK_SLOTS,
    DEFAULT_GUARD_SLOTS, DEFAULT_SLOTS,
};
use flux_js::Loader;

use crate::EngineArgs;

/// Arguments of `flux bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The signals file.
    file: PathBuf,
    /// Audio seconds rendered per timed repetition.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    seconds: f64,
    /// Audio seconds rendered, untimed, before the first repetition.
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    warmup: f64,
    /// Timed repetitions; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 5)]
    reps: usize,
    #[command(flatten)]
    engine: EngineArgs,
    /// Print one line of JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The longest `--seconds` and `--warmup` of a bench: an hour of audio.
const MAX_SECONDS: f64 = 3600.0;

/// Runs `flux bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= MAX_SECONDS,
        "--seconds must be a number of seconds above 0 and at most {MAX_SECONDS}, not {}",
        args.seconds
    );
    anyhow::ensure!(
        args.warmup >= 0.0 && args.warmup <= MAX_SECONDS,
        "--warmup must be a number of seconds from 0 to {MAX_SECONDS}, not {}",
        args.warmup
    );
    anyhow::ensure!(
        (1..=1000).contains(&args.reps),
        "--reps must be from 1 to 1000, not {}",
        args.reps
    );
    let sample_rate = args.engine.sample_rate.unwrap_or(48_000);
    let channels = usize::from(args.engine.channels.unwrap_or(1));
    let state = Arc::new(StateMemory::new(DEFAULT_SLOTS));
    let mut loader = Loader::new(
        state.clone(),
        StateAllocator::new(DEFAULT_SLOTS, DEFAULT_BLOCK_SLOTS).with_guard(DEFAULT_GUARD_SLOTS),
        args.engine.load_options(sample_rate, channels),
    );
    let loaded = match loader.load_file(&args.file) {
        Ok(loaded) => loaded,
        Err(d) => {
            eprintln!("{}", crate::text::escape(&d.to_string()));
            return Ok(ExitCode::FAILURE);
        }
    };
    let load_ms = loaded.elapsed.as_secs_f64() * 1e3;
    // What a save costs: the median of five loads of the file into the same loader (the
    // first load also pays for setting up what every load shares).
    let mut reloads: Vec<f64> = (0..5)
        .filter_map(|_| loader.load_file(&args.file).ok())
        .map(|l| l.elapsed.as_secs_f64() * 1e3)
        .collect();
    reloads.sort_by(f64::total_cmp);
    let reload_ms = reloads.get(reloads.len() / 2).copied().unwrap_or(load_ms);
    let signals = loaded.signals.len();
    let native = loaded
        .signals
        .iter()
        .filter(|s| s.tier == Tier::Native)
        .count();
    let (mut ctl, mut eng) = engine(EngineConfig::new(sample_rate, channels), state);
    ctl.swap(loaded.patch);

    // Render in chunks of 2048 frames, as the anchor harness does.
    let mut buf = vec![0.0f32; 2048 * channels];
    let mut render = |frames: u64| {
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(2048) as usize;
            eng.process(&mut buf[..n * channels]);
            done += n as u64;
        }
    };
    render((args.warmup * f64::from(sample_rate)) as u64);
    let frames = (args.seconds * f64::from(sample_rate)).max(1.0) as u64;
    let mut rates = Vec::with_capacity(args.reps);
    for _ in 0..args.reps {
        let started = Instant::now();
        render(frames);
        rates.push(frames as f64 / started.elapsed().as_secs_f64());
    }
    let faults = ctl.collect();
    for f in &faults {
        eprintln!(
            "{}",
            crate::text::escape(&format!("signal '{}' faulted: {}", f.id, f.fault))
        );
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    if args.json {
        let json = serde_json::json!({
            "file": args.file.display().to_string(),
            "signals": signals,
            "native": native,
            "load_ms": load_ms,
            "reload_ms": reload_ms,
            "frames_per_rep": frames,
            "fps_median": median,
            "fps_reps": rates,
            "ns_per_frame": 1e9 / median,
        });
        println!("{json}");
    } else {
        println!(
            "{}: {signals} signal{} ({native} native), loaded in {load_ms:.2} ms (a reload {reload_ms:.2} ms); {:.2} M frames/s median of {}, {:.0} ns/frame, {:.0}x real time",
            args.file.display(),
            if signals == 1 { "" } else { "s" },
            median / 1e6,
            args.reps,
            1e9 / median,
            median / f64::from(sample_rate)
        );
    }
    Ok(if faults.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
