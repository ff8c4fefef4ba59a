//! The editor plugins against a playing engine: Neovim (headless) sends a paragraph, its
//! diagnostics land on the right line; the Vim mapping does the same through `flux send`.

mod common;
mod live;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{sine_file, stderr};
use live::{serial, Player};

/// The repository's `editors/`.
fn editors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../editors")
}

/// A live-coding buffer: a good paragraph (lines 1-3), a blank line, a bad one (5-6).
const BUFFER: &str = "play('from-editor', s =>\n  Math.sin(2 * Math.PI * 220 * s.t) * 0.2\n);\n\
                      \n\
                      play('broken', s =>\n  s.t * );\n";

/// Drives the plugin: sends the paragraph at line 2, then the one at line 6, and writes
/// what happened to `$FLUX_OUT` as JSON.
const NVIM_SCRIPT: &str = r#"
local flux = require('flux')
flux.setup({ addr = os.getenv('FLUX_ADDR') })
vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('FLUX_BUFFER')))
vim.api.nvim_win_set_cursor(0, { 2, 0 })
local good = flux.send_paragraph()
vim.api.nvim_win_set_cursor(0, { 6, 0 })
local bad = flux.send_paragraph()
local d = vim.diagnostic.get(0, { namespace = flux.ns })
local qf = vim.fn.getqflist()
local out = {
  good = good and good.ok,
  good_message = good and good.message,
  bad = bad and bad.ok,
  diagnostic_line = d[1] and d[1].lnum + 1,
  diagnostic = d[1] and d[1].message,
  quickfix_line = qf[1] and qf[1].lnum,
}
vim.fn.writefile({ vim.json.encode(out) }, os.getenv('FLUX_OUT'))
vim.cmd('qall!')
"#;

fn nvim_missing() -> bool {
    Command::new("nvim").arg("--version").output().is_err()
}

#[test]
fn the_neovim_plugin_sends_a_paragraph_and_shows_diagnostics_on_its_line() {
    assert!(
        !nvim_missing(),
        "nvim is not installed: this test needs Neovim 0.7 or later (scripts/setup.sh \
         --deps-only installs the Debian package neovim)"
    );
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    let mut player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--seconds"),
        OsStr::new("15"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
    ]);
    let buffer = dir.path().join("live.js");
    std::fs::write(&buffer, BUFFER).unwrap();
    let script = dir.path().join("drive.lua");
    std::fs::write(&script, NVIM_SCRIPT).unwrap();
    let out_file = dir.path().join("out.json");
    let rtp = editors().join("nvim");
    let out = Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n"])
        .arg("--cmd")
        .arg(format!("set runtimepath^={}", rtp.display()))
        .arg("-c")
        .arg(format!("luafile {}", script.display()))
        .env("FLUX_ADDR", player.addr())
        .env("FLUX_BUFFER", &buffer)
        .env("FLUX_OUT", &out_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = std::fs::read_to_string(&out_file).unwrap_or_else(|_| {
        panic!(
            "nvim wrote no result (exit {:?}):\n{}",
            out.status.code(),
            stderr(&out)
        )
    });
    let result: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(result["good"], true, "{result}\n{}", stderr(&out));
    assert_eq!(result["bad"], false, "{result}");
    assert_eq!(result["diagnostic_line"], 6, "{result}");
    assert_eq!(result["quickfix_line"], 6, "{result}");
    assert!(
        result["diagnostic"]
            .as_str()
            .unwrap()
            .contains("SyntaxError"),
        "{result}"
    );

    // The engine heard it: the paragraph's signal plays next to the file's.
    player.wait_for("live.js: ok, 1 signal", Duration::from_secs(5));
    player.wait_for("live.js:6:", Duration::from_secs(5));
    let list = live_list(player.addr());
    assert!(
        list.contains("\"from-editor\"") && list.contains("\"tone\""),
        "{list}"
    );
    assert!(!list.contains("broken"), "{list}");
}

