//! Conversions between values, and merging values where control flow joins.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self, types, BlockArg, InstBuilder, Value};
use oxc_ast::ast::*;
use oxc_span::Span;

use super::Lower;
use crate::compile::values::{describe, Skeleton, Val, R};
use crate::compile::Captured;

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn num_const(&mut self, x: f64) -> Value {
        let v = self.b.ins().f64const(x);
        self.consts.insert(v, x);
        v
    }

    pub(super) fn const_of(&self, v: &Val) -> Option<f64> {
        match v {
            Val::Num(x) => self.consts.get(x).copied(),
            _ => None,
        }
    }

    /// The integer range `v` has for every instance of the kernel, when it is known: a
    /// constant integer, a parameter, or sums of those.
    pub(super) fn range_of(&self, v: &Val) -> Option<(f64, f64)> {
        let Val::Num(x) = v else { return None };
        match self.consts.get(x) {
            Some(&c) if c.fract() == 0.0 && c.abs() < 9.0e15 => Some((c, c)),
            Some(_) => None,
            None => self.ranges.get(x).copied(),
        }
    }

    pub(super) fn materialize(&mut self, c: &Captured, span: Span) -> R<Val> {
        Ok(match c {
            Captured::Number(x) => Val::Num(self.num_const(*x)),
            Captured::Param(i) => {
                let flags = cranelift_codegen::ir::MemFlagsData::trusted().with_readonly();
                let offset = i32::try_from(*i * 8).map_err(|_| {
                    self.unsupported(span.start, "more captured numbers than a kernel takes")
                })?;
                let v = self.b.ins().load(types::F64, flags, self.params, offset);
                if let Some(Some(range)) = self.param_ranges.get(*i) {
                    self.ranges.insert(v, *range);
                }
                Val::Num(v)
            }
            Captured::Bool(b) => Val::Bool(self.b.ins().iconst(types::I8, i64::from(*b))),
            Captured::Undefined => Val::Undef,
            Captured::Null => Val::Null,
            Captured::State => Val::State(0, self.shared.state_len),
            Captured::StateView { offset, len } => {
                if offset
                    .checked_add(*len)
                    .is_none_or(|end| end > self.shared.state_len)
                {
                    return self.err(span, "a view past the end of mem");
                }
                Val::State(*offset, *len)
            }
            Captured::Function { id, captures } => Val::Func(*id, captures.clone()),
            Captured::Clock => Val::Clock,
            Captured::Midi => Val::Midi,
            Captured::Array(_) | Captured::Object(_) => Val::Data(c.clone()),
            Captured::Other(what) => {
                let _ = span;
                Val::Opaque(what.clone())
            }
        })
    }

    /// ToNumber for the types the kernel has.
    pub(super) fn number(&mut self, v: Val, span: Span) -> R<Value> {
        Ok(match v {
            Val::Num(x) | Val::Maybe(x, _) | Val::Mixed(x, _) => x,
            Val::Bool(b) => {
                let w = self.b.ins().uextend(types::I32, b);
                self.b.ins().fcvt_from_uint(types::F64, w)
            }
            Val::Undef => self.num_const(f64::NAN),
            Val::Null => self.num_const(0.0),
            other => return self.err(span, format!("arithmetic on {}", describe(&other))),
        })
    }

    /// ToBoolean, as an i8 0 or 1.
    pub(super) fn truthy(&mut self, v: Val, span: Span) -> R<Value> {
        Ok(match v {
            Val::Bool(b) => b,
            Val::Maybe(x, _) | Val::Mixed(x, _) => {
                let zero = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::OrderedNotEqual, x, zero)
            }
            Val::Num(x) => {
                if let Some(c) = self.consts.get(&x) {
                    let t = *c != 0.0 && !c.is_nan();
                    return Ok(self.b.ins().iconst(types::I8, i64::from(t)));
                }
                let zero = self.b.ins().f64const(0.0);
                // x != 0 and x == x: "ordered and not equal".
                self.b.ins().fcmp(FloatCC::OrderedNotEqual, x, zero)
            }
            Val::Undef | Val::Null => self.b.ins().iconst(types::I8, 0),
            Val::Tuple(_)
            | Val::Obj(_)
            | Val::Data(_)
            | Val::Func(..)
            | Val::State(..)
            | Val::Math
            | Val::Clock
            | Val::Midi => {
                let _ = span;
                self.b.ins().iconst(types::I8, 1)
            }
            Val::Opaque(what) => {
                return self.err(span, format!("a captured value that is {what}"));
            }
        })
    }

    pub(super) fn bool_val(&mut self, b: bool) -> Val {
        Val::Bool(self.b.ins().iconst(types::I8, i64::from(b)))
    }

    pub(super) fn flatten(&mut self, v: &Val) -> (Skeleton, Vec<Value>) {
        let mut parts = Vec::new();
        let sk = self.flatten_into(v, &mut parts);
        (sk, parts)
    }

    pub(super) fn flatten_into(&mut self, v: &Val, parts: &mut Vec<Value>) -> Skeleton {
        match v {
            Val::Num(x) | Val::Maybe(x, _) => {
                parts.push(*x);
                Skeleton::Num
            }
            Val::Bool(x) => {
                parts.push(*x);
                Skeleton::Bool
            }
            Val::Mixed(x, is_bool) => {
                parts.push(*x);
                parts.push(*is_bool);
                Skeleton::Mixed
            }
            Val::Tuple(items) => {
                Skeleton::Tuple(items.iter().map(|i| self.flatten_into(i, parts)).collect())
            }
            Val::Obj(fields) => Skeleton::Obj(
                fields
                    .iter()
                    .map(|(k, i)| (k.clone(), self.flatten_into(i, parts)))
                    .collect(),
            ),
            other => Skeleton::Fixed(other.clone()),
        }
    }

    pub(super) fn rebuild(sk: &Skeleton, parts: &mut impl Iterator<Item = Value>) -> Val {
        match sk {
            Skeleton::Num => Val::Num(parts.next().expect("a part")),
            Skeleton::Bool => Val::Bool(parts.next().expect("a part")),
            Skeleton::Mixed => {
                let x = parts.next().expect("a part");
                Val::Mixed(x, parts.next().expect("a part"))
            }
            Skeleton::Tuple(items) => {
                Val::Tuple(items.iter().map(|i| Self::rebuild(i, parts)).collect())
            }
            Skeleton::Obj(fields) => Val::Obj(
                fields
                    .iter()
                    .map(|(k, i)| (k.clone(), Self::rebuild(i, parts)))
                    .collect(),
            ),
            Skeleton::Fixed(v) => v.clone(),
        }
    }

    /// Evaluates `a` or `b` depending on `cond`, merging the two values.
    pub(super) fn choose(
        &mut self,
        cond: Value,
        a: &'a Expression<'a>,
        b: &'a Expression<'a>,
        span: Span,
    ) -> R<Val> {
        let then = self.b.create_block();
        let other = self.b.create_block();
        self.b.ins().brif(cond, then, &[], other, &[]);
        self.b.switch_to_block(then);
        let va = self.expr(a)?;
        let arm_a = self.park(va);
        self.b.switch_to_block(other);
        let vb = self.expr(b)?;
        let arm_b = self.park(vb);
        self.merge(vec![arm_a, arm_b], span)
    }

    /// Ends the current block by passing `v` to a fresh block; returns that block and `v`
    /// as seen there.
    pub(super) fn park(&mut self, v: Val) -> (ir::Block, Val) {
        let (sk, parts) = self.flatten(&v);
        let block = self.b.create_block();
        for p in &parts {
            let ty = self.b.func.dfg.value_type(*p);
            self.b.append_block_param(block, ty);
        }
        let args: Vec<BlockArg> = parts.iter().map(|p| BlockArg::Value(*p)).collect();
        self.b.ins().jump(block, &args);
        let params = self.b.func.dfg.block_params(block).to_vec();
        (block, Self::rebuild(&sk, &mut params.into_iter()))
    }

    /// Joins values, each usable in its own fresh (not yet entered) block, into one.
    /// Values of one type merge as they are; numbers and booleans merge as values of
    /// either type.
    pub(super) fn merge(&mut self, arms: Vec<(ir::Block, Val)>, span: Span) -> R<Val> {
        let scalar = |v: &Val| {
            matches!(
                v,
                Val::Num(_) | Val::Bool(_) | Val::Maybe(..) | Val::Mixed(..)
            )
        };
        let mut skeletons = Vec::new();
        for (_, v) in &arms {
            let mut parts = Vec::new();
            skeletons.push(self.flatten_into(v, &mut parts));
        }
        let mixed = skeletons.windows(2).any(|w| w[0] != w[1]);
        if mixed && !arms.iter().all(|(_, v)| scalar(v)) {
            return self.err(span, "branches that give different types");
        }
        let join = self.b.create_block();
        let mut target = None;
        for (end, v) in arms {
            self.b.switch_to_block(end);
            let v = if mixed { self.mixed(v, span)? } else { v };
            let (sk, parts) = self.flatten(&v);
            if target.is_none() {
                for p in &parts {
                    let ty = self.b.func.dfg.value_type(*p);
                    self.b.append_block_param(join, ty);
                }
                target = Some(sk);
            }
            let args: Vec<BlockArg> = parts.iter().map(|p| BlockArg::Value(*p)).collect();
            self.b.ins().jump(join, &args);
        }
        self.b.switch_to_block(join);
        let params = self.b.block_params(join).to_vec();
        Ok(Self::rebuild(
            &target.expect("at least one arm"),
            &mut params.into_iter(),
        ))
    }
}
