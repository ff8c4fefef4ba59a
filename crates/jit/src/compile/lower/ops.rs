//! Unary, binary, equality and logical operators, as JavaScript defines them.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, Value};
use oxc_ast::ast::*;
use oxc_span::{GetSpan, Span};
use oxc_syntax::operator::{BinaryOperator, LogicalOperator, UnaryOperator};

use super::Lower;
use crate::compile::values::{describe, Val, R};
use crate::kernel;

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn unary(&mut self, u: &'a UnaryExpression<'a>) -> R<Val> {
        let v = self.expr(&u.argument)?;
        let span = u.span;
        match u.operator {
            UnaryOperator::UnaryNegation => {
                if let Some(k) = self.const_of(&v) {
                    return Ok(Val::Num(self.num_const(-k)));
                }
                let x = self.number(v, span)?;
                Ok(Val::Num(self.b.ins().fneg(x)))
            }
            UnaryOperator::UnaryPlus => Ok(Val::Num(self.number(v, span)?)),
            UnaryOperator::LogicalNot => {
                let t = self.truthy(v, span)?;
                Ok(Val::Bool(self.b.ins().bxor_imm_u(t, 1)))
            }
            UnaryOperator::BitwiseNot => {
                let x = self.number(v, span)?;
                let i = self.int32(x);
                let n = self.b.ins().bnot(i);
                Ok(Val::Num(self.b.ins().fcvt_from_sint(types::F64, n)))
            }
            UnaryOperator::Void => Ok(Val::Undef),
            _ => self.err(span, "typeof and delete"),
        }
    }

    pub(super) fn int32(&mut self, x: Value) -> Value {
        let f = self.refs["flux_to_int32"];
        let call = self.b.ins().call(f, &[x]);
        self.b.inst_results(call)[0]
    }

    pub(super) fn call1(&mut self, symbol: &'static str, x: Value) -> Value {
        let f = self.refs[symbol];
        let call = self.b.ins().call(f, &[x]);
        self.b.inst_results(call)[0]
    }

    pub(super) fn call2(&mut self, symbol: &'static str, x: Value, y: Value) -> Value {
        let f = self.refs[symbol];
        let call = self.b.ins().call(f, &[x, y]);
        self.b.inst_results(call)[0]
    }

    pub(super) fn binary(&mut self, op: BinaryOperator, l: Val, r: Val, span: Span) -> R<Val> {
        use BinaryOperator as B;
        match op {
            B::StrictEquality | B::StrictInequality | B::Equality | B::Inequality => {
                let strict = matches!(op, B::StrictEquality | B::StrictInequality);
                let negate = matches!(op, B::StrictInequality | B::Inequality);
                let eq = self.equals(l, r, strict, span)?;
                Ok(Val::Bool(if negate {
                    self.b.ins().bxor_imm_u(eq, 1)
                } else {
                    eq
                }))
            }
            B::LessThan | B::LessEqualThan | B::GreaterThan | B::GreaterEqualThan => {
                let a = self.number(l, span)?;
                let b = self.number(r, span)?;
                let cc = match op {
                    B::LessThan => FloatCC::LessThan,
                    B::LessEqualThan => FloatCC::LessThanOrEqual,
                    B::GreaterThan => FloatCC::GreaterThan,
                    _ => FloatCC::GreaterThanOrEqual,
                };
                Ok(Val::Bool(self.b.ins().fcmp(cc, a, b)))
            }
            B::Addition
            | B::Subtraction
            | B::Multiplication
            | B::Division
            | B::Remainder
            | B::Exponential => {
                let (ka, kb) = (self.const_of(&l), self.const_of(&r));
                let (ra, rb) = (self.range_of(&l), self.range_of(&r));
                let a = self.number(l, span)?;
                let b = self.number(r, span)?;
                if let (Some(x), Some(y)) = (ka, kb) {
                    let z = match op {
                        B::Addition => x + y,
                        B::Subtraction => x - y,
                        B::Multiplication => x * y,
                        B::Division => x / y,
                        B::Remainder => kernel::js_fmod(x, y),
                        _ => kernel::js_pow(x, y),
                    };
                    return Ok(Val::Num(self.num_const(z)));
                }
                let ins = self.b.ins();
                let z = match op {
                    B::Addition => ins.fadd(a, b),
                    B::Subtraction => ins.fsub(a, b),
                    B::Multiplication => ins.fmul(a, b),
                    B::Division => ins.fdiv(a, b),
                    B::Remainder if kb == Some(1.0) => self.frac(a),
                    B::Remainder => self.call2("flux_fmod", a, b),
                    _ => self.call2("flux_pow", a, b),
                };
                // Sums of integers in known ranges stay integers in known ranges.
                if let (Some((la, ha)), Some((lb, hb))) = (ra, rb) {
                    let range = match op {
                        B::Addition => Some((la + lb, ha + hb)),
                        B::Subtraction => Some((la - hb, ha - lb)),
                        _ => None,
                    };
                    if let Some((lo, hi)) = range.filter(|(lo, hi)| lo.abs().max(hi.abs()) < 9.0e15)
                    {
                        self.ranges.insert(z, (lo, hi));
                    }
                }
                Ok(Val::Num(z))
            }
            B::BitwiseAnd | B::BitwiseOR | B::BitwiseXOR => {
                let a = self.number(l, span)?;
                let b = self.number(r, span)?;
                let (a, b) = (self.int32(a), self.int32(b));
                let ins = self.b.ins();
                let i = match op {
                    B::BitwiseAnd => ins.band(a, b),
                    B::BitwiseOR => ins.bor(a, b),
                    _ => ins.bxor(a, b),
                };
                Ok(Val::Num(self.b.ins().fcvt_from_sint(types::F64, i)))
            }
            B::ShiftLeft | B::ShiftRight | B::ShiftRightZeroFill => {
                let a = self.number(l, span)?;
                let b = self.number(r, span)?;
                let (a, b) = (self.int32(a), self.int32(b));
                let b = self.b.ins().band_imm_u(b, 31);
                let ins = self.b.ins();
                Ok(Val::Num(match op {
                    B::ShiftLeft => {
                        let i = ins.ishl(a, b);
                        self.b.ins().fcvt_from_sint(types::F64, i)
                    }
                    B::ShiftRight => {
                        let i = ins.sshr(a, b);
                        self.b.ins().fcvt_from_sint(types::F64, i)
                    }
                    _ => {
                        let i = ins.ushr(a, b);
                        let w = self.b.ins().uextend(types::I64, i);
                        self.b.ins().fcvt_from_sint(types::F64, w)
                    }
                }))
            }
            _ => self.err(span, "`in` and `instanceof`"),
        }
    }

    /// `x % 1` without a call: `x - trunc(x)` is exact; a zero takes the sign of `x`.
    pub(super) fn frac(&mut self, x: Value) -> Value {
        let t = self.b.ins().trunc(x);
        let r = self.b.ins().fsub(x, t);
        let zero = self.b.ins().f64const(0.0);
        let is_zero = self.b.ins().fcmp(FloatCC::Equal, r, zero);
        let signed = self.b.ins().fcopysign(zero, x);
        self.b.ins().select(is_zero, signed, r)
    }

    pub(super) fn equals(&mut self, l: Val, r: Val, strict: bool, span: Span) -> R<Value> {
        if let (Val::Opaque(what), _) | (_, Val::Opaque(what)) = (&l, &r) {
            return self.err(span, format!("comparing a captured value that is {what}"));
        }
        match (&l, &r) {
            (Val::Maybe(_, ok), Val::Undef | Val::Null)
            | (Val::Undef | Val::Null, Val::Maybe(_, ok)) => {
                return Ok(self.b.ins().bxor_imm_u(*ok, 1));
            }
            _ => {}
        }
        if let (Val::Mixed(x, is_bool), other) | (other, Val::Mixed(x, is_bool)) = (&l, &r) {
            let (x, is_bool) = (*x, *is_bool);
            let (other_num, other_bool) = match other {
                Val::Num(y) | Val::Maybe(y, _) => (*y, false),
                Val::Bool(_) => (self.number(other.clone(), span)?, true),
                Val::Mixed(..) => return self.err(span, "comparing two values of either type"),
                _ => return Ok(self.b.ins().iconst(types::I8, 0)),
            };
            let eq = self.b.ins().fcmp(FloatCC::Equal, x, other_num);
            if !strict {
                return Ok(eq);
            }
            // Strict: the types must match too.
            let same = if other_bool {
                is_bool
            } else {
                self.b.ins().bxor_imm_u(is_bool, 1)
            };
            return Ok(self.b.ins().band(eq, same));
        }
        let plain = |v: Val| match v {
            Val::Maybe(x, _) => Val::Num(x),
            other => other,
        };
        let (l, r) = (plain(l), plain(r));
        let num = |v: &Val| matches!(v, Val::Num(_));
        Ok(match (&l, &r) {
            (Val::Num(a), Val::Num(b)) => self.b.ins().fcmp(FloatCC::Equal, *a, *b),
            (Val::Bool(a), Val::Bool(b)) => self.b.ins().icmp(IntCC::Equal, *a, *b),
            (Val::Undef | Val::Null, Val::Undef | Val::Null) => {
                let same = if strict { l == r } else { true };
                self.b.ins().iconst(types::I8, i64::from(same))
            }
            (Val::Num(_) | Val::Bool(_), Val::Num(_) | Val::Bool(_)) if !strict => {
                let (l, r) = (l.clone(), r.clone());
                let a = self.number(l, span)?;
                let b = self.number(r, span)?;
                self.b.ins().fcmp(FloatCC::Equal, a, b)
            }
            (Val::Num(_) | Val::Bool(_), Val::Undef | Val::Null)
            | (Val::Undef | Val::Null, Val::Num(_) | Val::Bool(_)) => {
                self.b.ins().iconst(types::I8, 0)
            }
            (a, b) if strict && (num(a) || num(b)) => self.b.ins().iconst(types::I8, 0),
            (Val::Num(_) | Val::Bool(_), _) | (_, Val::Num(_) | Val::Bool(_)) => {
                self.b.ins().iconst(types::I8, 0)
            }
            _ => return self.err(span, "comparing objects"),
        })
    }

    pub(super) fn logical(&mut self, l: &'a LogicalExpression<'a>) -> R<Val> {
        let left = self.expr(&l.left)?;
        match l.operator {
            LogicalOperator::Coalesce => match left {
                Val::Undef | Val::Null => self.expr(&l.right),
                Val::Maybe(v, ok) => {
                    // The right side runs only when the slot does not exist.
                    let missing = self.b.create_block();
                    let join = self.b.create_block();
                    self.b.append_block_param(join, types::F64);
                    self.b
                        .ins()
                        .brif(ok, join, &[BlockArg::Value(v)], missing, &[]);
                    self.b.switch_to_block(missing);
                    let r = self.expr(&l.right)?;
                    let r = self.number(r, l.right.span())?;
                    self.b.ins().jump(join, &[BlockArg::Value(r)]);
                    self.b.switch_to_block(join);
                    Ok(Val::Num(self.b.block_params(join)[0]))
                }
                other => Ok(other),
            },
            op => {
                // a && b: a when a is falsy, else b. a || b: a when a is truthy, else b.
                let t = self.truthy(left.clone(), l.left.span())?;
                let take_right = self.b.create_block();
                let keep_left = self.b.create_block();
                if op == LogicalOperator::And {
                    self.b.ins().brif(t, take_right, &[], keep_left, &[]);
                } else {
                    self.b.ins().brif(t, keep_left, &[], take_right, &[]);
                }
                self.b.switch_to_block(take_right);
                let right = self.expr(&l.right)?;
                let arm_right = self.park(right);
                self.merge(vec![(keep_left, left), arm_right], l.span)
            }
        }
    }

    /// A number or boolean as a [`Val::Mixed`].
    pub(super) fn mixed(&mut self, v: Val, span: Span) -> R<Val> {
        Ok(match v {
            Val::Mixed(..) => v,
            Val::Bool(b) => {
                let x = self.number(Val::Bool(b), span)?;
                Val::Mixed(x, self.b.ins().iconst(types::I8, 1))
            }
            Val::Num(x) | Val::Maybe(x, _) => Val::Mixed(x, self.b.ins().iconst(types::I8, 0)),
            other => return self.err(span, format!("`&&`/`||` with {}", describe(&other))),
        })
    }
}
