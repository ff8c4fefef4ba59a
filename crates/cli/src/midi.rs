//! MIDI for `flux play --midi [PORT|jack[:PORT]]` and `--midi-clock in|out`, and the port
//! list of `flux midi`: through midir (the ALSA sequencer on Linux, CoreMIDI on macOS) or
//! through JACK MIDI ([`jack`]).
//!
//! Each message is stamped, as it arrives, with the engine frame the output plays now plus
//! the ring's depth: it takes effect that far ahead, so every event has the same latency
//! (the ring's) and lands on its own frame within a block, not at the block's start. JACK
//! gives each event's frame in its cycle, which the stamp keeps.

pub mod clock;
pub mod jack;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use flux_engine::midi::clock_out::{ClockMessage, ClockTicks};
use flux_engine::rtrb::{Consumer, Producer, RingBuffer};
use flux_engine::{Controller, Counters, MidiEvent, MidiSender};
use midir::{Ignore, MidiInput, MidiInputConnection, MidiOutput};

use clock::{Act, Follower};

/// `--midi-clock`: follow an external MIDI clock, or send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockMode {
    /// Follow the tempo, start, continue and stop of the MIDI clock coming in.
    In,
    /// Send MIDI clock (24 ticks per beat), start and stop, at the transport's beat.
    Out,
}

/// The client name Flux shows other MIDI programs.
const CLIENT: &str = "flux";

/// The names of the MIDI input ports there are.
///
/// # Errors
///
/// When the system's MIDI (the ALSA sequencer) cannot be opened.
pub fn ports() -> anyhow::Result<Vec<String>> {
    let input = open()?;
    Ok(input
        .ports()
        .iter()
        .filter_map(|p| input.port_name(p).ok())
        .collect())
}

fn open() -> anyhow::Result<MidiInput> {
    // alsa-lib would print its own lines first (no sequencer device, for one).
    let _quiet = flux_audio::Quiet::new();
    MidiInput::new(CLIENT).map_err(|e| {
        anyhow!("MIDI in is not available here: {e} (on Linux, the ALSA sequencer: /dev/snd/seq)")
    })
}

/// A MIDI input connected to the engine; disconnects when dropped.
pub struct Input {
    _connection: MidiInputConnection<()>,
    /// The port's name.
    pub name: String,
}

/// Connects the first input port whose name contains `port` (any port when `None`) to the
/// engine through `sender`, stamping events `latency` frames after the output's frame.
///
/// # Errors
///
/// No MIDI here, no port (naming the ports there are), or a port that cannot be opened.
fn connect(
    port: Option<&str>,
    mut sender: MidiSender,
    counters: Arc<Counters>,
    latency: u64,
    mut clock_in: Option<Producer<ClockMessage>>,
) -> anyhow::Result<Input> {
    let mut input = open()?;
    if clock_in.is_some() {
        input.ignore(Ignore::SysexAndActiveSense);
    }
    let ports = input.ports();
    let names: Vec<String> = ports
        .iter()
        .map(|p| input.port_name(p).unwrap_or_default())
        .collect();
    let found = ports
        .iter()
        .zip(&names)
        .find(|(_, name)| port.is_none_or(|want| name.contains(want)));
    let Some((chosen, name)) = found else {
        if names.is_empty() {
            bail!("no MIDI input ports (see `flux midi`)");
        }
        bail!(
            "no MIDI input port matches {:?}; there are: {}",
            port.unwrap_or_default(),
            names.join(", ")
        );
    };
    let name = name.clone();
    let connection = input
        .connect(
            chosen,
            "flux-in",
            move |_, message, _| {
                let frame = counters.output_frame() + latency;
                match message {
                    [byte @ (0xf8 | 0xfa | 0xfb | 0xfc)] => {
                        if let Some(tx) = &mut clock_in {
                            let _ = tx.push(ClockMessage { frame, byte: *byte });
                        }
                    }
                    [status, ..] if *status < 0xf0 => {
                        let mut bytes = [0u8; 3];
                        for (b, m) in bytes.iter_mut().zip(message) {
                            *b = *m;
                        }
                        sender.send(MidiEvent { frame, bytes });
                    }
                    _ => {}
                }
            },
            (),
        )
        .map_err(|e| anyhow!("cannot open MIDI port {name:?}: {e}"))?;
    Ok(Input {
        _connection: connection,
        name,
    })
}

