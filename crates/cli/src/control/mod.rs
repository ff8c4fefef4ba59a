//! Live control of a playing session: the TCP control server, OSC, and the client side.
//!
//! The servers run on their own threads and never touch the [`Session`]: each request
//! becomes a [`Job`] on a bounded queue that the play loop drains once per tick with
//! [`Control::poll`], on the main thread, between its 20 ms waits. The reply goes back over
//! a channel of the job's own. The DSP thread is never involved.
//!
//! The protocol is newline-delimited JSON (`docs/PROTOCOL.md`, [`protocol`]).

pub mod client;
pub mod events;
#[cfg(test)]
mod fuzz;
pub mod osc;
pub mod protocol;
pub mod server;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::Args;
use flux_engine::Counters;
use flux_js::Action;

use crate::net::parse_addr;
use crate::session::{Reload, Session};
use protocol::{Reply, Request, WireDiagnostic, WireSignal, WireStatus};

/// Where `flux play` listens, and where `flux send` and `flux repl` connect, by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7770";

/// Requests waiting for the play loop at most; more are refused as busy.
const QUEUE: usize = 64;

/// Options of the control server and OSC, part of `flux play`.
#[derive(Debug, Clone, Args)]
pub struct ControlArgs {
    /// Serve the control protocol on this address [default: 127.0.0.1:7770]; an address
    /// that is not loopback needs `--token`. Port 0 takes any free port.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub listen: Option<SocketAddr>,
    /// Do not serve the control protocol.
    #[arg(long, conflicts_with = "listen")]
    pub no_listen: bool,
    /// A shared secret every control request must carry (needed to listen on a
    /// non-loopback address).
    #[arg(long, value_name = "SECRET")]
    pub token: Option<String>,
    /// Receive OSC messages on this UDP port of 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT")]
    pub osc: Option<u16>,
}

/// How a job's reply goes back.
pub enum Replier {
    /// To a control connection, waiting on this channel.
    Wire(SyncSender<Reply>),
    /// To the sender of an OSC message: errors only, as `/flux/error s`.
    Osc(SocketAddr),
}

/// A request for the play loop, or what made it unreadable.
pub struct Job {
    /// The request, or why the message could not be read (OSC).
    pub request: Result<Request, String>,
    /// Where the reply goes.
    pub reply: Replier,
}

/// The queue of requests for the play loop; queuing one wakes the loop.
#[derive(Clone)]
pub struct Jobs {
    tx: SyncSender<Job>,
    wake: Option<crate::watch::Waker>,
}

impl Jobs {
    /// A queue sending on `tx`, waking the loop through `wake`.
    pub fn new(tx: SyncSender<Job>, wake: Option<crate::watch::Waker>) -> Self {
        Self { tx, wake }
    }

    /// Queues `job` without waiting, and wakes the loop.
    ///
    /// # Errors
    ///
    /// The queue is full, or the loop has gone.
    pub fn try_send(&self, job: Job) -> Result<(), TrySendError<Job>> {
        self.tx.try_send(job)?;
        if let Some(wake) = &self.wake {
            wake.wake();
        }
        Ok(())
    }
}

/// The control server and OSC receiver of one `flux play`, seen from the play loop.
pub struct Control {
    jobs: Receiver<Job>,
    /// Held for its `Drop`, which stops the thread.
    _server: Option<server::Server>,
    /// Held for its `Drop`, which stops the thread.
    _osc: Option<osc::Osc>,
    /// A copy of the OSC socket, for error replies.
    osc_reply: Option<UdpSocket>,
    started: Instant,
    /// Connections that subscribed to events.
    subscribers: events::Subscribers,
    /// The levels now, set by the play loop each tick, for `levels`.
    levels: crate::levels::LevelsReport,
}

impl Control {
    /// Binds the control server and OSC as `args` say, and starts their threads. Prints the
    /// addresses it listens on.
    ///
    /// The default control address is given up with a note when it is taken (another
    /// `flux play` has it); an address given with `--listen` must be free.
    ///
    /// # Errors
    ///
    /// A non-loopback `--listen` without `--token`, an empty token, an address that cannot
    /// be bound.
    pub fn start(args: &ControlArgs, wake: Option<crate::watch::Waker>) -> anyhow::Result<Control> {
        let (tx, jobs) = sync_channel(QUEUE);
        let tx = Jobs::new(tx, wake);
        let subscribers = events::Subscribers::default();
        if args.token.as_deref() == Some("") {
            bail!("--token must not be empty");
        }
        let server = if args.no_listen {
            None
        } else {
            let addr = match args.listen {
                Some(addr) => addr,
                None => parse_addr(DEFAULT_ADDR).map_err(anyhow::Error::msg)?,
            };
            if !addr.ip().is_loopback() && args.token.is_none() {
                bail!(
                    "--listen {addr} is not a loopback address: anyone who can reach it could run \
                     code; give --token SECRET (every request must then carry it), or listen on \
                     127.0.0.1"
                );
            }
            match TcpListener::bind(addr) {
                Ok(listener) => {
                    let server = server::Server::start(
                        listener,
                        args.token.clone(),
                        tx.clone(),
                        subscribers.clone(),
                    )
                    .context("cannot start the control server")?;
                    eprintln!("control: listening on {}", server.addr());
                    Some(server)
                }
                Err(e) if args.listen.is_none() => {
                    eprintln!(
                        "control: not listening: {addr} is not free ({e}); use --listen ADDR"
                    );
                    None
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot listen on --listen {addr}"))
                }
            }
        };
        let (osc, osc_reply) = match args.osc {
            Some(port) => {
                let socket = UdpSocket::bind(("127.0.0.1", port))
                    .with_context(|| format!("cannot receive OSC on --osc {port}"))?;
                let reply = socket.try_clone().ok();
                let osc = osc::Osc::start(socket, tx).context("cannot start the OSC receiver")?;
                eprintln!("osc: listening on udp {}", osc.addr());
                (Some(osc), reply)
            }
            None => (None, None),
        };
        Ok(Control {
            jobs,
            _server: server,
            _osc: osc,
            osc_reply,
            started: Instant::now(),
            subscribers,
            levels: crate::levels::LevelsReport::default(),
        })
    }

