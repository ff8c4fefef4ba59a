//! JACK MIDI for `flux play --midi jack[:PORT]`: a JACK client `flux` with a MIDI input
//! port `midi_in` (connected from the first JACK MIDI output port whose name contains PORT,
//! when given) and, for `--midi-clock out`, a MIDI output port `midi_out`.
//!
//! JACK gives each event its frame inside the process cycle. The process callback maps JACK
//! frames to engine frames with one offset: the output's frame less JACK's frame time now,
//! the median of the last 32 cycles (the output steps a period at a time, and either side
//! may run late), held still while that median stays within the ring's depth of it and set
//! again when it does not (an underrun). It stamps
//! an event with the frame its cycle offset gives, plus the ring's depth: events keep their
//! spacing to the frame, inside a period and across periods. Clock out goes the other way:
//! each message the engine computed for engine frame `E` is written at the offset of `E` in
//! the cycle that holds it.
//!
//! The callback runs on JACK's real-time thread: it pushes to lock-free queues and
//! allocates nothing.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use flux_engine::midi::clock_out::{ClockMessage, ClockTicks};
use flux_engine::rtrb::Producer;
use flux_engine::{Counters, MidiEvent, MidiSender};
use jack::{AsyncClient, Client, ClientOptions, Control, Port, PortFlags, ProcessScope, RawMidi};

/// The client name Flux asks JACK for (JACK adds a number when it is taken).
pub const CLIENT: &str = "flux";
/// The MIDI input port.
pub const IN_PORT: &str = "midi_in";
/// The MIDI output port (clock out).
pub const OUT_PORT: &str = "midi_out";
/// JACK's type name of MIDI ports.
const MIDI_TYPE: &str = "8 bit raw midi";
/// Cycles over which the mapping takes the median offset.
const WINDOW: usize = 32;

/// A client of the running JACK server, or `None` when no server runs (none is started).
fn client(name: &str) -> Option<Client> {
    jack::set_logger(jack::LoggerType::None);
    Client::new(name, ClientOptions::NO_START_SERVER)
        .ok()
        .map(|(c, _)| c)
}

/// The JACK MIDI output ports (the ones Flux can read from), or `None` when no JACK server
/// runs.
pub fn ports() -> Option<Vec<String>> {
    let c = client("flux-list")?;
    Some(c.ports(None, Some(MIDI_TYPE), PortFlags::IS_OUTPUT))
}

/// What the JACK client is to do.
pub struct Setup {
    /// Connect from the first JACK MIDI output port whose name contains this.
    pub port: Option<String>,
    /// Where notes, controllers and bends go.
    pub sender: MidiSender,
    /// The output's frame, to map JACK's frames onto the engine's.
    pub counters: Arc<Counters>,
    /// Frames after the output's frame an event takes effect (the ring's depth).
    pub latency: u64,
    /// The engine's sample rate.
    pub sample_rate: u32,
    /// Where clock in's messages (clock, start, continue, stop) go, stamped alike.
    pub clock_in: Option<Producer<ClockMessage>>,
    /// Clock out's messages, to write on `midi_out`.
    pub clock_out: Option<ClockTicks>,
}

/// A running JACK MIDI client; closes when dropped.
pub struct JackMidi {
    _client: AsyncClient<(), Handler>,
    /// The full names of its input port and of the port connected to it, if any.
    pub name: String,
    /// The full name of its output port (clock out).
    pub out: Option<String>,
}

/// Opens the client and its ports, activates it and connects `setup.port`.
///
/// # Errors
///
/// No JACK server, no port matching, or JACK refusing a port or the connection.
pub fn connect(setup: Setup) -> anyhow::Result<JackMidi> {
    let Some(client) = client(CLIENT) else {
        bail!("no JACK server runs (start one, e.g. `jackd -d alsa`, or use --midi without jack)");
    };
    let source = match &setup.port {
        None => None,
        Some(want) => {
            let ports = client.ports(None, Some(MIDI_TYPE), PortFlags::IS_OUTPUT);
            match ports.iter().find(|p| p.contains(want.as_str())) {
                Some(p) => Some(p.clone()),
                None if ports.is_empty() => bail!("no JACK MIDI output ports (see `flux midi`)"),
                None => bail!(
                    "no JACK MIDI output port matches {want:?}; there are: {}",
                    ports.join(", ")
                ),
            }
        }
    };
    let input = client
        .register_port(IN_PORT, jack::MidiIn::default())
        .map_err(|e| anyhow!("cannot make the JACK MIDI port {IN_PORT}: {e}"))?;
    let in_name = input.name().unwrap_or_else(|_| IN_PORT.to_owned());
    let output = match setup.clock_out {
        Some(_) => Some(
            client
                .register_port(OUT_PORT, jack::MidiOut::default())
                .map_err(|e| anyhow!("cannot make the JACK MIDI port {OUT_PORT}: {e}"))?,
        ),
        None => None,
    };
    let out = output.as_ref().and_then(|p| p.name().ok());
    let handler = Handler {
        input,
        output,
        sender: setup.sender,
        clock_in: setup.clock_in,
        clock_out: setup.clock_out,
        counters: setup.counters,
        latency: setup.latency as f64,
        ratio: f64::from(setup.sample_rate) / f64::from(client.sample_rate().max(1)),
        offsets: [None; WINDOW],
        next: 0,
        offset: None,
        last: None,
        now: 0,
    };
    let active = client
        .activate_async((), handler)
        .map_err(|e| anyhow!("cannot start the JACK MIDI client: {e}"))?;
    let name = match &source {
        Some(from) => {
            active
                .as_client()
                .connect_ports_by_name(from, &in_name)
                .map_err(|e| anyhow!("cannot connect {from} to {in_name}: {e}"))?;
            format!("{from} (JACK, into {in_name})")
        }
        None => format!("{in_name} (JACK; connect a MIDI output to it)"),
    };
    Ok(JackMidi {
        _client: active,
        name,
        out,
    })
}

