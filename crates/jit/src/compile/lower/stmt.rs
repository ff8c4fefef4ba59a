//! Lowering statements: blocks, branches, loops with fuel, returns and the output.

use cranelift_codegen::ir::{self, types, BlockArg, InstBuilder, MemFlagsData};
use oxc_ast::ast::*;
use oxc_span::{GetSpan, Span};

use super::Lower;
use crate::compile::values::{describe, LoopTarget, Return, Val, R};
use crate::compile::{Captured, FnNode};
use crate::kernel::status;

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn statements(&mut self, list: &'a [Statement<'a>]) -> R<()> {
        for s in list {
            self.statement(s)?;
        }
        Ok(())
    }

    pub(super) fn statement(&mut self, s: &'a Statement<'a>) -> R<()> {
        match s {
            Statement::VariableDeclaration(d) => self.declaration(d),
            Statement::ExpressionStatement(e) => self.expr(&e.expression).map(drop),
            Statement::ReturnStatement(r) => {
                let v = match &r.argument {
                    Some(e) => self.expr(e)?,
                    None => Val::Undef,
                };
                self.do_return(v, r.span)
            }
            Statement::BlockStatement(b) => self.statements(&b.body),
            Statement::EmptyStatement(_) => Ok(()),
            Statement::IfStatement(i) => {
                let c = self.expr(&i.test)?;
                let c = self.truthy(c, i.test.span())?;
                let then = self.b.create_block();
                let other = self.b.create_block();
                let join = self.b.create_block();
                self.b.ins().brif(c, then, &[], other, &[]);
                self.b.switch_to_block(then);
                self.statement(&i.consequent)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(other);
                if let Some(alt) = &i.alternate {
                    self.statement(alt)?;
                }
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
                Ok(())
            }
            Statement::ForStatement(f) => {
                if let Some(init) = &f.init {
                    match init {
                        ForStatementInit::VariableDeclaration(d) => self.declaration(d)?,
                        other => {
                            let e = other.as_expression().ok_or_else(|| {
                                self.unsupported(f.span.start, "this loop header")
                            })?;
                            self.expr(e)?;
                        }
                    }
                }
                let head = self.b.create_block();
                let body = self.b.create_block();
                let cont = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(head);
                match &f.test {
                    Some(t) => {
                        let c = self.expr(t)?;
                        let c = self.truthy(c, t.span())?;
                        self.b.ins().brif(c, body, &[], exit, &[]);
                    }
                    None => {
                        self.b.ins().jump(body, &[]);
                    }
                }
                self.b.switch_to_block(body);
                self.loops.push(LoopTarget { cont, exit });
                self.statement(&f.body)?;
                self.loops.pop();
                self.b.ins().jump(cont, &[]);
                self.b.switch_to_block(cont);
                if let Some(u) = &f.update {
                    self.expr(u)?;
                }
                self.back_edge(head);
                self.b.switch_to_block(exit);
                Ok(())
            }
            Statement::WhileStatement(w) => {
                let head = self.b.create_block();
                let body = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(head);
                let c = self.expr(&w.test)?;
                let c = self.truthy(c, w.test.span())?;
                self.b.ins().brif(c, body, &[], exit, &[]);
                self.b.switch_to_block(body);
                let cont = self.b.create_block();
                self.loops.push(LoopTarget { cont, exit });
                self.statement(&w.body)?;
                self.loops.pop();
                self.b.ins().jump(cont, &[]);
                self.b.switch_to_block(cont);
                self.back_edge(head);
                self.b.switch_to_block(exit);
                Ok(())
            }
            Statement::DoWhileStatement(w) => {
                let body = self.b.create_block();
                let cont = self.b.create_block();
                let again = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(body, &[]);
                self.b.switch_to_block(body);
                self.loops.push(LoopTarget { cont, exit });
                self.statement(&w.body)?;
                self.loops.pop();
                self.b.ins().jump(cont, &[]);
                self.b.switch_to_block(cont);
                let c = self.expr(&w.test)?;
                let c = self.truthy(c, w.test.span())?;
                self.b.ins().brif(c, again, &[], exit, &[]);
                self.b.switch_to_block(again);
                self.back_edge(body);
                self.b.switch_to_block(exit);
                Ok(())
            }
            Statement::BreakStatement(s) => {
                if s.label.is_some() {
                    return self.err(s.span, "labelled break");
                }
                let Some(target) = self.loops.last().map(|l| l.exit) else {
                    return self.err(s.span, "break outside a loop");
                };
                self.jump_dead(target);
                Ok(())
            }
            Statement::ContinueStatement(s) => {
                if s.label.is_some() {
                    return self.err(s.span, "labelled continue");
                }
                let Some(target) = self.loops.last().map(|l| l.cont) else {
                    return self.err(s.span, "continue outside a loop");
                };
                self.jump_dead(target);
                Ok(())
            }
            other => self.err(other.span(), statement_name(other)),
        }
    }

    /// Jumps back to a loop head, spending one unit of fuel.
    pub(super) fn back_edge(&mut self, head: ir::Block) {
        let fuel = self.b.use_var(self.fuel);
        let left = self.b.ins().iadd_imm_s(fuel, -1);
        self.b.def_var(self.fuel, left);
        self.b.ins().brif(left, head, &[], self.fuel_out, &[]);
    }

    pub(super) fn declaration(&mut self, d: &'a VariableDeclaration<'a>) -> R<()> {
        let mutable = match d.kind {
            VariableDeclarationKind::Const => false,
            VariableDeclarationKind::Let | VariableDeclarationKind::Var => true,
            _ => return self.err(d.span, "using declarations"),
        };
        for decl in &d.declarations {
            let v = match &decl.init {
                Some(e) => self.expr(e)?,
                None => {
                    return self.err(
                        decl.span,
                        "a variable declared without a value (give it one, e.g. `let y = 0;`)",
                    )
                }
            };
            self.bind_pattern(&decl.id, v, mutable)?;
        }
        Ok(())
    }

    pub(super) fn do_return(&mut self, v: Val, span: Span) -> R<()> {
        let (exit, skeleton) = match &self.frame().ret {
            Return::Update { next } => {
                let next = *next;
                self.write_output(v, span)?;
                self.jump_dead(next);
                return Ok(());
            }
            Return::Inline { exit, skeleton } => (*exit, skeleton.clone()),
        };
        let (sk, parts) = self.flatten(&v);
        match &skeleton {
            Some(expected) if *expected != sk => {
                return self.err(span, "returns of different types");
            }
            Some(_) => {}
            None => {
                for p in &parts {
                    let ty = self.b.func.dfg.value_type(*p);
                    self.b.append_block_param(exit, ty);
                }
                self.frame().ret = Return::Inline {
                    exit,
                    skeleton: Some(sk),
                };
            }
        }
        let args: Vec<BlockArg> = parts.iter().map(|p| BlockArg::Value(*p)).collect();
        self.b.ins().jump(exit, &args);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
        Ok(())
    }

    /// Writes `update`'s result to this frame's output channels, as the JavaScript tier maps
    /// it: a number or a one-element array on every channel, longer arrays channel by
    /// channel, channels beyond the output's dropped, missing ones silent.
    pub(super) fn write_output(&mut self, v: Val, span: Span) -> R<()> {
        let channels = self.shared.channels;
        let v = match v {
            Val::Maybe(x, _) => Val::Num(x),
            other => other,
        };
        let items: Vec<Val> = match v {
            Val::Num(x) => vec![Val::Num(x); channels],
            Val::Tuple(items) if items.is_empty() => {
                return self.err(
                    span,
                    "returning an empty array (the JavaScript tier reports it)",
                );
            }
            Val::Tuple(items) if items.len() == 1 => vec![items[0].clone(); channels],
            Val::Tuple(items) => items,
            Val::Data(Captured::Array(items)) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    out.push(self.materialize(item, span)?);
                }
                if out.len() == 1 {
                    vec![out[0].clone(); channels]
                } else {
                    out
                }
            }
            Val::Undef => {
                // The JavaScript tier throws; the kernel reports the same.
                let s = self
                    .b
                    .ins()
                    .iconst(types::I32, i64::from(status::RETURNED_UNDEFINED));
                self.b.ins().return_(&[s]);
                let dead = self.b.create_block();
                self.b.switch_to_block(dead);
                return Ok(());
            }
            other => return self.err(span, format!("update returns {}", describe(&other))),
        };
        // Every channel is written, missing ones as 0: the engine need not clear the block.
        let mut items = items.into_iter();
        for c in 0..channels {
            let x = match items.next().unwrap_or(Val::Undef) {
                Val::Num(x) | Val::Maybe(x, _) => x,
                Val::Undef => self.b.ins().f64const(0.0),
                other => {
                    return self.err(
                        span,
                        format!("update returns {} on channel {c}", describe(&other)),
                    )
                }
            };
            self.b
                .ins()
                .store(MemFlagsData::trusted(), x, self.out, (c * 8) as i32);
        }
        Ok(())
    }
}

