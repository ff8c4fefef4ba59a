//! Making a signals file's functions identifiable before QuickJS runs it.
//!
//! [`instrument`] parses the file with oxc, finds every function and the variables it
//! captures from outside itself, and returns a copy of the source in which each function
//! is tagged at the moment it is created: `__fx(id, () => [a, b], <function>)` registers
//! the function object with its id (its place in the source) and a reader of the current
//! values of its captured variables. The tags change no behaviour; they let the native tier
//! find, for the `update` a factory returned, its source and the values it closes over.
//!
//! The inserted text never contains a line break, so lines stay where they were; a
//! [`PositionMap`] takes columns of the tagged source back to the original.

use oxc_allocator::Allocator;
use oxc_ast::ast::{ArrowFunctionExpression, Function, FunctionType, ObjectExpression};
use oxc_ast_visit::{walk, Visit};
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::{GetSpan, SourceType, Span};
use oxc_syntax::scope::ScopeFlags;

/// Name of the tagging function the prelude defines.
pub const TAG_FN: &str = "__fx";
/// Name of the method-tagging function the prelude defines.
pub const TAG_METHODS_FN: &str = "__fxo";

/// A function found in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSite {
    /// Which source of the load it is in (an index into the sources given to
    /// [`crate::compile`]).
    pub source: usize,
    /// Byte range of the function in the original source.
    pub start: u32,
    /// End of the byte range.
    pub end: u32,
    /// Names it captures from enclosing scopes, in order of first use; the reader returns
    /// their values in this order.
    pub captures: Vec<String>,
    /// When it is written as the factory of a `flux(id, factory)` call: where the call
    /// starts, `(line, col)`, 1-based.
    pub flux_call: Option<(u32, u32)>,
}

/// A tagged copy of a source file.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The source with tags inserted.
    pub source: String,
    /// Columns of `source` back to the original's.
    pub positions: PositionMap,
    /// The functions, indexed by tag id.
    pub functions: Vec<FunctionSite>,
}

/// Name of the function the prelude defines to name the units a call makes.
pub const UNIT_KEY_FN: &str = "__kw";

/// What [`instrument_with`] does beyond tagging functions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// The first tag id: the functions of this source are tagged `id_base`, `id_base + 1`...
    /// so that several sources of one load (the library, the file) never share an id.
    pub id_base: usize,
    /// The index of this source among the load's sources, recorded in its sites.
    pub source: usize,
    /// The library's unit constructors: calls that make units are wrapped in
    /// `__kw(name, () => call)` (see [`crate::units`]).
    pub unit_ctors: &'a [&'a str],
}

/// Parses `source` and tags its functions. `None` when oxc cannot parse it (QuickJS then
/// runs the original and reports the error in its own words).
pub fn instrument(source: &str, module: bool) -> Option<Instrumented> {
    instrument_with(source, module, &Options::default())
}

