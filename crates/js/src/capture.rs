//! Reading what `update` closures captured, for the native tier.
//!
//! Reading is bounded: at most [`CAPTURE_BUDGET`] values per load, each JavaScript object
//! read once however often it is shared (`new Array(65536).fill(row)` reads `row` once),
//! and the JavaScript it calls (getters included) runs under the load's time limit. A
//! signal whose captures pass a bound stays on the JavaScript tier with the reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flux_jit::{Captured, Request};
use rquickjs::{FromJs, Function, Object, Value};

use crate::cartridge::Watchdog;

/// Library functions by name, as scripts reach them, with their captures.
pub(crate) type Globals = Vec<(String, Captured)>;

/// Captured values (numbers, array elements, fields, ...) one load may read in all.
pub(crate) const CAPTURE_BUDGET: usize = 1 << 20;

/// Elements of one captured array.
const ARRAY_LIMIT: usize = 1 << 16;

/// Nesting of captured arrays, objects and functions.
const DEPTH_LIMIT: usize = 8;

/// What the native tier needs to compile each signal: its `update`'s tag and captures.
///
/// `ids` are the signals' ids, in the prelude's order. The reads run under `watchdog`
/// armed for `time_left`, the rest of the load's time limit.
///
/// Also reads the library's functions named in `globals` (with their own captures), which
/// `update`s in scripts reach as globals rather than as captured variables; a name that
/// cannot be read is left out (the compiler then declines it as an unknown global).
pub(crate) fn native_requests<'s>(
    flux: &Object<'_>,
    ids: impl Iterator<Item = &'s str>,
    seed: u64,
    watchdog: &Watchdog,
    time_left: Duration,
    globals: &[String],
) -> (Globals, Vec<Result<Request, String>>) {
    let mut reader = Reader {
        flux,
        left: CAPTURE_BUDGET,
        seen: HashMap::new(),
    };
    watchdog.arm(time_left);
    let mut library = Vec::new();
    if let Ok(api) = flux.get::<_, Object>("api") {
        for name in globals {
            if let Ok(v) = api.get::<_, Value>(name.as_str()) {
                if let Ok(c @ Captured::Function { .. }) = reader.capture(v, 0) {
                    library.push((name.clone(), c));
                }
            }
        }
    }
    let requests = ids
        .enumerate()
        .map(|(index, id)| {
            if watchdog.expired() {
                return Err(format!(
                    "reading its captured values would pass the load's time limit ({} ms)",
                    time_left.as_millis()
                ));
            }
            let request = reader.request(index, id, seed);
            if request.is_err() && watchdog.expired() {
                return Err(format!(
                    "reading its captured values passed the load's time limit ({} ms)",
                    time_left.as_millis()
                ));
            }
            request
        })
        .collect();
    watchdog.disarm();
    (library, requests)
}

/// Why reading stopped.
enum Stop {
    /// JavaScript failed (or was interrupted).
    Js(rquickjs::Error),
    /// The load's budget of captured values is spent.
    Budget,
}

impl From<rquickjs::Error> for Stop {
    fn from(e: rquickjs::Error) -> Self {
        Stop::Js(e)
    }
}

/// Reads the captures of one load's signals, sharing the budget and what was read.
struct Reader<'r, 'js> {
    flux: &'r Object<'js>,
    /// Values the load may still read.
    left: usize,
    /// Objects read so far (by identity), with the depth they were read at.
    seen: HashMap<Value<'js>, (usize, Captured)>,
}