/// The process callback's state.
struct Handler {
    input: Port<jack::MidiIn>,
    output: Option<Port<jack::MidiOut>>,
    sender: MidiSender,
    clock_in: Option<Producer<ClockMessage>>,
    clock_out: Option<ClockTicks>,
    counters: Arc<Counters>,
    latency: f64,
    /// Engine frames per JACK frame.
    ratio: f64,
    /// Engine frame less JACK frame (scaled), over the last [`WINDOW`] cycles, and the next
    /// to write; `None` until the output plays.
    offsets: [Option<f64>; WINDOW],
    next: usize,
    /// The offset in use, once the window has filled.
    offset: Option<f64>,
    /// JACK's last frame time (32 bits, it wraps) and the frames counted since the first.
    last: Option<u32>,
    now: u64,
}

impl Handler {
    /// The engine frame the output plays at the first frame of this cycle.
    fn cycle_start(&mut self, ps: &ProcessScope) -> f64 {
        let t = ps.last_frame_time();
        if let Some(last) = self.last {
            self.now += u64::from(t.wrapping_sub(last));
        }
        self.last = Some(t);
        let jack = self.now as f64 * self.ratio;
        // The frames since the cycle started take out how late this callback runs.
        let late = f64::from(ps.frames_since_cycle_start()) * self.ratio;
        let played = self.counters.output_frame();
        let measured = played as f64 - late - jack;
        // The output takes frames a period at a time, and the callback or the output may
        // run late: the median of the last cycles stands still through both.
        self.offsets[self.next] = (played > 0).then_some(measured);
        self.next = (self.next + 1) % WINDOW;
        let mut seen = [0.0; WINDOW];
        let mut n = 0;
        for o in self.offsets.iter().flatten() {
            seen[n] = *o;
            n += 1;
        }
        if n == 0 {
            return measured + jack;
        }
        seen[..n].sort_unstable_by(f64::total_cmp);
        let recent = seen[n / 2];
        // Held still while it agrees with the recent one (the output's steps move that by
        // up to a period), so events keep their spacing exactly; set again when it does not
        // (an underrun, a stall), or once the window has filled the first time.
        let tolerance = self.latency + f64::from(ps.n_frames()) * self.ratio;
        let full = self.offsets.iter().all(Option::is_some);
        let offset = match self.offset {
            Some(o) if (recent - o).abs() <= tolerance => o,
            Some(_) => recent,
            None if full => *self.offset.insert(recent),
            None => recent,
        };
        if self.offset.is_some() {
            self.offset = Some(offset);
        }
        offset + jack
    }
}

impl jack::ProcessHandler for Handler {
    fn process(&mut self, _: &Client, ps: &ProcessScope) -> Control {
        let base = self.cycle_start(ps);
        for m in self.input.iter(ps) {
            let at = base + f64::from(m.time) * self.ratio + self.latency;
            let frame = at.round().max(0.0) as u64;
            match m.bytes {
                [byte @ (0xf8 | 0xfa | 0xfb | 0xfc)] => {
                    if let Some(tx) = &mut self.clock_in {
                        let _ = tx.push(ClockMessage { frame, byte: *byte });
                    }
                }
                [status, data @ ..] if *status >= 0x80 && *status < 0xf0 => {
                    let mut bytes = [*status, 0, 0];
                    for (b, d) in bytes[1..].iter_mut().zip(data) {
                        *b = *d;
                    }
                    self.sender.send(MidiEvent { frame, bytes });
                }
                _ => {}
            }
        }
        if let (Some(port), Some(ticks)) = (&mut self.output, &mut self.clock_out) {
            let n = f64::from(ps.n_frames());
            let mut writer = port.writer(ps);
            while let Some(m) = ticks.peek() {
                let at = (m.frame as f64 - base) / self.ratio;
                if at >= n {
                    break;
                }
                let _ = ticks.pop();
                if at < -n && m.byte == flux_engine::midi::clock_out::TICK {
                    // Over a period late (made before the client ran): a burst would lie.
                    continue;
                }
                let time = at.max(0.0).floor() as u32;
                let _ = writer.write(&RawMidi {
                    time,
                    bytes: &[m.byte],
                });
            }
        }
        Control::Continue
    }
}