/// [`instrument`], with tag ids from `options.id_base` and the calls that make units named.
pub fn instrument_with(source: &str, module: bool, options: &Options<'_>) -> Option<Instrumented> {
    let allocator = Allocator::default();
    let program = parse(&allocator, source, module)?;
    let semantic = SemanticBuilder::new().build(&program).semantic;
    let scoping = semantic.scoping();

    let mut finder = Finder {
        scoping,
        functions: Vec::new(),
        references: Vec::new(),
        methods: Vec::new(),
        untagged: Vec::new(),
        flux_calls: Vec::new(),
        argument_of: Vec::new(),
    };
    finder.visit_program(&program);

    // Everything below is linear in the size of the file (or n log n): a file of tens of
    // thousands of functions is tagged in milliseconds.
    let lines = crate::LineIndex::new(source);
    finder.references.sort_by_key(|r| r.span.start);
    let flux_calls: std::collections::HashMap<Span, Span> =
        finder.flux_calls.iter().copied().collect();
    let argument_of: std::collections::HashMap<Span, Span> =
        finder.argument_of.iter().copied().collect();
    // The closing insertion of each object whose methods are tagged, by the object's span.
    let mut method_suffix: std::collections::HashMap<Span, usize> = Default::default();
    let mut functions = Vec::with_capacity(finder.functions.len());
    let mut insertions: Vec<Insertion> = Vec::new();
    for (index, f) in finder.functions.iter().enumerate() {
        let id = options.id_base + index;
        let mut captures: Vec<String> = Vec::new();
        let first = finder
            .references
            .partition_point(|r| r.span.start < f.span.start);
        for r in &finder.references[first..] {
            if r.span.start >= f.span.end {
                break;
            }
            if r.span.end > f.span.end {
                continue;
            }
            let Some(symbol) = r.symbol else { continue };
            let declared = scoping.symbol_span(symbol);
            let inside = declared.start >= f.span.start && declared.end <= f.span.end;
            let name = scoping.symbol_name(symbol);
            if !inside && !captures.iter().any(|c| c == name) {
                captures.push(name.to_owned());
            }
        }
        let reader = format!("() => [{}]", captures.join(", "));
        match f.kind {
            Kind::Expression => {
                insertions.push(Insertion::prefix(
                    f.span,
                    format!("{TAG_FN}({id}, {reader}, "),
                ));
                insertions.push(Insertion::suffix(f.span, ")".to_owned()));
            }
            Kind::Declaration(ref name) => insertions.push(Insertion::suffix(
                f.span,
                format!(";{TAG_FN}({id}, {reader}, {name});"),
            )),
            Kind::Method { object, ref key } => {
                let tag = format!("[{key:?}, {id}, {reader}]");
                match method_suffix.get(&object) {
                    Some(&k) => {
                        let suffix = &mut insertions[k];
                        suffix
                            .text
                            .insert_str(suffix.text.len() - 2, &format!(", {tag}"));
                    }
                    None => {
                        let mut pre = Insertion::prefix(object, format!("{TAG_METHODS_FN}("));
                        pre.object = Some(object);
                        let mut post = Insertion::suffix(object, format!(", [{tag}])"));
                        post.object = Some(object);
                        insertions.push(pre);
                        method_suffix.insert(object, insertions.len());
                        insertions.push(post);
                    }
                }
            }
        }
        let flux_call = flux_calls
            .get(&f.span)
            .map(|call| lines.position(call.start));
        functions.push(FunctionSite {
            source: options.source,
            start: f.span.start,
            end: f.span.end,
            captures,
            flux_call,
        });
    }

    for call in crate::units::find(&program, scoping, options.unit_ctors) {
        insertions.push(Insertion::prefix(
            call.span,
            format!("{UNIT_KEY_FN}(\"{}\", () => ", call.name),
        ));
        insertions.push(Insertion::suffix(call.span, ")".to_owned()));
    }

    // QuickJS reports a call by the last call it evaluated inside it, which may be a tag:
    // such places stand for the call the tagged function is an argument of.
    for ins in &mut insertions {
        let tagged = ins.object.unwrap_or(ins.span);
        if let Some(call) = argument_of.get(&tagged) {
            ins.stands_for = call.start;
        }
    }
    // At one offset: closing text of inner spans first, then opening text of outer spans.
    insertions.sort_by_key(|i| {
        let width = i.span.end - i.span.start;
        (
            i.offset,
            i.prefix,
            if i.prefix { u32::MAX - width } else { width },
        )
    });
    let mut out = String::with_capacity(source.len() + insertions.len() * 24);
    let mut at = 0usize;
    let mut map = PositionMap::new();
    for ins in &insertions {
        let offset = ins.offset as usize;
        out.push_str(&source[at..offset]);
        at = offset;
        out.push_str(&ins.text);
        map.record(
            lines.position(offset as u32),
            ins.text.chars().count() as u32,
            lines.position(ins.stands_for),
        );
    }
    out.push_str(&source[at..]);
    Some(Instrumented {
        source: out,
        positions: map,
        functions,
    })
}