/// True when the body of `node` cannot end without a `return`.
pub(super) fn always_returns(node: FnNode<'_>) -> bool {
    fn ends(list: &[Statement<'_>]) -> bool {
        list.last().is_some_and(returns)
    }
    fn returns(s: &Statement<'_>) -> bool {
        match s {
            Statement::ReturnStatement(_) => true,
            Statement::BlockStatement(b) => ends(&b.body),
            Statement::IfStatement(i) => {
                returns(&i.consequent) && i.alternate.as_ref().is_some_and(returns)
            }
            _ => false,
        }
    }
    match node {
        FnNode::Arrow(a) => match &a.body {
            ArrowFunctionBody::FunctionBody(b) => ends(&b.statements),
            _ => true,
        },
        FnNode::Func(f) => f.body.as_ref().is_some_and(|b| ends(&b.statements)),
    }
}

fn statement_name(s: &Statement<'_>) -> &'static str {
    match s {
        Statement::FunctionDeclaration(_) => "a function declared inside update",
        Statement::SwitchStatement(_) => "switch",
        Statement::TryStatement(_) => "try",
        Statement::ThrowStatement(_) => "throw",
        Statement::ForInStatement(_) => "for-in",
        Statement::ForOfStatement(_) => "for-of",
        Statement::LabeledStatement(_) => "labels",
        Statement::ClassDeclaration(_) => "classes",
        _ => "this statement",
    }
}