impl<'js> Reader<'_, 'js> {
    fn request(&mut self, index: usize, id: &str, seed: u64) -> Result<Request, String> {
        let mut describe = || -> Result<Result<Request, String>, Stop> {
            let update: Function = self.flux.get::<_, Function>("update")?.call((index,))?;
            let Some((function, values)) = self.tag_of(update.into_value())? else {
                return Ok(Err("its update was not written in this file".to_owned()));
            };
            let mut captures = Vec::with_capacity(values.len());
            for v in values {
                captures.push(self.capture(v, 0)?);
            }
            Ok(Ok(Request {
                id: id.to_owned(),
                function,
                captures,
                seed: seed ^ hash(id),
            }))
        };
        match describe() {
            Ok(request) => request,
            Err(Stop::Js(e)) => Err(format!("cannot read its update: {e}")),
            Err(Stop::Budget) => Err(format!(
                "the file's captured values pass the budget of {CAPTURE_BUDGET} values"
            )),
        }
    }

    /// The tag of a function: its id and captured values, when the instrumentation saw it.
    fn tag_of(&self, f: Value<'js>) -> rquickjs::Result<Option<(usize, Vec<Value<'js>>)>> {
        let tag_of: Function = self.flux.get("tagOf")?;
        let tag: Option<Vec<Value>> = tag_of.call((f,))?;
        let Some(mut tag) = tag else { return Ok(None) };
        if tag.len() != 2 {
            return Ok(None);
        }
        let values = tag
            .pop()
            .map(|v| Vec::<Value>::from_js(&v.ctx().clone(), v))
            .transpose()?;
        let id = tag.pop().and_then(|v| v.as_number());
        Ok(id.zip(values).map(|(id, values)| (id as usize, values)))
    }

    /// Takes `n` values from the budget.
    fn spend(&mut self, n: usize) -> Result<(), Stop> {
        self.left = self.left.checked_sub(n).ok_or(Stop::Budget)?;
        Ok(())
    }

    /// Reads a captured value for the compiler.
    fn capture(&mut self, v: Value<'js>, depth: usize) -> Result<Captured, Stop> {
        self.spend(1)?;
        if depth > DEPTH_LIMIT {
            return Ok(Captured::Other(format!(
                "nested more than {DEPTH_LIMIT} deep"
            )));
        }
        if let Some(n) = v.as_number() {
            return Ok(Captured::Number(n));
        }
        if let Some(b) = v.as_bool() {
            return Ok(Captured::Bool(b));
        }
        if v.is_undefined() {
            return Ok(Captured::Undefined);
        }
        if v.is_null() {
            return Ok(Captured::Null);
        }
        // An object read before, at this depth or shallower, is the same value again.
        if let Some((seen_at, c)) = self.seen.get(&v) {
            if *seen_at <= depth {
                return Ok(c.clone());
            }
        }
        let c = self.read_object(v.clone(), depth)?;
        self.seen.insert(v, (depth, c.clone()));
        Ok(c)
    }

    fn read_object(&mut self, v: Value<'js>, depth: usize) -> Result<Captured, Stop> {
        let classify: Function = self.flux.get("classify")?;
        let kind: String = classify.call((v.clone(),))?;
        Ok(match kind.as_str() {
            "state" => Captured::State,
            "clock" => Captured::Clock,
            "midi" => Captured::Midi,
            "function" => match self.tag_of(v)? {
                Some((id, values)) => {
                    let mut captures = Vec::with_capacity(values.len());
                    for v in values {
                        captures.push(self.capture(v, depth + 1)?);
                    }
                    Captured::Function { id, captures }
                }
                None => Captured::Other("a function Flux cannot see into".into()),
            },
            "array" => {
                let len: usize = Object::from_value(v.clone())?.get("length")?;
                if len > ARRAY_LIMIT {
                    return Ok(Captured::Other(format!(
                        "an array of more than {ARRAY_LIMIT} elements"
                    )));
                }
                // Refused before reading, so a huge array costs nothing.
                if len > self.left {
                    return Err(Stop::Budget);
                }
                let items = Vec::<Value>::from_js(&v.ctx().clone(), v)?;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.capture(item, depth + 1)?);
                }
                Captured::Array(out.into())
            }
            "object" => {
                let obj = Object::from_value(v)?;
                let mut fields = Vec::new();
                for key in obj.keys::<String>() {
                    let key = key?;
                    let value: Value = obj.get(&key)?;
                    fields.push((key, self.capture(value, depth + 1)?));
                }
                Captured::Object(Arc::from(fields))
            }
            other => match view(other) {
                Some((offset, len)) => Captured::StateView { offset, len },
                None => Captured::Other(other.strip_prefix("other:").unwrap_or(other).to_owned()),
            },
        })
    }
}

/// The slots of a `Float64Array` over the state memory, from the prelude's
/// `view:OFFSET:LEN`.
fn view(kind: &str) -> Option<(usize, usize)> {
    let (offset, len) = kind.strip_prefix("view:")?.split_once(':')?;
    Some((offset.parse().ok()?, len.parse().ok()?))
}

/// FNV-1a, to give each signal its own random sequence from one seed.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