/// Deepest bracket nesting (`(`, `[`, `{`) a source may have.
pub const MAX_NESTING: usize = 1_000;
/// Most binary operators one expression may chain without brackets (`1 + 1 + ...`).
pub const MAX_CHAIN: usize = 10_000;

/// Where `source` nests brackets deeper than [`MAX_NESTING`] or chains more than
/// [`MAX_CHAIN`] operators, as `(line, col, message)`; `None` when it does neither.
///
/// Parsers and compilers walk such shapes recursively, and a deep enough one overflows
/// any stack: this scan, which uses none, refuses them first. A small scanner, not a
/// parser: it skips comments, strings and template literals.
pub fn too_deep(source: &str) -> Option<(u32, u32, String)> {
    let mut depth = 0usize;
    // Operators chained at each open bracket's level.
    let mut chains: Vec<usize> = vec![0];
    let mut found = None;
    crate::skim::skim(source, |piece| {
        let crate::skim::Piece::Code(i, c) = piece else {
            return true;
        };
        let problem = match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                chains.push(0);
                (depth > MAX_NESTING)
                    .then(|| format!("brackets nested more than {MAX_NESTING} deep"))
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if chains.len() > 1 {
                    chains.pop();
                }
                None
            }
            // Elements, arguments and statements are lists, not chains.
            b';' | b',' => {
                *chains.last_mut().expect("a level") = 0;
                None
            }
            b'+' | b'-' | b'*' | b'%' | b'&' | b'|' | b'^' | b'<' | b'>' | b'?' | b'/' => {
                let chain = chains.last_mut().expect("a level");
                *chain += 1;
                (*chain > MAX_CHAIN).then(|| {
                    format!("an expression of more than {MAX_CHAIN} operators without brackets")
                })
            }
            _ => None,
        };
        match problem {
            Some(message) => {
                let (line, col) = line_col(source, i as u32);
                found = Some((line, col, message));
                false
            }
            None => true,
        }
    });
    found
}

/// Parses `source` as a module or a script; `None` when it has errors.
pub(crate) fn parse<'a>(
    allocator: &'a Allocator,
    source: &'a str,
    module: bool,
) -> Option<oxc_ast::ast::Program<'a>> {
    let source_type = if module {
        SourceType::mjs()
    } else {
        SourceType::cjs()
    };
    let parsed = Parser::new(allocator, source, source_type).parse();
    (!parsed.panicked && parsed.diagnostics.is_empty()).then_some(parsed.program)
}

/// The first invalid regular expression literal of `source`, as `(line, col, message)`
/// (from 1; the message as oxc gives it), or `None` when every one is valid (or the
/// source does not parse for another reason).
///
/// QuickJS refuses an invalid regular expression with a `SyntaxError` that has no place;
/// this finds it.
pub fn bad_regex(source: &str, module: bool) -> Option<(u32, u32, String)> {
    if !source.contains('/') {
        return None;
    }
    let allocator = Allocator::default();
    let source_type = if module {
        SourceType::mjs()
    } else {
        SourceType::cjs()
    };
    let options = oxc_parser::ParseOptions {
        parse_regular_expression: true,
        ..oxc_parser::ParseOptions::default()
    };
    let parsed = Parser::new(&allocator, source, source_type)
        .with_options(options)
        .parse();
    let plain = Parser::new(&allocator, source, source_type).parse();
    // Only what regular expression parsing adds: the other errors are not regexes'.
    let known: Vec<String> = plain.diagnostics.iter().map(|d| d.to_string()).collect();
    let diagnostic = parsed
        .diagnostics
        .iter()
        .find(|d| !known.contains(&d.to_string()))?;
    let offset = diagnostic.labels.as_ref().first()?.offset();
    let (line, col) = crate::LineIndex::new(source).position(offset);
    Some((line, col, diagnostic.message.to_string()))
}

