//! Where units are made, and the names that key their state.
//!
//! A unit of the library (an oscillator, a filter, a delay line) keeps its state in slots of
//! its own, found again on every reload by a key that says where the unit stands in the
//! code: the names it is bound to (`const bass = saw()` is `bass`; `{ osc: saw() }` inside
//! `const pad = ...` is `pad.osc`; the second element of `const vs = [saw(), saw()]` is
//! `vs[1]`), never its place in the order of construction. [`find`] lists the calls that make
//! units, directly (a call of a library constructor) or through the file's own functions
//! (a call of a function that makes units), each with its name; the instrumentation wraps
//! each in `__kw(name, () => call)`, which the prelude uses to build the key.

use std::collections::{HashMap, HashSet};

use oxc_ast::ast::{
    ArrayExpressionElement, ArrowFunctionExpression, AssignmentExpression, AssignmentTarget,
    BindingPattern, CallExpression, Expression, Function, ImportDeclaration,
    ImportDeclarationSpecifier, ObjectProperty, Program, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{Scoping, SymbolId};
use oxc_span::{GetSpan, Span};
use oxc_syntax::scope::ScopeFlags;

/// A call that makes units, and the name it stands at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCall {
    /// The call's span in the source.
    pub span: Span,
    /// Its name: the bindings and properties between it and the function it is in,
    /// outermost first (`pad.osc`, `vs[1]`), or empty.
    pub name: String,
}

/// The calls in `program` that make units: calls of a constructor named in `ctors` (a global
/// in scripts, an import from a module ending in `flux.js` in modules), and calls of the
/// file's functions that make units themselves.
pub fn find(program: &Program<'_>, scoping: &Scoping, ctors: &[&str]) -> Vec<UnitCall> {
    let (calls, makers) = visit(program, scoping, ctors);
    calls
        .into_iter()
        .filter(|c| match c.target {
            Target::Ctor => true,
            Target::Fn(f) => makers.contains(&f),
        })
        .map(|c| UnitCall {
            span: c.span,
            name: c.name,
        })
        .collect()
}

/// The names of the functions in `program` that make units: that call one of `ctors` (here
/// globals), or a function that does.
pub fn makers(program: &Program<'_>, scoping: &Scoping, ctors: &[&str]) -> Vec<String> {
    let (_, makers) = visit(program, scoping, ctors);
    let mut names: Vec<String> = makers
        .into_iter()
        .map(|s| scoping.symbol_name(s).to_owned())
        .collect();
    names.sort();
    names
}

/// What a library script (see flux-js's `dsp.js`) exports, the keys of its
/// `const LIBRARY = { ... }`, and which of those make units (call `slots` or `buffer`, or a
/// function that does). `None` when it does not parse.
pub fn library(source: &str) -> Option<(Vec<String>, Vec<String>)> {
    let allocator = oxc_allocator::Allocator::default();
    let program = crate::analyze::parse(&allocator, source, false)?;
    let semantic = oxc_semantic::SemanticBuilder::new()
        .build(&program)
        .semantic;
    let exports = exports(&program.body);
    let ctors = makers(&program, semantic.scoping(), &["slots", "buffer"])
        .into_iter()
        .filter(|m| exports.contains(m))
        .collect();
    Some((exports, ctors))
}

