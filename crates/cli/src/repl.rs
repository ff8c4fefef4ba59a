//! `flux repl`: type code into a playing `flux play`, with line editing and history.
//!
//! An entry is sent when its brackets balance at the end of a line (so `play('a', s =>
//! Math.sin(...))` goes at once and a `flux('a', (mem, idx) => {` waits for its `});`), or
//! on an empty line, whatever its state. Lines that start with `:` are commands: `:list`,
//! `:status`, `:levels`, `:master MODE [CEILING]`, `:mute ID [FADE]`, `:unmute`, `:solo`
//! (alone: un-solo), `:unsolo [FADE]`, `:stop`, `:clear [FADE]`, `:gain X`,
//! `:tempo BPM [GLIDE]`, `:quantize none|beat|bar|N`, `:panic`, `:start`, `:help`, `:quit`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use crate::control::client::Client;
use crate::control::protocol::{Reply, Request};
use crate::control::DEFAULT_ADDR;
use crate::send::print_reply;

/// Arguments of `flux repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// The address `flux play` listens on (HOST:PORT or PORT).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    to: String,
    /// The secret, when `flux play` was started with `--token`.
    #[arg(long, value_name = "SECRET")]
    token: Option<String>,
}

const HELP: &str = "\
type JavaScript: an entry is sent when its brackets balance, or on an empty line
  play('hum', s => Math.sin(2 * Math.PI * 110 * s.t) * 0.3)
commands:
  :list                 signals, tier, gain
  :status               DSP load, underruns, reloads
  :levels               peak, RMS (dBFS) of the master and each signal, loudness (LUFS)
  :master MODE [DB]     master stage: tanh, limit, clip or none; ceiling in dBFS
  :mute ID [FADE]       also :unmute, :solo, :stop (FADE in seconds)
  :solo                 alone, or :unsolo [FADE]: every signal a solo muted comes back
  :clear [FADE]         stop every signal
  :gain X               master gain
  :tempo BPM [GLIDE]    tempo of the transport (GLIDE in seconds)
  :quantize Q           later entries take over at: none, beat, bar or N beats
  :panic                fade everything out within 50 ms and stay stopped
  :start                play again after :panic, fading in
  :quit                 or Ctrl-D";