    /// Sets the levels a `levels` request gets.
    pub fn set_levels(&mut self, levels: crate::levels::LevelsReport) {
        self.levels = levels;
    }

    /// Carries out the requests that have arrived, against `session`, and replies to each.
    /// Main thread only; call once per tick of the play loop. Returns the lines to print.
    pub fn poll(&mut self, session: &mut Session, counters: &Counters) -> Vec<String> {
        let mut lines = Vec::new();
        self.publish(session);
        // Only what is queued now, so a flood of OSC cannot hold the loop.
        for _ in 0..QUEUE {
            let Ok(job) = self.jobs.try_recv() else {
                break;
            };
            let origin = match job.reply {
                Replier::Wire(_) => "control",
                Replier::Osc(_) => "osc",
            };
            let mut printed = false;
            let reply = match job.request {
                Ok(request) => {
                    let (reply, line) = self.execute(session, counters, request, origin);
                    if let Some(line) = line {
                        lines.push(line);
                        printed = true;
                    }
                    reply
                }
                Err(error) => Reply::error(error),
            };
            match job.reply {
                Replier::Wire(tx) => {
                    let _ = tx.try_send(reply);
                }
                Replier::Osc(to) => {
                    if let Some(error) = &reply.error {
                        // A failed eval has printed its diagnostic already.
                        if !printed {
                            lines.push(format!("{origin}: {error}"));
                        }
                        if let (Some(socket), Some(packet)) =
                            (&self.osc_reply, osc::error_packet(error))
                        {
                            let _ = socket.send_to(&packet, to);
                        }
                    }
                }
            }
        }
        self.publish(session);
        lines
    }

    /// Pushes what editors have not been told yet to the subscribed connections.
    fn publish(&self, session: &mut Session) {
        for notice in session.take_notices() {
            if self.subscribers.is_empty() {
                continue;
            }
            self.subscribers.publish(&events::event_line(&notice));
        }
    }

