//! Lowering an `update` closure to Cranelift IR: the lowering state and bindings.

mod assign;
mod call;
mod expr;
mod merge;
mod midi;
mod ops;
mod state;
mod stmt;

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self, types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use oxc_ast::ast::*;
use oxc_semantic::SymbolId;
use oxc_span::{GetSpan, Span};

use super::values::{Binding, Frame, LoopTarget, Return, Shape, Val, R};
use super::{Captured, FnNode, Request, Shared};
use crate::kernel::{ctx_offset, status};

pub(super) struct Lower<'x, 'f, 'a, 'b> {
    b: &'x mut FunctionBuilder<'f>,
    shared: &'x Shared<'a, 'b>,
    refs: HashMap<&'static str, ir::FuncRef>,
    tables: &'x mut Vec<Box<[f64]>>,
    ptr: types::Type,
    frames: Vec<Frame>,
    loops: Vec<LoopTarget>,
    consts: HashMap<Value, f64>,
    ctx: Value,
    state: Value,
    /// The instance's parameters (`Captured::Param`).
    params: Value,
    /// For each parameter, when it is an integer for every instance: its least and greatest.
    param_ranges: &'x [Option<(f64, f64)>],
    /// Values known to be integers in a range for every instance (parameters and sums of
    /// them with integer constants), so that state indices made of them need no check.
    ranges: HashMap<Value, (f64, f64)>,
    out: Value,
    /// The clock at the current frame (field 0 of it).
    clock: Value,
    /// The clock's start and the current frame (for MIDI in's values).
    clock_base: Value,
    frame_index: Value,
    fuel: Variable,
    fuel_out: ir::Block,
    /// Site of the `update` being compiled.
    update: usize,
    /// Calls inlined so far.
    inlined: usize,
    /// Whether the code reads the transport's clock.
    clock_read: bool,
}

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    pub(super) fn start(
        b: &'x mut FunctionBuilder<'f>,
        shared: &'x Shared<'a, 'b>,
        refs: HashMap<&'static str, ir::FuncRef>,
        tables: &'x mut Vec<Box<[f64]>>,
        ptr: types::Type,
        param_ranges: &'x [Option<(f64, f64)>],
    ) -> Self {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctx = b.block_params(entry)[0];
        let fuel = b.declare_var(types::I64);
        let fuel_out = b.create_block();
        let placeholder = b.ins().iconst(ptr, 0);
        Self {
            b,
            shared,
            refs,
            tables,
            ptr,
            frames: Vec::new(),
            loops: Vec::new(),
            consts: HashMap::new(),
            ctx,
            state: placeholder,
            params: placeholder,
            param_ranges,
            ranges: HashMap::new(),
            out: placeholder,
            clock: placeholder,
            clock_base: placeholder,
            frame_index: placeholder,
            fuel,
            fuel_out,
            update: 0,
            inlined: 0,
            clock_read: false,
        }
    }

    /// Whether the code lowered so far reads the transport's clock.
    pub(super) fn reads_clock(&self) -> bool {
        self.clock_read
    }

    /// The site of the function being lowered (the innermost inlined one).
    fn function(&self) -> usize {
        self.frames.last().map_or(self.update, |f| f.function)
    }

    /// The symbols of the source being lowered.
    fn scoping(&self) -> &'b oxc_semantic::Scoping {
        let source = self
            .shared
            .sites
            .get(self.function())
            .map_or(0, |s| s.source);
        self.shared.sources[source].scoping
    }

    fn unsupported(&self, offset: u32, message: &str) -> super::Unsupported {
        self.shared.unsupported(self.function(), offset, message)
    }

    fn err<T>(&self, span: Span, message: impl Into<String>) -> R<T> {
        Err(self.unsupported(span.start, &message.into()))
    }

    /// The kernel: load the context, loop over frames, run `update` once per frame.
    pub(super) fn kernel_body(&mut self, node: FnNode<'a>, request: &Request) -> R<()> {
        self.update = request.function;
        let flags = MemFlagsData::trusted();
        let ctx = self.ctx;
        self.state = self.b.ins().load(self.ptr, flags, ctx, ctx_offset::STATE);
        self.params = self.b.ins().load(self.ptr, flags, ctx, ctx_offset::PARAMS);
        let out_base = self.b.ins().load(self.ptr, flags, ctx, ctx_offset::OUT);
        let frames = self
            .b
            .ins()
            .load(types::I64, flags, ctx, ctx_offset::FRAMES);
        let sr = self
            .b
            .ins()
            .load(types::F64, flags, ctx, ctx_offset::SAMPLE_RATE);
        let fuel = self.b.ins().load(types::I64, flags, ctx, ctx_offset::FUEL);
        self.b.def_var(self.fuel, fuel);
        let clock_base = self.b.ins().load(self.ptr, flags, ctx, ctx_offset::CLOCK);
        let frame = self.b.declare_var(types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.def_var(frame, zero);

        let head = self.b.create_block();
        let body = self.b.create_block();
        let next = self.b.create_block();
        let done = self.b.create_block();
        let undefined = self.b.create_block();
        self.b.ins().jump(head, &[]);

        self.b.switch_to_block(head);
        let f = self.b.use_var(frame);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, f, frames);
        self.b.ins().brif(more, body, &[], done, &[]);

        self.b.switch_to_block(body);
        let stride = (self.shared.channels * 8) as i64;
        let offset = self.b.ins().imul_imm_s(f, stride);
        self.out = self.b.ins().iadd(out_base, offset);
        let clock_offset = self.b.ins().imul_imm_s(f, 8);
        self.clock = self.b.ins().iadd(clock_base, clock_offset);
        self.clock_base = clock_base;
        self.frame_index = f;
        let captures = self.bind_captures(request.function, &request.captures, node.span())?;
        self.frames.push(Frame {
            function: request.function,
            locals: HashMap::new(),
            captures,
            ret: Return::Update { next },
        });
        // Parameters: the first is the sample rate, the rest are undefined.
        let params: Vec<Val> = vec![Val::Num(sr)];
        self.bind_params(node.params(), &params)?;
        self.function_body(node)?;
        // Falling off the end returns undefined.
        self.jump_dead(undefined);

        self.b.switch_to_block(next);
        let f = self.b.use_var(frame);
        let f1 = self.b.ins().iadd_imm_s(f, 1);
        self.b.def_var(frame, f1);
        self.b.ins().jump(head, &[]);

        self.b.switch_to_block(done);
        let fuel = self.b.use_var(self.fuel);
        self.b.ins().store(flags, fuel, ctx, ctx_offset::FUEL);
        let ok = self.b.ins().iconst(types::I32, i64::from(status::OK));
        self.b.ins().return_(&[ok]);

        self.b.switch_to_block(undefined);
        let s = self
            .b
            .ins()
            .iconst(types::I32, i64::from(status::RETURNED_UNDEFINED));
        self.b.ins().return_(&[s]);

        self.b.switch_to_block(self.fuel_out);
        let s = self
            .b
            .ins()
            .iconst(types::I32, i64::from(status::OUT_OF_FUEL));
        self.b.ins().return_(&[s]);
        Ok(())
    }

    fn bind_captures(
        &self,
        function: usize,
        values: &[Captured],
        span: Span,
    ) -> R<HashMap<String, Captured>> {
        let names = &self.shared.sites[function].captures;
        if names.len() != values.len() {
            return self.err(span, "captured values do not match the function");
        }
        Ok(names.iter().cloned().zip(values.iter().cloned()).collect())
    }

    fn frame(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a frame")
    }

    /// Ends the current block with a jump and continues in a fresh, unreachable one.
    fn jump_dead(&mut self, target: ir::Block) {
        self.b.ins().jump(target, &[]);
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
    }

    fn function_body(&mut self, node: FnNode<'a>) -> R<()> {
        match node {
            FnNode::Arrow(a) => match &a.body {
                ArrowFunctionBody::FunctionBody(body) => self.statements(&body.statements),
                other => {
                    let e = other
                        .as_expression()
                        .ok_or_else(|| self.unsupported(a.span.start, "arrow body"))?;
                    let v = self.expr(e)?;
                    self.do_return(v, e.span())
                }
            },
            FnNode::Func(f) => {
                if f.r#async || f.generator {
                    return self.err(f.span, "async and generator functions");
                }
                match &f.body {
                    Some(body) => self.statements(&body.statements),
                    None => Ok(()),
                }
            }
        }
    }

    fn bind_params(&mut self, params: &'a FormalParameters<'a>, args: &[Val]) -> R<()> {
        if params.rest.is_some() {
            return self.err(params.span, "rest parameters");
        }
        for (i, p) in params.items.iter().enumerate() {
            let mut v = args.get(i).cloned().unwrap_or(Val::Undef);
            if let Some(init) = &p.initializer {
                if v == Val::Undef {
                    v = self.expr(init)?;
                }
            }
            self.bind_pattern(&p.pattern, v, true)?;
        }
        Ok(())
    }

    /// Binds a declaration pattern to a value: `const` keeps the value itself, `let`/`var`
    /// and parameters get variables.
    fn bind_pattern(&mut self, pattern: &'a BindingPattern<'a>, v: Val, mutable: bool) -> R<()> {
        match pattern {
            BindingPattern::BindingIdentifier(id) => {
                let Some(symbol) = id.symbol_id.get() else {
                    return self.err(id.span, "an unresolved binding");
                };
                let binding = if mutable && !self.never_written(symbol) {
                    let shape = self.shape_of(&v);
                    self.store_shape(&shape, v, id.span)?;
                    Binding::Var(shape)
                } else {
                    Binding::Const(v)
                };
                self.frame().locals.insert(symbol, binding);
                Ok(())
            }
            BindingPattern::ArrayPattern(arr) => {
                if arr.rest.is_some() {
                    return self.err(arr.span, "rest elements");
                }
                for (i, el) in arr.elements.iter().enumerate() {
                    if let Some(el) = el {
                        let item = self.index_const(&v, i as f64, arr.span)?;
                        self.bind_pattern(el, item, mutable)?;
                    }
                }
                Ok(())
            }
            BindingPattern::ObjectPattern(obj) => {
                if obj.rest.is_some() {
                    return self.err(obj.span, "rest properties");
                }
                for prop in &obj.properties {
                    let Some(key) = prop.key.static_name().filter(|_| !prop.computed) else {
                        return self.err(prop.span, "computed keys in a pattern");
                    };
                    let item = self.field(&v, &key, prop.span)?;
                    self.bind_pattern(&prop.value, item, mutable)?;
                }
                Ok(())
            }
            BindingPattern::AssignmentPattern(ap) => {
                let v = if v == Val::Undef {
                    self.expr(&ap.right)?
                } else {
                    v
                };
                self.bind_pattern(&ap.left, v, mutable)
            }
        }
    }

    fn never_written(&self, symbol: SymbolId) -> bool {
        !self.scoping().symbol_is_mutated(symbol)
    }

    fn shape_of(&mut self, v: &Val) -> Shape {
        match v {
            Val::Num(_) => Shape::Num(self.b.declare_var(types::F64)),
            Val::Bool(_) => Shape::Bool(self.b.declare_var(types::I8)),
            Val::Undef => Shape::Undef,
            Val::Null => Shape::Null,
            Val::Tuple(items) => Shape::Tuple(items.iter().map(|i| self.shape_of(i)).collect()),
            Val::Obj(fields) => Shape::Obj(
                fields
                    .iter()
                    .map(|(k, i)| (k.clone(), self.shape_of(i)))
                    .collect(),
            ),
            other => Shape::Fixed(other.clone()),
        }
    }

    fn store_shape(&mut self, shape: &Shape, v: Val, span: Span) -> R<()> {
        match (shape, v) {
            (Shape::Num(var), Val::Num(x)) => {
                self.b.def_var(*var, x);
                Ok(())
            }
            (Shape::Bool(var), Val::Bool(x)) => {
                self.b.def_var(*var, x);
                Ok(())
            }
            (Shape::Undef, Val::Undef) | (Shape::Null, Val::Null) => Ok(()),
            (Shape::Tuple(ss), Val::Tuple(vs)) if ss.len() == vs.len() => {
                for (s, v) in ss.iter().zip(vs) {
                    self.store_shape(s, v, span)?;
                }
                Ok(())
            }
            (Shape::Obj(ss), Val::Obj(vs))
                if ss.len() == vs.len() && ss.iter().zip(&vs).all(|(a, b)| a.0 == b.0) =>
            {
                for ((_, s), (_, v)) in ss.iter().zip(vs) {
                    self.store_shape(s, v, span)?;
                }
                Ok(())
            }
            (Shape::Fixed(a), b) if *a == b => Ok(()),
            _ => self.err(span, "a variable that changes type"),
        }
    }

    fn load_shape(&mut self, shape: &Shape) -> Val {
        match shape {
            Shape::Num(var) => Val::Num(self.b.use_var(*var)),
            Shape::Bool(var) => Val::Bool(self.b.use_var(*var)),
            Shape::Undef => Val::Undef,
            Shape::Null => Val::Null,
            Shape::Tuple(ss) => Val::Tuple(ss.iter().map(|s| self.load_shape(s)).collect()),
            Shape::Obj(ss) => Val::Obj(
                ss.iter()
                    .map(|(k, s)| (k.clone(), self.load_shape(s)))
                    .collect(),
            ),
            Shape::Fixed(v) => v.clone(),
        }
    }
}
