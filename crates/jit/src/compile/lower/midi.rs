//! MIDI in's controllers and voices (`midi.cc(n)`, `midi.noteOf(i)`...), read from the
//! block's clock at the current frame.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, MemFlagsData, Value};
use oxc_span::Span;

use super::Lower;
use crate::compile::values::{Val, R};
use flux_engine::midi::at;
use flux_engine::{Clock, MIDI_VOICES};

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    /// `midi.name(args)`: a value of `at`'s layout by its index, 0 for an index out of range
    /// (as on the JavaScript tier).
    pub(super) fn midi_call(&mut self, name: &str, args: Vec<Val>, span: Span) -> R<Val> {
        let (base, len) = match name {
            "cc" => (at::CC, 128),
            "noteOf" => (at::NOTE, MIDI_VOICES),
            "gateOf" => (at::GATE, MIDI_VOICES),
            "velocityOf" => (at::VELOCITY, MIDI_VOICES),
            _ => return self.err(span, format!("calling midi.{name}")),
        };
        let zero = self.b.ins().f64const(0.0);
        let arg = args.into_iter().next().unwrap_or(Val::Undef);
        if arg == Val::Undef {
            return Ok(Val::Num(zero));
        }
        let x = self.number(arg, span)?;
        self.clock_read = true;
        Ok(Val::Num(self.midi_value(base, len, x)))
    }

    /// Value `base + x` of MIDI in's values at this frame, or 0 when `x` is not in `0..len`:
    /// one load when the block has no changes, else the engine's lookup.
    fn midi_value(&mut self, base: usize, len: usize, x: Value) -> Value {
        let flags = MemFlagsData::trusted();
        let (ok, byte) = self.slot(len, x);
        let zero = self.b.ins().f64const(0.0);
        let count_at = (Clock::MIDI_AT + at::VALUES) * 8;
        let count = self.b.ins().load(
            types::F64,
            flags,
            self.clock_base,
            i32::try_from(count_at).expect("a small offset"),
        );
        let still = self.b.ins().fcmp(FloatCC::Equal, count, zero);
        let check = self.b.create_block();
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let join = self.b.create_block();
        self.b.append_block_param(join, types::F64);
        self.b
            .ins()
            .brif(ok, check, &[], join, &[BlockArg::Value(zero)]);
        self.b.switch_to_block(check);
        self.b.ins().brif(still, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        let addr = self.b.ins().iadd(self.clock_base, byte);
        let offset = i32::try_from((Clock::MIDI_AT + base) * 8).expect("a small offset");
        let v = self.b.ins().load(types::F64, flags, addr, offset);
        self.b.ins().jump(join, &[BlockArg::Value(v)]);

        self.b.switch_to_block(slow);
        let i = self.b.ins().ushr_imm_u(byte, 3);
        let k = self.b.ins().iadd_imm_s(i, base as i64);
        let f = self.refs["flux_midi_value"];
        let call = self
            .b
            .ins()
            .call(f, &[self.clock_base, self.frame_index, k]);
        let v = self.b.inst_results(call)[0];
        self.b.ins().jump(join, &[BlockArg::Value(v)]);

        self.b.switch_to_block(join);
        self.b.block_params(join)[0]
    }
}
