//! MIDI in for `flux play --midi [PORT]` and the port list of `flux midi`, through midir
//! (the ALSA sequencer on Linux, CoreMIDI on macOS).
//!
//! Each message is stamped, as it arrives, with the engine frame the output plays now plus
//! the ring's depth: it takes effect that far ahead, so every event has the same latency
//! (the ring's) and lands on its own frame within a block, not at the block's start.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use flux_engine::{Counters, MidiEvent, MidiSender};
use midir::{MidiInput, MidiInputConnection};

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
pub fn connect(
    port: Option<&str>,
    mut sender: MidiSender,
    counters: Arc<Counters>,
    latency: u64,
) -> anyhow::Result<Input> {
    let input = open()?;
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
                let mut bytes = [0u8; 3];
                for (b, m) in bytes.iter_mut().zip(message) {
                    *b = *m;
                }
                sender.send(MidiEvent {
                    frame: counters.output_frame() + latency,
                    bytes,
                });
            },
            (),
        )
        .map_err(|e| anyhow!("cannot open MIDI port {name:?}: {e}"))?;
    Ok(Input {
        _connection: connection,
        name,
    })
}

/// `flux midi`: prints the MIDI input ports.
pub fn list() -> anyhow::Result<std::process::ExitCode> {
    let ports = ports()?;
    if ports.is_empty() {
        println!("no MIDI input ports");
    }
    for p in ports {
        println!("{}", crate::text::escape(&p));
    }
    Ok(std::process::ExitCode::SUCCESS)
}