/// The place `(line, col)` of the only loop of `source` outside every function (`while`,
/// `do`, `for` at the top level), or `None` when there is none or more than one.
///
/// QuickJS names no place when it stops a file that runs too long while loading; such a
/// loop is where it most likely was.
pub fn only_top_level_loop(source: &str, module: bool) -> Option<(u32, u32)> {
    let allocator = Allocator::default();
    let program = parse(&allocator, source, module)?;
    let mut finder = TopLevelLoops {
        depth: 0,
        found: Vec::new(),
    };
    finder.visit_program(&program);
    match finder.found[..] {
        [offset] => Some(crate::LineIndex::new(source).position(offset)),
        _ => None,
    }
}

/// Collects the start of every loop outside functions.
struct TopLevelLoops {
    depth: usize,
    found: Vec<u32>,
}

impl TopLevelLoops {
    /// Notes a loop at `span`, when it is outside every function.
    fn note(&mut self, span: Span) {
        if self.depth == 0 {
            self.found.push(span.start);
        }
    }
}

impl<'a> Visit<'a> for TopLevelLoops {
    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        self.depth += 1;
        walk::walk_function(self, it, flags);
        self.depth -= 1;
    }

    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        self.depth += 1;
        walk::walk_arrow_function_expression(self, it);
        self.depth -= 1;
    }

    fn visit_while_statement(&mut self, it: &oxc_ast::ast::WhileStatement<'a>) {
        self.note(it.span);
        walk::walk_while_statement(self, it);
    }

    fn visit_do_while_statement(&mut self, it: &oxc_ast::ast::DoWhileStatement<'a>) {
        self.note(it.span);
        walk::walk_do_while_statement(self, it);
    }

    fn visit_for_statement(&mut self, it: &oxc_ast::ast::ForStatement<'a>) {
        self.note(it.span);
        walk::walk_for_statement(self, it);
    }

    fn visit_for_in_statement(&mut self, it: &oxc_ast::ast::ForInStatement<'a>) {
        self.note(it.span);
        walk::walk_for_in_statement(self, it);
    }

    fn visit_for_of_statement(&mut self, it: &oxc_ast::ast::ForOfStatement<'a>) {
        self.note(it.span);
        walk::walk_for_of_statement(self, it);
    }
}

#[derive(Debug)]
struct Insertion {
    offset: u32,
    span: Span,
    prefix: bool,
    text: String,
    object: Option<Span>,
    /// Where to point when QuickJS reports a place inside this text.
    stands_for: u32,
}

impl Insertion {
    fn prefix(span: Span, text: String) -> Self {
        Self {
            offset: span.start,
            span,
            prefix: true,
            text,
            object: None,
            stands_for: span.start,
        }
    }

    fn suffix(span: Span, text: String) -> Self {
        Self {
            offset: span.end,
            span,
            prefix: false,
            text,
            object: None,
            stands_for: span.start,
        }
    }
}

#[derive(Debug)]
enum Kind {
    Expression,
    Declaration(String),
    Method { object: Span, key: String },
}

#[derive(Debug)]
struct Found {
    span: Span,
    kind: Kind,
}

#[derive(Debug)]
struct Reference {
    span: Span,
    symbol: Option<oxc_semantic::SymbolId>,
}

/// Collects functions (in source order) and identifier references.
struct Finder<'s> {
    scoping: &'s oxc_semantic::Scoping,
    functions: Vec<Found>,
    references: Vec<Reference>,
    /// Spans of functions that are plain methods of an object literal, with the object.
    methods: Vec<(Span, Span, String)>,
    /// Functions that cannot be wrapped where they stand (getters, setters, computed or
    /// class methods): left untagged, so their signals stay on the JavaScript tier.
    untagged: Vec<Span>,
    /// Factories written inline in `flux(id, factory)`, with the call's span.
    flux_calls: Vec<(Span, Span)>,
    /// Argument spans of every call, with the call's span.
    argument_of: Vec<(Span, Span)>,
}

