//! The control protocol: newline-delimited JSON, one request per line, one reply per line.
//!
//! Described for users in `docs/PROTOCOL.md`. Pure data and parsing, no I/O: the server
//! reads frames, this module turns them into [`Request`]s, and [`Reply`] back into text.

use serde::{Deserialize, Serialize};

/// The largest frame the server reads: 1 MiB, the newline included.
pub const MAX_FRAME: usize = 1 << 20;

/// One request of a client, as sent on the wire.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// Echoed in the reply, so a client can match replies to requests.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// The shared secret, required when the server was started with `--token`.
    #[serde(default)]
    pub token: Option<String>,
    /// What to do.
    #[serde(flatten)]
    pub request: Request,
}

/// What a client asks the engine to do.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Evaluate code in the running patch (`Session::eval`).
    Eval {
        /// The code.
        code: String,
        /// The file name diagnostics carry (default `live.js`).
        #[serde(default)]
        name: Option<String>,
        /// The line of that file the code starts at (default 1), when it is a part of
        /// the file (an editor's paragraph): diagnostics are moved to the file's lines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        /// When the code takes over: `none`, `beat`, `bar` or a number of beats (default:
        /// `flux play --quantize`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quantize: Option<String>,
    },
    /// `tempo(bpm, glide?)`: the transport's tempo.
    Tempo {
        /// Beats per minute (clamped to 20..=999).
        bpm: f64,
        /// Seconds to glide there (default 0: at once).
        #[serde(default)]
        glide: Option<f64>,
    },
    /// The signals that play, with tier and state.
    List,
    /// Engine counters.
    Status,
    /// The master stage: `tanh`, `limit`, `clip` or `none`; fields left out take the
    /// defaults of `flux play` (ceiling -1 dBFS, no DC blocker).
    Master {
        /// `tanh`, `limit`, `clip` or `none`.
        mode: String,
        /// Ceiling of `limit` and `clip`, dBFS.
        #[serde(default)]
        ceiling: Option<f64>,
        /// Whether the DC blocker runs.
        #[serde(default)]
        dc_block: Option<bool>,
    },
    /// Peak, RMS and clips of the master and of each signal over the last quarter second,
    /// and the master's short-term loudness.
    Levels,
    /// `mute(signal, fade?)`.
    Mute {
        /// The signal's id.
        signal: String,
        /// Fade in seconds (default: the reload crossfade).
        #[serde(default)]
        fade: Option<f64>,
    },
    /// `unmute(signal, fade?)`.
    Unmute {
        /// The signal's id.
        signal: String,
        /// Fade in seconds.
        #[serde(default)]
        fade: Option<f64>,
    },
    /// `solo(signal, fade?)`.
    Solo {
        /// The signal's id.
        signal: String,
        /// Fade in seconds.
        #[serde(default)]
        fade: Option<f64>,
    },
    /// `unsolo(fade?)`: every signal a solo muted comes back.
    Unsolo {
        /// Fade in seconds.
        #[serde(default)]
        fade: Option<f64>,
    },
    /// `stop(signal, fade?)`.
    Stop {
        /// The signal's id.
        signal: String,
        /// Fade in seconds.
        #[serde(default)]
        fade: Option<f64>,
    },
    /// `clear(fade?)`: stop every signal.
    Clear {
        /// Fade in seconds.
        #[serde(default)]
        fade: Option<f64>,
    },
    /// `gain(value)`: the master gain.
    Gain {
        /// The gain, 0 or more.
        value: f64,
    },
    /// Turns the connection into a stream of events (`faults`: faults while playing,
    /// failed loads, signals loaded again); answered by the server itself.
    Subscribe {
        /// The kinds of events wanted; `faults` is the only one.
        #[serde(default)]
        events: Vec<String>,
    },
    /// Fades everything out within 50 ms and stops until `start`.
    Panic,
    /// Resumes after `panic` (or a stop), fading in.
    Start,
    /// Writes slot `index` of a signal's state block (what OSC `/flux/state` does).
    State {
        /// The signal's id.
        signal: String,
        /// The slot, from 0, inside the signal's block.
        index: i64,
        /// The value.
        value: f64,
    },
}

impl Request {
    /// A short description for the terminal, e.g. `mute 'bass'`.
    pub fn describe(&self) -> String {
        match self {
            Request::Eval { name, .. } => format!("eval {}", name.as_deref().unwrap_or("live.js")),
            Request::List => "list".into(),
            Request::Status => "status".into(),
            Request::Levels => "levels".into(),
            Request::Master {
                mode,
                ceiling,
                dc_block,
            } => {
                let mut what = format!("master {mode}");
                if let Some(c) = ceiling {
                    what += &format!(" at {c} dBFS");
                }
                if *dc_block == Some(true) {
                    what += ", DC blocker on";
                }
                what
            }
            Request::Mute { signal, .. } => format!("mute '{signal}'"),
            Request::Unmute { signal, .. } => format!("unmute '{signal}'"),
            Request::Solo { signal, .. } => format!("solo '{signal}'"),
            Request::Unsolo { .. } => "unsolo".into(),
            Request::Stop { signal, .. } => format!("stop '{signal}'"),
            Request::Clear { .. } => "clear".into(),
            Request::Subscribe { .. } => "subscribe".into(),
            Request::Panic => "panic".into(),
            Request::Start => "start".into(),
            Request::Gain { value } => format!("gain {value}"),
            Request::Tempo { bpm, glide } => match glide {
                Some(g) => format!("tempo {bpm} over {g} s"),
                None => format!("tempo {bpm}"),
            },
            Request::State {
                signal,
                index,
                value,
            } => format!("state '{signal}' {index} = {value}"),
        }
    }
}

