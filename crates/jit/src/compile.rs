//! From an `update` closure's source and captured values to a Cranelift kernel.
//!
//! The kernel renders a whole block: the frame loop is inside it. Values are typed
//! statically (numbers as f64, booleans, `undefined`, fixed-length arrays and objects kept
//! as their parts); captured values are folded in as constants; calls to captured
//! functions are inlined. Anything outside that subset is [`Unsupported`], and the signal
//! stays on the JavaScript tier.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{self, types, AbiParam, BlockArg, InstBuilder, MemFlagsData, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use flux_engine::StateMemory;
use oxc_allocator::Allocator;
use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{Scoping, SemanticBuilder, SymbolId};
use oxc_span::{GetSpan, Span};
use oxc_syntax::operator::{
    AssignmentOperator, BinaryOperator, LogicalOperator, UnaryOperator, UpdateOperator,
};
use oxc_syntax::scope::ScopeFlags;

use crate::analyze::FunctionSite;
use crate::kernel::{self, ctx_offset, status, Code, KernelFn, NativeSignal};

/// A value a closure captured, as the JavaScript tier read it once the file had loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// `undefined`.
    Undefined,
    /// `null`.
    Null,
    /// An array or typed array (read-only to the kernel).
    Array(Vec<Captured>),
    /// A plain object (read-only to the kernel).
    Object(Vec<(String, Captured)>),
    /// A function of the same file, with its own captured values.
    Function {
        /// Its tag id (index into the file's [`FunctionSite`]s).
        id: usize,
        /// Its captured values, in the order of its site's `captures`.
        captures: Vec<Captured>,
    },
    /// `FLUX_STATE` itself.
    State,
    /// Anything else, described ("a string", "a Map").
    Other(String),
}

/// One signal to compile.
#[derive(Debug, Clone)]
pub struct Request {
    /// The signal's id, for messages.
    pub id: String,
    /// Tag id of its `update`.
    pub function: usize,
    /// Values `update` captures.
    pub captures: Vec<Captured>,
    /// Seed of its `Math.random`.
    pub seed: u64,
}

/// Why a signal stays on the JavaScript tier: a construct and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
    /// What is not supported.
    pub message: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for Unsupported {}

/// What the compiler needs to know about the output.
#[derive(Debug, Clone)]
pub struct Target {
    /// Output channels.
    pub channels: usize,
    /// The state memory kernels read and write.
    pub state: Arc<StateMemory>,
    /// The file's name, for fault messages.
    pub file: String,
}

/// Compiles the `update` of each request. One machine-code module serves them all.
pub fn compile(
    source: &str,
    module: bool,
    sites: &[FunctionSite],
    requests: &[Request],
    target: &Target,
) -> Vec<Result<NativeSignal, Unsupported>> {
    let nowhere = |message: String| Unsupported {
        line: 1,
        col: 1,
        message,
    };
    let allocator = Allocator::default();
    let Some(program) = crate::analyze::parse(&allocator, source, module) else {
        let e = nowhere("the file does not parse".into());
        return requests.iter().map(|_| Err(e.clone())).collect();
    };
    let semantic = SemanticBuilder::new().build(&program).semantic;
    let mut finder = FnFinder::default();
    finder.visit_program(&program);

    let mut jit = match Jit::new() {
        Ok(jit) => jit,
        Err(e) => {
            let e = nowhere(format!("cannot start the compiler: {e}"));
            return requests.iter().map(|_| Err(e.clone())).collect();
        }
    };
    let lines = LineIndex::new(source);
    let mut tables = Vec::new();
    let mut compiled: Vec<Result<(FuncId, String), Unsupported>> = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        let shared = Shared {
            scoping: semantic.scoping(),
            fns: &finder.functions,
            sites,
            lines: &lines,
            channels: target.channels,
            state_len: target.state.len(),
        };
        let result = jit.kernel(&shared, request, n, &mut tables).map(|id| {
            let site = &sites[request.function];
            let (line, col) = lines.position(site.start);
            (id, format!("{}:{line}:{col}", target.file))
        });
        compiled.push(result);
    }
    if let Err(e) = jit.module.finalize_definitions() {
        let e = nowhere(format!("cannot finalize machine code: {e}"));
        return requests.iter().map(|_| Err(e.clone())).collect();
    }
    let mut pointers = Vec::new();
    for c in &compiled {
        pointers.push(
            c.as_ref()
                .ok()
                .map(|(id, _)| jit.module.get_finalized_function(*id)),
        );
    }
    let code = Arc::new(Code::new(jit.module, tables));
    compiled
        .into_iter()
        .zip(pointers)
        .zip(requests)
        .map(|((c, ptr), request)| {
            let (_, location) = c?;
            let ptr = ptr.expect("a compiled kernel has a pointer");
            // SAFETY: the function was compiled with the `KernelFn` signature.
            let kernel: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) };
            Ok(NativeSignal::new(
                code.clone(),
                kernel,
                target.state.clone(),
                request.seed,
                location,
                request.id.clone(),
            ))
        })
        .collect()
}

