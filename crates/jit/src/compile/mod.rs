//! From an `update` closure's source and captured values to a Cranelift kernel.
//!
//! The kernel renders a whole block: the frame loop is inside it. Values are typed
//! statically (numbers as f64, booleans, `undefined`, fixed-length arrays and objects kept
//! as their parts); captured values are folded in as constants; calls to captured
//! functions are inlined. Anything outside that subset is [`Unsupported`], and the signal
//! stays on the JavaScript tier.

mod jit;
mod lower;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use flux_engine::StateMemory;
use oxc_allocator::Allocator;
use oxc_ast::ast::*;
use oxc_ast::AstKind;
use oxc_semantic::{AstNodes, Scoping, SemanticBuilder};
use oxc_span::Span;

use self::jit::Jit;
use crate::analyze::FunctionSite;
use crate::kernel::{Code, KernelFn, NativeSignal};
use crate::lines::LineIndex;

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
    /// A plain array, folded in as a constant (read-only to the kernel). Shared: one
    /// array captured in many places is read once.
    Array(Arc<[Captured]>),
    /// A plain object, folded in as a constant (read-only to the kernel).
    Object(Arc<[(String, Captured)]>),
    /// A function of the same file, with its own captured values.
    Function {
        /// Its tag id (index into the file's [`FunctionSite`]s).
        id: usize,
        /// Its captured values, in the order of its site's `captures`.
        captures: Vec<Captured>,
    },
    /// A number that differs between the signals sharing one kernel (their `idx`, their
    /// units' slots, a frequency): read at run time from the instance's parameters, at this
    /// index, instead of being folded in.
    Param(usize),
    /// `FLUX_STATE` itself.
    State,
    /// A `Float64Array` over `FLUX_STATE`'s memory (`mem.subarray(a, b)`): read and written
    /// live, slots `offset..offset + len`, never folded.
    StateView {
        /// First slot.
        offset: usize,
        /// Slots.
        len: usize,
    },
    /// The transport's `clock` (`clock.t`, `clock.beat`, `clock.bar`, `clock.bpm`): read
    /// from the block's clock at the current frame.
    Clock,
    /// MIDI in (`midi.note`, `midi.gate`, `midi.velocity`): read from the block's clock at
    /// the current frame, like [`Captured::Clock`].
    Midi,
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
    /// The source it is in, when it is not the signal's own file (an imported module, the
    /// library).
    pub file: Option<String>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
    /// What is not supported.
    pub message: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
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
    /// Functions code may call as globals (the library's, in scripts), with their captures.
    pub globals: Vec<(String, Captured)>,
}

/// One source text of a load: the signals file, a module it imports, or the library.
#[derive(Debug, Clone, Copy)]
pub struct Source<'s> {
    /// Its name, for messages.
    pub name: &'s str,
    /// The text as written (the compiler never sees the instrumented copy).
    pub text: &'s str,
    /// An ES module (else a script).
    pub module: bool,
}

/// A parsed source: its functions by span, its symbols and its lines.
struct Parsed<'a, 'b> {
    name: &'b str,
    scoping: &'b Scoping,
    fns: HashMap<(u32, u32), FnNode<'a>>,
    lines: LineIndex<'b>,
}