/// A diagnostic in a reply: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireDiagnostic {
    /// The file (the `name` of an `eval`).
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
    /// What went wrong.
    pub message: String,
    /// Always `error` for now.
    pub severity: String,
}

impl From<&flux_js::Diagnostic> for WireDiagnostic {
    fn from(d: &flux_js::Diagnostic) -> Self {
        Self {
            file: d.location.file.clone(),
            line: d.location.line,
            col: d.location.col,
            message: d.message.clone(),
            severity: "error".into(),
        }
    }
}

/// One signal in a `list` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireSignal {
    /// Its id.
    pub id: String,
    /// `native` or `js`.
    pub tier: String,
    /// The gain it was last set to (0 when muted).
    pub gain: f64,
    /// Whether its gain is 0.
    pub muted: bool,
    /// Where `flux()` was called for it, `file:line:col`.
    pub location: Option<String>,
    /// Its state block: first slot and length.
    pub block: [usize; 2],
}

/// Engine counters in a `status` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireStatus {
    /// Frames the output has played.
    pub frames: u64,
    /// Seconds since `flux play` started.
    pub seconds: f64,
    /// Times the output found the ring short.
    pub underruns: u64,
    /// DSP load of the last block, 0 to 1 (1: the whole block's time).
    pub dsp_load_last: f64,
    /// Mean DSP load.
    pub dsp_load_mean: f64,
    /// Highest DSP load.
    pub dsp_load_max: f64,
    /// Reloads of the file after the first load.
    pub reloads: u64,
    /// Reloads that failed.
    pub reload_errors: u64,
    /// Signals playing.
    pub signals: usize,
    /// The transport's tempo, beats per minute.
    #[serde(default)]
    pub bpm: f64,
    /// Beats since the transport started.
    #[serde(default)]
    pub beat: f64,
    /// Bars since the transport started.
    #[serde(default)]
    pub bar: f64,
}

/// The reply to one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's `id`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    /// Whether the request was carried out.
    pub ok: bool,
    /// The line the engine printed (e.g. `live.js: ok, 1 signal, loaded in 0.9 ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Diagnostics of evaluated code (empty when it loaded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<WireDiagnostic>,
    /// Signals playing (after `eval` and the controls, and for `list`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signals: Option<Vec<WireSignal>>,
    /// Counters, for `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<WireStatus>,
    /// The value evaluated code ended with, as the REPL prints it (`eval`; absent for
    /// `undefined` and for the signal `flux()` returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Levels, for `levels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub levels: Option<crate::levels::LevelsReport>,
}

impl Reply {
    /// A refusal or failure saying `error`.
    pub fn error(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// The reply as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"ok":false,"error":"cannot encode the reply: {e}"}}"#)
        });
        line.push('\n');
        line
    }
}

/// Parses one frame (without its newline) and checks its token; returns the request's `id`
/// and the request.
///
/// # Errors
///
/// A reply saying what is wrong: not UTF-8, not JSON, an unknown `op`, a missing field, or
/// a missing or wrong token.
pub fn parse(
    frame: &[u8],
    token: Option<&str>,
) -> Result<(Option<serde_json::Value>, Request), Refusal> {
    let refuse = |id: Option<serde_json::Value>, error: String| Refusal {
        id,
        error,
        token: false,
    };
    let text = std::str::from_utf8(frame)
        .map_err(|e| refuse(None, format!("malformed frame: not UTF-8 ({e})")))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| refuse(None, format!("malformed frame: not JSON ({e})")))?;
    let id = value.get("id").cloned();
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| refuse(id.clone(), format!("malformed request: {e}")))?;
    if let Some(expected) = token {
        if envelope.token.as_deref() != Some(expected) {
            let error = match envelope.token {
                None => "refused: this server needs a \"token\" in every request",
                Some(_) => "refused: wrong token",
            };
            return Err(Refusal {
                token: true,
                ..refuse(id, error.into())
            });
        }
    }
    Ok((envelope.id, envelope.request))
}

/// A frame [`parse`] refused: the request's `id` when it could be read, and why.
#[derive(Debug)]
pub struct Refusal {
    /// The request's `id`.
    pub id: Option<serde_json::Value>,
    /// Why it was refused.
    pub error: String,
    /// True when the request was valid but its token missing or wrong.
    pub token: bool,
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Self {
        Reply {
            id: r.id,
            ..Reply::error(r.error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_checks_tokens() {
        let (id, r) = parse(br#"{"id":3,"op":"mute","signal":"a","fade":0.5}"#, None).unwrap();
        assert_eq!(id, Some(serde_json::json!(3)));
        assert_eq!(
            r,
            Request::Mute {
                signal: "a".into(),
                fade: Some(0.5)
            }
        );
        assert!(parse(br#"{"op":"list"}"#, Some("s"))
            .unwrap_err()
            .error
            .contains("token"));
        assert!(parse(br#"{"op":"list","token":"x"}"#, Some("s")).is_err());
        assert!(parse(br#"{"op":"list","token":"s"}"#, Some("s")).is_ok());
        let e = parse(b"{oops", None).unwrap_err().error;
        assert!(e.starts_with("malformed frame"), "{e}");
        let e = parse(br#"{"op":"dance"}"#, None).unwrap_err().error;
        assert!(e.contains("dance"), "{e}");
    }

    #[test]
    fn replies_are_one_line() {
        let line = Reply::error("a\nb").to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
    }
}