/// Line starts of the original source, for `line:col` of a span.
struct LineIndex<'s> {
    source: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    fn new(source: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self { source, starts }
    }

    fn position(&self, offset: u32) -> (u32, u32) {
        let offset = offset as usize;
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self
            .source
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line as u32, col as u32 + 1)
    }
}

/// A function of the file, by span.
#[derive(Clone, Copy)]
enum FnNode<'a> {
    Arrow(&'a ArrowFunctionExpression<'a>),
    Func(&'a Function<'a>),
}

impl<'a> FnNode<'a> {
    fn params(self) -> &'a FormalParameters<'a> {
        match self {
            FnNode::Arrow(a) => &a.params,
            FnNode::Func(f) => &f.params,
        }
    }

    fn span(self) -> Span {
        match self {
            FnNode::Arrow(a) => a.span,
            FnNode::Func(f) => f.span,
        }
    }
}

#[derive(Default)]
struct FnFinder<'a> {
    functions: HashMap<(u32, u32), FnNode<'a>>,
}

impl<'a> Visit<'a> for FnFinder<'a> {
    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        let node: &'a Function<'a> = unsafe_extend(it);
        self.functions
            .insert((it.span.start, it.span.end), FnNode::Func(node));
        walk::walk_function(self, it, flags);
    }

    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        let node: &'a ArrowFunctionExpression<'a> = unsafe_extend(it);
        self.functions
            .insert((it.span.start, it.span.end), FnNode::Arrow(node));
        walk::walk_arrow_function_expression(self, it);
    }
}

/// The visitor hands out references that borrow the visit, but the nodes live in the
/// arena for `'a`; re-borrowing them for `'a` is what the arena guarantees.
fn unsafe_extend<'a, T>(it: &T) -> &'a T {
    // SAFETY: every AST node is allocated in the `Allocator` that outlives `'a`, and the
    // tree is not mutated while the compiler runs.
    unsafe { &*(it as *const T) }
}

/// Read-only facts shared by every kernel of a file.
struct Shared<'a, 'b> {
    scoping: &'b Scoping,
    fns: &'b HashMap<(u32, u32), FnNode<'a>>,
    sites: &'b [FunctionSite],
    lines: &'b LineIndex<'b>,
    channels: usize,
    state_len: usize,
}

/// The Cranelift JIT module and the runtime functions kernels may call.
struct Jit {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    fctx: FunctionBuilderContext,
    imports: HashMap<&'static str, FuncId>,
}

type F1 = extern "C" fn(f64) -> f64;
type F2 = extern "C" fn(f64, f64) -> f64;

const MATH_1: &[(&str, &str, F1)] = &[
    ("sin", "flux_sin", kernel::js_sin),
    ("cos", "flux_cos", kernel::js_cos),
    ("tan", "flux_tan", kernel::js_tan),
    ("asin", "flux_asin", kernel::js_asin),
    ("acos", "flux_acos", kernel::js_acos),
    ("atan", "flux_atan", kernel::js_atan),
    ("sinh", "flux_sinh", kernel::js_sinh),
    ("cosh", "flux_cosh", kernel::js_cosh),
    ("tanh", "flux_tanh", kernel::js_tanh),
    ("asinh", "flux_asinh", kernel::js_asinh),
    ("acosh", "flux_acosh", kernel::js_acosh),
    ("atanh", "flux_atanh", kernel::js_atanh),
    ("exp", "flux_exp", kernel::js_exp),
    ("expm1", "flux_expm1", kernel::js_exp_m1),
    ("log", "flux_log", kernel::js_ln),
    ("log1p", "flux_log1p", kernel::js_ln_1p),
    ("log2", "flux_log2", kernel::js_log2),
    ("log10", "flux_log10", kernel::js_log10),
    ("cbrt", "flux_cbrt", kernel::js_cbrt),
    ("round", "flux_round", kernel::js_round),
    ("sign", "flux_sign", kernel::js_sign),
];

