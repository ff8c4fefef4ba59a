//! `flux check`: listings, JSON for editors, exit codes.

mod common;

use common::{example, flux, run, stderr};

#[test]
fn check_lists_the_signals_of_a_good_file() {
    let o = run(flux().arg("check").arg(example("all-six.js")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("all-six.js: 6 signals"), "{text}");
    for id in [
        "sine-440",
        "breathing-sine",
        "vortex-morph",
        "van-der-pol",
        "lorenz",
        "fm-vortex",
    ] {
        assert!(text.contains(id), "{id} missing from {text}");
    }
}

#[test]
fn check_json_describes_signals_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("st.js");
    std::fs::write(
        &f,
        "flux('l', () => ({ update: () => [0.1, 0.2] }));\nflux('m', () => ({ update: () => 0.3 }));\n\
         flux('s', () => ({ update: () => { console.log('hi'); return 0; } }));\n",
    )
    .unwrap();
    let o = run(flux().arg("check").arg("--json").arg(&f));
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signals"][0]["id"], "l");
    assert_eq!(v["signals"][0]["channels"], 2);
    assert_eq!(v["signals"][0]["tier"], "native");
    assert_eq!(v["signals"][0].get("reason"), None);
    assert_eq!(v["signals"][1]["channels"], 1);
    assert_eq!(v["signals"][1]["line"], 2);
    // A call the compiler does not handle keeps the signal on the JavaScript tier.
    assert_eq!(v["signals"][2]["tier"], "js");
    assert_eq!(v["signals"][2]["reason"], "3:36: the global `console`");
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 0);
}

#[test]
fn check_json_gives_diagnostics_and_exit_1_for_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.js");
    std::fs::write(
        &f,
        "flux('a', () => ({ update: () => 0 }));\n\n  let x = ;\n",
    )
    .unwrap();
    let o = run(flux().arg("check").arg("--json").arg(&f));
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signals"].as_array().unwrap().len(), 0);
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], f.display().to_string());
    assert_eq!(d["line"], 3);
    assert_eq!(d["col"], 11);
    assert!(
        d["message"].as_str().unwrap().starts_with("SyntaxError: "),
        "{d}"
    );

    let o = run(flux().arg("check").arg(&f));
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with(&format!("{}:3:11: error: SyntaxError", f.display())),
        "{text}"
    );
}

#[test]
fn check_warns_about_an_update_that_fails_on_its_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("w.js");
    std::fs::write(
        &f,
        "flux('w', () => ({\n  update: () => undefinedThing * 2 }));\n",
    )
    .unwrap();
    let o = run(flux().arg("check").arg("--json").arg(&f));
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signals"][0]["channels"], serde_json::Value::Null);
    let d = &v["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["col"].as_u64()), (Some(2), Some(17)));
    assert_eq!(d["severity"], "warning");
    assert_eq!(
        d["message"],
        "update of 'w' fails: ReferenceError: undefinedThing is not defined"
    );
}

#[test]
fn check_of_a_missing_file_fails_with_its_name() {
    let o = run(flux().args(["check", "/no/such/signals.js"]));
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with("/no/such/signals.js:1:1: error: cannot load the file"),
        "{text}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_check_quietly() {
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.js");
    let mut source = String::from("import { flux } from './flux.js';\n");
    // About 150 KB of listing: more than a pipe holds, so check must write after we go.
    for i in 0..1500 {
        source +=
            &format!("flux('a_signal_with_a_long_name_{i}', () => ({{ update: () => 0 }}));\n");
    }
    std::fs::write(&file, source).unwrap();
    let mut child = flux()
        .arg("check")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line's worth, then go away, as `head -1` does.
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // Ended by SIGPIPE (13 on Linux and macOS), as Unix tools are.
    assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
}
