//! `flux panic`: fade everything out within 50 ms in a playing `flux play`, and keep it
//! stopped until `--start` (or `:start` in the REPL).

use std::process::ExitCode;

use clap::Args;

use crate::control::client::Client;
use crate::control::protocol::Request;
use crate::control::DEFAULT_ADDR;
use crate::send::print_reply;

/// Arguments of `flux panic`.
#[derive(Debug, Args)]
pub struct PanicArgs {
    /// The address `flux play` listens on (HOST:PORT or PORT).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
    to: String,
    /// The secret, when `flux play` was started with `--token`.
    #[arg(long, value_name = "SECRET")]
    token: Option<String>,
    /// Play again instead (after a panic or a stop), fading in.
    #[arg(long)]
    start: bool,
}

/// Runs `flux panic`: exits 0 when the engine took it, 1 when it refused, 2 when nothing
/// listens.
pub fn run(args: PanicArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.to, args.token.clone())?;
    let request = if args.start {
        Request::Start
    } else {
        Request::Panic
    };
    let reply = client.request(&request)?;
    print_reply(&reply);
    Ok(if reply.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