const MATH_2: &[(&str, &str, F2)] = &[
    ("atan2", "flux_atan2", kernel::js_atan2),
    ("hypot", "flux_hypot", kernel::js_hypot),
    ("pow", "flux_pow", kernel::js_pow),
    ("%", "flux_fmod", kernel::js_fmod),
];

const MATH_CONSTANTS: &[(&str, f64)] = &[
    ("E", std::f64::consts::E),
    ("LN10", std::f64::consts::LN_10),
    ("LN2", std::f64::consts::LN_2),
    ("LOG2E", std::f64::consts::LOG2_E),
    ("LOG10E", std::f64::consts::LOG10_E),
    ("PI", std::f64::consts::PI),
    ("SQRT1_2", std::f64::consts::FRAC_1_SQRT_2),
    ("SQRT2", std::f64::consts::SQRT_2),
];

impl Jit {
    fn new() -> Result<Self, String> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
        // The verifier checks the compiler, not the user's code: on in debug builds only.
        let verify = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        flags
            .set("enable_verifier", verify)
            .map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| e.to_string())?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for (_, symbol, f) in MATH_1 {
            builder.symbol(*symbol, *f as *const u8);
        }
        for (_, symbol, f) in MATH_2 {
            builder.symbol(*symbol, *f as *const u8);
        }
        builder.symbol("flux_to_int32", kernel::js_to_int32 as *const u8);
        builder.symbol("flux_random", kernel::js_random as *const u8);
        let mut module = JITModule::new(builder);
        let mut imports = HashMap::new();
        let f64t = AbiParam::new(types::F64);
        for (_, symbol, _) in MATH_1 {
            let mut sig = module.make_signature();
            sig.params.push(f64t);
            sig.returns.push(f64t);
            let id = module
                .declare_function(symbol, Linkage::Import, &sig)
                .map_err(|e| e.to_string())?;
            imports.insert(*symbol, id);
        }
        for (_, symbol, _) in MATH_2 {
            let mut sig = module.make_signature();
            sig.params.extend([f64t, f64t]);
            sig.returns.push(f64t);
            let id = module
                .declare_function(symbol, Linkage::Import, &sig)
                .map_err(|e| e.to_string())?;
            imports.insert(*symbol, id);
        }
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        sig.params.push(f64t);
        sig.returns.push(AbiParam::new(types::I32));
        let id = module
            .declare_function("flux_to_int32", Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        imports.insert("flux_to_int32", id);
        let mut sig = module.make_signature();
        sig.params.push(AbiParam::new(ptr));
        sig.returns.push(f64t);
        let id = module
            .declare_function("flux_random", Linkage::Import, &sig)
            .map_err(|e| e.to_string())?;
        imports.insert("flux_random", id);
        Ok(Self {
            ctx: module.make_context(),
            fctx: FunctionBuilderContext::new(),
            module,
            imports,
        })
    }

    fn kernel(
        &mut self,
        shared: &Shared<'_, '_>,
        request: &Request,
        n: usize,
        tables: &mut Vec<Box<[f64]>>,
    ) -> Result<FuncId, Unsupported> {
        let ptr = self.module.target_config().pointer_type();
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature.params.push(AbiParam::new(ptr));
        self.ctx
            .func
            .signature
            .returns
            .push(AbiParam::new(types::I32));
        let site = &shared.sites[request.function];
        let node = *shared
            .fns
            .get(&(site.start, site.end))
            .ok_or_else(|| shared.unsupported(site.start, "update is not a plain function"))?;

        let config = self.module.target_config();
        let mut refs = HashMap::new();
        let failed = {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            for (name, id) in &self.imports {
                let r = self.module.declare_func_in_func(*id, b.func);
                refs.insert(*name, r);
            }
            let mut lower = Lower::start(&mut b, shared, refs, tables, ptr);
            match lower.kernel_body(node, request) {
                Ok(()) => {
                    b.seal_all_blocks();
                    b.finalize(config);
                    None
                }
                Err(e) => Some(e),
            }
        };
        if let Some(e) = failed {
            // The half-built function is abandoned; start the next one clean.
            self.fctx = FunctionBuilderContext::new();
            return Err(e);
        }
        let id = self
            .module
            .declare_function(
                &format!("kernel{n}"),
                Linkage::Local,
                &self.ctx.func.signature,
            )
            .map_err(|e| shared.unsupported(site.start, &format!("cannot declare: {e}")))?;
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| shared.unsupported(site.start, &format!("cannot compile: {e:?}")))?;
        Ok(id)
    }
}

