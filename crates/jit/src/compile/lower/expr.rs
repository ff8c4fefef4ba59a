//! Lowering expressions and identifiers.

use oxc_ast::ast::*;
use oxc_span::GetSpan;

use super::Lower;
use crate::compile::values::{Binding, Val, R};

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn expr(&mut self, e: &'a Expression<'a>) -> R<Val> {
        match e {
            Expression::NumericLiteral(n) => Ok(Val::Num(self.num_const(n.value))),
            Expression::BooleanLiteral(b) => Ok(self.bool_val(b.value)),
            Expression::NullLiteral(_) => Ok(Val::Null),
            Expression::ParenthesizedExpression(p) => self.expr(&p.expression),
            Expression::SequenceExpression(s) => {
                let mut last = Val::Undef;
                for e in &s.expressions {
                    last = self.expr(e)?;
                }
                Ok(last)
            }
            Expression::Identifier(id) => self.identifier(id),
            Expression::ArrayExpression(a) => {
                let mut items = Vec::new();
                for el in &a.elements {
                    match el {
                        ArrayExpressionElement::Elision(_) => items.push(Val::Undef),
                        ArrayExpressionElement::SpreadElement(s) => {
                            return self.err(s.span, "spread elements")
                        }
                        other => {
                            let e = other.as_expression().expect("an expression element");
                            items.push(self.expr(e)?);
                        }
                    }
                }
                Ok(Val::Tuple(items))
            }
            Expression::ObjectExpression(o) => {
                let mut fields: Vec<(String, Val)> = Vec::new();
                for p in &o.properties {
                    let ObjectPropertyKind::ObjectProperty(p) = p else {
                        return self.err(o.span, "spread properties");
                    };
                    if p.method || p.kind != PropertyKind::Init || p.computed {
                        return self.err(p.span, "methods, accessors and computed keys");
                    }
                    let Some(key) = p.key.static_name() else {
                        return self.err(p.span, "this property key");
                    };
                    let v = self.expr(&p.value)?;
                    fields.retain(|(k, _)| k.as_str() != key.as_ref());
                    fields.push((key.into_owned(), v));
                }
                Ok(Val::Obj(fields))
            }
            Expression::UnaryExpression(u) => self.unary(u),
            Expression::BinaryExpression(bin) => {
                let l = self.expr(&bin.left)?;
                let r = self.expr(&bin.right)?;
                self.binary(bin.operator, l, r, bin.span)
            }
            Expression::LogicalExpression(l) => self.logical(l),
            Expression::ConditionalExpression(c) => {
                let t = self.expr(&c.test)?;
                if let Some(k) = self.const_of(&t) {
                    let pick = k != 0.0 && !k.is_nan();
                    return self.expr(if pick { &c.consequent } else { &c.alternate });
                }
                let t = self.truthy(t, c.test.span())?;
                self.choose(t, &c.consequent, &c.alternate, c.span)
            }
            Expression::AssignmentExpression(a) => self.assignment(a),
            Expression::UpdateExpression(u) => self.update(u),
            Expression::CallExpression(c) => self.call(c),
            Expression::StaticMemberExpression(m) => {
                if m.optional {
                    return self.err(m.span, "optional chaining");
                }
                let o = self.expr(&m.object)?;
                self.field(&o, m.property.name.as_str(), m.span)
            }
            Expression::ComputedMemberExpression(m) => {
                if m.optional {
                    return self.err(m.span, "optional chaining");
                }
                let o = self.expr(&m.object)?;
                if let Expression::StringLiteral(s) = &m.expression {
                    return self.field(&o, s.value.as_str(), m.span);
                }
                let i = self.expr(&m.expression)?;
                self.index(&o, i, m.span)
            }
            Expression::StringLiteral(s) => self.err(s.span, "strings"),
            Expression::TemplateLiteral(s) => self.err(s.span, "template strings"),
            Expression::ThisExpression(t) => self.err(t.span, "`this`"),
            Expression::ArrowFunctionExpression(f) => {
                self.err(f.span, "a function defined inside update")
            }
            Expression::FunctionExpression(f) => {
                self.err(f.span, "a function defined inside update")
            }
            Expression::NewExpression(n) => self.err(n.span, "`new`"),
            other => self.err(other.span(), "this expression"),
        }
    }

    pub(super) fn identifier(&mut self, id: &IdentifierReference<'a>) -> R<Val> {
        let symbol = id
            .reference_id
            .get()
            .and_then(|r| self.scoping().get_reference(r).symbol_id());
        if let Some(symbol) = symbol {
            if let Some(binding) = self.frame().locals.get(&symbol).cloned() {
                return Ok(match binding {
                    Binding::Const(v) => v,
                    Binding::Var(shape) => self.load_shape(&shape),
                });
            }
        }
        let name = id.name.as_str();
        if let Some(c) = self.frame().captures.get(name).cloned() {
            return self.materialize(&c, id.span);
        }
        if symbol.is_some() {
            return self.err(id.span, format!("`{name}` used before its declaration"));
        }
        if let Some((_, c)) = self.shared.globals.iter().find(|(n, _)| n == name) {
            let c = c.clone();
            return self.materialize(&c, id.span);
        }
        match name {
            "undefined" => Ok(Val::Undef),
            "NaN" => Ok(Val::Num(self.num_const(f64::NAN))),
            "Infinity" => Ok(Val::Num(self.num_const(f64::INFINITY))),
            "Math" => Ok(Val::Math),
            "clock" => Ok(Val::Clock),
            "midi" => Ok(Val::Midi),
            "FLUX_STATE" => Ok(Val::State(0, self.shared.state_len)),
            _ => self.err(id.span, format!("the global `{name}`")),
        }
    }
}
