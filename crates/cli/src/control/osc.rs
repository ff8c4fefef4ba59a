//! OSC over UDP on loopback: `/flux/eval`, `/flux/mute`, `/flux/state`... as requests.
//!
//! One thread receives datagrams (at most 64 KiB, the largest UDP payload), decodes them
//! with `rosc` and queues one job per message (bundles are flattened, in order). It never
//! waits for the play loop: a full queue drops the message, as UDP may.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rosc::{OscMessage, OscPacket, OscType};

use super::protocol::Request;
use super::{Job, Jobs, Replier};
use crate::worker::Worker;

/// The addresses Flux answers, for error messages.
const KNOWN: &str = "/flux/eval s, /flux/mute s [f], /flux/unmute s [f], /flux/solo s [f], \
                     /flux/unsolo [f], /flux/stop s [f], /flux/gain f, /flux/state s i f, \
                     /flux/tempo f [f], /flux/panic, /flux/start";

/// A running OSC receiver.
pub struct Osc {
    addr: SocketAddr,
    _worker: Worker,
}

impl Osc {
    /// Receives on `socket`, queueing requests on `jobs`.
    ///
    /// # Errors
    ///
    /// When the socket cannot be configured or the thread cannot start.
    pub fn start(socket: UdpSocket, jobs: Jobs) -> io::Result<Self> {
        let addr = socket.local_addr()?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let worker = Worker::spawn("flux-osc", move |stop| receive(&socket, &jobs, stop))?;
        Ok(Self {
            addr,
            _worker: worker,
        })
    }

    /// The address it receives on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn receive(socket: &UdpSocket, jobs: &Jobs, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        // A panic on one datagram is reported; the next ones are read.
        crate::worker::guarded("flux-osc", || {
            for request in decode(&buf[..n]) {
                let job = Job {
                    request,
                    reply: Replier::Osc(from),
                };
                // A full queue drops the message, as a busy network would.
                let _ = jobs.try_send(job);
            }
        });
    }
}

/// Bundles nested deeper than this are refused before they are decoded.
pub const MAX_BUNDLE_DEPTH: usize = 16;

/// The requests of one datagram, in order, or why it cannot be read. Never panics: the
/// bundle structure is checked from the bytes first (a packet whose bundles nest deeper
/// than [`MAX_BUNDLE_DEPTH`], or whose element sizes do not fit, is refused before `rosc`
/// sees it: its decoder recurses once per level), and a panic of the decoder is caught.
pub fn decode(packet: &[u8]) -> Vec<Result<Request, String>> {
    let n = packet.len();
    if let Err(why) = check_bundles(packet, 1) {
        return vec![Err(format!("OSC packet of {n} bytes refused: {why}"))];
    }
    let decoded = std::panic::catch_unwind(|| rosc::decoder::decode_udp(packet));
    let mut requests = Vec::new();
    match decoded {
        Ok(Ok((_, packet))) => flatten(packet, &mut requests),
        Ok(Err(e)) => requests.push(Err(format!("malformed OSC packet of {n} bytes: {e}"))),
        Err(_) => requests.push(Err(format!(
            "malformed OSC packet of {n} bytes: the decoder failed on it"
        ))),
    }
    requests
}

/// Checks, from the bytes, the bundles in `packet` (at nesting level `level`): they nest
/// at most [`MAX_BUNDLE_DEPTH`] deep and every element's size fits in its bundle.
fn check_bundles(packet: &[u8], level: usize) -> Result<(), String> {
    const BUNDLE: &[u8] = b"#bundle\0";
    if !packet.starts_with(BUNDLE) {
        return Ok(());
    }
    if level > MAX_BUNDLE_DEPTH {
        return Err(format!(
            "bundles nested deeper than {MAX_BUNDLE_DEPTH} levels"
        ));
    }
    if packet.len() < 16 {
        return Err("a bundle without its time tag".into());
    }
    // The tag and the time tag, then (size, element) pairs.
    let mut at = 16;
    while at < packet.len() {
        let Some(size) = packet.get(at..at + 4) else {
            return Err(format!("a bundle element size cut short at byte {at}"));
        };
        let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let Some(element) = packet.get(at + 4..(at + 4).saturating_add(size)) else {
            return Err(format!(
                "a bundle element of {size} bytes at byte {at} does not fit in the packet"
            ));
        };
        check_bundles(element, level + 1)?;
        at += 4 + size;
    }
    Ok(())
}

