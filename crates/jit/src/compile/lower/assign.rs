//! Assignments and updates to local variables.

use cranelift_codegen::ir::InstBuilder;
use oxc_ast::ast::*;
use oxc_span::GetSpan;
use oxc_syntax::operator::{AssignmentOperator, BinaryOperator, UpdateOperator};

use super::Lower;
use crate::compile::values::{Binding, Shape, Val, R};

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    /// The binding an identifier assigns to; captured and constant ones cannot be.
    pub(super) fn local_var(&mut self, id: &IdentifierReference<'a>) -> R<Shape> {
        let symbol = id
            .reference_id
            .get()
            .and_then(|r| self.scoping().get_reference(r).symbol_id());
        match symbol.and_then(|s| self.frame().locals.get(&s).cloned()) {
            Some(Binding::Var(shape)) => Ok(shape),
            Some(Binding::Const(_)) => self.err(id.span, "assignment to a constant"),
            None => self.err(
                id.span,
                format!(
                    "assignment to `{}`, a variable from outside update",
                    id.name
                ),
            ),
        }
    }

    pub(super) fn compound(&mut self, op: AssignmentOperator) -> Option<BinaryOperator> {
        use AssignmentOperator as A;
        use BinaryOperator as B;
        Some(match op {
            A::Addition => B::Addition,
            A::Subtraction => B::Subtraction,
            A::Multiplication => B::Multiplication,
            A::Division => B::Division,
            A::Remainder => B::Remainder,
            A::Exponential => B::Exponential,
            A::ShiftLeft => B::ShiftLeft,
            A::ShiftRight => B::ShiftRight,
            A::ShiftRightZeroFill => B::ShiftRightZeroFill,
            A::BitwiseOR => B::BitwiseOR,
            A::BitwiseXOR => B::BitwiseXOR,
            A::BitwiseAnd => B::BitwiseAnd,
            _ => return None,
        })
    }

    pub(super) fn assignment(&mut self, a: &'a AssignmentExpression<'a>) -> R<Val> {
        let op = if a.operator == AssignmentOperator::Assign {
            None
        } else {
            Some(
                self.compound(a.operator)
                    .ok_or_else(|| self.unsupported(a.span.start, "logical assignment"))?,
            )
        };
        match &a.left {
            AssignmentTarget::AssignmentTargetIdentifier(id) => {
                let shape = self.local_var(id)?;
                let v = match op {
                    None => self.expr(&a.right)?,
                    Some(op) => {
                        let old = self.load_shape(&shape);
                        let r = self.expr(&a.right)?;
                        self.binary(op, old, r, a.span)?
                    }
                };
                self.store_shape(&shape, v.clone(), a.span)?;
                Ok(v)
            }
            AssignmentTarget::ComputedMemberExpression(m) => {
                let o = self.expr(&m.object)?;
                let Val::State(offset, len) = o else {
                    return self.err(m.span, "assignment into an array other than mem");
                };
                let i = self.expr(&m.expression)?;
                let x = self.number(i, m.span)?;
                let v = match op {
                    None => self.expr(&a.right)?,
                    Some(op) => {
                        let old = self.index(&o, Val::Num(x), m.span)?;
                        let r = self.expr(&a.right)?;
                        self.binary(op, old, r, a.span)?
                    }
                };
                let n = self.number(v.clone(), a.span)?;
                self.state_store(offset, len, x, n);
                Ok(v)
            }
            AssignmentTarget::ArrayAssignmentTarget(t) if op.is_none() => {
                if t.rest.is_some() {
                    return self.err(t.span, "rest elements");
                }
                let v = self.expr(&a.right)?;
                for (i, el) in t.elements.iter().enumerate() {
                    let Some(el) = el else { continue };
                    let AssignmentTargetMaybeDefault::AssignmentTargetIdentifier(id) = el else {
                        return self.err(t.span, "this destructuring assignment");
                    };
                    let item = self.index_const(&v, i as f64, t.span)?;
                    let shape = self.local_var(id)?;
                    self.store_shape(&shape, item, t.span)?;
                }
                Ok(v)
            }
            other => self.err(other.span(), "this assignment target"),
        }
    }

    pub(super) fn update(&mut self, u: &'a UpdateExpression<'a>) -> R<Val> {
        let delta = if u.operator == UpdateOperator::Increment {
            1.0
        } else {
            -1.0
        };
        match &u.argument {
            SimpleAssignmentTarget::AssignmentTargetIdentifier(id) => {
                let shape = self.local_var(id)?;
                let old = self.load_shape(&shape);
                let old = self.number(old, u.span)?;
                let d = self.b.ins().f64const(delta);
                let new = self.b.ins().fadd(old, d);
                self.store_shape(&shape, Val::Num(new), u.span)?;
                Ok(Val::Num(if u.prefix { new } else { old }))
            }
            SimpleAssignmentTarget::ComputedMemberExpression(m) => {
                let o = self.expr(&m.object)?;
                let Val::State(offset, len) = o else {
                    return self.err(m.span, "`++`/`--` on an array other than mem");
                };
                let i = self.expr(&m.expression)?;
                let x = self.number(i, m.span)?;
                let old = self.index(&o, Val::Num(x), m.span)?;
                let old = self.number(old, m.span)?;
                let d = self.b.ins().f64const(delta);
                let new = self.b.ins().fadd(old, d);
                self.state_store(offset, len, x, new);
                Ok(Val::Num(if u.prefix { new } else { old }))
            }
            other => self.err(other.span(), "this `++`/`--` target"),
        }
    }
}