impl<'a> Visit<'a> for Finder<'_> {
    fn visit_object_expression(&mut self, it: &ObjectExpression<'a>) {
        use oxc_ast::ast::{ObjectPropertyKind, PropertyKind};
        for prop in &it.properties {
            if let ObjectPropertyKind::ObjectProperty(p) = prop {
                let named = p.key.static_name().filter(|_| !p.computed);
                if p.method && p.kind == PropertyKind::Init && named.is_some() {
                    if let Some(key) = named {
                        self.methods
                            .push((p.value.span(), it.span, key.into_owned()));
                    }
                } else if p.method || p.kind != PropertyKind::Init {
                    self.untagged.push(p.value.span());
                }
            }
        }
        walk::walk_object_expression(self, it);
    }

    fn visit_call_expression(&mut self, it: &oxc_ast::ast::CallExpression<'a>) {
        if let oxc_ast::ast::Expression::Identifier(callee) = &it.callee {
            if callee.name == "flux" {
                if let Some(factory) = it.arguments.get(1).and_then(|a| a.as_expression()) {
                    self.flux_calls
                        .push((factory.without_parentheses().span(), it.span));
                }
            }
        }
        walk::walk_call_expression(self, it);
    }

    fn visit_method_definition(&mut self, it: &oxc_ast::ast::MethodDefinition<'a>) {
        self.untagged.push(it.value.span);
        walk::walk_method_definition(self, it);
    }

    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        if self.untagged.contains(&it.span) {
            walk::walk_function(self, it, flags);
            return;
        }
        if let Some(&(_, object, ref key)) = self.methods.iter().find(|m| m.0 == it.span) {
            let key = key.clone();
            self.functions.push(Found {
                span: it.span,
                kind: Kind::Method { object, key },
            });
        } else if it.r#type == FunctionType::FunctionExpression {
            self.functions.push(Found {
                span: it.span,
                kind: Kind::Expression,
            });
        } else if it.r#type == FunctionType::FunctionDeclaration {
            if let Some(id) = &it.id {
                self.functions.push(Found {
                    span: it.span,
                    kind: Kind::Declaration(id.name.to_string()),
                });
            }
        }
        walk::walk_function(self, it, flags);
    }

    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        self.functions.push(Found {
            span: it.span,
            kind: Kind::Expression,
        });
        walk::walk_arrow_function_expression(self, it);
    }

    fn visit_identifier_reference(&mut self, it: &oxc_ast::ast::IdentifierReference<'a>) {
        let symbol = it
            .reference_id
            .get()
            .and_then(|id| self.scoping.get_reference(id).symbol_id());
        self.references.push(Reference {
            span: it.span,
            symbol,
        });
    }
}

/// The 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: u32) -> (u32, u32) {
    crate::LineIndex::new(source).position(offset)
}

/// Maps columns of a tagged source back to the original. Lines never move.
#[derive(Debug, Clone, Default)]
pub struct PositionMap {
    /// (line, original column, inserted length, the place it stands for), 1-based, in
    /// source order.
    insertions: Vec<(u32, u32, u32, (u32, u32))>,
}

impl PositionMap {
    fn new() -> Self {
        Self::default()
    }

    /// Records `len` characters inserted at `(line, col)` of the original, standing for
    /// `stands_for`.
    fn record(&mut self, (line, col): (u32, u32), len: u32, stands_for: (u32, u32)) {
        self.insertions.push((line, col, len, stands_for));
    }