fn flatten(packet: OscPacket, out: &mut Vec<Result<Request, String>>) {
    match packet {
        OscPacket::Message(m) => out.push(request(&m)),
        OscPacket::Bundle(b) => {
            for p in b.content {
                flatten(p, out);
            }
        }
    }
}

fn number(arg: &OscType) -> Option<f64> {
    match *arg {
        OscType::Float(x) => Some(f64::from(x)),
        OscType::Double(x) => Some(x),
        OscType::Int(x) => Some(f64::from(x)),
        OscType::Long(x) => Some(x as f64),
        _ => None,
    }
}

fn text(arg: &OscType) -> Option<String> {
    match arg {
        OscType::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The type tags of `args`, e.g. `sif`.
fn tags(args: &[OscType]) -> String {
    args.iter()
        .map(|a| match a {
            OscType::Int(_) => 'i',
            OscType::Float(_) => 'f',
            OscType::String(_) => 's',
            OscType::Blob(_) => 'b',
            OscType::Long(_) => 'h',
            OscType::Double(_) => 'd',
            OscType::Bool(true) => 'T',
            OscType::Bool(false) => 'F',
            _ => '?',
        })
        .collect()
}

/// The request an OSC message stands for.
///
/// # Errors
///
/// An unknown address or arguments of the wrong types, with what was expected.
pub fn request(m: &OscMessage) -> Result<Request, String> {
    let args = &m.args;
    let bad = |expected: &str| format!("{} takes ({expected}), not ({})", m.addr, tags(args));
    let id_fade = || -> Result<(String, Option<f64>), String> {
        match args.as_slice() {
            [s] => Ok((text(s).ok_or_else(|| bad("s [f]"))?, None)),
            [s, f] => Ok((
                text(s).ok_or_else(|| bad("s [f]"))?,
                Some(number(f).ok_or_else(|| bad("s [f]"))?),
            )),
            _ => Err(bad("s [f]")),
        }
    };
    Ok(match m.addr.as_str() {
        "/flux/eval" => match args.as_slice() {
            [s] => Request::Eval {
                code: text(s).ok_or_else(|| bad("s [s]"))?,
                name: Some("osc".into()),
                line: None,
                quantize: None,
            },
            [s, q] => Request::Eval {
                code: text(s).ok_or_else(|| bad("s [s]"))?,
                name: Some("osc".into()),
                line: None,
                quantize: Some(text(q).ok_or_else(|| bad("s [s]"))?),
            },
            _ => return Err(bad("s [s]")),
        },
        "/flux/tempo" => match args.as_slice() {
            [x] => Request::Tempo {
                bpm: number(x).ok_or_else(|| bad("f [f]"))?,
                glide: None,
            },
            [x, g] => Request::Tempo {
                bpm: number(x).ok_or_else(|| bad("f [f]"))?,
                glide: Some(number(g).ok_or_else(|| bad("f [f]"))?),
            },
            _ => return Err(bad("f [f]")),
        },
        "/flux/mute" => {
            let (signal, fade) = id_fade()?;
            Request::Mute { signal, fade }
        }
        "/flux/unmute" => {
            let (signal, fade) = id_fade()?;
            Request::Unmute { signal, fade }
        }
        "/flux/solo" => {
            let (signal, fade) = id_fade()?;
            Request::Solo { signal, fade }
        }
        "/flux/unsolo" => match args.as_slice() {
            [] => Request::Unsolo { fade: None },
            [f] => Request::Unsolo {
                fade: Some(number(f).ok_or_else(|| bad("[f]"))?),
            },
            _ => return Err(bad("[f]")),
        },
        "/flux/stop" => {
            let (signal, fade) = id_fade()?;
            Request::Stop { signal, fade }
        }
        "/flux/panic" => Request::Panic,
        "/flux/start" => Request::Start,
        "/flux/gain" => match args.as_slice() {
            [x] => Request::Gain {
                value: number(x).ok_or_else(|| bad("f"))?,
            },
            _ => return Err(bad("f")),
        },
        "/flux/state" => match args.as_slice() {
            [s, i, x] => {
                let index = number(i).ok_or_else(|| bad("s i f"))?;
                if index.fract() != 0.0 {
                    return Err(format!(
                        "{}: the slot must be a whole number, not {index}",
                        m.addr
                    ));
                }
                Request::State {
                    signal: text(s).ok_or_else(|| bad("s i f"))?,
                    index: index as i64,
                    value: number(x).ok_or_else(|| bad("s i f"))?,
                }
            }
            _ => return Err(bad("s i f")),
        },
        other => return Err(format!("unknown OSC address {other}; flux answers {KNOWN}")),
    })
}

/// An OSC message `/flux/error s` carrying `message`, encoded.
pub fn error_packet(message: &str) -> Option<Vec<u8>> {
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: "/flux/error".into(),
        args: vec![OscType::String(message.to_owned())],
    }))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(addr: &str, args: Vec<OscType>) -> OscMessage {
        OscMessage {
            addr: addr.into(),
            args,
        }
    }

    /// `depth` bundles, each holding the next, around one `/flux/gain 0.5`.
    fn nested(depth: usize) -> Vec<u8> {
        let mut packet = rosc::encoder::encode(&OscPacket::Message(msg(
            "/flux/gain",
            vec![OscType::Float(0.5)],
        )))
        .unwrap();
        for _ in 0..depth {
            let mut outer = b"#bundle\0".to_vec();
            outer.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
            outer.extend_from_slice(&(packet.len() as u32).to_be_bytes());
            outer.extend_from_slice(&packet);
            packet = outer;
        }
        packet
    }

    #[test]
    fn bundles_nested_2500_deep_are_refused_without_decoding() {
        let requests = decode(&nested(2_500));
        assert_eq!(requests.len(), 1);
        let e = requests[0].as_ref().unwrap_err();
        assert!(e.contains("nested deeper than 16 levels"), "{e}");
        // At the limit, the message inside is read.
        assert_eq!(
            decode(&nested(MAX_BUNDLE_DEPTH)),
            vec![Ok(Request::Gain { value: 0.5 })]
        );
        assert!(decode(&nested(MAX_BUNDLE_DEPTH + 1))[0].is_err());
    }

    #[test]
    fn bundles_whose_sizes_do_not_fit_are_refused_without_a_panic() {
        let mut packet = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
        packet.extend_from_slice(&[0xff, 0xff, 0xff, 0xf0]);
        packet.extend_from_slice(b"/x\0\0,\0\0\0");
        let e = decode(&packet).remove(0).unwrap_err();
        assert!(e.contains("does not fit in the packet"), "{e}");
        assert!(decode(b"#bundle\0\0\0")[0].is_err());
        assert!(decode(b"#bundle\0\0\0\0\0\0\0\0\x01\0\0")[0].is_err());
    }

    #[test]
    fn panic_and_start_become_requests() {
        assert_eq!(request(&msg("/flux/panic", vec![])), Ok(Request::Panic));
        assert_eq!(request(&msg("/flux/start", vec![])), Ok(Request::Start));
    }

    #[test]
    fn tempo_and_a_quantized_eval_become_requests() {
        let s = |x: &str| OscType::String(x.into());
        assert_eq!(
            request(&msg(
                "/flux/tempo",
                vec![OscType::Float(140.0), OscType::Int(2)]
            )),
            Ok(Request::Tempo {
                bpm: 140.0,
                glide: Some(2.0)
            })
        );
        assert_eq!(
            request(&msg("/flux/tempo", vec![s("fast")])).unwrap_err(),
            "/flux/tempo takes (f [f]), not (s)"
        );
        assert!(matches!(
            request(&msg("/flux/eval", vec![s("play('a', () => 0)"), s("bar")])),
            Ok(Request::Eval { quantize: Some(q), .. }) if q == "bar"
        ));
    }

    #[test]
    fn messages_become_requests() {
        let s = |x: &str| OscType::String(x.into());
        assert_eq!(
            request(&msg(
                "/flux/state",
                vec![s("a"), OscType::Int(2), OscType::Float(0.5)]
            )),
            Ok(Request::State {
                signal: "a".into(),
                index: 2,
                value: 0.5
            })
        );
        assert_eq!(
            request(&msg("/flux/mute", vec![s("a")])),
            Ok(Request::Mute {
                signal: "a".into(),
                fade: None
            })
        );
        let e = request(&msg("/flux/gain", vec![s("loud")])).unwrap_err();
        assert_eq!(e, "/flux/gain takes (f), not (s)");
        let e = request(&msg("/flux/dance", vec![])).unwrap_err();
        assert!(e.starts_with("unknown OSC address /flux/dance"), "{e}");
    }
}
