//! Calls: captured functions inlined, and `Math` intrinsics.

use std::collections::HashMap;

use cranelift_codegen::ir::{types, InstBuilder, Value};
use oxc_ast::ast::*;
use oxc_span::Span;

use super::stmt::always_returns;
use super::Lower;
use crate::compile::jit::{MATH_1, MATH_2};
use crate::compile::values::{describe, Frame, Return, Val, R};
use crate::compile::Captured;
use crate::kernel::status;

/// Calls one kernel may inline: past it the code is too large to compile quickly (and to
/// run in a block's time), and the signal stays on the JavaScript tier.
pub(crate) const MAX_INLINED: usize = 4_096;

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn args(&mut self, c: &'a CallExpression<'a>) -> R<Vec<Val>> {
        let mut out = Vec::new();
        for a in &c.arguments {
            let Some(e) = a.as_expression() else {
                return self.err(c.span, "spread arguments");
            };
            out.push(self.expr(e)?);
        }
        Ok(out)
    }

    pub(super) fn call(&mut self, c: &'a CallExpression<'a>) -> R<Val> {
        if c.optional {
            return self.err(c.span, "optional calls");
        }
        // Math.f(...)
        if let Expression::StaticMemberExpression(m) = &c.callee {
            if let Expression::Identifier(id) = &m.object {
                match self.identifier(id)? {
                    Val::Math => {
                        let args = self.args(c)?;
                        return self.math(m.property.name.as_str(), args, c.span);
                    }
                    Val::Midi => {
                        let args = self.args(c)?;
                        return self.midi_call(m.property.name.as_str(), args, c.span);
                    }
                    _ => {}
                }
            }
        }
        let callee = self.expr(&c.callee)?;
        let Val::Func(function, captures) = callee else {
            return self.err(c.span, format!("calling {}", describe(&callee)));
        };
        let args = self.args(c)?;
        self.inline(function, &captures, args, c.span)
    }

    pub(super) fn inline(
        &mut self,
        function: usize,
        captures: &[Captured],
        args: Vec<Val>,
        span: Span,
    ) -> R<Val> {
        if self.frames.iter().any(|f| f.function == function) {
            return self.err(span, "a recursive call");
        }
        if self.frames.len() > 32 {
            return self.err(span, "calls nested more than 32 deep");
        }
        self.inlined += 1;
        if self.inlined > MAX_INLINED {
            return self.err(
                span,
                format!("more than {MAX_INLINED} calls to inline (helpers that call each other many times over)"),
            );
        }
        let Some(node) = self.shared.node(function) else {
            return self.err(span, "calling a function the compiler cannot see");
        };
        let captures = self.bind_captures(function, captures, span)?;
        let exit = self.b.create_block();
        self.frames.push(Frame {
            function,
            locals: HashMap::new(),
            captures,
            ret: Return::Inline {
                exit,
                skeleton: None,
            },
        });
        let saved_loops = std::mem::take(&mut self.loops);
        let result = (|| {
            self.bind_params(node.params(), &args)?;
            self.function_body(node)
        })();
        self.loops = saved_loops;
        let frame = self.frames.pop().expect("the inlined frame");
        result?;
        let Return::Inline { skeleton, .. } = frame.ret else {
            unreachable!("an inlined frame returns inline")
        };
        match skeleton {
            None => {
                // No return: the call gives undefined.
                self.b.ins().jump(exit, &[]);
                self.b.switch_to_block(exit);
                Ok(Val::Undef)
            }
            Some(sk) => {
                if !always_returns(node) {
                    return self.err(node.span(), "a function that does not return on every path");
                }
                // The end of the body is unreachable; close its block.
                let s = self
                    .b
                    .ins()
                    .iconst(types::I32, i64::from(status::RETURNED_UNDEFINED));
                self.b.ins().return_(&[s]);
                self.b.switch_to_block(exit);
                let params = self.b.block_params(exit).to_vec();
                Ok(Self::rebuild(&sk, &mut params.into_iter()))
            }
        }
    }

    pub(super) fn math(&mut self, name: &str, args: Vec<Val>, span: Span) -> R<Val> {
        let mut nums = Vec::with_capacity(args.len());
        for a in args {
            nums.push(self.number(a, span)?);
        }
        let arg = |i: usize, this: &mut Self| -> Value {
            nums.get(i)
                .copied()
                .unwrap_or_else(|| this.num_const(f64::NAN))
        };
        if let Some((_, symbol, f)) = MATH_1.iter().find(|(n, _, _)| *n == name) {
            let x = arg(0, self);
            if let Some(k) = self.consts.get(&x).copied() {
                return Ok(Val::Num(self.num_const(f(k))));
            }
            return Ok(Val::Num(self.call1(symbol, x)));
        }
        if let Some((_, symbol, _)) = MATH_2.iter().find(|(n, _, _)| *n == name && *n != "%") {
            if name == "hypot" && nums.len() != 2 {
                return self.err(span, "Math.hypot with other than two arguments");
            }
            let (x, y) = (arg(0, self), arg(1, self));
            return Ok(Val::Num(self.call2(symbol, x, y)));
        }
        Ok(Val::Num(match name {
            "abs" => {
                let x = arg(0, self);
                self.b.ins().fabs(x)
            }
            "floor" => {
                let x = arg(0, self);
                self.b.ins().floor(x)
            }
            "ceil" => {
                let x = arg(0, self);
                self.b.ins().ceil(x)
            }
            "trunc" => {
                let x = arg(0, self);
                self.b.ins().trunc(x)
            }
            "sqrt" => {
                let x = arg(0, self);
                self.b.ins().sqrt(x)
            }
            "fround" => {
                let x = arg(0, self);
                let f = self.b.ins().fdemote(types::F32, x);
                self.b.ins().fpromote(types::F64, f)
            }
            "min" | "max" => {
                let Some((&first, rest)) = nums.split_first() else {
                    let inf = if name == "min" {
                        f64::INFINITY
                    } else {
                        f64::NEG_INFINITY
                    };
                    return Ok(Val::Num(self.num_const(inf)));
                };
                let mut acc = first;
                for &x in rest {
                    acc = if name == "min" {
                        self.b.ins().fmin(acc, x)
                    } else {
                        self.b.ins().fmax(acc, x)
                    };
                }
                acc
            }
            "clz32" => {
                let x = arg(0, self);
                let i = self.int32(x);
                let n = self.b.ins().clz(i);
                self.b.ins().fcvt_from_sint(types::F64, n)
            }
            "imul" => {
                let (x, y) = (arg(0, self), arg(1, self));
                let (a, b) = (self.int32(x), self.int32(y));
                let p = self.b.ins().imul(a, b);
                self.b.ins().fcvt_from_sint(types::F64, p)
            }
            "random" => {
                let f = self.refs["flux_random"];
                let ctx = self.ctx;
                let call = self.b.ins().call(f, &[ctx]);
                self.b.inst_results(call)[0]
            }
            other => return self.err(span, format!("Math.{other}")),
        }))
    }
}