/// The keys of `const LIBRARY = { ... }` and of `const SEQUENCING = { ... }` after it.
fn exports(body: &[oxc_ast::ast::Statement<'_>]) -> Vec<String> {
    let mut all = Vec::new();
    for table in ["LIBRARY", "SEQUENCING"] {
        all.extend(exports_of(body, table));
    }
    all
}

/// The keys of `const NAME = { ... }`.
fn exports_of(body: &[oxc_ast::ast::Statement<'_>], name: &str) -> Vec<String> {
    for statement in body {
        let oxc_ast::ast::Statement::VariableDeclaration(d) = statement else {
            continue;
        };
        for decl in &d.declarations {
            let BindingPattern::BindingIdentifier(id) = &decl.id else {
                continue;
            };
            if id.name != name {
                continue;
            }
            if let Some(Expression::ObjectExpression(o)) = &decl.init {
                return o
                    .properties
                    .iter()
                    .filter_map(|p| match p {
                        oxc_ast::ast::ObjectPropertyKind::ObjectProperty(p) => {
                            p.key.static_name().map(|k| k.into_owned())
                        }
                        oxc_ast::ast::ObjectPropertyKind::SpreadProperty(_) => None,
                    })
                    .collect();
            }
        }
    }
    Vec::new()
}

fn visit(
    program: &Program<'_>,
    scoping: &Scoping,
    ctors: &[&str],
) -> (Vec<Call>, HashSet<SymbolId>) {
    let mut v = Calls {
        scoping,
        ctors,
        names: Vec::new(),
        saved: Vec::new(),
        inside: Vec::new(),
        named_fns: HashMap::new(),
        imports: HashMap::new(),
        calls: Vec::new(),
    };
    v.visit_program(program);
    // Functions that make units, directly or through others, to a fixed point.
    let mut makers: HashSet<SymbolId> = HashSet::new();
    loop {
        let before = makers.len();
        for c in &v.calls {
            let makes = match c.target {
                Target::Ctor => true,
                Target::Fn(f) => makers.contains(&f),
            };
            if let (true, Some(f)) = (makes, c.inside) {
                makers.insert(f);
            }
        }
        if makers.len() == before {
            break;
        }
    }
    (v.calls, makers)
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Ctor,
    Fn(SymbolId),
}

#[derive(Debug)]
struct Call {
    span: Span,
    name: String,
    target: Target,
    /// The named function the call is in, if any.
    inside: Option<SymbolId>,
}

struct Calls<'s> {
    scoping: &'s Scoping,
    ctors: &'s [&'s str],
    /// Names between the current node and the function it is in.
    names: Vec<String>,
    /// The names of the enclosing functions' places, while inside a nested function.
    saved: Vec<Vec<String>>,
    /// The symbols naming the functions being visited (None: anonymous).
    inside: Vec<Option<SymbolId>>,
    /// Function expressions bound by `const f = ...`, by span, with the binding's symbol.
    named_fns: HashMap<Span, SymbolId>,
    /// Local symbols imported from the built-in API: the imported name (None: the
    /// namespace or the default export).
    imports: HashMap<SymbolId, Option<String>>,
    calls: Vec<Call>,
}

impl Calls<'_> {
    fn path(&self) -> String {
        let mut out = String::new();
        for n in &self.names {
            if !out.is_empty() && !n.starts_with('[') {
                out.push('.');
            }
            out.push_str(n);
        }
        out
    }

    fn target(&self, callee: &Expression<'_>) -> Option<Target> {
        match callee.without_parentheses() {
            Expression::Identifier(id) => {
                let symbol = id
                    .reference_id
                    .get()
                    .and_then(|r| self.scoping.get_reference(r).symbol_id());
                match symbol {
                    None => self
                        .ctors
                        .contains(&id.name.as_str())
                        .then_some(Target::Ctor),
                    Some(s) => match self.imports.get(&s) {
                        Some(Some(name)) => {
                            self.ctors.contains(&name.as_str()).then_some(Target::Ctor)
                        }
                        Some(None) => None,
                        None => Some(Target::Fn(s)),
                    },
                }
            }
            Expression::StaticMemberExpression(m) => {
                let Expression::Identifier(obj) = m.object.without_parentheses() else {
                    return None;
                };
                let symbol = obj
                    .reference_id
                    .get()
                    .and_then(|r| self.scoping.get_reference(r).symbol_id())?;
                let namespace = matches!(self.imports.get(&symbol), Some(None));
                (namespace && self.ctors.contains(&m.property.name.as_str()))
                    .then_some(Target::Ctor)
            }
            _ => None,
        }
    }

    fn enter_fn(&mut self, symbol: Option<SymbolId>) {
        self.saved.push(std::mem::take(&mut self.names));
        self.inside.push(symbol);
    }

    fn leave_fn(&mut self) {
        self.names = self.saved.pop().unwrap_or_default();
        self.inside.pop();
    }
}

/// A name for the key: identifiers and numbers as they are, anything else as `?`.
fn clean(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        name.to_owned()
    } else {
        "?".to_owned()
    }
}