/// Runs `flux repl` until `:quit` or end of input.
pub fn run(args: ReplArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.to, args.token.clone())?;
    let mut editor = DefaultEditor::new()?;
    let history = history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "flux repl: sending to {} (:help for help, Ctrl-D to quit)",
        args.to
    );
    let mut entry = String::new();
    let mut entries = 0u32;
    // `:quantize`: when the entries sent from now on take over (None: as `flux play` says).
    let mut quantize: Option<String> = None;
    loop {
        let prompt = if entry.is_empty() { "flux> " } else { "  ... " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                entry.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if entry.is_empty() && line.trim_start().starts_with(':') {
            let _ = editor.add_history_entry(line.as_str());
            if matches!(line.trim(), ":help" | ":h") {
                println!("{HELP}");
                continue;
            }
            if let Some(q) = line.trim().strip_prefix(":quantize") {
                let q = q.trim();
                match flux_engine::Quantize::parse(q) {
                    Ok(_) => {
                        println!("entries take over at: {q}");
                        quantize = Some(q.to_owned());
                    }
                    Err(e) => eprintln!("{}", crate::text::escape(&format!("error: {e}"))),
                }
                continue;
            }
            match command(line.trim()) {
                Ok(None) => break,
                Ok(Some(request)) => show(&client, &request),
                Err(e) => eprintln!("{}", crate::text::escape(&format!("error: {e}"))),
            }
            continue;
        }
        if line.trim().is_empty() && entry.trim().is_empty() {
            entry.clear();
            continue;
        }
        if !line.trim().is_empty() {
            entry.push_str(&line);
            entry.push('\n');
            if !balanced(&entry) {
                continue;
            }
        }
        let _ = editor.add_history_entry(entry.trim_end());
        entries += 1;
        let request = Request::Eval {
            code: std::mem::take(&mut entry),
            name: Some(format!("repl-{entries}")),
            line: None,
            quantize: quantize.clone(),
        };
        show(&client, &request);
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends `request` and prints what came back: for an entry that ends with a value and
/// makes no signal (`1 + 1`, `list()`), the value alone.
fn show(client: &Client, request: &Request) {
    match client.request(request) {
        Ok(reply) => {
            let made_none = |m: &String| m.contains(": ok, 0 signals, ");
            if !(reply.value.is_some() && reply.message.as_ref().is_some_and(made_none)) {
                print_reply(&reply);
            }
            if let Some(value) = &reply.value {
                println!("{}", crate::text::escape(value));
            }
            if reply.ok {
                print_details(&reply);
            }
        }
        Err(e) => eprintln!("{}", crate::text::escape(&format!("error: {e:#}"))),
    }
}

/// The signal table of `:list` and the counters of `:status`.
fn print_details(reply: &Reply) {
    if let Some(status) = &reply.status {
        println!(
            "{} signals, playing for {:.1} s, {} bpm at beat {:.2} (bar {:.2}), {} underruns, DSP load {:.1}% (mean {:.1}%, max {:.1}%), {} reloads ({} failed)",
            status.signals,
            status.seconds,
            status.bpm,
            status.beat,
            status.bar,
            status.underruns,
            status.dsp_load_last * 100.0,
            status.dsp_load_mean * 100.0,
            status.dsp_load_max * 100.0,
            status.reloads,
            status.reload_errors
        );
    } else if let Some(levels) = &reply.levels {
        println!("{}", levels.line().replace(" | ", "\n"));
    } else if reply.message.is_none() {
        for s in reply.signals.iter().flatten() {
            println!(
                "  {:<16} {:<7} gain {:.2}{}",
                crate::text::escape(&s.id),
                s.tier,
                s.gain,
                if s.muted { " (muted)" } else { "" }
            );
        }
    }
}

/// The request a `:command` line stands for; `None` for `:quit`.
fn command(line: &str) -> Result<Option<Request>, String> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or(":");
    let args: Vec<&str> = words.collect();
    let fade = |i: usize| -> Result<Option<f64>, String> {
        args.get(i)
            .map(|f| {
                f.parse::<f64>()
                    .map_err(|_| format!("the fade must be a number of seconds, not {f:?}"))
            })
            .transpose()
    };
    let id = || -> Result<String, String> {
        args.first()
            .map(|s| (*s).to_owned())
            .ok_or_else(|| format!("{name} needs a signal id"))
    };
    Ok(Some(match name {
        ":quit" | ":q" | ":exit" => return Ok(None),
        ":list" | ":ls" => Request::List,
        ":status" => Request::Status,
        ":levels" => Request::Levels,
        ":master" => Request::Master {
            mode: args.first().map_or(String::new(), |m| (*m).to_owned()),
            ceiling: match args.get(1) {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| format!(":master needs a ceiling in dBFS, not {c:?}"))?,
                ),
                None => None,
            },
            dc_block: None,
        },
        ":mute" => Request::Mute {
            signal: id()?,
            fade: fade(1)?,
        },
        ":unmute" => Request::Unmute {
            signal: id()?,
            fade: fade(1)?,
        },
        // `:solo` alone (or `:unsolo [FADE]`): every soloed-out signal comes back.
        ":solo" if args.is_empty() => Request::Unsolo { fade: None },
        ":unsolo" => Request::Unsolo { fade: fade(0)? },
        ":solo" => Request::Solo {
            signal: id()?,
            fade: fade(1)?,
        },
        ":stop" => Request::Stop {
            signal: id()?,
            fade: fade(1)?,
        },
        ":clear" => Request::Clear { fade: fade(0)? },
        ":panic" => Request::Panic,
        ":start" => Request::Start,
        ":gain" => Request::Gain {
            value: args.first().and_then(|x| x.parse().ok()).ok_or_else(|| {
                format!(
                    ":gain needs a number, not {:?}",
                    args.first().unwrap_or(&"")
                )
            })?,
        },
        ":tempo" => {
            let number = |i: usize, what: &str| -> Result<Option<f64>, String> {
                args.get(i)
                    .map(|x| {
                        x.parse::<f64>()
                            .map_err(|_| format!(":tempo needs {what}, not {x:?}"))
                    })
                    .transpose()
            };
            Request::Tempo {
                bpm: number(0, "a number of beats per minute")?
                    .ok_or_else(|| ":tempo needs a number of beats per minute".to_owned())?,
                glide: number(1, "a glide in seconds")?,
            }
        }
        other => return Err(format!("unknown command {other}; :help lists them")),
    }))
}

/// Whether every bracket opened in `code` is closed, skipping strings and comments.
pub fn balanced(code: &str) -> bool {
    let mut depth = 0i64;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '\'' | '"' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for d in chars.by_ref() {
                    if last == '*' && d == '/' {
                        break;
                    }
                    last = d;
                }
            }
            _ => {}
        }
    }
    depth <= 0
}

/// `$HOME/.flux_history`, when there is a home.
fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".flux_history"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sent_when_their_brackets_balance() {
        assert!(balanced("play('a', s => Math.sin(s.t))\n"));
        assert!(!balanced("flux('a', (mem, idx) => {\n"));
        assert!(balanced(
            "flux('a', (mem, idx) => {\n  return { update: () => 0 };\n});\n"
        ));
        assert!(balanced("log('(' + \"{\" + `[`) // (\n"));
        assert!(!balanced("f(/* ) */\n"));
    }

    #[test]
    fn tempo_parses() {
        assert_eq!(
            command(":tempo 140 2"),
            Ok(Some(Request::Tempo {
                bpm: 140.0,
                glide: Some(2.0)
            }))
        );
        assert!(command(":tempo").unwrap_err().contains("beats per minute"));
        assert!(command(":tempo 90 slow").unwrap_err().contains("glide"));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            command(":mute bass 0.5"),
            Ok(Some(Request::Mute {
                signal: "bass".into(),
                fade: Some(0.5)
            }))
        );
        assert_eq!(command(":quit"), Ok(None));
        assert_eq!(command(":solo"), Ok(Some(Request::Unsolo { fade: None })));
        assert_eq!(
            command(":unsolo 2"),
            Ok(Some(Request::Unsolo { fade: Some(2.0) }))
        );
        assert!(matches!(
            command(":solo bass"),
            Ok(Some(Request::Solo { .. }))
        ));
        assert!(command(":mute").unwrap_err().contains("signal id"));
        assert!(command(":dance").unwrap_err().contains(":dance"));
    }
}