    /// The original position of `line:col` (1-based) in the tagged source.
    pub fn original(&self, line: u32, col: u32) -> (u32, u32) {
        let mut shift = 0;
        for &(_, orig_col, len, stands_for) in self.insertions.iter().filter(|i| i.0 == line) {
            let start = orig_col + shift;
            if col < start {
                break;
            }
            if col < start + len {
                return stands_for;
            }
            shift += len;
        }
        (line, col - shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_tagged_with_their_captures() {
        let src = "const k = 2;\nfunction step(x) { return x * k; }\nflux('a', (mem, idx) => {\n  const f = 440;\n  return { update: (sr) => step(mem[idx] + f / sr) };\n});\n";
        let t = instrument(src, false).unwrap();
        assert_eq!(t.functions.len(), 3);
        assert_eq!(t.functions[0].captures, ["k"]);
        assert_eq!(t.functions[1].captures, ["step"]);
        assert_eq!(t.functions[2].captures, ["step", "mem", "idx", "f"]);
        assert_eq!(
            t.source,
            "const k = 2;\nfunction step(x) { return x * k; };__fx(0, () => [k], step);\n\
             flux('a', __fx(1, () => [step], (mem, idx) => {\n  const f = 440;\n  \
             return { update: __fx(2, () => [step, mem, idx, f], (sr) => step(mem[idx] + f / sr)) };\n}));\n"
        );
        // Line 5, the `step` call: back to column 28 of the original.
        let col = t.source.lines().nth(4).unwrap().find("step(mem").unwrap() as u32 + 1;
        assert_eq!(t.positions.original(5, col), (5, 28));
        assert_eq!(t.positions.original(5, 3), (5, 3));
    }

    #[test]
    fn methods_are_tagged_through_their_object() {
        let src = "const g = 0.5;\nflux('m', () => ({ update(sr) { return g; }, other() { return 1; } }));";
        let t = instrument(src, true).unwrap();
        assert!(
            t.source.contains(
                "__fxo({ update(sr) { return g; }, other() { return 1; } }, [[\"update\", 1, () => [g]], [\"other\", 2, () => []]])"
            ),
            "{}",
            t.source
        );
    }

    #[test]
    fn deep_and_long_shapes_are_found_before_any_parser_sees_them() {
        assert_eq!(too_deep("const a = [[1], (2 + 3)]; // (((\n'[[['"), None);
        let deep = format!("const a = {}1{};", "[".repeat(1_200), "]".repeat(1_200));
        let (line, col, message) = too_deep(&deep).unwrap();
        assert_eq!((line, col), (1, 1_011));
        assert_eq!(message, "brackets nested more than 1000 deep");
        let long = format!("const s = 1{};\n", " + 1".repeat(12_000));
        let (line, _, message) = too_deep(&long).unwrap();
        assert_eq!(line, 1);
        assert!(message.starts_with("an expression of more than 10000"));
        let many = "const s = 1 + 1 + 1;\n".repeat(6_000);
        assert_eq!(too_deep(&many), None, "a long file of short expressions");
        let table = format!("const t = [{}];", "-1, ".repeat(70_000));
        assert_eq!(too_deep(&table), None, "a long table of negative numbers");
    }

    #[test]
    fn getters_setters_classes_and_computed_methods_are_left_as_written() {
        let src = "const k = 'x';\nconst o = { get amp() { return 0.5; }, set amp(v) {}, [k]() { return 1; }, m() { return 2; } };\nclass C { constructor() { this.a = 1; } get b() { return 2; } static s() { return 3; } }\n";
        let t = instrument(src, false).unwrap();
        assert!(t.source.contains("{ get amp() { return 0.5; }, set amp(v) {}, [k]() { return 1; }, m() { return 2; } }"), "{}", t.source);
        assert!(t.source.contains("class C { constructor() { this.a = 1; } get b() { return 2; } static s() { return 3; } }"), "{}", t.source);
        assert!(t.source.contains("[\"m\", 0, () => []]"), "{}", t.source);
    }

    #[test]
    fn unparsable_sources_are_left_to_quickjs() {
        assert!(instrument("let x = ;", false).is_none());
    }
}