/// The `list` reply of the engine at `addr`, as text.
fn live_list(addr: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(b"{\"op\":\"list\"}\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

/// A buffer whose second paragraph (lines 5-10) throws on line 7 while it plays.
const THROWING: &str = "play('from-editor', s =>\n  Math.sin(2 * Math.PI * 220 * s.t) * 0.2\n);\n\
                        \n\
                        flux('wrong', (mem, idx) => ({\n  update: (sr) => {\n    \
                        const x = mem[idx] + frq;\n    return [x];\n  }\n}));\n";

/// Subscribes, sends the throwing paragraph, waits for its diagnostic, fixes line 7, sends
/// again and waits for the diagnostic to go; writes what it saw to `$FLUX_OUT`.
const NVIM_FAULTS: &str = r#"
local flux = require('flux')
flux.setup({ addr = os.getenv('FLUX_ADDR') })
vim.cmd('edit ' .. vim.fn.fnameescape(os.getenv('FLUX_BUFFER')))
flux.subscribe()
local subscribed = vim.wait(5000, function() return flux.subscribed end, 10)
local function faults() return vim.diagnostic.get(0, { namespace = flux.fault_ns }) end
vim.api.nvim_win_set_cursor(0, { 6, 0 })
local sent = flux.send_paragraph()
local shown = vim.wait(5000, function() return #faults() > 0 end, 10)
local d = faults()[1]
vim.api.nvim_buf_set_lines(0, 6, 7, false, { '    const x = mem[idx] * 0;' })
local fixed = flux.send_paragraph()
local cleared = vim.wait(5000, function() return #faults() == 0 end, 10)
vim.cmd('FluxPanic')
local out = {
  subscribed = subscribed,
  sent = sent and sent.ok,
  shown = shown,
  line = d and d.lnum + 1,
  col = d and d.col + 1,
  message = d and d.message,
  fixed = fixed and fixed.ok,
  cleared = cleared,
}
vim.fn.writefile({ vim.json.encode(out) }, os.getenv('FLUX_OUT'))
vim.cmd('qall!')
"#;

#[test]
fn the_neovim_plugin_shows_a_fault_while_playing_at_its_line_and_clears_it_when_fixed() {
    assert!(
        !nvim_missing(),
        "nvim is not installed: this test needs Neovim 0.7 or later (scripts/setup.sh \
         --deps-only installs the Debian package neovim)"
    );
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    // Faults while playing are what this is about: no pre-flight to refuse the code first.
    let mut player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--seconds"),
        OsStr::new("20"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--preflight"),
        OsStr::new("0"),
    ]);
    let buffer = dir.path().join("live.js");
    std::fs::write(&buffer, THROWING).unwrap();
    let script = dir.path().join("drive.lua");
    std::fs::write(&script, NVIM_FAULTS).unwrap();
    let out_file = dir.path().join("out.json");
    let out = Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n"])
        .arg("--cmd")
        .arg(format!(
            "set runtimepath^={}",
            editors().join("nvim").display()
        ))
        .arg("--cmd")
        .arg("runtime plugin/flux.lua")
        .arg("-c")
        .arg(format!("luafile {}", script.display()))
        .env("FLUX_ADDR", player.addr())
        .env("FLUX_BUFFER", &buffer)
        .env("FLUX_OUT", &out_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = std::fs::read_to_string(&out_file).unwrap_or_else(|_| {
        panic!(
            "nvim wrote no result (exit {:?}):\n{}",
            out.status.code(),
            stderr(&out)
        )
    });
    let result: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(result["subscribed"], true, "{result}\n{}", stderr(&out));
    assert_eq!(result["sent"], true, "{result}");
    assert_eq!(result["shown"], true, "{result}");
    assert_eq!(
        (&result["line"], &result["col"]),
        (&7.into(), &26.into()),
        "{result}"
    );
    assert_eq!(
        result["message"],
        "ReferenceError: frq is not defined (signal 'wrong' silenced)"
    );
    assert_eq!(result["fixed"], true, "{result}");
    assert_eq!(result["cleared"], true, "{result}");
    player.wait_for("live.js:7:26: ReferenceError", Duration::from_secs(5));
    player.wait_for("control: panic", Duration::from_secs(5));
}

/// Sends the throwing paragraph from Vim, waits for its fault in the quickfix list, fixes
/// line 7, sends again and waits for the list to empty.
const VIM_FAULTS: &str = r#"
let g:flux_cmd = $FLUX_BIN
let g:flux_addr = $FLUX_ADDR
execute 'edit ' . fnameescape($FLUX_BUFFER)
call cursor(6, 1)
FluxSend
let n = 0
while empty(getqflist()) && n < 100
  sleep 50m
  let n += 1
endwhile
let qf = getqflist()
let first = empty(qf) ? {} : {'lnum': qf[0].lnum, 'col': qf[0].col, 'text': qf[0].text}
call setline(7, '    const x = mem[idx] * 0;')
call cursor(6, 1)
FluxSend
let n = 0
while !empty(getqflist()) && n < 100
  sleep 50m
  let n += 1
endwhile
call writefile([json_encode({'first': first, 'left': len(getqflist())})], $FLUX_OUT)
qall!
"#;

#[test]
fn the_vim_plugin_puts_a_fault_while_playing_in_the_quickfix_list_until_fixed() {
    if Command::new("vim").arg("--version").output().is_err() {
        eprintln!("skipped: vim is not installed (this test needs Vim 8.1 or later with +channel)");
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signals.js");
    std::fs::write(&file, sine_file(300.0, "sin")).unwrap();
    // Faults while playing are what this is about: no pre-flight to refuse the code first.
    let mut player = Player::start(&[
        file.as_os_str(),
        OsStr::new("--null"),
        OsStr::new("--seconds"),
        OsStr::new("20"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--preflight"),
        OsStr::new("0"),
    ]);
    let buffer = dir.path().join("live.js");
    std::fs::write(&buffer, THROWING).unwrap();
    let script = dir.path().join("drive.vim");
    std::fs::write(&script, VIM_FAULTS).unwrap();
    let out_file = dir.path().join("out.json");
    let out = Command::new("vim")
        .args(["-N", "-u", "NONE", "-i", "NONE", "-n", "-es"])
        .arg("--cmd")
        .arg(format!(
            "set runtimepath^={}",
            editors().join("vim").display()
        ))
        .arg("--cmd")
        .arg("runtime plugin/flux.vim")
        .arg("-S")
        .arg(&script)
        .env("FLUX_BIN", env!("CARGO_BIN_EXE_flux"))
        .env("FLUX_ADDR", player.addr())
        .env("FLUX_BUFFER", &buffer)
        .env("FLUX_OUT", &out_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = std::fs::read_to_string(&out_file).unwrap_or_else(|_| {
        panic!(
            "vim wrote no result (exit {:?}):\n{}",
            out.status.code(),
            stderr(&out)
        )
    });
    let result: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(result["first"]["lnum"], 7, "{result}");
    assert_eq!(result["first"]["col"], 26, "{result}");
    assert_eq!(
        result["first"]["text"],
        "ReferenceError: frq is not defined (signal 'wrong' silenced)"
    );
    assert_eq!(result["left"], 0, "{result}");
    player.wait_for("live.js:7:26: ReferenceError", Duration::from_secs(5));
}
