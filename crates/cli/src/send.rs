//! `flux send`: evaluate a file, or standard input, in a playing `flux play`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::control::client::Client;
use crate::control::protocol::{Reply, Request};
use crate::control::DEFAULT_ADDR;

/// Arguments of `flux send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The code to send: a file, or `-` for standard input.
    file: PathBuf,
    /// The address `flux play` listens on (HOST:PORT or PORT).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    to: String,
    /// The secret, when `flux play` was started with `--token`.
    #[arg(long, value_name = "SECRET")]
    token: Option<String>,
    /// The file name diagnostics carry [default: FILE, or `stdin`].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The line of the file the code starts at, when it is part of a file (an editor's
    /// paragraph): diagnostics are shifted to match.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    line: u32,
    /// Print the reply as one line of JSON instead.
    #[arg(long)]
    json: bool,
    /// When the code takes over: none, beat, bar or N beats [default: as `flux play
    /// --quantize` says].
    #[arg(long, value_name = "none|beat|bar|N", value_parser = check_quantize)]
    quantize: Option<String>,
}

/// Checks `--quantize` here, so a bad value is refused before anything is sent.
fn check_quantize(text: &str) -> Result<String, String> {
    flux_engine::Quantize::parse(text).map(|_| text.to_owned())
}

/// Runs `flux send`: prints the engine's line (or the diagnostics) and exits 0 when the code
/// loaded, 1 when it did not.
pub fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let stdin = args.file.as_os_str() == "-";
    let code = if stdin {
        let mut code = String::new();
        std::io::stdin()
            .read_to_string(&mut code)
            .context("cannot read standard input")?;
        code
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let name = args.name.clone().unwrap_or_else(|| {
        if stdin {
            "stdin".into()
        } else {
            args.file.display().to_string()
        }
    });
    let client = Client::new(&args.to, args.token.clone())?;
    let reply = client.request(&Request::Eval {
        code,
        name: Some(name),
        line: Some(args.line),
        quantize: args.quantize.clone(),
    })?;
    if args.json {
        print!("{}", reply.to_line());
    } else {
        print_reply(&reply);
    }
    Ok(if reply.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints a reply for people: the engine's line on stdout, or the diagnostics (one
/// `FILE:LINE:COL: message` each) or the error on stderr.
pub fn print_reply(reply: &Reply) {
    if reply.ok {
        if let Some(message) = &reply.message {
            println!("{}", crate::text::escape(message));
        }
    } else if reply.diagnostics.is_empty() {
        eprintln!(
            "error: {}",
            crate::text::escape(reply.error.as_deref().unwrap_or("the request failed"))
        );
    } else {
        for d in &reply.diagnostics {
            let line = format!("{}:{}:{}: {}", d.file, d.line, d.col, d.message);
            eprintln!("{}", crate::text::escape(&line));
        }
    }
}