impl<'a> Visit<'a> for Calls<'_> {
    fn visit_import_declaration(&mut self, it: &ImportDeclaration<'a>) {
        if it.source.value.ends_with("flux.js") {
            for spec in it.specifiers.iter().flatten() {
                let (local, imported) = match spec {
                    ImportDeclarationSpecifier::ImportSpecifier(s) => {
                        (&s.local, Some(s.imported.name().to_string()))
                    }
                    ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => (&s.local, None),
                    ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => (&s.local, None),
                };
                if let Some(symbol) = local.symbol_id.get() {
                    self.imports.insert(symbol, imported);
                }
            }
        }
        walk::walk_import_declaration(self, it);
    }

    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        let name = match &it.id {
            BindingPattern::BindingIdentifier(id) => {
                if let (Some(init), Some(symbol)) = (&it.init, id.symbol_id.get()) {
                    if let Expression::ArrowFunctionExpression(_)
                    | Expression::FunctionExpression(_) = init.without_parentheses()
                    {
                        self.named_fns
                            .insert(init.without_parentheses().span(), symbol);
                    }
                }
                clean(&id.name)
            }
            _ => "?".to_owned(),
        };
        self.names.push(name);
        walk::walk_variable_declarator(self, it);
        self.names.pop();
    }

    fn visit_object_property(&mut self, it: &ObjectProperty<'a>) {
        let name = match it.key.static_name() {
            Some(k) if !it.computed => clean(&k),
            _ => "?".to_owned(),
        };
        self.names.push(name);
        walk::walk_object_property(self, it);
        self.names.pop();
    }

    fn visit_array_expression_elements(
        &mut self,
        it: &oxc_allocator::Vec<'a, ArrayExpressionElement<'a>>,
    ) {
        for (i, el) in it.iter().enumerate() {
            self.names.push(format!("[{i}]"));
            self.visit_array_expression_element(el);
            self.names.pop();
        }
    }

    fn visit_assignment_expression(&mut self, it: &AssignmentExpression<'a>) {
        let name = match &it.left {
            AssignmentTarget::AssignmentTargetIdentifier(id) => clean(&id.name),
            AssignmentTarget::StaticMemberExpression(m) => clean(&m.property.name),
            _ => "?".to_owned(),
        };
        self.names.push(name);
        walk::walk_assignment_expression(self, it);
        self.names.pop();
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        let target = self.target(&it.callee);
        if let Some(target) = target {
            self.calls.push(Call {
                span: it.span,
                name: self.path(),
                target,
                inside: self.inside.last().copied().flatten(),
            });
        }
        // Units made in the arguments of a method call are named by its object:
        // `voices.push(saw())` makes `voices`, `voices#1`...
        let receiver = match it.callee.without_parentheses() {
            Expression::StaticMemberExpression(m) if target.is_none() => match &m.object {
                Expression::Identifier(id) => Some(clean(&id.name)),
                _ => None,
            },
            _ => None,
        };
        let named = receiver.is_some();
        if let Some(name) = receiver {
            self.names.push(name);
        }
        walk::walk_call_expression(self, it);
        if named {
            self.names.pop();
        }
    }

    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        let symbol = it
            .id
            .as_ref()
            .and_then(|id| id.symbol_id.get())
            .or_else(|| self.named_fns.get(&it.span).copied());
        self.enter_fn(symbol);
        walk::walk_function(self, it, flags);
        self.leave_fn();
    }

    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        let symbol = self.named_fns.get(&it.span).copied();
        self.enter_fn(symbol);
        walk::walk_arrow_function_expression(self, it);
        self.leave_fn();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxc_allocator::Allocator;
    use oxc_semantic::SemanticBuilder;

    fn names(src: &str, module: bool) -> Vec<(String, String)> {
        let allocator = Allocator::default();
        let program = crate::analyze::parse(&allocator, src, module).unwrap();
        let semantic = SemanticBuilder::new().build(&program).semantic;
        find(&program, semantic.scoping(), &["saw", "adsr", "lowpass"])
            .into_iter()
            .map(|c| {
                (
                    c.name,
                    src[c.span.start as usize..c.span.end as usize].to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn units_are_named_by_their_bindings() {
        let src = "flux('a', (mem, idx) => {\n  const bass = saw();\n  const pad = { osc: saw(), env: adsr(0.1, 0.2, 0.5, 1) };\n  const vs = [saw(), lowpass()];\n  const y = Math.sin(1);\n  return { update: (sr) => bass(55) };\n});";
        assert_eq!(
            names(src, false),
            [
                ("bass", "saw()"),
                ("pad.osc", "saw()"),
                ("pad.env", "adsr(0.1, 0.2, 0.5, 1)"),
                ("vs[0]", "saw()"),
                ("vs[1]", "lowpass()"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn functions_that_make_units_are_named_where_they_are_called() {
        let src = "function voice() { return { o: saw() }; }\nconst layer = () => [voice(), voice()];\nfunction other(x) { return x * 2; }\nflux('a', () => { const v1 = voice(); const l = layer(); const k = other(2); return { update: () => 0 }; });";
        let found = names(src, false);
        let want = [
            ("o", "saw()"),
            ("[0]", "voice()"),
            ("[1]", "voice()"),
            ("v1", "voice()"),
            ("l", "layer()"),
        ];
        assert_eq!(found, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn own_functions_of_the_same_name_are_not_units() {
        let src = "function saw() { return (f) => f; }\nflux('a', () => { const s = saw(); return { update: () => s(1) }; });";
        assert!(names(src, false).is_empty());
        let module = "import { saw as ramp } from './flux.js';\nimport * as F from './flux.js';\nflux('a', () => { const r = ramp(); const f = F.lowpass(); return { update: () => 0 }; });";
        let found = names(module, true);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, "r");
        assert_eq!(found[1].0, "f");
    }
}