impl Shared<'_, '_> {
    fn unsupported(&self, offset: u32, message: &str) -> Unsupported {
        let (line, col) = self.lines.position(offset);
        Unsupported {
            line,
            col,
            message: message.to_owned(),
        }
    }
}

/// A value during compilation.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(Value),
    /// A read of an array slot that may not exist: the value (NaN when missing) and
    /// whether it exists, so `??` and `=== undefined` see `undefined`.
    Maybe(Value, Value),
    /// A number or a boolean, known only at run time (`cond && x`): its numeric value
    /// (booleans as 0 or 1) and whether it is a boolean.
    Mixed(Value, Value),
    Bool(Value),
    Undef,
    Null,
    Tuple(Vec<Val>),
    Obj(Vec<(String, Val)>),
    /// A captured array or object, kept as data until read.
    Data(Captured),
    Func(usize, Vec<Captured>),
    State,
    Math,
}

/// Where a mutable local lives: one Cranelift variable per scalar part.
#[derive(Debug, Clone)]
enum Shape {
    Num(Variable),
    Bool(Variable),
    Undef,
    Null,
    Tuple(Vec<Shape>),
    Obj(Vec<(String, Shape)>),
    /// A compile-time value that can be read but not reassigned.
    Fixed(Val),
}

#[derive(Debug, Clone)]
enum Binding {
    Const(Val),
    Var(Shape),
}

enum Return {
    /// The kernel's `update`: write the channels, go to the next frame.
    Update { next: ir::Block },
    /// An inlined call: jump to `exit` with the result's scalar parts.
    Inline {
        exit: ir::Block,
        skeleton: Option<Skeleton>,
    },
}

struct Frame {
    function: usize,
    locals: HashMap<SymbolId, Binding>,
    captures: HashMap<String, Captured>,
    ret: Return,
}

/// The static structure of a value whose scalar parts travel as block arguments.
#[derive(Debug, Clone, PartialEq)]
enum Skeleton {
    Num,
    Bool,
    Mixed,
    Tuple(Vec<Skeleton>),
    Obj(Vec<(String, Skeleton)>),
    Fixed(Val),
}

struct LoopTarget {
    cont: ir::Block,
    exit: ir::Block,
}

type R<T> = Result<T, Unsupported>;

struct Lower<'x, 'f, 'a, 'b> {
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
    out: Value,
    fuel: Variable,
    fuel_out: ir::Block,
}

