//! Save-to-ear and honest logs: a completed save reloads once and is timed to the ear;
//! underruns are logged with their times and recorded as the silence the output played.

mod common;
mod live;

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use common::{read_wav, sine_file};
use live::Player;

fn stats(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

/// Lines that say a load went in.
fn loads(log: &str) -> usize {
    log.lines().filter(|l| l.contains(": ok, 1 signal")).count()
}

#[test]
fn a_save_by_rename_and_a_save_by_write_are_each_reloaded_once() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    let st = dir.path().join("st.json");
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    let mut player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--no-listen"),
        OsStr::new("--channels"),
        OsStr::new("1"),
        OsStr::new("--seconds"),
        OsStr::new("4"),
        OsStr::new("--stats"),
        st.as_os_str(),
    ]);
    assert_eq!(loads(&player.seen.join("\n")), 1, "{:?}", player.seen);

    // As Vim and most IDEs save: write a new file, rename it into place.
    std::thread::sleep(Duration::from_millis(300));
    let tmp = dir.path().join("signals.js.new");
    std::fs::write(&tmp, sine_file(310.0, "sin")).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    player.wait_for(": ok, 1 signal", WAIT);

    // In place, in two writes: the first half alone is not JavaScript, and is never
    // loaded; the close after the second reloads.
    std::thread::sleep(Duration::from_millis(300));
    let text = sine_file(320.0, "sin");
    let (first, second) = text.split_at(text.len() / 2);
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(first.as_bytes()).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(3));
    f.write_all(second.as_bytes()).unwrap();
    drop(f);
    player.wait_for(": ok, 1 signal", WAIT);

    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(loads(&log), 3, "{log}");
    assert!(!log.contains("Error"), "{log}");
    assert!(!log.contains("empty;"), "{log}");
    let s = stats(&st);
    assert_eq!(s["reloads"], 2, "{s}\n{log}");
    assert_eq!(s["reload_errors"], 0, "{s}\n{log}");
    // One time to the ear per reload; how long is for scripts/bench_save_to_ear.py.
    let ear = s["save_to_audible_ms"].as_array().unwrap();
    assert_eq!(ear.len(), 2, "{s}");
    assert!(ear.iter().all(|ms| ms.as_f64().unwrap() >= 0.0), "{s}");
    // The first load is heard too (it is no save).
    assert_eq!(
        s["reload_to_audible_ms"].as_array().unwrap().len(),
        3,
        "{s}"
    );
}

/// A tone whose `update` does far more work than a sample's time allows: a bounded loop
/// of 2000 sines per sample.
const SLOW: &str = "import { flux } from './flux.js';\n\
flux('slow', (mem, idx) => ({ update: (sr) => {\n\
  let x = 0;\n\
  for (let i = 0; i < 2000; i++) { x += Math.sin(i + mem[idx]); }\n\
  mem[idx] = (mem[idx] + 440 / sr) % 1.0;\n\
  return [Math.sin(mem[idx] * 2 * Math.PI) * 0.5 + x * 1e-9];\n\
} }));\n";

/// Parses `12.4 s: underrun, 128 frames` or `12.4 s: 5 underruns, 640 frames in 95 ms`:
/// the time and the frames.
fn underrun_line(line: &str) -> Option<(f64, u64)> {
    let (time, rest) = line.split_once(" s: ")?;
    let time: f64 = time.parse().ok()?;
    let frames = if let Some(rest) = rest.strip_prefix("underrun, ") {
        rest.strip_suffix(" frames")
            .or_else(|| rest.strip_suffix(" frame"))?
    } else {
        let (count, rest) = rest.split_once(" underruns, ")?;
        count.parse::<u64>().ok()?;
        let (frames, span) = rest.split_once(" frames in ")?;
        span.strip_suffix(" ms")?.parse::<u64>().ok()?;
        frames
    };
    Some((time, frames.parse().ok()?))
}

#[test]
fn underruns_are_logged_with_their_times_and_recorded_as_silence() {
    let _serial = live::serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.js");
    let (st, rec) = (dir.path().join("st.json"), dir.path().join("rec.wav"));
    std::fs::write(&file, SLOW).unwrap();
    let player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--no-listen"),
        OsStr::new("--channels"),
        OsStr::new("1"),
        // Underruns are what this test is about: the slow signal must not be cut.
        OsStr::new("--overload"),
        OsStr::new("off"),
        OsStr::new("--seconds"),
        OsStr::new("2"),
        OsStr::new("--stats"),
        st.as_os_str(),
        OsStr::new("--record"),
        rec.as_os_str(),
    ]);
    let (code, log) = player.finish();
    assert_eq!(code, Some(0), "{log}");
    let s = stats(&st);
    let underruns = s["underruns"].as_u64().unwrap();
    assert!(underruns > 0, "{s}\n{log}");

    // Every underrun is listed (fewer than the cap of 1000 here) with its silence.
    let times: Vec<f64> = s["underrun_times_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    let frames: Vec<u64> = s["underrun_frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(times.len() as u64, underruns.min(1000), "{s}");
    assert_eq!(frames.len(), times.len(), "{s}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{s}");
    if underruns <= 1000 {
        assert_eq!(s["missing_frames"], frames.iter().sum::<u64>(), "{s}");
    }

    // The log tells them in lines of at most 100 ms each, at their times.
    let lines: Vec<(f64, u64)> = log.lines().filter_map(underrun_line).collect();
    assert!(!lines.is_empty(), "{log}");
    assert!((lines[0].0 - times[0]).abs() < 0.051, "{lines:?} {times:?}");
    let told: u64 = lines.iter().map(|(_, n)| n).sum();
    assert_eq!(told, s["missing_frames"].as_u64().unwrap(), "{log}\n{s}");

    // The recording holds every frame the output played, the silences included.
    let (rate, channels, samples) = read_wav(&rec);
    assert_eq!((rate, channels), (48_000, 1));
    let dropped = s["recording_dropped_frames"].as_u64().unwrap();
    assert_eq!(
        samples.len() as u64 + dropped,
        s["frames"].as_u64().unwrap(),
        "{s}"
    );
    assert_eq!(dropped, 0, "{s}");
    for (t, n) in times.iter().zip(&frames) {
        let at = (t * 48_000.0).round() as usize;
        let gap = &samples[at..at + *n as usize];
        assert!(
            gap.iter().all(|&x| x == 0.0),
            "no silence at {t} s ({n} frames)"
        );
    }
    // And the sound between them.
    assert!(samples.iter().any(|&x| x.abs() > 0.4), "no sound recorded");
}
