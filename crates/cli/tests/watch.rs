//! Reloads are never missed: imported modules, symlinked signals files, and a folder that
//! is removed and re-created, with real files in a temporary folder.

mod common;
mod live;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use live::{serial, Player};

/// `flux play FILE --null --no-listen --seconds 20`.
fn play(file: &Path) -> Player {
    Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--no-listen"),
        OsStr::new("--seconds"),
        OsStr::new("20"),
    ])
}

/// A signal whose level comes from `./lib.js`.
const MAIN: &str = "import { flux } from './flux.js';\nimport { level } from './lib.js';\n\
                    flux('a', () => ({ update: () => level }));\n";

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn editing_an_imported_module_reloads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.js");
    std::fs::write(dir.path().join("lib.js"), "export const level = 0.1;\n").unwrap();
    std::fs::write(&main, MAIN).unwrap();
    let mut player = play(&main);
    std::fs::write(
        dir.path().join("lib.js"),
        "export const level = 0.2;\nflux('b', () => ({ update: () => 0 }));\n",
    )
    .unwrap();
    // The module defines a second signal: the reload says 2.
    player.wait_for("main.js: ok, 2 signals", WAIT);
    // A broken module is reported at its place.
    std::fs::write(dir.path().join("lib.js"), "export const level = ;\n").unwrap();
    player.wait_for("lib.js:1:", WAIT);
}

#[test]
fn editing_the_target_of_a_symlinked_signals_file_reloads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::fs::create_dir(dir.path().join("links")).unwrap();
    let target = dir.path().join("real/song.js");
    let link = dir.path().join("links/song.js");
    std::fs::write(&target, "flux('a', () => ({ update: () => 0.1 }));\n").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let mut player = play(&link);
    std::fs::write(
        &target,
        "flux('a', () => ({ update: () => 0.1 }));\nflux('b', () => ({ update: () => 0 }));\n",
    )
    .unwrap();
    player.wait_for("song.js: ok, 2 signals", WAIT);
}

#[test]
fn a_folder_removed_and_re_created_is_watched_again() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    std::fs::create_dir(&set).unwrap();
    let main = set.join("main.js");
    std::fs::write(&main, "flux('a', () => ({ update: () => 0.1 }));\n").unwrap();
    let mut player = play(&main);
    std::fs::remove_dir_all(&set).unwrap();
    player.wait_for("the folder is gone", WAIT);
    std::fs::create_dir(&set).unwrap();
    player.wait_for(
        "the folder was removed and re-created; watching it again",
        WAIT,
    );
    std::fs::write(
        &main,
        "flux('a', () => ({ update: () => 0.1 }));\nflux('b', () => ({ update: () => 0 }));\n",
    )
    .unwrap();
    player.wait_for("main.js: ok, 2 signals", WAIT);
    // And it goes on being watched.
    std::fs::write(&main, "flux('c', () => ({ update: () => 0.1 }));\n").unwrap();
    player.wait_for("main.js: ok, 1 signal", WAIT);
}

#[test]
fn fixing_a_broken_or_missing_module_reloads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.js");
    std::fs::write(dir.path().join("lib.js"), "export const level = ;\n").unwrap();
    std::fs::write(
        &main,
        "import { flux } from './flux.js';\nimport { level } from './lib.js';\n\
         import { other } from './later.js';\nflux('a', () => ({ update: () => level + other }));\n",
    )
    .unwrap();
    let mut player = play(&main);
    assert!(
        player.seen.iter().any(|l| l.contains("lib.js:1:")),
        "{:?}",
        player.seen
    );
    // The broken module is fixed: the load now stops at the missing one.
    std::fs::write(dir.path().join("lib.js"), "export const level = 0.1;\n").unwrap();
    player.wait_for("import './later.js' refused: cannot find", WAIT);
    // The missing one appears: the file loads.
    std::fs::write(dir.path().join("later.js"), "export const other = 0.1;\n").unwrap();
    player.wait_for("main.js: ok, 1 signal", WAIT);
}