    /// Carries out one request; returns the reply and the line to print, if any.
    fn execute(
        &self,
        session: &mut Session,
        counters: &Counters,
        request: Request,
        origin: &str,
    ) -> (Reply, Option<String>) {
        let what = request.describe();
        // Faders send many of these a second: they are not printed.
        let quiet = matches!(request, Request::State { .. } | Request::Gain { .. });
        let action = match request {
            Request::Eval {
                code,
                name,
                line,
                quantize,
            } => {
                let name = name.unwrap_or_else(|| "live.js".into());
                let line = line.unwrap_or(1);
                if !(1..=flux_js::MAX_FIRST_LINE).contains(&line) {
                    let e = format!(
                        "{what}: the line must be from 1 to {}, not {line}",
                        flux_js::MAX_FIRST_LINE
                    );
                    return (Reply::error(e), None);
                }
                let quantize = match quantize.as_deref().map(flux_engine::Quantize::parse) {
                    Some(Err(e)) => return (Reply::error(format!("{what}: {e}")), None),
                    Some(Ok(q)) => Some(q),
                    None => None,
                };
                // The code is placed at its line, so every place it reports is the file's.
                let reload = session.eval_quantized(&name, &code, quantize, (line, 1));
                let line = reload.line(&name);
                let mut reply = Reply {
                    message: Some(line.clone()),
                    signals: Some(signals(session)),
                    ..Reply::default()
                };
                match &reload {
                    Reload::Ok { .. } => {
                        reply.ok = true;
                        reply.value = session.take_value();
                    }
                    Reload::Failed { diagnostic, .. } => {
                        reply.error = Some(diagnostic.to_string());
                        reply.diagnostics = vec![WireDiagnostic::from(diagnostic)];
                    }
                }
                return (reply, Some(line));
            }
            Request::Levels => {
                return (
                    Reply {
                        ok: true,
                        levels: Some(self.levels.clone()),
                        ..Reply::default()
                    },
                    None,
                )
            }
            Request::Master {
                mode,
                ceiling,
                dc_block,
            } => {
                let result = mode.parse().and_then(|mode| {
                    session.set_master_stage(flux_engine::MasterConfig {
                        mode,
                        ceiling_db: ceiling.unwrap_or(flux_engine::master::DEFAULT_CEILING_DB),
                        dc_block: dc_block.unwrap_or(false),
                    })
                });
                return finish(session, &what, result, origin, false);
            }
            Request::List => {
                return (
                    Reply {
                        ok: true,
                        signals: Some(signals(session)),
                        ..Reply::default()
                    },
                    None,
                )
            }
            Request::Status => {
                let stats = counters.snapshot();
                let status = WireStatus {
                    frames: stats.frames_played,
                    seconds: self.started.elapsed().as_secs_f64(),
                    underruns: stats.underruns,
                    dsp_load_last: stats.dsp_load_last,
                    dsp_load_mean: stats.dsp_load_mean,
                    dsp_load_max: stats.dsp_load_max,
                    reloads: session.reloads,
                    reload_errors: session.reload_errors,
                    signals: session.signals().len(),
                    bpm: session.clock().bpm,
                    beat: session.clock().beat,
                    bar: session.clock().bar,
                };
                return (
                    Reply {
                        ok: true,
                        status: Some(status),
                        ..Reply::default()
                    },
                    None,
                );
            }
            Request::State {
                signal,
                index,
                value,
            } => {
                let result = write_state(session, &signal, index, value);
                return finish(session, &what, result, origin, quiet);
            }
            Request::Mute { signal, fade } => fade_ok(fade).map(|f| Action::Mute(signal, f)),
            Request::Unmute { signal, fade } => fade_ok(fade).map(|f| Action::Unmute(signal, f)),
            Request::Solo { signal, fade } => fade_ok(fade).map(|f| Action::Solo(signal, f)),
            Request::Unsolo { fade } => fade_ok(fade).map(Action::Unsolo),
            Request::Stop { signal, fade } => fade_ok(fade).map(|f| Action::Stop(signal, f)),
            Request::Clear { fade } => fade_ok(fade).map(Action::Clear),
            Request::Panic => {
                session.panic();
                return finish(session, &what, Ok(()), origin, false);
            }
            Request::Start => {
                session.start();
                return finish(session, &what, Ok(()), origin, false);
            }
            // The server answers these itself; OSC cannot send them.
            Request::Subscribe { .. } => Err("subscribe is for control connections".into()),
            // Clamped to 0..=4; not a finite number >= 0: refused (`Session::act`).
            Request::Gain { value } => Ok(Action::Gain(value)),
            // Clamped to 20..=999 bpm; not a number above 0: refused (`Session::act`).
            Request::Tempo { bpm, glide } => Ok(Action::Tempo(bpm, glide)),
        };
        let result = action.and_then(|a| session.act(a));
        finish(session, &what, result, origin, quiet)
    }
}

/// The reply and the terminal line (none when `quiet`) of a control that went `result`.
fn finish(
    session: &Session,
    what: &str,
    result: Result<(), String>,
    origin: &str,
    quiet: bool,
) -> (Reply, Option<String>) {
    match result {
        Ok(()) => (
            Reply {
                ok: true,
                message: Some(what.to_owned()),
                signals: Some(signals(session)),
                ..Reply::default()
            },
            (!quiet).then(|| format!("{origin}: {what}")),
        ),
        Err(e) => (Reply::error(format!("{what}: {e}")), None),
    }
}

fn fade_ok(fade: Option<f64>) -> Result<Option<f64>, String> {
    match fade {
        Some(f) if !(f.is_finite() && f >= 0.0) => Err(format!(
            "the fade must be a number of seconds >= 0, not {f}"
        )),
        _ => Ok(fade),
    }
}

/// Writes slot `index` of `signal`'s state block.
fn write_state(session: &Session, signal: &str, index: i64, value: f64) -> Result<(), String> {
    let Some(block) = session.loader().block_of(signal) else {
        let playing: Vec<&str> = session.signals().iter().map(|s| s.id.as_str()).collect();
        return Err(format!(
            "no signal '{signal}' has a state block; playing: {}",
            if playing.is_empty() {
                "none".to_owned()
            } else {
                playing.join(", ")
            }
        ));
    };
    match usize::try_from(index) {
        Ok(i) if i < block.len => {
            session.loader().state().set(block.offset + i, value);
            Ok(())
        }
        _ => Err(format!(
            "slot {index} is outside the state block of '{signal}' (0 to {})",
            block.len.saturating_sub(1)
        )),
    }
}

/// The signals of `session` as the protocol lists them.
fn signals(session: &Session) -> Vec<WireSignal> {
    session
        .signals()
        .iter()
        .map(|s| {
            let gain = session.gain_of(&s.id);
            WireSignal {
                id: s.id.clone(),
                tier: s.tier.name().to_owned(),
                gain,
                muted: gain == 0.0,
                location: s.location.as_ref().map(ToString::to_string),
                block: [s.block.offset, s.block.len],
            }
        })
        .collect()
}
