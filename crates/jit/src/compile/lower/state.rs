//! Reading fields and elements, and the state memory, with bounds checks.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, MemFlagsData, Value};
use oxc_span::Span;

use super::Lower;
use crate::compile::jit::MATH_CONSTANTS;
use crate::compile::values::{describe, Val, R};
use crate::compile::Captured;
use flux_engine::{Clock, MAX_BLOCK};

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn field(&mut self, o: &Val, key: &str, span: Span) -> R<Val> {
        match o {
            Val::Math => match MATH_CONSTANTS.iter().find(|(k, _)| *k == key) {
                Some((_, x)) => Ok(Val::Num(self.num_const(*x))),
                None => self.err(span, format!("Math.{key} as a value")),
            },
            Val::Midi if key == "voices" => {
                Ok(Val::Num(self.num_const(flux_engine::MIDI_VOICES as f64)))
            }
            Val::Clock | Val::Midi => match Clock::FIELDS.iter().position(|k| *k == key) {
                // `midi` has only the MIDI fields, `clock` only the transport's, as on the
                // JavaScript tier.
                Some(k) if matches!(o, Val::Midi) == Clock::MIDI_FIELDS.contains(&key) => {
                    // Field k of this frame: the frame's base, plus k arrays of MAX_BLOCK.
                    self.clock_read = true;
                    let offset = i32::try_from(k * MAX_BLOCK * 8).expect("a small offset");
                    let v =
                        self.b
                            .ins()
                            .load(types::F64, MemFlagsData::trusted(), self.clock, offset);
                    Ok(Val::Num(v))
                }
                _ => Ok(Val::Undef),
            },
            Val::Tuple(items) if key == "length" => {
                Ok(Val::Num(self.num_const(items.len() as f64)))
            }
            Val::State(_, len) if key == "length" => Ok(Val::Num(self.num_const(*len as f64))),
            Val::Data(Captured::Array(items)) if key == "length" => {
                Ok(Val::Num(self.num_const(items.len() as f64)))
            }
            Val::Obj(fields) => Ok(fields
                .iter()
                .find(|(k, _)| k == key)
                .map_or(Val::Undef, |(_, v)| v.clone())),
            Val::Data(Captured::Object(fields)) => match fields.iter().find(|(k, _)| k == key) {
                Some((_, c)) => {
                    let c = c.clone();
                    self.materialize(&c, span)
                }
                None => Ok(Val::Undef),
            },
            other => self.err(span, format!("the property `{key}` of {}", describe(other))),
        }
    }

    pub(super) fn index_const(&mut self, o: &Val, i: f64, span: Span) -> R<Val> {
        let k = self.num_const(i);
        self.index(o, Val::Num(k), span)
    }

    pub(super) fn index(&mut self, o: &Val, i: Val, span: Span) -> R<Val> {
        let k = self.const_of(&i);
        match o {
            Val::Tuple(items) => match k {
                Some(k) if k >= 0.0 && k.fract() == 0.0 => {
                    Ok(items.get(k as usize).cloned().unwrap_or(Val::Undef))
                }
                Some(_) => Ok(Val::Undef),
                None => self.err(span, "a computed index into a local array"),
            },
            Val::Data(Captured::Array(items)) => match k {
                Some(k) if k >= 0.0 && k.fract() == 0.0 => match items.get(k as usize) {
                    Some(c) => {
                        let c = c.clone();
                        self.materialize(&c, span)
                    }
                    None => Ok(Val::Undef),
                },
                Some(_) => Ok(Val::Undef),
                None => {
                    let mut table = Vec::with_capacity(items.len());
                    for c in items.iter() {
                        match c {
                            Captured::Number(x) => table.push(*x),
                            _ => return self.err(span, "a computed index into a mixed array"),
                        }
                    }
                    let table: Box<[f64]> = table.into_boxed_slice();
                    let base = self.b.ins().iconst(self.ptr, table.as_ptr() as i64);
                    let len = table.len();
                    self.tables.push(table);
                    let x = self.number(i, span)?;
                    let (v, ok) = self.checked_load(base, len, x);
                    Ok(Val::Maybe(v, ok))
                }
            },
            &Val::State(offset, len) => {
                let range = self.range_of(&i);
                let x = self.number(i, span)?;
                if let (None, Some((lo, hi))) = (k, range) {
                    if lo >= 0.0 && hi < len as f64 {
                        // An index in range for every instance of a shared kernel.
                        let addr = self.state_slot(offset, x);
                        let v = self
                            .b
                            .ins()
                            .load(types::F64, MemFlagsData::trusted(), addr, 0);
                        return Ok(Val::Num(v));
                    }
                }
                if let Some(k) = k {
                    if k >= 0.0 && k.fract() == 0.0 && (k as usize) < len {
                        let v = self.b.ins().load(
                            types::F64,
                            MemFlagsData::trusted(),
                            self.state,
                            slot_offset(offset + k as usize),
                        );
                        return Ok(Val::Num(v));
                    }
                    return Ok(Val::Undef);
                }
                let base = self.view_base(offset);
                let (v, ok) = self.checked_load(base, len, x);
                Ok(Val::Maybe(v, ok))
            }
            other => self.err(span, format!("indexing {}", describe(other))),
        }
    }

    /// Computes the slot for index `x` of an array of `len`: (in range, byte offset).
    pub(super) fn slot(&mut self, len: usize, x: Value) -> (Value, Value) {
        let t = self.b.ins().trunc(x);
        let integral = self.b.ins().fcmp(FloatCC::Equal, t, x);
        let zero = self.b.ins().f64const(0.0);
        let nonneg = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, zero);
        let limit = self.b.ins().f64const(len as f64);
        let below = self.b.ins().fcmp(FloatCC::LessThan, x, limit);
        let ok = self.b.ins().band(integral, nonneg);
        let ok = self.b.ins().band(ok, below);
        let i = self.b.ins().fcvt_to_uint_sat(types::I64, x);
        let byte = self.b.ins().imul_imm_s(i, 8);
        (ok, byte)
    }

    /// Loads `base[x]`, or NaN (undefined) when `x` is not an index in `0..len`; also
    /// returns whether it was.
    pub(super) fn checked_load(&mut self, base: Value, len: usize, x: Value) -> (Value, Value) {
        let (ok, byte) = self.slot(len, x);
        let inside = self.b.create_block();
        let join = self.b.create_block();
        self.b.append_block_param(join, types::F64);
        let nan = self.b.ins().f64const(f64::NAN);
        self.b
            .ins()
            .brif(ok, inside, &[], join, &[BlockArg::Value(nan)]);
        self.b.switch_to_block(inside);
        let addr = self.b.ins().iadd(base, byte);
        let v = self
            .b
            .ins()
            .load(types::F64, MemFlagsData::trusted(), addr, 0);
        self.b.ins().jump(join, &[BlockArg::Value(v)]);
        self.b.switch_to_block(join);
        (self.b.block_params(join)[0], ok)
    }

    /// The address of state slot `offset`, where a view of the state memory starts.
    fn view_base(&mut self, offset: usize) -> Value {
        let state = self.state;
        if offset == 0 {
            return state;
        }
        self.b.ins().iadd_imm_u(state, (offset * 8) as i64)
    }

    /// Stores `v` at slot `x` of the view of the state memory at `offset..offset + len`;
    /// nothing happens when `x` is not a slot of it.
    /// The address of slot `x` (an integer known to be in range) of the view at `offset`.
    fn state_slot(&mut self, offset: usize, x: Value) -> Value {
        let i = self.b.ins().fcvt_to_uint_sat(types::I64, x);
        let byte = self.b.ins().imul_imm_s(i, 8);
        let base = self.view_base(offset);
        self.b.ins().iadd(base, byte)
    }

    pub(super) fn state_store(&mut self, offset: usize, len: usize, x: Value, v: Value) {
        if let Some(&(lo, hi)) = self.ranges.get(&x) {
            if lo >= 0.0 && hi < len as f64 {
                let addr = self.state_slot(offset, x);
                self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
                return;
            }
        }
        if let Some(k) = self.consts.get(&x).copied() {
            if k >= 0.0 && k.fract() == 0.0 && (k as usize) < len {
                self.b.ins().store(
                    MemFlagsData::trusted(),
                    v,
                    self.state,
                    slot_offset(offset + k as usize),
                );
            }
            return;
        }
        let (ok, byte) = self.slot(len, x);
        let inside = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(ok, inside, &[], join, &[]);
        self.b.switch_to_block(inside);
        let base = self.view_base(offset);
        let addr = self.b.ins().iadd(base, byte);
        self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
    }
}

/// The byte offset of state slot `slot`, as a load or store's immediate offset.
fn slot_offset(slot: usize) -> i32 {
    // The state memory is far smaller than 2 GiB: its length is checked when it is made.
    i32::try_from(slot * 8).expect("a state slot's byte offset fits in an i32")
}
