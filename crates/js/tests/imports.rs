//! Imports: resolved inside the signals file's folder only, regular files of at most 4 MiB,
//! refusals named with their place and never echoing a file's content.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_engine::{StateAllocator, StateMemory};
use flux_js::{LoadOptions, Loader};

fn loader(anywhere: bool) -> Loader {
    Loader::new(
        Arc::new(StateMemory::new(4096)),
        StateAllocator::new(4096, 64),
        LoadOptions {
            load_time_limit: Duration::from_millis(2000),
            imports_anywhere: anywhere,
            ..LoadOptions::default()
        },
    )
}

/// A fresh folder with `song/` inside; returns the folder.
fn tempdir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "flux-imports-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("song/lib")).unwrap();
    dir
}

/// Writes `song/main.js` importing `spec` on line 2 and loads it; the error, if any.
fn load_importing(dir: &Path, spec: &str, anywhere: bool) -> Result<Vec<PathBuf>, String> {
    let main = dir.join("song/main.js");
    std::fs::write(
        &main,
        format!(
            "import {{ flux }} from './flux.js';\nimport {{ x }} from '{spec}';\n\
             flux('a', () => ({{ update: () => x }}));\n"
        ),
    )
    .unwrap();
    loader(anywhere)
        .load_file(&main)
        .map(|l| l.imports)
        .map_err(|d| d.to_string())
}

#[test]
fn imports_inside_the_folder_load_and_are_listed() {
    let dir = tempdir();
    std::fs::write(dir.join("song/lib/x.js"), "export const x = 0.25;\n").unwrap();
    let imports = load_importing(&dir, "./lib/x.js", false).unwrap();
    let real = dir.join("song/lib/x.js").canonicalize().unwrap();
    assert_eq!(imports, vec![real]);
}

#[test]
fn imports_outside_the_folder_are_refused_unless_allowed() {
    let dir = tempdir();
    std::fs::write(dir.join("x.js"), "export const x = 0.25;\n").unwrap();
    let e = load_importing(&dir, "../x.js", false).unwrap_err();
    let main = dir.join("song/main.js");
    assert!(
        e.starts_with(&format!(
            "{}:2:19: import '../x.js' refused: ",
            main.display()
        )),
        "{e}"
    );
    assert!(e.contains("outside the folder of the signals file"), "{e}");
    assert!(e.contains("--allow-imports-anywhere"), "{e}");
    assert!(load_importing(&dir, "../x.js", true).is_ok());
    // A symlink inside the folder to a file outside it is outside too.
    std::os::unix::fs::symlink(dir.join("x.js"), dir.join("song/link.js")).unwrap();
    let e = load_importing(&dir, "./link.js", false).unwrap_err();
    assert!(e.contains("outside the folder"), "{e}");
}

#[test]
fn a_system_file_is_refused_and_its_content_never_echoed() {
    let dir = tempdir();
    let e = load_importing(&dir, "/etc/passwd", false).unwrap_err();
    assert!(e.contains("import '/etc/passwd' refused"), "{e}");
    assert!(!e.contains("root:"), "{e}");
    // Allowed anywhere, it is read: a syntax error, at its own place.
    let e = load_importing(&dir, "/etc/passwd", true).unwrap_err();
    assert!(!e.contains("import '/etc/passwd' refused"), "{e}");
}

#[test]
fn fifos_devices_and_folders_are_refused_before_they_are_opened() {
    let dir = tempdir();
    let fifo = dir.join("song/pipe.js");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let started = Instant::now();
    let e = load_importing(&dir, "./pipe.js", false).unwrap_err();
    assert!(e.contains("not a regular file"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let e = load_importing(&dir, "/dev/zero", true).unwrap_err();
    assert!(
        e.contains("import '/dev/zero' refused: it is not a regular file"),
        "{e}"
    );
    let e = load_importing(&dir, "./lib", false).unwrap_err();
    assert!(e.contains("it is a folder"), "{e}");
    // The signals file itself too.
    let e = loader(false).load_file(&fifo).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn an_import_over_4_mib_is_refused_with_its_size() {
    let dir = tempdir();
    let mut big = "export const x = 0;\n".to_owned();
    big.push_str(&"//".repeat(2 << 20));
    std::fs::write(dir.join("song/big.js"), &big).unwrap();
    let e = load_importing(&dir, "./big.js", false).unwrap_err();
    assert!(
        e.contains(&format!(
            "it is {} bytes; a signals file or module is at most 4194304 bytes",
            big.len()
        )),
        "{e}"
    );
    let e = load_importing(&dir, "./missing.js", false).unwrap_err();
    assert!(
        e.contains(":2:19: import './missing.js' refused: cannot find"),
        "{e}"
    );
}