/// Compiles the `update` of each request. One machine-code module serves them all.
///
/// `sites` are the functions of every source (by tag id; a site says which source holds
/// it), so an `update` may call functions of other sources, and they are inlined too.
pub fn compile(
    sources: &[Source<'_>],
    sites: &[FunctionSite],
    requests: &[Request],
    target: &Target,
) -> Vec<Result<NativeSignal, Unsupported>> {
    let nowhere = |message: String| Unsupported {
        file: None,
        line: 1,
        col: 1,
        message,
    };
    // Only the sources a request can reach are parsed (the library is large; a patch that
    // uses none of it should not pay for it); the others stand in as empty programs.
    let mut needed = vec![false; sources.len()];
    for r in requests {
        if let Some(site) = sites.get(r.function) {
            needed[site.source.min(sources.len() - 1)] = true;
        }
        for c in r
            .captures
            .iter()
            .chain(target.globals.iter().map(|(_, c)| c))
        {
            reach(c, sites, &mut needed);
        }
    }
    let allocators: Vec<Allocator> = sources.iter().map(|_| Allocator::default()).collect();
    let mut programs = Vec::with_capacity(sources.len());
    for ((source, allocator), &needed) in sources.iter().zip(&allocators).zip(&needed) {
        let text = if needed { source.text } else { "" };
        let Some(program) = crate::analyze::parse(allocator, text, source.module) else {
            let e = nowhere(format!("{} does not parse", source.name));
            return requests.iter().map(|_| Err(e.clone())).collect();
        };
        programs.push(program);
    }
    let semantics: Vec<_> = programs
        .iter()
        .map(|p| {
            SemanticBuilder::new()
                .with_build_nodes(true)
                .build(p)
                .semantic
        })
        .collect();
    let parsed: Vec<Parsed<'_, '_>> = sources
        .iter()
        .zip(&semantics)
        .map(|(source, semantic)| Parsed {
            name: source.name,
            scoping: semantic.scoping(),
            fns: functions(semantic.nodes()),
            lines: LineIndex::new(source.text),
        })
        .collect();

    let mut jit = match Jit::new() {
        Ok(jit) => jit,
        Err(e) => {
            let e = nowhere(format!("cannot start the compiler: {e}"));
            return requests.iter().map(|_| Err(e.clone())).collect();
        }
    };
    // Signals whose `update` is the same function with captured values of the same shape
    // (a loop of voices) share one kernel: their captured numbers become parameters.
    let (kernels, mut params) = share(requests);
    let shared = Shared {
        globals: &target.globals,
        sources: &parsed,
        sites,
        file: &target.file,
        channels: target.channels,
        state_len: target.state.len(),
    };
    let mut tables = Vec::new();
    // Compiles `request` as kernel `n`; gives its id and the place of its `update`.
    let mut build = |jit: &mut Jit, request: &Request, n: usize, ranges: &[Option<(f64, f64)>]| {
        jit.kernel(&shared, request, n, &mut tables, ranges)
            .map(|(id, clock)| {
                let site = &sites[request.function];
                let source = &parsed[site.source];
                let (line, col) = source.lines.position(site.start);
                (id, clock, format!("{}:{line}:{col}", source.name))
            })
    };
    let mut by_kernel = Vec::with_capacity(kernels.len());
    for (n, request) in kernels.iter().enumerate() {
        // Each parameter's range over the instances that share the kernel.
        let mut ranges: Vec<Option<(f64, f64)>> = Vec::new();
        for (_, p) in params.iter().filter(|(k, _)| *k == n) {
            ranges.resize(p.len(), Some((f64::INFINITY, f64::NEG_INFINITY)));
            for (r, &x) in ranges.iter_mut().zip(p) {
                *r = r
                    .filter(|_| x.fract() == 0.0)
                    .map(|(lo, hi)| (lo.min(x), hi.max(x)));
            }
        }
        by_kernel.push(build(&mut jit, request, n, &ranges));
    }
    // A shared kernel that does not compile (a parameter where the code needs a constant)
    // leaves its signals to be compiled one by one, their numbers folded in.
    let mut compiled = Vec::with_capacity(requests.len());
    for (i, (k, p)) in params.iter_mut().enumerate() {
        let result = match &by_kernel[*k] {
            Err(_) if !p.is_empty() => {
                p.clear();
                build(&mut jit, &requests[i], kernels.len() + i, &[])
            }
            other => other.clone(),
        };
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
                .map(|(id, _, _)| jit.module.get_finalized_function(*id)),
        );
    }
    let code = Arc::new(Code::new(jit.module, tables));
    compiled
        .into_iter()
        .zip(pointers)
        .zip(requests.iter().zip(params))
        .map(|((c, ptr), (request, (_, params)))| {
            let (_, reads_clock, location) = c?;
            let ptr = ptr.expect("a compiled kernel has a pointer");
            // SAFETY: `ptr` is the finalized code of a function this module compiled with the
            // `KernelFn` signature (one pointer argument, an i32 result, the platform's C
            // calling convention); the module lives in `code`, which the signal keeps.
            let kernel: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) };
            Ok(NativeSignal::new(
                code.clone(),
                kernel,
                target.state.clone(),
                request.seed,
                location,
                target.channels,
                params,
            )
            .reading_clock(reads_clock))
        })
        .collect()
}