/// Sends clock out's messages to the first MIDI output port whose name contains `port`
/// (any when `None`), each when the output plays its frame, from a thread that looks every
/// millisecond.
fn clock_to_port(
    port: Option<&str>,
    mut ticks: ClockTicks,
    counters: Arc<Counters>,
) -> anyhow::Result<String> {
    let _quiet = flux_audio::Quiet::new();
    let output = MidiOutput::new(CLIENT).map_err(|e| {
        anyhow!("MIDI out is not available here: {e} (on Linux, the ALSA sequencer: /dev/snd/seq)")
    })?;
    let ports = output.ports();
    let names: Vec<String> = ports
        .iter()
        .map(|p| output.port_name(p).unwrap_or_default())
        .collect();
    let Some((chosen, name)) = ports
        .iter()
        .zip(&names)
        .find(|(_, name)| port.is_none_or(|want| name.contains(want)))
    else {
        bail!(
            "no MIDI output port matches {:?} for --midi-clock out; there are: {}",
            port.unwrap_or_default(),
            names.join(", ")
        );
    };
    let name = name.clone();
    let mut connection = output
        .connect(chosen, "flux-clock")
        .map_err(|e| anyhow!("cannot open MIDI port {name:?}: {e}"))?;
    std::thread::Builder::new()
        .name("flux-midi-clock".into())
        .spawn(move || loop {
            while let Some(m) = ticks.peek() {
                if m.frame > counters.output_frame() {
                    break;
                }
                let _ = ticks.pop();
                if connection.send(&[m.byte]).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        })
        .map_err(|e| anyhow!("cannot start the MIDI clock thread: {e}"))?;
    Ok(name)
}

/// MIDI in (and clock in or out) for `flux play`, open while it lives.
pub struct Midi {
    _alsa: Option<Input>,
    _jack: Option<jack::JackMidi>,
    /// What it is connected to, for the line `flux play` prints.
    pub description: String,
    clock_in: Option<(Consumer<ClockMessage>, Follower)>,
    glide: u32,
    clock_out: bool,
}

/// Messages clock in's queue holds between two ticks of the play loop.
const CLOCK_IN_CAPACITY: usize = 4096;

impl Midi {
    /// Opens `--midi SPEC` (`""`: the first port; `jack`, `jack:PORT`: JACK MIDI; else
    /// the first port whose name contains SPEC), with `--midi-clock`, taking MIDI's queues
    /// from `controller`.
    ///
    /// # Errors
    ///
    /// No MIDI system, no such port, a port that cannot be opened.
    pub fn open(
        spec: &str,
        clock: Option<ClockMode>,
        controller: &mut Controller,
        latency: u64,
        sample_rate: u32,
    ) -> anyhow::Result<Self> {
        let sender = controller
            .take_midi()
            .ok_or_else(|| anyhow!("MIDI in is taken already"))?;
        let counters = controller.counters().clone();
        let (clock_tx, clock_in) = match clock {
            Some(ClockMode::In) => {
                let (tx, rx) = RingBuffer::new(CLOCK_IN_CAPACITY);
                (Some(tx), Some((rx, Follower::new(sample_rate))))
            }
            _ => (None, None),
        };
        let ticks = match clock {
            Some(ClockMode::Out) => controller.take_midi_clock(),
            _ => None,
        };
        let glide = (clock::GLIDE * f64::from(sample_rate)) as u32;
        let jack_port = match spec {
            "jack" => Some(None),
            _ => spec.strip_prefix("jack:").map(|p| Some(p.to_owned())),
        };
        let (alsa, jack, mut description) = match jack_port {
            Some(port) => {
                let j = jack::connect(jack::Setup {
                    port,
                    sender,
                    counters,
                    latency,
                    sample_rate,
                    clock_in: clock_tx,
                    clock_out: ticks,
                })?;
                let mut d = j.name.clone();
                if let Some(out) = &j.out {
                    d.push_str(&format!("; clock out on {out}"));
                }
                (None, Some(j), d)
            }
            None => {
                let port = (!spec.is_empty()).then_some(spec);
                let input = connect(port, sender, counters.clone(), latency, clock_tx)?;
                let mut d = input.name.clone();
                if let Some(ticks) = ticks {
                    let out = clock_to_port(port, ticks, counters)?;
                    d.push_str(&format!("; clock out to {out}"));
                }
                (Some(input), None, d)
            }
        };
        if clock == Some(ClockMode::In) {
            description.push_str("; following its MIDI clock");
        }
        Ok(Self {
            _alsa: alsa,
            _jack: jack,
            description,
            clock_in,
            glide,
            clock_out: clock == Some(ClockMode::Out),
        })
    }

    /// Clock out: stops the transport so that a MIDI stop goes out, and waits for it to
    /// leave (50 ms). Call it when the session ends, while the output still plays.
    pub fn finish(&mut self, controller: &mut Controller) {
        if self.clock_out {
            controller.set_transport(false);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when it follows a MIDI clock (`--midi-clock in`).
    pub fn follows_clock(&self) -> bool {
        self.clock_in.is_some()
    }

    /// Clock in: hands what came in since the last call to the transport. Call it on each
    /// tick of the play loop.
    pub fn follow(&mut self, controller: &mut Controller) {
        let Some((rx, follower)) = &mut self.clock_in else {
            return;
        };
        while let Ok(m) = rx.pop() {
            match follower.feed(m.frame, m.byte) {
                Some(Act::Tempo(bpm)) => controller.set_tempo(bpm, self.glide),
                // Beat 0 on the frame the start was stamped with, however late the loop.
                Some(Act::Start) => controller.start_at(m.frame),
                Some(Act::Continue) => controller.set_transport(true),
                Some(Act::Stop) => controller.set_transport(false),
                None => {}
            }
        }
    }
}

/// `flux midi`: prints the MIDI input ports, and the JACK MIDI ports when a JACK server
/// runs (as `jack:NAME`, for `flux play --midi jack:NAME`).
pub fn list() -> anyhow::Result<std::process::ExitCode> {
    let alsa = ports();
    let jack = jack::ports();
    let alsa = match (alsa, &jack) {
        (Ok(p), _) => p,
        (Err(e), None) => return Err(e),
        (Err(_), Some(_)) => Vec::new(),
    };
    let jack = jack.unwrap_or_default();
    if alsa.is_empty() && jack.is_empty() {
        println!("no MIDI input ports");
    }
    for p in alsa {
        println!("{}", crate::text::escape(&p));
    }
    for p in jack {
        println!("jack:{}", crate::text::escape(&p));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
