//! `flux play`: play a file on a device or the null output, reload it on every save.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use flux_audio::{open_device, ErrorKind, NullOutput, OutputConfig, WavWriter};
use flux_engine::{
    engine, tap, DspThread, EngineConfig, OutputReader, StateAllocator, StateMemory, TapReader,
    DEFAULT_BLOCK_SLOTS, DEFAULT_GUARD_SLOTS, DEFAULT_SLOTS,
};
use serde::Serialize;

use crate::scope::{self, Scope};
use crate::session::Session;
use crate::watch::{Change, Watcher};
use crate::worker::Worker;
use crate::EngineArgs;

/// The play loop's longest wait: it wakes at once for a save or a request, and at least
/// this often to draw the status line and read the meters and faults.
const TICK: Duration = Duration::from_millis(100);

/// The play loop's longest wait while it follows another clock (`--midi-clock in`,
/// `--link`): a start, a tempo change or a phase correction takes effect within it.
const CLOCK_IN_TICK: Duration = Duration::from_millis(10);

/// Default depth of the ring buffer in frames: about 10 ms at 48 kHz.
pub const DEFAULT_BUFFER: u32 = 512;

/// Arguments of `flux play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The signals file; reloaded on every save.
    #[arg(default_value_os_t = crate::default_file())]
    file: PathBuf,
    /// Play on the real-time null output (no sound card needed).
    #[arg(long, conflicts_with = "device")]
    null: bool,
    /// Output device, by name or part of it (see `flux devices`).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Join an Ableton Link session: share tempo and beat phase with the Link peers on the
    /// network (needs a flux built with `--features link`). Not with `--midi-clock in`:
    /// one clock leads the tempo.
    #[arg(long)]
    link: bool,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    master: crate::levels::MasterArgs,
    /// Depth of the ring buffer in frames: the latency budget.
    #[arg(long, value_name = "FRAMES", default_value_t = DEFAULT_BUFFER,
          value_parser = clap::value_parser!(u32).range(16..=1 << 20))]
    buffer: u32,
    /// Overload policy: when the DSP thread's own work stays over this share of each
    /// block's time for 200 ms, the signal taking the most fades out and is reported, so
    /// the others play on. `off` lets every signal underrun together.
    #[arg(long, value_name = "PERCENT|off", default_value = "90", value_parser = parse_overload)]
    overload: Overload,
    /// Play MIDI in: from the first input port, or the first whose name contains PORT
    /// (see `flux midi`); `jack` or `jack:PORT` for JACK MIDI. Signals read `midi.note`,
    /// `midi.cc(n)`, `midi.noteOf(i)`...
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "")]
    midi: Option<String>,
    /// Follow the MIDI clock of the `--midi` port (`in`), or send one to it (`out`).
    #[arg(long, value_name = "in|out", requires = "midi")]
    midi_clock: Option<crate::midi::ClockMode>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
    /// Also write what the output plays to a WAV file (32-bit float), with silence where
    /// it ran short (an underrun).
    #[arg(long, value_name = "OUT.wav")]
    record: Option<PathBuf>,
    /// Write counters as JSON on exit.
    #[arg(long, value_name = "OUT.json")]
    stats: Option<PathBuf>,
    /// Serve the scope page on this loopback address [default: 127.0.0.1:7780].
    #[arg(long, value_name = "ADDR", num_args = 0..=1, require_equals = true,
          default_missing_value = scope::DEFAULT_ADDR, value_parser = crate::net::parse_loopback_addr)]
    pub scope: Option<SocketAddr>,
    /// Channels of the null output when `--channels` is not given.
    #[arg(skip = 2u16)]
    pub null_channels: u16,
    #[command(flatten)]
    control: crate::control::ControlArgs,
}

