//! `flux check`: load a file, list its signals, print its diagnostics.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use flux_engine::{
    Fault, StateAllocator, StateMemory, DEFAULT_BLOCK_SLOTS, DEFAULT_GUARD_SLOTS, DEFAULT_SLOTS,
};
use flux_js::{Diagnostic, LoadOptions, Loader, Location};
use serde::Serialize;

/// Arguments of `flux check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The signals file.
    #[arg(default_value_os_t = crate::default_file())]
    file: PathBuf,
    /// Print JSON for editors instead of text.
    #[arg(long)]
    json: bool,
    /// Let imports reach files outside the signals file's folder.
    #[arg(long)]
    allow_imports_anywhere: bool,
    /// Exit 1 when a signal fails its trial too (a warning), not only when the file fails
    /// to load.
    #[arg(long)]
    strict: bool,
}

/// Frames of each signal's trial: 100 ms at the 48 kHz check loads at.
const TRIAL_FRAMES: usize = 4800;

#[derive(Serialize)]
struct Report {
    signals: Vec<SignalReport>,
    diagnostics: Vec<DiagnosticReport>,
}

#[derive(Serialize)]
struct SignalReport {
    id: String,
    /// Channels `update` returned on a trial call; `null` when the call failed.
    channels: Option<usize>,
    tier: &'static str,
    /// Why the signal is not native: the construct and its `line:col`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    line: Option<u32>,
    col: Option<u32>,
    #[serde(skip)]
    location: Option<Location>,
}

#[derive(Serialize)]
struct DiagnosticReport {
    file: String,
    line: u32,
    col: u32,
    message: String,
    severity: &'static str,
}

impl DiagnosticReport {
    fn new(location: &Location, message: String, severity: &'static str) -> Self {
        Self {
            file: location.file.clone(),
            line: location.line,
            col: location.col,
            message,
            severity,
        }
    }
}

/// Runs `flux check`: exit 0 when the file loads, 1 when it does not (or, with `--strict`,
/// when a signal fails its trial).
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // A private state memory: the trial of each update changes nothing that plays.
    let state = Arc::new(StateMemory::new(DEFAULT_SLOTS));
    let mut loader = Loader::new(
        state,
        StateAllocator::new(DEFAULT_SLOTS, DEFAULT_BLOCK_SLOTS).with_guard(DEFAULT_GUARD_SLOTS),
        LoadOptions {
            imports_anywhere: args.allow_imports_anywhere,
            ..LoadOptions::default()
        },
    );
    let mut report = Report {
        signals: Vec::new(),
        diagnostics: Vec::new(),
    };
    let loaded = match loader.load_file(&args.file) {
        Ok(loaded) => Some(loaded),
        Err(Diagnostic { location, message }) => {
            report
                .diagnostics
                .push(DiagnosticReport::new(&location, message, "error"));
            None
        }
    };
    let mut logs = Vec::new();
    if let Some(loaded) = &loaded {
        // What the first frame logs is shown; the rest of the trial's `console.log` is not.
        let first = loaded.trial(1);
        logs = loader.drain_logs().0;
        let rest = loaded.trial(TRIAL_FRAMES - 1);
        let _ = loader.drain_logs();
        for ((info, first), rest) in loaded.signals.iter().zip(first).zip(rest) {
            let channels = first.channels;
            if let Some(fault) = first.fault.or_else(|| rest.fault.map(one_frame_later)) {
                let (location, message) = locate(&fault, info.location.as_ref());
                let message = format!("update of '{}' fails: {message}", info.id);
                let l = location.unwrap_or_else(|| Location {
                    file: args.file.display().to_string(),
                    line: 1,
                    col: 1,
                });
                report
                    .diagnostics
                    .push(DiagnosticReport::new(&l, message, "warning"));
            }
            report.signals.push(SignalReport {
                id: info.id.clone(),
                channels,
                tier: info.tier.name(),
                reason: info.reason.clone(),
                line: info.location.as_ref().map(|l| l.line),
                col: info.location.as_ref().map(|l| l.col),
                location: info.location.clone(),
            });
        }
    }
    if loaded.is_none() {
        logs = loader.drain_logs().0;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&args.file, &report, &logs);
    }
    let warned = report.diagnostics.iter().any(|d| d.severity == "warning");
    Ok(if loaded.is_some() && !(args.strict && warned) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A fault of the trial's second part, its frame counted from the first part's start.
fn one_frame_later(fault: Fault) -> Fault {
    match fault {
        Fault::NonFinite {
            value,
            channel,
            frame,
        } => Fault::NonFinite {
            value,
            channel,
            frame: frame + 1,
        },
        Fault::TooLoud {
            value,
            channel,
            frame,
        } => Fault::TooLoud {
            value,
            channel,
            frame: frame + 1,
        },
        other => other,
    }
}

/// Splits a fault into its location (its own, or the signal's) and the rest of the message.
fn locate(fault: &Fault, signal: Option<&Location>) -> (Option<Location>, String) {
    if let Fault::Error(message) = fault {
        // `file:line:col: rest`: the location is everything before the third colon.
        let mut parts = message.splitn(4, ':');
        if let (Some(f), Some(l), Some(c), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let Some(location) = Location::parse(&format!("{f}:{l}:{c}")) {
                return (Some(location), rest.trim_start().to_owned());
            }
        }
    }
    (signal.cloned(), fault.to_string())
}

fn print_text(file: &std::path::Path, report: &Report, logs: &[String]) {
    use crate::text::escape;
    for line in logs {
        println!("{}", escape(line));
    }
    for d in &report.diagnostics {
        let line = format!(
            "{}:{}:{}: {}: {}",
            d.file, d.line, d.col, d.severity, d.message
        );
        println!("{}", escape(&line));
    }
    if report.diagnostics.iter().any(|d| d.severity == "error") {
        return;
    }
    let n = report.signals.len();
    let head = format!(
        "{}: {n} signal{}",
        file.display(),
        if n == 1 { "" } else { "s" }
    );
    println!("{}", escape(&head));
    // Ids are padded to the longest, up to a point: a long id just pushes its line on.
    let width = report
        .signals
        .iter()
        .map(|s| escape(&s.id).chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_ID_COLUMN);
    for s in &report.signals {
        let channels = match s.channels {
            Some(1) => "1 channel".to_owned(),
            Some(n) => format!("{n} channels"),
            None => "fails".to_owned(),
        };
        let place = s.location.as_ref().map(ToString::to_string);
        let place = place.unwrap_or_default();
        let id = pad(&escape(&s.id), width);
        println!(
            "{}",
            escape(&format!("  {id}  {:6}  {channels:10}  {place}", s.tier))
        );
        if let Some(reason) = &s.reason {
            let line = format!("  {}  not native: {reason}", pad("", width));
            println!("{}", escape(&line));
        }
    }
}

/// The widest the id column of the text listing gets.
const MAX_ID_COLUMN: usize = 40;

/// `text` followed by spaces up to `width` characters (never cut).
fn pad(text: &str, width: usize) -> String {
    let mut out = text.to_owned();
    let n = text.chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

#[cfg(test)]
mod tests {
    use super::pad;

    #[test]
    fn a_64_kib_id_is_padded_without_a_format_width() {
        let id = "x".repeat(64 << 10);
        assert_eq!(pad(&id, 40).len(), 64 << 10);
        assert_eq!(pad("ab", 4), "ab  ");
    }
}