/// The kernels to compile, and for each request the kernel it runs and its parameters.
///
/// Requests for the same function whose captured values differ only in numbers (outside
/// arrays and objects, which stay folded) share a kernel compiled with those numbers as
/// [`Captured::Param`]s; a request alike to no other keeps its numbers folded in.
fn share(requests: &[Request]) -> (Vec<Request>, Vec<(usize, Vec<f64>)>) {
    let shapes: Vec<(Vec<Captured>, Vec<f64>)> = requests
        .iter()
        .map(|r| {
            let mut params = Vec::new();
            let captures = r
                .captures
                .iter()
                .map(|c| parametrize(c, &mut params))
                .collect();
            (captures, params)
        })
        .collect();
    let mut kernels: Vec<Request> = Vec::new();
    // For each kernel: the shape it was made for, when it is shared.
    let mut kernel_shapes: Vec<Option<usize>> = Vec::new();
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let alike = |j: usize| requests[j].function == r.function && shapes[j].0 == shapes[i].0;
        let twin = (0..requests.len()).any(|j| j != i && alike(j));
        if !twin {
            kernels.push(r.clone());
            kernel_shapes.push(None);
            out.push((kernels.len() - 1, Vec::new()));
            continue;
        }
        let found = kernel_shapes.iter().position(|k| k.is_some_and(&alike));
        let k = found.unwrap_or_else(|| {
            kernels.push(Request {
                captures: shapes[i].0.clone(),
                ..r.clone()
            });
            kernel_shapes.push(Some(i));
            kernels.len() - 1
        });
        out.push((k, shapes[i].1.clone()));
    }
    (kernels, out)
}

/// Marks the sources of the functions `c` holds, however deep.
fn reach(c: &Captured, sites: &[FunctionSite], needed: &mut [bool]) {
    match c {
        Captured::Function { id, captures } => {
            if let Some(site) = sites.get(*id) {
                if let Some(n) = needed.get_mut(site.source) {
                    *n = true;
                }
            }
            for c in captures {
                reach(c, sites, needed);
            }
        }
        Captured::Array(items) => items.iter().for_each(|c| reach(c, sites, needed)),
        Captured::Object(fields) => fields.iter().for_each(|(_, c)| reach(c, sites, needed)),
        _ => {}
    }
}

/// `c` with its numbers, and those of the functions it holds, replaced by parameters
/// (their values pushed to `params`); arrays and objects are left as they are.
fn parametrize(c: &Captured, params: &mut Vec<f64>) -> Captured {
    match c {
        Captured::Number(x) => {
            params.push(*x);
            Captured::Param(params.len() - 1)
        }
        Captured::Function { id, captures } => Captured::Function {
            id: *id,
            captures: captures.iter().map(|c| parametrize(c, params)).collect(),
        },
        other => other.clone(),
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

/// Every function of the file, by its span. The semantic model's node list holds them
/// as references into the arena, for as long as the parsed program lives.
fn functions<'a>(nodes: &AstNodes<'a>) -> HashMap<(u32, u32), FnNode<'a>> {
    let mut functions = HashMap::new();
    for node in nodes.iter() {
        let f = match node.kind() {
            AstKind::Function(f) => FnNode::Func(f),
            AstKind::ArrowFunctionExpression(a) => FnNode::Arrow(a),
            _ => continue,
        };
        let span = f.span();
        functions.insert((span.start, span.end), f);
    }
    functions
}

/// Read-only facts shared by every kernel of a load.
struct Shared<'a, 'b> {
    globals: &'b [(String, Captured)],
    sources: &'b [Parsed<'a, 'b>],
    sites: &'b [FunctionSite],
    /// The signals file's name: places in other sources name their file.
    file: &'b str,
    channels: usize,
    state_len: usize,
}

impl<'a> Shared<'a, '_> {
    /// What is unsupported at `offset` of the source of site `function`.
    fn unsupported(&self, function: usize, offset: u32, message: &str) -> Unsupported {
        let source = self.sites.get(function).map_or(0, |s| s.source);
        let parsed = &self.sources[source.min(self.sources.len() - 1)];
        let (line, col) = parsed.lines.position(offset);
        Unsupported {
            file: (parsed.name != self.file).then(|| parsed.name.to_owned()),
            line,
            col,
            message: message.to_owned(),
        }
    }

    /// The function of site `function`, if its source has it.
    fn node(&self, function: usize) -> Option<FnNode<'a>> {
        let site = self.sites.get(function)?;
        let parsed = self.sources.get(site.source)?;
        parsed.fns.get(&(site.start, site.end)).copied()
    }
}
