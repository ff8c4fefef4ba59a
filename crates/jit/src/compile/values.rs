//! How the compiler types values: `Val`, the shapes of mutable locals, skeletons.

use std::collections::HashMap;

use cranelift_codegen::ir::{self, Value};
use cranelift_frontend::Variable;
use oxc_semantic::SymbolId;

use super::{Captured, Unsupported};

/// A value during compilation.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
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
    /// The state memory, or a view of it: slots `offset..offset + len`.
    State(usize, usize),
    Math,
    /// The transport's clock.
    Clock,
    /// MIDI in (`midi.note`, `midi.gate`, `midi.velocity`): the MIDI fields of the clock.
    Midi,
    /// A captured value the kernel cannot hold (a string, a Map...): fine to pass along
    /// and leave unused, an error where it is used.
    Opaque(String),
}

/// Where a mutable local lives: one Cranelift variable per scalar part.
#[derive(Debug, Clone)]
pub(super) enum Shape {
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
pub(super) enum Binding {
    Const(Val),
    Var(Shape),
}

pub(super) enum Return {
    /// The kernel's `update`: write the channels, go to the next frame.
    Update { next: ir::Block },
    /// An inlined call: jump to `exit` with the result's scalar parts.
    Inline {
        exit: ir::Block,
        skeleton: Option<Skeleton>,
    },
}

pub(super) struct Frame {
    pub(super) function: usize,
    pub(super) locals: HashMap<SymbolId, Binding>,
    pub(super) captures: HashMap<String, Captured>,
    pub(super) ret: Return,
}

/// The static structure of a value whose scalar parts travel as block arguments.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Skeleton {
    Num,
    Bool,
    Mixed,
    Tuple(Vec<Skeleton>),
    Obj(Vec<(String, Skeleton)>),
    Fixed(Val),
}

pub(super) struct LoopTarget {
    pub(super) cont: ir::Block,
    pub(super) exit: ir::Block,
}

pub(super) type R<T> = Result<T, Unsupported>;

pub(super) fn describe(v: &Val) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match v {
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
        Val::State(0, _) => "mem",
        Val::State(..) => "a view of mem",
        Val::Math => "Math",
        Val::Clock => "clock",
        Val::Midi => "midi",
        Val::Opaque(what) => return format!("a captured value that is {what}").into(),
    })
}