#[derive(Serialize)]
struct StatsFile {
    frames: u64,
    frames_rendered: u64,
    underruns: u64,
    /// Output time of each underrun (the first 1000), and its frames of silence.
    underrun_times_s: Vec<f64>,
    underrun_frames: Vec<u64>,
    /// Frames of silence over all underruns.
    missing_frames: u64,
    reloads: u64,
    reload_errors: u64,
    reload_ms: Vec<f64>,
    reload_to_audible_ms: Vec<f64>,
    /// From a save's first file event to the first frame of its code leaving the ring.
    save_to_audible_ms: Vec<f64>,
    dsp_load_max: f64,
    dsp_load_mean: f64,
    seconds: f64,
    sample_rate: u32,
    channels: usize,
    buffer_frames: usize,
    output: String,
    realtime: bool,
    recorded_frames: u64,
    recording_dropped_frames: u64,
    scope_dropped_frames: u64,
    nonfinite_samples: u64,
    /// The transport at exit: tempo, beats and bars since it started.
    bpm: f64,
    beat: f64,
    bar: f64,
    /// Levels over the whole run.
    levels: crate::levels::LevelsReport,
    /// Ableton Link, with `--link`.
    #[cfg(feature = "link")]
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<crate::link::LinkReport>,
}

/// The overload limit `--overload` asks for (a fraction of a block's time), or none.
#[derive(Debug, Clone, Copy)]
struct Overload(Option<f64>);

fn parse_overload(text: &str) -> Result<Overload, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(Overload(None));
    }
    let range = flux_engine::overload::OVERLOAD_RANGE;
    let percent: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is neither a percentage nor `off`"))?;
    let fraction = percent / 100.0;
    if !range.contains(&fraction) {
        return Err(format!(
            "{percent}% is outside {:.0}% to {:.0}% of a block's time",
            range.start() * 100.0,
            range.end() * 100.0
        ));
    }
    Ok(Overload(Some(fraction)))
}

/// What plays the frames.
enum Output {
    Device(flux_audio::Device),
    Null(NullOutput),
}

