//! `sampler(path)`: a WAV file next to the signals file, played from its start on a
//! trigger, to the frame, at any rate, the same on both tiers; read again when it changes;
//! refused with a message naming it when it is outside the folder or not a sound file;
//! FLAC and Ogg Vorbis decode as WAV does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flux_engine::{engine, Controller, Engine, EngineConfig, StateAllocator, StateMemory, Tier};
use flux_js::{LoadOptions, Loader, TierChoice};

const SR: u32 = 48_000;

/// A 16-bit WAV of `frames` (in [-1, 1]) at `rate`, on `channels` equal channels.
fn wav(path: &Path, rate: u32, channels: u16, frames: &[f64]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for x in frames {
        for _ in 0..channels {
            w.write_sample((x * 32768.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

fn impulse(at: usize, len: usize) -> Vec<f64> {
    let mut v = vec![0.0; len];
    v[at] = 0.5;
    v
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flux-sampler-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rig(tier: TierChoice) -> (Loader, Controller, Engine) {
    let state = Arc::new(StateMemory::new(1 << 20));
    let loader = Loader::new(
        state.clone(),
        StateAllocator::new(1 << 20, 64),
        LoadOptions {
            sample_rate: SR,
            tier,
            ..LoadOptions::default()
        },
    );
    let (ctl, eng) = engine(EngineConfig::new(SR, 1), state);
    (loader, ctl, eng)
}

/// Loads `main.js` (written with `source`) from `dir` on both tiers and renders `frames`.
fn both(dir: &Path, source: &str, frames: usize) -> Vec<f32> {
    std::fs::write(dir.join("main.js"), source).unwrap();
    let mut outs = Vec::new();
    for (choice, tier) in [
        (TierChoice::Native, Tier::Native),
        (TierChoice::Js, Tier::Js),
    ] {
        let (mut loader, mut ctl, mut eng) = rig(choice);
        let loaded = loader.load_file(&dir.join("main.js")).unwrap();
        assert_eq!(
            loaded.signals[0].tier, tier,
            "{:?}",
            loaded.signals[0].reason
        );
        ctl.swap(loaded.patch);
        let mut out = vec![0.0f32; frames];
        eng.process(&mut out);
        assert!(ctl.collect().is_empty());
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1], "both tiers give the same samples");
    outs.pop().unwrap()
}

/// The frames that are not silent, with their values.
fn heard(out: &[f32]) -> Vec<(usize, f32)> {
    out.iter()
        .enumerate()
        .filter(|(_, x)| **x != 0.0)
        .map(|(i, x)| (i, *x))
        .collect()
}

#[test]
fn a_sample_plays_from_its_start_on_the_trigger_to_the_frame() {
    let dir = folder("exact");
    wav(&dir.join("imp.wav"), SR, 1, &impulse(100, 1000));
    let out = both(
        &dir,
        "flux('s', (mem, idx) => { const k = sampler('imp.wav'); return { update: () => { \
         const n = mem[idx]; mem[idx] = n + 1; return k(n === 0 || n === 3000 ? 1 : 0); } }; });",
        4000,
    );
    let x = 0.5f64.tanh() as f32;
    assert_eq!(heard(&out), [(100, x), (3100, x)]);
}

#[test]
fn rate_and_the_files_own_sample_rate_set_the_speed() {
    let dir = folder("rate");
    // 24 kHz, stereo: half the engine's rate, so it plays at half a frame a frame.
    wav(&dir.join("slow.wav"), 24_000, 2, &impulse(100, 1000));
    let out = both(
        &dir,
        "flux('s', () => { const k = sampler('slow.wav'); return { update: () => k(1) }; });",
        1000,
    );
    let (full, half) = (0.5f64.tanh() as f32, 0.25f64.tanh() as f32);
    assert_eq!(heard(&out), [(199, half), (200, full), (201, half)]);
    wav(&dir.join("imp.wav"), SR, 1, &impulse(100, 1000));
    let out = both(
        &dir,
        "flux('s', () => { const k = sampler('imp.wav'); return { update: () => k(1, 2) }; });",
        1000,
    );
    assert_eq!(heard(&out), [(50, full)]);
}

#[test]
fn a_changed_file_is_read_again_and_an_unchanged_one_keeps_playing() {
    let dir = folder("change");
    let file = dir.join("imp.wav");
    wav(&file, SR, 1, &impulse(100, 1000));
    let main = dir.join("main.js");
    std::fs::write(
        &main,
        "flux('s', () => { const k = sampler('imp.wav'); return { update: () => k(1) }; });",
    )
    .unwrap();
    let (mut loader, mut ctl, mut eng) = rig(TierChoice::Auto);
    let loaded = loader.load_file(&main).unwrap();
    assert!(
        loaded.imports.iter().any(|f| f.ends_with("imp.wav")),
        "watched"
    );
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; 60];
    eng.process(&mut out);
    // A reload with the file unchanged: the sampler keeps its place (frame 60 goes on).
    let loaded = loader.load_file(&main).unwrap();
    assert_eq!(loaded.units.kept, ["s:k"]);
    ctl.swap(loaded.patch);
    let mut more = vec![0.0f32; 100];
    eng.process(&mut more);
    assert_eq!(heard(&more), [(40, 0.5f64.tanh() as f32)]);
    // The file changes (its impulse moves): the next load reads it again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    wav(&file, SR, 1, &impulse(10, 2000));
    let loaded = loader.load_file(&main).unwrap();
    ctl.swap(loaded.patch);
    let mut after = vec![0.0f32; 2000];
    eng.process(&mut after);
    assert!(
        heard(&after).is_empty(),
        "the old position is past the new impulse"
    );
    let two = "flux('t', () => { const k = sampler('imp.wav'); return { update: () => k(1) }; });";
    std::fs::write(&main, two).unwrap();
    let loaded = loader.load_file(&main).unwrap();
    ctl.swap(loaded.patch);
    let mut fresh = vec![0.0f32; 100];
    eng.process(&mut fresh);
    assert_eq!(heard(&fresh), [(10, 0.5f64.tanh() as f32)]);
}

#[test]
fn sounds_nobody_plays_any_more_are_given_back() {
    // A 0.5 s sound (24,000 slots) edited 60 times, then taken out of the code: without
    // giving back the versions nobody plays, 60 versions would take 1.44 M slots.
    let dir = folder("reclaim");
    let file = dir.join("loop.wav");
    let main = dir.join("main.js");
    let plays =
        "flux('s', () => { const k = sampler('loop.wav'); return { update: () => k(1) }; });";
    std::fs::write(&main, plays).unwrap();
    let (mut loader, mut ctl, mut eng) = rig(TierChoice::Auto);
    let start = std::time::Instant::now();
    let mut high = 0;
    let mut out = vec![0.0f32; 256];
    for i in 0..60u64 {
        // Each version a frame longer, so it is a new file whatever the clock's grain.
        let len = 24_000 + i as usize;
        wav(&file, SR, 1, &impulse(20 + i as usize, len));
        let playing: Vec<String> = if i == 0 {
            Vec::new()
        } else {
            vec!["s".to_owned()]
        };
        loader.reclaim(&playing, ctl.generation(), ctl.oldest_live(), start);
        let loaded = loader.load_file(&main).unwrap();
        ctl.swap(loaded.patch);
        // The engine plays the new version: its impulse is where this version has it.
        eng.process(&mut out);
        assert!(ctl.collect().is_empty());
        let moved = heard(&out);
        if i > 0 {
            assert!(moved.is_empty() || moved[0].0 > 0, "{moved:?}");
        }
        high = high.max(loader.allocator_used());
    }
    // A version cools until no patch may play it: here the 20 ms crossfades of the last
    // four reloads (256 frames each) still do. Bounded, whatever the number of edits.
    assert!(
        high < 8 * 24_100,
        "the state used went up to {high} slots for a sound of 24,000"
    );
    // The sampler taken out: its last version goes too, and a new sound fits where it was.
    std::fs::write(&main, "flux('s', () => ({ update: () => 0 }));").unwrap();
    loader.reclaim(
        &["s".to_owned()],
        ctl.generation(),
        ctl.oldest_live(),
        start,
    );
    let loaded = loader.load_file(&main).unwrap();
    ctl.swap(loaded.patch);
    eng.process(&mut out);
    ctl.collect();
    loader.reclaim(
        &["s".to_owned()],
        ctl.generation(),
        ctl.oldest_live(),
        start,
    );
    let used = loader.allocator_used();
    wav(&dir.join("other.wav"), SR, 1, &impulse(5, 20_000));
    std::fs::write(
        &main,
        "flux('s', () => { const o = sampler('other.wav'); return { update: () => o(1) }; });",
    )
    .unwrap();
    let loaded = loader.load_file(&main).unwrap();
    ctl.swap(loaded.patch);
    eng.process(&mut out);
    // Its impulse, at frame 5, scaled by the crossfade's first frames.
    let heard = heard(&out);
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0].0, 5);
    assert_eq!(
        loader.allocator_used(),
        used,
        "the new sound took a range given back"
    );
}

#[test]
fn a_sound_a_playing_signal_reads_is_kept_through_sent_code_and_reclaims() {
    // 'b' plays a sound made at the file's top level, from frame 0; code sent with the
    // file's name while it plays (another signal, no sound) must not give the sound back:
    // after the old patches end and their ranges are zeroed, 'b' still finds its impulse
    // at frame 3000.
    let dir = folder("shared");
    wav(&dir.join("hit.wav"), SR, 1, &impulse(3_000, 4_000));
    let main = dir.join("main.js");
    let file = "const hit = sampler('hit.wav');\nflux('b', () => ({ update: () => hit(1) }));";
    std::fs::write(&main, file).unwrap();
    let (mut loader, mut ctl, mut eng) = rig(TierChoice::Auto);
    let start = std::time::Instant::now();
    let loaded = loader.load_file(&main).unwrap();
    let name = main.display().to_string();
    let mut playing: Vec<String> = loaded.signals.iter().map(|s| s.id.clone()).collect();
    ctl.swap(loaded.patch);
    let mut out = vec![0.0f32; 500];
    let mut heard_at = Vec::new();
    for round in 0..8 {
        eng.process(&mut out);
        assert!(ctl.collect().is_empty());
        heard_at.extend(heard(&out).iter().map(|(f, _)| round * 500 + f));
        loader.reclaim(&playing, ctl.generation(), ctl.oldest_live(), start);
        let sent = format!("flux('x{round}', () => ({{ update: () => 0 }}));");
        let loaded = loader.load_snippet(&name, &sent, &playing).unwrap();
        let keep = playing
            .iter()
            .filter_map(|id| loader.block_of(id))
            .collect();
        playing.push(format!("x{round}"));
        ctl.merge(loaded.patch, keep);
    }
    assert_eq!(heard_at, [3_000]);
}

#[test]
fn files_outside_the_folder_or_not_wav_are_refused_with_their_name() {
    let dir = folder("bad");
    std::fs::write(dir.join("notes.txt"), "not a sound").unwrap();
    let (mut loader, _, _) = rig(TierChoice::Auto);
    for (name, want) in [
        ("notes.txt", "cannot decode"),
        ("missing.wav", "cannot find"),
        ("../../etc/passwd", "outside the folder of the signals file"),
    ] {
        let src = format!(
            "flux('s', () => {{ const k = sampler('{name}'); return {{ update: () => k(1) }}; }});"
        );
        std::fs::write(dir.join("main.js"), &src).unwrap();
        let d = loader.load_file(&dir.join("main.js")).unwrap_err();
        let text = d.to_string();
        assert!(text.contains(&format!("sampler('{name}')")), "{text}");
        assert!(text.contains(want), "{text}");
        assert_eq!((d.location.line, d.location.col), (1, 29), "{text}");
    }
}

/// Copies the committed sound `name` (crates/js/tests/sounds, made by
/// scripts/make-test-sounds.sh) into `dir`.
fn sound(dir: &Path, name: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sounds")
        .join(name);
    std::fs::copy(from, dir.join(name)).unwrap();
}

/// Plays `name` once from frame 0, on both tiers, for 9,600 frames (its length).
fn play_sound(dir: &Path, name: &str) -> Vec<f32> {
    both(
        dir,
        &format!(
            "flux('s', () => {{ const k = sampler('{name}'); return {{ update: () => k(1) }}; }});"
        ),
        9600,
    )
}

#[test]
fn flac_decodes_to_the_samples_of_the_same_wav_file() {
    let dir = folder("flac");
    sound(&dir, "sine-440.wav");
    sound(&dir, "sine-440.flac");
    let wav = play_sound(&dir, "sine-440.wav");
    let flac = play_sound(&dir, "sine-440.flac");
    assert!(wav.iter().any(|&x| x > 0.4), "the WAV plays");
    assert_eq!(flac, wav, "FLAC is lossless: the same samples");
}

#[test]
fn ogg_vorbis_decodes_to_the_same_tone() {
    let dir = folder("ogg");
    sound(&dir, "sine-440.wav");
    sound(&dir, "sine-440.ogg");
    let wav = play_sound(&dir, "sine-440.wav");
    let ogg = play_sound(&dir, "sine-440.ogg");
    // Lossy: the same pitch and level, not the same samples. Measured away from the ends.
    let middle = |x: &[f32]| x[2400..7200].to_vec();
    let crossings = |x: &[f32]| x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    assert_eq!(crossings(&middle(&ogg)), crossings(&middle(&wav)));
    let rms =
        |x: &[f32]| (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let db = 20.0 * (rms(&middle(&ogg)) / rms(&middle(&wav))).log10();
    assert!(db.abs() < 0.2, "{db} dB");
    let error = middle(&ogg)
        .iter()
        .zip(middle(&wav))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(error < 0.02, "largest difference {error}");
}

#[test]
fn a_file_that_is_not_sound_is_refused_with_its_name() {
    let dir = folder("notsound");
    std::fs::write(dir.join("noise.flac"), b"fLaC but not really").unwrap();
    std::fs::write(
        dir.join("main.js"),
        "flux('s', () => { const k = sampler('noise.flac'); return { update: () => k(1) }; });",
    )
    .unwrap();
    let (mut loader, _ctl, _eng) = rig(TierChoice::Auto);
    let err = loader
        .load_file(&dir.join("main.js"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("noise.flac"), "{err}");
    assert!(
        err.contains("as a sound file (WAV, FLAC or Ogg Vorbis)"),
        "{err}"
    );
}

#[test]
fn a_flac_file_cut_short_plays_what_it_holds() {
    let dir = folder("cutflac");
    sound(&dir, "sine-440.wav");
    let whole =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sounds/sine-440.flac"))
            .unwrap();
    // The last of its three frames (4096, 4096 and 1408 samples) cut short.
    std::fs::write(dir.join("cut.flac"), &whole[..whole.len() - 300]).unwrap();
    let wav = play_sound(&dir, "sine-440.wav");
    let cut = play_sound(&dir, "cut.flac");
    let same = cut.iter().zip(&wav).take_while(|(a, b)| a == b).count();
    let heard = cut.iter().rposition(|&x| x != 0.0).map_or(0, |i| i + 1);
    // Two whole frames (8192 samples) decode; the sampler plays up to its last frame (which
    // it interpolates towards), then silence.
    assert_eq!(
        (same, heard),
        (8191, 8191),
        "the whole frames play as they are, then silence"
    );
}
