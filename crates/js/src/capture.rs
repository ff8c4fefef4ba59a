//! Reading what an `update` closure captured, for the native tier.

use flux_jit::{Captured, Request};
use rquickjs::{FromJs, Function, Object, Value};

/// What the native tier needs to compile signal `index`: its `update`'s tag and captures.
pub(crate) fn native_request(
    flux: &Object<'_>,
    index: usize,
    id: &str,
    seed: u64,
) -> Result<Request, String> {
    let describe = || -> rquickjs::Result<Result<Request, String>> {
        let update: Function = flux.get::<_, Function>("update")?.call((index,))?;
        let Some((function, values)) = tag_of(flux, update.into_value())? else {
            return Ok(Err("its update was not written in this file".to_owned()));
        };
        let mut captures = Vec::with_capacity(values.len());
        for v in values {
            captures.push(capture(flux, v, 0)?);
        }
        Ok(Ok(Request {
            id: id.to_owned(),
            function,
            captures,
            seed: seed ^ hash(id),
        }))
    };
    describe().map_err(|e| format!("cannot read its update: {e}"))?
}

/// The tag of a function: its id and its captured values, when the instrumentation saw it.
fn tag_of<'js>(
    flux: &Object<'js>,
    f: Value<'js>,
) -> rquickjs::Result<Option<(usize, Vec<Value<'js>>)>> {
    let tag_of: Function = flux.get("tagOf")?;
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

/// FNV-1a, to give each signal its own random sequence from one seed.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads a captured JavaScript value for the compiler.
fn capture<'js>(flux: &Object<'js>, v: Value<'js>, depth: usize) -> rquickjs::Result<Captured> {
    if depth > 8 {
        return Ok(Captured::Other("nested more than 8 deep".into()));
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
    let classify: Function = flux.get("classify")?;
    let kind: String = classify.call((v.clone(),))?;
    Ok(match kind.as_str() {
        "state" => Captured::State,
        "function" => match tag_of(flux, v)? {
            Some((id, values)) => Captured::Function {
                id,
                captures: values
                    .into_iter()
                    .map(|v| capture(flux, v, depth + 1))
                    .collect::<rquickjs::Result<_>>()?,
            },
            None => Captured::Other("a function Flux cannot see into".into()),
        },
        "array" | "typed" => {
            let items: Vec<Value> = if kind == "typed" {
                let from: Function = flux.get("toArray")?;
                from.call((v,))?
            } else {
                Vec::<Value>::from_js(&v.ctx().clone(), v)?
            };
            if items.len() > 1 << 16 {
                Captured::Other("an array of more than 65536 elements".into())
            } else {
                Captured::Array(
                    items
                        .into_iter()
                        .map(|v| capture(flux, v, depth + 1))
                        .collect::<rquickjs::Result<_>>()?,
                )
            }
        }
        "object" => {
            let obj = Object::from_value(v)?;
            let mut fields = Vec::new();
            for key in obj.keys::<String>() {
                let key = key?;
                let value: Value = obj.get(&key)?;
                fields.push((key, capture(flux, value, depth + 1)?));
            }
            Captured::Object(fields)
        }
        other => Captured::Other(other.strip_prefix("other:").unwrap_or(other).to_owned()),
    })
}