/// Runs `flux play`.
pub fn run(args: PlayArgs) -> anyhow::Result<ExitCode> {
    if let Some(s) = args.seconds {
        if !(s > 0.0 && s.is_finite()) {
            bail!("--seconds must be a positive number, not {s}");
        }
    }
    if args.link && args.midi_clock == Some(crate::midi::ClockMode::In) {
        bail!("--link and --midi-clock in would both lead the tempo: choose one");
    }
    if args.link && !cfg!(feature = "link") {
        bail!("built without Ableton Link: rebuild with --features link");
    }
    // Watch before the first read, so no save between the two goes unseen.
    let mut watcher = Watcher::new(&args.file)?;
    let source = flux_js::read_source(&args.file)
        .map_err(|e| anyhow::anyhow!("{}", e.line(&args.file.display().to_string())))?;
    // Listen first, so a busy scope port is reported before the sound starts.
    let scope_listener = args.scope.map(scope::Listener::bind).transpose()?;
    let mut control = crate::control::Control::start(&args.control, Some(watcher.waker()))?;
    let output = choose_output(&args)?;
    let (sample_rate, channels, period) = match &output {
        Output::Device(d) => (
            d.sample_rate(),
            usize::from(d.channels()),
            d.period_frames().unwrap_or(0),
        ),
        Output::Null(n) => (
            n.sample_rate(),
            usize::from(n.channels()),
            n.period_frames(),
        ),
    };
    // A device is taken to play a period after it takes it; the null output at once.
    #[cfg(feature = "link")]
    let link_timing = crate::link::Timing {
        sample_rate,
        period,
        latency: if matches!(output, Output::Null(_)) {
            0
        } else {
            period
        },
    };
    crate::check_sample_rate(sample_rate)
        .map_err(|e| anyhow::anyhow!("the output runs at {sample_rate} Hz: {e}"))?;
    // The ring must hold at least two of the output's periods.
    let ring_frames = (args.buffer as usize).max(2 * period as usize);
    if ring_frames > args.buffer as usize {
        eprintln!(
            "note: the output asks for {period} frames at a time; the buffer is {ring_frames} frames"
        );
    }

    let state = Arc::new(StateMemory::new(DEFAULT_SLOTS));
    let (mut controller, eng) = engine(EngineConfig::new(sample_rate, channels), state.clone());
    args.engine.setup_transport(&mut controller);
    controller.set_overload(args.overload.0);
    // MIDI in: events land one ring's depth after they arrive, each on its own frame.
    let mut midi = match &args.midi {
        Some(spec) => {
            let latency = ring_frames as u64;
            let midi = crate::midi::Midi::open(
                spec,
                args.midi_clock,
                &mut controller,
                latency,
                sample_rate,
            )?;
            eprintln!(
                "midi: from {} ({ring_frames} frames of latency)",
                crate::text::escape(&midi.description)
            );
            Some(midi)
        }
        None => None,
    };
    for note in args.master.setup(&mut controller, sample_rate)? {
        eprintln!("{note}");
    }
    let mut levels = crate::levels::Levels::new(controller.meters(), sample_rate, channels);
    let options = args.engine.load_options(sample_rate, channels);
    let mut session = Session::new(
        state,
        StateAllocator::new(DEFAULT_SLOTS, DEFAULT_BLOCK_SLOTS).with_guard(DEFAULT_GUARD_SLOTS),
        options,
        controller,
    );
    session.set_fade(args.engine.fade_frames(sample_rate));
    let file_name = args.file.display().to_string();
    let first_line = session.load(&args.file, &source).line(&file_name);
    eprintln!("{}", crate::text::escape(&first_line));
    watcher.watch_imports(session.imports());
    // Neither output may be written over the signals file or a file it imports.
    let mut inputs = vec![args.file.clone()];
    inputs.extend(session.imports().iter().cloned());
    for (flag, path) in [("--record", &args.record), ("--stats", &args.stats)] {
        if let Some(path) = path {
            if let Some(input) = crate::render::same_file_as(path, &inputs) {
                bail!(
                    "{flag} {} is {}, an input of this session: refusing to write over it",
                    path.display(),
                    input.display()
                );
            }
        }
    }
    if let Some(path) = &args.record {
        crate::render::check_wav_or_new(path, "--record", "(give a new file or a WAV file)")?;
    }
    let mut last_source = source;

    // Copies of what plays: two seconds for the recorder (taken at the output, so it holds
    // what the output played, underruns as silence), half a second for the scope.
    let mut taps = Vec::new();
    let (mut record_tap, recorder) = match &args.record {
        Some(path) => {
            let (tx, rx) = tap(channels, sample_rate as usize * 2);
            (Some(tx), Some(Recorder::start(path, rx, sample_rate)?))
        }
        None => (None, None),
    };
    let scope_parts = scope_listener.map(|listener| {
        let (tx, rx) = tap(channels, sample_rate as usize / 2);
        taps.push(tx);
        (listener, rx)
    });
    // A copy for the loudness meter, read on this thread.
    let (tx, mut loudness_tap) = tap(channels, sample_rate as usize / 2);
    taps.push(tx);
    let mut loudness_buf = Vec::new();
    let (mut dsp, counters, running) = match output {
        Output::Device(device) => {
            let (dsp, mut reader) =
                DspThread::spawn(eng, ring_frames, taps).context("cannot start the DSP thread")?;
            reader.wait_primed(Duration::from_secs(2));
            let counters = reader.counters().clone();
            let running = device
                .start(move |out: &mut [f32]| play_out(&mut reader, &mut record_tap, out))
                .context("cannot start the audio device")?;
            (dsp, counters, running)
        }
        // The DSP thread drives the null clock itself: one thread wakes per period, not two.
        Output::Null(null) => {
            let counters = eng.counters().clone();
            let (mut clock, running) = null.clock();
            let drive = move |reader: &mut OutputReader| {
                clock.tick(&mut |out: &mut [f32]| play_out(reader, &mut record_tap, out));
            };
            let dsp = DspThread::spawn_driving(eng, ring_frames, taps, drive)
                .context("cannot start the DSP thread")?;
            (dsp, counters, running)
        }
    };
    eprintln!(
        "playing {file_name} on {} ({sample_rate} Hz, {channels} ch, buffer {ring_frames} frames = {:.1} ms{})",
        running.name(),
        ring_frames as f64 * 1e3 / f64::from(sample_rate),
        if dsp.is_realtime() { ", real-time DSP thread" } else { "" }
    );
    let scope = match scope_parts {
        Some((listener, tap)) => {
            let status = scope::Status {
                file: file_name.clone(),
                output: running.name().to_owned(),
                realtime: dsp.is_realtime(),
                clock: Some(session.clock_reader()),
                ..scope::Status::default()
            };
            let scope = listener.start(tap, counters.clone(), sample_rate, status)?;
            scope.set_signals(session.signals(), &first_line);
            eprintln!("scope: {}", scope.url());
            Some(scope)
        }
        None => None,
    };

    #[cfg(feature = "link")]
    let mut link = match args.link {
        true => Some(crate::link::Link::start(
            args.engine.bpm,
            session.clock_reader(),
            counters.clone(),
            link_timing,
        )?),
        false => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while shutting down ends the process the default way.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
        });
    }
    let started = Instant::now();
    let until = args.seconds.map(Duration::from_secs_f64);
    let mut status = crate::status::StatusLine::new();
    // A DSP thread that panicked or is stuck ends the session with an error.
    let mut dsp_failed = false;
    // Lines said while playing start with the playing time, as `render`'s do.
    let timed = |line: &str| {
        let played = counters.snapshot().frames_played as f64 / f64::from(sample_rate);
        crate::text::escape(&format!("{played:.3} s: {line}")).into_owned()
    };
    let mut underruns = crate::underrun::UnderrunLog::new(sample_rate);
    // Saves swapped in and not heard yet: the generation and the save's first event.
    let mut saves: Vec<(u64, Instant)> = Vec::new();
    let mut save_to_audible_ms = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) || until.is_some_and(|u| started.elapsed() >= u) {
            break;
        }
        let most = if args.link || midi.as_ref().is_some_and(crate::midi::Midi::follows_clock) {
            CLOCK_IN_TICK
        } else {
            TICK
        };
        let tick = until.map_or(most, |u| u.saturating_sub(started.elapsed()).min(most));
        let change = watcher.changed(tick);
        status.clear();
        for note in watcher.take_notes() {
            eprintln!("{}", crate::text::escape(&note));
        }
        if change != Change::None {
            let forced = change == Change::Import;
            let swapped = session.unheard();
            let line = reload(&mut session, &args.file, &mut last_source, forced);
            if let Some(saved) = watcher.saved_at() {
                // A generation of its own: the save's code was swapped in.
                saves.extend(
                    session
                        .unheard()
                        .filter(|&g| Some(g) != swapped)
                        .map(|g| (g, saved)),
                );
            }
            watcher.watch_imports(session.imports());
            if let Some(line) = line {
                eprintln!("{}", timed(&line));
                if let Some(scope) = &scope {
                    scope.set_signals(session.signals(), &line);
                }
            }
        }
        for line in session.poll() {
            eprintln!("{}", timed(&line));
        }
        if let Some(midi) = &mut midi {
            midi.follow(session.controller_mut());
        }
        let (heard, at) = counters.audible();
        saves.retain(|&(generation, saved)| {
            let done = heard >= generation;
            if done {
                save_to_audible_ms.push(crate::session::ms(at.saturating_duration_since(saved)));
            }
            !done
        });
        for line in underruns.poll(&counters) {
            eprintln!("{line}");
        }
        for line in control.poll(&mut session, &counters) {
            eprintln!("{}", timed(&line));
            if let Some(scope) = &scope {
                scope.set_signals(session.signals(), &line);
            }
        }
        #[cfg(feature = "link")]
        for line in link.iter_mut().flat_map(|l| l.tick(&mut session)) {
            eprintln!("{}", timed(&line));
        }
        if let Some(err) = running.take_error() {
            eprintln!("{}", crate::text::escape(&format!("output error: {err}")));
            if err.kind() == ErrorKind::DeviceLost {
                break;
            }
        }
        if let Err(e) = dsp.check() {
            status.clear();
            eprintln!("error: {e}");
            dsp_failed = true;
            break;
        }
        loudness_buf.clear();
        loudness_tap.read_into(&mut loudness_buf, usize::MAX);
        levels.feed(&loudness_buf);
        levels.set_signals(session.signals());
        levels.update();
        control.set_levels(levels.now());
        if let Some(scope) = &scope {
            scope.set_levels(levels.now());
        }
        let now = levels.now();
        status.set_levels(levels.compact());
        status.set_shares(
            now.signals
                .iter()
                .map(|(id, s)| (id.clone(), s.dsp_percent))
                .collect(),
        );
        status.draw(&session, &counters);
    }
    status.clear();
    if let Some(midi) = &mut midi {
        midi.finish(session.controller_mut());
    }
    let seconds = started.elapsed().as_secs_f64();
    let output_name = running.name().to_owned();
    drop(running);
    #[cfg(feature = "link")]
    let link = link.and_then(crate::link::Link::stop);
    let realtime = dsp.is_realtime();
    match dsp.stop_within(flux_engine::STOP_WAIT) {
        Ok(engine) => drop(engine),
        Err(e) if !dsp_failed => {
            eprintln!("error: {e}");
            dsp_failed = true;
        }
        Err(_) => {}
    }
    let scope_dropped_frames = scope.map_or(0, Scope::stop);
    for line in session.poll() {
        eprintln!("{}", timed(&line));
    }
    let (recorded_frames, recording_dropped_frames) = match recorder {
        Some(r) => r.finish()?,
        None => (0, 0),
    };
    loudness_buf.clear();
    loudness_tap.read_into(&mut loudness_buf, usize::MAX);
    levels.feed(&loudness_buf);
    levels.update();
    for line in underruns.finish(&counters) {
        eprintln!("{line}");
    }
    let stats = counters.snapshot();
    eprintln!(
        "played {:.1} s: {} frames, {} underruns, {} reloads ({} failed), DSP load mean {:.1}% max {:.1}%",
        seconds,
        stats.frames_played,
        stats.underruns,
        session.reloads,
        session.reload_errors,
        stats.dsp_load_mean * 100.0,
        stats.dsp_load_max * 100.0
    );
    if let Some(path) = &args.stats {
        let file = StatsFile {
            frames: stats.frames_played,
            frames_rendered: stats.frames_rendered,
            underruns: stats.underruns,
            underrun_times_s: underruns.times_s,
            underrun_frames: underruns.frames,
            missing_frames: counters.underrun_frames(),
            reloads: session.reloads,
            reload_errors: session.reload_errors,
            reload_ms: session.reload_ms.clone(),
            reload_to_audible_ms: session.audible_ms.clone(),
            save_to_audible_ms,
            dsp_load_max: stats.dsp_load_max,
            dsp_load_mean: stats.dsp_load_mean,
            seconds,
            sample_rate,
            channels,
            buffer_frames: ring_frames,
            output: output_name,
            realtime,
            recorded_frames,
            recording_dropped_frames,
            scope_dropped_frames,
            nonfinite_samples: stats.nonfinite_samples,
            bpm: session.clock().bpm,
            beat: session.clock().beat,
            bar: session.clock().bar,
            levels: levels.run(),
            #[cfg(feature = "link")]
            link,
        };
        std::fs::write(path, serde_json::to_string_pretty(&file)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if dsp_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What the output plays: the next frames from the ring, copied to the recording (so it
/// holds what was played, underruns as silence). On the output's thread: real-time safe.
fn play_out(reader: &mut OutputReader, record: &mut Option<flux_engine::Tap>, out: &mut [f32]) {
    reader.fill(out);
    if let Some(tap) = record {
        tap.write(out);
    }
}

/// Picks the output: `--null`, `--device NAME`, or the default device with the null output
/// as the fallback.
fn choose_output(args: &PlayArgs) -> anyhow::Result<Output> {
    let null = || {
        let rate = args.engine.sample_rate.unwrap_or(48_000);
        let channels = args.engine.channels.unwrap_or(args.null_channels);
        // Periods of a quarter of the buffer (128 frames of the default 512), so the ring
        // always has a period ready and new code waits at most 2.7 ms for the next one.
        let period = (args.buffer / 4).clamp(16, 256);
        NullOutput::new(rate, channels, period)
    };
    if args.null {
        return Ok(Output::Null(null()));
    }
    let config = OutputConfig {
        sample_rate: args.engine.sample_rate,
        channels: args.engine.channels,
        period_frames: Some((args.buffer / 2).max(16)),
    };
    match open_device(args.device.as_deref(), &config) {
        Ok(device) => Ok(Output::Device(device)),
        // A device the user named must exist; the default one may be missing.
        Err(e) if args.device.is_some() => Err(e).context("cannot open the output device"),
        Err(e) => {
            eprintln!("no usable audio device ({e}); playing on the null output");
            Ok(Output::Null(null()))
        }
    }
}

/// Reads the file and reloads it; `None` when there is nothing to do.
///
/// An empty file is taken for a save in progress (editors that truncate before they write):
/// it never silences the patch. A file whose text has not changed is not loaded again,
/// unless `forced` (a file it imports changed).
fn reload(session: &mut Session, path: &Path, last: &mut String, forced: bool) -> Option<String> {
    let name = path.display().to_string();
    // Gone for a moment while an editor renames its new copy into place.
    if !path.exists() {
        return None;
    }
    let text = match flux_js::read_source(path) {
        Ok(text) => text,
        Err(e) => return Some(e.line(&name)),
    };
    if text.is_empty() {
        return Some(format!(
            "{name}: empty; still playing {} signals",
            session.signals().len()
        ));
    }
    if text == *last && !forced {
        return None;
    }
    *last = text;
    Some(session.load(path, last).line(&name))
}

/// Writes what the output tapped (each buffer it played) to a WAV file, on its own thread.
struct Recorder {
    worker: Worker<anyhow::Result<(u64, u64)>>,
}

impl Recorder {
    fn start(path: &Path, mut tap: TapReader, sample_rate: u32) -> anyhow::Result<Self> {
        let channels = tap.channels();
        let mut wav = WavWriter::create(path, sample_rate, channels as u16)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let display = path.display().to_string();
        let worker = Worker::spawn("flux-record", move |stop| -> anyhow::Result<(u64, u64)> {
            let mut buf = Vec::new();
            let mut drain = |tap: &mut TapReader| -> anyhow::Result<()> {
                buf.clear();
                tap.read_into(&mut buf, usize::MAX);
                wav.write(&buf)?;
                Ok(())
            };
            while !stop.load(Ordering::Relaxed) {
                drain(&mut tap)?;
                std::thread::sleep(Duration::from_millis(20));
            }
            drain(&mut tap)?;
            let frames = wav.frames_written();
            wav.finish()
                .with_context(|| format!("cannot write {display}"))?;
            Ok((frames, tap.dropped_frames()))
        })?;
        Ok(Self { worker })
    }

    /// Stops, finishes the file; returns the frames written and the frames dropped.
    fn finish(self) -> anyhow::Result<(u64, u64)> {
        self.worker
            .stop()
            .ok_or_else(|| anyhow::anyhow!("the recorder thread panicked"))?
    }
}
