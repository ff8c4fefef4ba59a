//! Ableton Link between two `flux play --null --link` processes on loopback: they agree on
//! the beat phase, and a tempo sent to one reaches the other. Only with `--features link`:
//! `cargo test -p flux --features link --test link`. Without the feature, `--link` is
//! refused with a clear message.

/// Runs `flux play --null --link` with `more` options on a file never read, and returns
/// its message after asserting it exits 2.
fn refused(more: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flux"))
        .args(["play", "--null", "--link", "--seconds", "1", "--no-listen"])
        .args(more)
        .arg("none-needed.js")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[cfg(not(feature = "link"))]
#[test]
fn link_without_the_feature_is_refused_with_exit_2() {
    assert_eq!(
        refused(&[]),
        "flux: built without Ableton Link: rebuild with --features link"
    );
}

/// Link and MIDI clock in would both lead the tempo: refused, with or without the feature.
#[test]
fn link_and_midi_clock_in_together_are_refused() {
    assert_eq!(
        refused(&["--midi", "x", "--midi-clock", "in"]),
        "flux: --link and --midi-clock in would both lead the tempo: choose one"
    );
}

#[cfg(feature = "link")]
mod common;
#[cfg(feature = "link")]
mod live;
#[cfg(feature = "link")]
mod with_link {

    use std::ffi::OsStr;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
    use std::path::Path;
    use std::time::Duration;

    use super::live::{serial, Player};

    /// Link's discovery group.
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 76, 78, 75);

    /// Why multicast on loopback cannot carry Link here, or `None` when it can: a datagram sent
    /// to Link's group on 127.0.0.1 must come back to a socket that joined the group there.
    fn loopback_multicast_missing() -> Option<String> {
        let try_it = || -> std::io::Result<bool> {
            let rx = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
            rx.join_multicast_v4(&GROUP, &Ipv4Addr::LOCALHOST)?;
            rx.set_read_timeout(Some(Duration::from_secs(1)))?;
            let port = rx.local_addr()?.port();
            let tx = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
            tx.set_multicast_loop_v4(true)?;
            tx.send_to(b"flux", SocketAddrV4::new(GROUP, port))?;
            let mut buf = [0u8; 8];
            Ok(rx
                .recv_from(&mut buf)
                .is_ok_and(|(n, _)| &buf[..n] == b"flux"))
        };
        match try_it() {
            Ok(true) => None,
            Ok(false) => {
                Some("a datagram sent to 224.76.78.75 on 127.0.0.1 never came back".into())
            }
            Err(e) => Some(format!("multicast on 127.0.0.1 fails: {e}")),
        }
    }

    fn request(addr: &str, line: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(line.as_bytes()).unwrap();
        stream.write_all(b"\n").unwrap();
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
    }

    fn stats(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// `[host µs, beat, bpm]` of a stats file's Link samples.
    fn samples(stats: &serde_json::Value) -> Vec<[f64; 3]> {
        serde_json::from_value(stats["link"]["samples"].clone()).unwrap()
    }

    /// The phase of `a` against `b` in ms, for each sample of `a` between host times `from`
    /// and `to` with one of `b` within 10 ms: `b`'s beat is carried to `a`'s host time at its
    /// tempo, and the difference wrapped to the nearest bar of `quantum` beats. Samples in
    /// the half second after an underrun of either (`underruns`, host times) are left out:
    /// an underrun delays the output by its silence until the next correction.
    fn phase_ms(
        a: &[[f64; 3]],
        b: &[[f64; 3]],
        quantum: f64,
        (from, to): (f64, f64),
        underruns: &[f64],
    ) -> Vec<f64> {
        a.iter()
            .filter(|s| (from..to).contains(&s[0]))
            .filter(|s| !underruns.iter().any(|u| (*u..u + 0.5e6).contains(&s[0])))
            .filter_map(|&[host, beat, bpm]| {
                let near = b
                    .iter()
                    .min_by(|x, y| (x[0] - host).abs().total_cmp(&(y[0] - host).abs()))?;
                if (near[0] - host).abs() > 10_000.0 {
                    return None;
                }
                let theirs = near[1] + (host - near[0]) / 60e6 * near[2];
                let d = beat - theirs;
                Some((d - (d / quantum).round() * quantum) * 60_000.0 / bpm)
            })
            .collect()
    }

    /// The mean, 90th percentile and largest of the absolute values.
    fn summary(ms: &[f64]) -> (f64, f64, f64) {
        let mut abs: Vec<f64> = ms.iter().map(|x| x.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let mean = abs.iter().sum::<f64>() / abs.len() as f64;
        (mean, abs[abs.len() * 9 / 10], abs[abs.len() - 1])
    }

    #[test]
    fn two_players_agree_on_the_beat_phase_and_share_a_tempo_change() {
        if let Some(reason) = loopback_multicast_missing() {
            eprintln!("skipped: Link needs multicast on loopback: {reason}");
            return;
        }
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("signals.js");
        std::fs::write(&file, "play('x', (s) => Math.sin(s.beat * 6.28) * 0.1);").unwrap();
        let (sa, sb) = (dir.path().join("a.json"), dir.path().join("b.json"));
        let arg = |s: &'static str| -> &'static OsStr { s.as_ref() };
        let a = Player::start(&[
            file.as_os_str(),
            arg("--null"),
            arg("--link"),
            arg("--seconds"),
            arg("13"),
            arg("--listen"),
            arg("127.0.0.1:0"),
            arg("--stats"),
            sa.as_os_str(),
        ]);
        // B starts at another tempo, a second later: it takes the session's tempo and phase.
        std::thread::sleep(Duration::from_secs(1));
        let mut b = Player::start(&[
            file.as_os_str(),
            arg("--null"),
            arg("--link"),
            arg("--bpm"),
            arg("100"),
            arg("--seconds"),
            arg("11"),
            arg("--no-listen"),
            arg("--stats"),
            sb.as_os_str(),
        ]);
        b.wait_for("link: 1 peers", Duration::from_secs(5));
        // Settled by 6 s into B; then A's tempo changes and B follows.
        std::thread::sleep(Duration::from_secs(6));
        let reply = request(a.addr(), r#"{"op":"tempo","bpm":132}"#);
        assert_eq!(reply["ok"], true, "{reply}");
        let (code, log_b) = b.finish();
        assert_eq!(code, Some(0), "{log_b}");
        let (code, log_a) = a.finish();
        assert_eq!(code, Some(0), "{log_a}");
        let (sa, sb) = (stats(&sa), stats(&sb));

        // (b) The tempo sent to A is the session's, and B plays it (within a phase nudge).
        // Link keeps a tempo as microseconds per beat: 132 comes back as 132.000132.
        let session = sb["link"]["bpm"].as_f64().unwrap();
        assert!((session - 132.0).abs() < 1e-3, "session {session}\n{log_b}");
        let bpm_b = sb["bpm"].as_f64().unwrap();
        assert!(
            (bpm_b - 132.0).abs() < 0.5,
            "B ends at {bpm_b} bpm\n{log_b}"
        );

        // (a) Phase: each sample is the beat its output presents at a host time (Link's clock,
        // shared by both). Measured from 3 to 6 s into B (settled, before the tempo change)
        // and over B's last 2 s (settled again at 132 bpm), but for the half second after
        // each underrun or stall of an output (the machine's, not Link's: both tell when they
        // had one).
        let (pa, pb) = (samples(&sa), samples(&sb));
        let start_b = pb[0][0];
        let end_b = pb[pb.len() - 1][0];
        let q = sa["link"]["quantum"].as_f64().unwrap();
        let underruns: Vec<f64> = [&sa, &sb]
            .iter()
            .flat_map(|s| ["underruns_us", "stalls_us"].map(|k| s["link"][k].clone()))
            .flat_map(serde_json::from_value::<Vec<f64>>)
            .flatten()
            .collect();
        for (name, from, to) in [
            ("before the tempo change", start_b + 3e6, start_b + 6e6),
            ("after it", end_b - 2e6, end_b),
        ] {
            let ms = phase_ms(&pa, &pb, q, (from, to), &underruns);
            assert!(
                ms.len() > 50,
                "{name}: {} pairs\n{log_a}\n{log_b}",
                ms.len()
            );
            let (mean, p90, max) = summary(&ms);
            eprintln!(
                "phase A-B {name}: mean {mean:.3} ms, 90% under {p90:.3} ms, max {max:.3} ms"
            );
            assert!(max < 1.0, "{name}: {mean} {p90} {max}\n{log_a}\n{log_b}");
        }
    }
}