impl<'x, 'f, 'a, 'b> Lower<'x, 'f, 'a, 'b> {
    fn start(
        b: &'x mut FunctionBuilder<'f>,
        shared: &'x Shared<'a, 'b>,
        refs: HashMap<&'static str, ir::FuncRef>,
        tables: &'x mut Vec<Box<[f64]>>,
        ptr: types::Type,
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
            out: placeholder,
            fuel,
            fuel_out,
        }
    }

    fn err<T>(&self, span: Span, message: impl Into<String>) -> R<T> {
        Err(self.shared.unsupported(span.start, &message.into()))
    }

    /// The kernel: load the context, loop over frames, run `update` once per frame.
    fn kernel_body(&mut self, node: FnNode<'a>, request: &Request) -> R<()> {
        let flags = MemFlagsData::trusted();
        let ctx = self.ctx;
        self.state = self.b.ins().load(self.ptr, flags, ctx, ctx_offset::STATE);
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
                        .ok_or_else(|| self.shared.unsupported(a.span.start, "arrow body"))?;
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
        !self.shared.scoping.symbol_is_mutated(symbol)
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

    // ----- statements -----

    fn statements(&mut self, list: &'a [Statement<'a>]) -> R<()> {
        for s in list {
            self.statement(s)?;
        }
        Ok(())
    }

    fn statement(&mut self, s: &'a Statement<'a>) -> R<()> {
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
                                self.shared.unsupported(f.span.start, "this loop header")
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
    fn back_edge(&mut self, head: ir::Block) {
        let fuel = self.b.use_var(self.fuel);
        let left = self.b.ins().iadd_imm_s(fuel, -1);
        self.b.def_var(self.fuel, left);
        self.b.ins().brif(left, head, &[], self.fuel_out, &[]);
    }

    fn declaration(&mut self, d: &'a VariableDeclaration<'a>) -> R<()> {
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

    fn do_return(&mut self, v: Val, span: Span) -> R<()> {
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
    fn write_output(&mut self, v: Val, span: Span) -> R<()> {
        let channels = self.shared.channels;
        let v = match v {
            Val::Maybe(x, _) => Val::Num(x),
            other => other,
        };
        let items: Vec<Val> = match v {
            Val::Num(x) => vec![Val::Num(x); channels],
            Val::Tuple(items) if items.len() == 1 => vec![items[0].clone(); channels],
            Val::Tuple(items) => items,
            Val::Data(Captured::Array(items)) => {
                let mut out = Vec::new();
                for item in &items {
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

    // ----- values -----

    fn num_const(&mut self, x: f64) -> Value {
        let v = self.b.ins().f64const(x);
        self.consts.insert(v, x);
        v
    }

    fn const_of(&self, v: &Val) -> Option<f64> {
        match v {
            Val::Num(x) => self.consts.get(x).copied(),
            _ => None,
        }
    }

    fn materialize(&mut self, c: &Captured, span: Span) -> R<Val> {
        Ok(match c {
            Captured::Number(x) => Val::Num(self.num_const(*x)),
            Captured::Bool(b) => Val::Bool(self.b.ins().iconst(types::I8, i64::from(*b))),
            Captured::Undefined => Val::Undef,
            Captured::Null => Val::Null,
            Captured::State => Val::State,
            Captured::Function { id, captures } => Val::Func(*id, captures.clone()),
            Captured::Array(_) | Captured::Object(_) => Val::Data(c.clone()),
            Captured::Other(what) => {
                return self.err(span, format!("a captured value that is {what}"))
            }
        })
    }

    /// ToNumber for the types the kernel has.
    fn number(&mut self, v: Val, span: Span) -> R<Value> {
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
    fn truthy(&mut self, v: Val, span: Span) -> R<Value> {
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
            Val::Tuple(_) | Val::Obj(_) | Val::Data(_) | Val::Func(..) | Val::State | Val::Math => {
                let _ = span;
                self.b.ins().iconst(types::I8, 1)
            }
        })
    }

    fn bool_val(&mut self, b: bool) -> Val {
        Val::Bool(self.b.ins().iconst(types::I8, i64::from(b)))
    }

    fn flatten(&mut self, v: &Val) -> (Skeleton, Vec<Value>) {
        let mut parts = Vec::new();
        let sk = self.flatten_into(v, &mut parts);
        (sk, parts)
    }

    fn flatten_into(&mut self, v: &Val, parts: &mut Vec<Value>) -> Skeleton {
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

    fn rebuild(sk: &Skeleton, parts: &mut impl Iterator<Item = Value>) -> Val {
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
    fn choose(
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
    fn park(&mut self, v: Val) -> (ir::Block, Val) {
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
    fn merge(&mut self, arms: Vec<(ir::Block, Val)>, span: Span) -> R<Val> {
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

    // ----- expressions -----

    fn expr(&mut self, e: &'a Expression<'a>) -> R<Val> {
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

    fn identifier(&mut self, id: &IdentifierReference<'a>) -> R<Val> {
        let symbol = id
            .reference_id
            .get()
            .and_then(|r| self.shared.scoping.get_reference(r).symbol_id());
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
        match name {
            "undefined" => Ok(Val::Undef),
            "NaN" => Ok(Val::Num(self.num_const(f64::NAN))),
            "Infinity" => Ok(Val::Num(self.num_const(f64::INFINITY))),
            "Math" => Ok(Val::Math),
            "FLUX_STATE" => Ok(Val::State),
            _ => self.err(id.span, format!("the global `{name}`")),
        }
    }

    fn field(&mut self, o: &Val, key: &str, span: Span) -> R<Val> {
        match o {
            Val::Math => match MATH_CONSTANTS.iter().find(|(k, _)| *k == key) {
                Some((_, x)) => Ok(Val::Num(self.num_const(*x))),
                None => self.err(span, format!("Math.{key} as a value")),
            },
            Val::Tuple(items) if key == "length" => {
                Ok(Val::Num(self.num_const(items.len() as f64)))
            }
            Val::State if key == "length" => {
                Ok(Val::Num(self.num_const(self.shared.state_len as f64)))
            }
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

    fn index_const(&mut self, o: &Val, i: f64, span: Span) -> R<Val> {
        let k = self.num_const(i);
        self.index(o, Val::Num(k), span)
    }

    fn index(&mut self, o: &Val, i: Val, span: Span) -> R<Val> {
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
                    for c in items {
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
            Val::State => {
                let x = self.number(i, span)?;
                if let Some(k) = k {
                    if k >= 0.0 && k.fract() == 0.0 && (k as usize) < self.shared.state_len {
                        let v = self.b.ins().load(
                            types::F64,
                            MemFlagsData::trusted(),
                            self.state,
                            (k as usize * 8) as i32,
                        );
                        return Ok(Val::Num(v));
                    }
                    return Ok(Val::Undef);
                }
                let state = self.state;
                let (v, ok) = self.checked_load(state, self.shared.state_len, x);
                Ok(Val::Maybe(v, ok))
            }
            other => self.err(span, format!("indexing {}", describe(other))),
        }
    }

    /// Computes the slot for index `x` of an array of `len`: (in range, byte offset).
    fn slot(&mut self, len: usize, x: Value) -> (Value, Value) {
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
    fn checked_load(&mut self, base: Value, len: usize, x: Value) -> (Value, Value) {
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

    /// Stores `v` at state slot `x`; nothing happens when `x` is not a slot.
    fn state_store(&mut self, x: Value, v: Value) {
        if let Some(k) = self.consts.get(&x).copied() {
            if k >= 0.0 && k.fract() == 0.0 && (k as usize) < self.shared.state_len {
                self.b.ins().store(
                    MemFlagsData::trusted(),
                    v,
                    self.state,
                    (k as usize * 8) as i32,
                );
            }
            return;
        }
        let (ok, byte) = self.slot(self.shared.state_len, x);
        let inside = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(ok, inside, &[], join, &[]);
        self.b.switch_to_block(inside);
        let addr = self.b.ins().iadd(self.state, byte);
        self.b.ins().store(MemFlagsData::trusted(), v, addr, 0);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
    }

    fn unary(&mut self, u: &'a UnaryExpression<'a>) -> R<Val> {
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

    fn int32(&mut self, x: Value) -> Value {
        let f = self.refs["flux_to_int32"];
        let call = self.b.ins().call(f, &[x]);
        self.b.inst_results(call)[0]
    }

    fn call1(&mut self, symbol: &'static str, x: Value) -> Value {
        let f = self.refs[symbol];
        let call = self.b.ins().call(f, &[x]);
        self.b.inst_results(call)[0]
    }

    fn call2(&mut self, symbol: &'static str, x: Value, y: Value) -> Value {
        let f = self.refs[symbol];
        let call = self.b.ins().call(f, &[x, y]);
        self.b.inst_results(call)[0]
    }

    fn binary(&mut self, op: BinaryOperator, l: Val, r: Val, span: Span) -> R<Val> {
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
                Ok(Val::Num(match op {
                    B::Addition => ins.fadd(a, b),
                    B::Subtraction => ins.fsub(a, b),
                    B::Multiplication => ins.fmul(a, b),
                    B::Division => ins.fdiv(a, b),
                    B::Remainder if kb == Some(1.0) => self.frac(a),
                    B::Remainder => self.call2("flux_fmod", a, b),
                    _ => self.call2("flux_pow", a, b),
                }))
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
    fn frac(&mut self, x: Value) -> Value {
        let t = self.b.ins().trunc(x);
        let r = self.b.ins().fsub(x, t);
        let zero = self.b.ins().f64const(0.0);
        let is_zero = self.b.ins().fcmp(FloatCC::Equal, r, zero);
        let signed = self.b.ins().fcopysign(zero, x);
        self.b.ins().select(is_zero, signed, r)
    }

    fn equals(&mut self, l: Val, r: Val, strict: bool, span: Span) -> R<Value> {
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

    fn logical(&mut self, l: &'a LogicalExpression<'a>) -> R<Val> {
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
    fn mixed(&mut self, v: Val, span: Span) -> R<Val> {
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

    /// The binding an identifier assigns to; captured and constant ones cannot be.
    fn local_var(&mut self, id: &IdentifierReference<'a>) -> R<Shape> {
        let symbol = id
            .reference_id
            .get()
            .and_then(|r| self.shared.scoping.get_reference(r).symbol_id());
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

    fn compound(&mut self, op: AssignmentOperator) -> Option<BinaryOperator> {
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

    fn assignment(&mut self, a: &'a AssignmentExpression<'a>) -> R<Val> {
        let op = if a.operator == AssignmentOperator::Assign {
            None
        } else {
            Some(
                self.compound(a.operator)
                    .ok_or_else(|| self.shared.unsupported(a.span.start, "logical assignment"))?,
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
                if o != Val::State {
                    return self.err(m.span, "assignment into an array other than mem");
                }
                let i = self.expr(&m.expression)?;
                let x = self.number(i, m.span)?;
                let v = match op {
                    None => self.expr(&a.right)?,
                    Some(op) => {
                        let old = self.index(&Val::State, Val::Num(x), m.span)?;
                        let r = self.expr(&a.right)?;
                        self.binary(op, old, r, a.span)?
                    }
                };
                let n = self.number(v.clone(), a.span)?;
                self.state_store(x, n);
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

    fn update(&mut self, u: &'a UpdateExpression<'a>) -> R<Val> {
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
                if o != Val::State {
                    return self.err(m.span, "`++`/`--` on an array other than mem");
                }
                let i = self.expr(&m.expression)?;
                let x = self.number(i, m.span)?;
                let old = self.index(&Val::State, Val::Num(x), m.span)?;
                let old = self.number(old, m.span)?;
                let d = self.b.ins().f64const(delta);
                let new = self.b.ins().fadd(old, d);
                self.state_store(x, new);
                Ok(Val::Num(if u.prefix { new } else { old }))
            }
            other => self.err(other.span(), "this `++`/`--` target"),
        }
    }

    fn args(&mut self, c: &'a CallExpression<'a>) -> R<Vec<Val>> {
        let mut out = Vec::new();
        for a in &c.arguments {
            let Some(e) = a.as_expression() else {
                return self.err(c.span, "spread arguments");
            };
            out.push(self.expr(e)?);
        }
        Ok(out)
    }

    fn call(&mut self, c: &'a CallExpression<'a>) -> R<Val> {
        if c.optional {
            return self.err(c.span, "optional calls");
        }
        // Math.f(...)
        if let Expression::StaticMemberExpression(m) = &c.callee {
            if let Expression::Identifier(id) = &m.object {
                if self.identifier(id)? == Val::Math {
                    let args = self.args(c)?;
                    return self.math(m.property.name.as_str(), args, c.span);
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

    fn inline(
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
        let site = &self.shared.sites[function];
        let Some(node) = self.shared.fns.get(&(site.start, site.end)).copied() else {
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

    fn math(&mut self, name: &str, args: Vec<Val>, span: Span) -> R<Val> {
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

fn describe(v: &Val) -> &'static str {
    match v {
        Val::Num(_) | Val::Maybe(..) => "a number",
        Val::Mixed(..) => "a number or a boolean",
        Val::Bool(_) => "a boolean",
        Val::Undef => "undefined",
        Val::Null => "null",
        Val::Tuple(_) => "an array",
        Val::Obj(_) => "an object",
        Val::Data(Captured::Array(_)) => "a captured array",
        Val::Data(_) => "a captured object",
        Val::Func(..) => "a function",
        Val::State => "mem",
        Val::Math => "Math",
    }
}

/// True when the body of `node` cannot end without a `return`.
fn always_returns(node: FnNode<'_>) -> bool {
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
