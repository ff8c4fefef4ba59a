//! Scripts and modules: telling them apart, evaluating them, resolving and loading imports.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use flux_jit::analyze::{instrument_with, Instrumented, Options, PositionMap};
use rquickjs::context::EvalOptions;
use rquickjs::loader::{ImportAttributes, Loader as ModuleLoader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{CaughtError, Ctx, Module, Value};

use crate::diag::{Diagnostic, Location};

/// Name the built-in API module resolves to; any import ending in `flux.js` gets it.
pub(crate) const API_MODULE: &str = "flux:api";
/// The built-in API's exports besides the library's.
const API_EXPORTS: &[&str] = &[
    "flux", "clear", "remove", "list", "play", "stop", "mute", "unmute", "solo", "unsolo", "gain",
    "tempo", "clock", "midi",
];

/// The source of the built-in API module: the API and the unit library.
fn api_source() -> String {
    let names: Vec<&str> = API_EXPORTS
        .iter()
        .copied()
        .chain(crate::library::library().exports.iter().map(String::as_str))
        .collect();
    format!(
        "const a = globalThis.__flux.api;\nexport const {{ {} }} = a;\nexport default a;\n",
        names.join(", ")
    )
}

/// True when `source` is an ES module: it has an `import` or `export` statement.
///
/// A small scanner, not a parser: it skips comments, strings and template literals and looks
/// for the keyword at the start of a statement. `import(...)` and `import.meta` do not count.
pub(crate) fn is_module(source: &str) -> bool {
    use flux_jit::skim::{skim, Piece};
    let b = source.as_bytes();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    // Whether the last significant character lets a statement start here.
    let mut statement_start = true;
    let mut word: Option<usize> = None;
    let mut found = false;
    let end_word = |start: usize, end: usize, statement_start: bool| {
        let w = &b[start..end];
        if statement_start && (w == b"import" || w == b"export") {
            let next = b[end..].iter().find(|c| !c.is_ascii_whitespace());
            return w == b"export" || !matches!(next, Some(b'(') | Some(b'.'));
        }
        false
    };
    skim(source, |piece| {
        if let Piece::Code(i, c) = piece {
            if is_word(c) && (word.is_some() || !c.is_ascii_digit()) {
                word.get_or_insert(i);
                return true;
            }
        }
        if let Some(start) = word.take() {
            if end_word(start, piece.at(), statement_start) {
                found = true;
                return false;
            }
            statement_start = false;
        }
        match piece {
            Piece::Comment(_, newline) => statement_start |= newline,
            Piece::Quoted(_) => statement_start = false,
            Piece::Code(_, b'\n' | b';' | b'{' | b'}') => statement_start = true,
            Piece::Code(_, c) if c.is_ascii_whitespace() => {}
            Piece::Code(..) => statement_start = false,
        }
        true
    });
    if let (false, Some(start)) = (found, word) {
        found = end_word(start, b.len(), statement_start);
    }
    found
}

/// Runs a file or a snippet; a script gives the value its last statement ends with
/// (`undefined` for a module).
pub(crate) fn evaluate<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: &str,
    is_module: bool,
) -> Result<Value<'js>, CaughtError<'js>> {
    use rquickjs::CatchResultExt;
    if is_module {
        let module = Module::declare(ctx.clone(), name, source).catch(ctx)?;
        let (_, promise) = module.eval().catch(ctx)?;
        promise.finish::<()>().catch(ctx)?;
        Ok(Value::new_undefined(ctx.clone()))
    } else {
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        options.filename = Some(name.to_owned());
        ctx.eval_with_options::<Value, _>(source, options)
            .catch(ctx)
    }
}

/// The largest signals file or imported module: 4 MiB.
pub const MAX_SOURCE_BYTES: u64 = 4 << 20;

/// Reads a signals file or a module as text, safely: only a regular file (never a FIFO, a
/// device or a folder, which could block or never end) of at most [`MAX_SOURCE_BYTES`],
/// in UTF-8. The kind is checked before the file is opened and again on the opened file.
///
/// # Errors
///
/// Why the file cannot be used, without any of its content.
pub fn read_source(path: &Path) -> Result<String, SourceError> {
    use std::io::Read;
    let kind = |m: &std::fs::Metadata| {
        let t = m.file_type();
        if t.is_dir() {
            "a folder"
        } else if t.is_file() {
            "a file"
        } else {
            "not a regular file (a FIFO, socket or device)"
        }
    };
    let check = |m: &std::fs::Metadata| -> Result<(), String> {
        if !m.is_file() {
            return Err(format!("it is {}; only regular files are read", kind(m)));
        }
        if m.len() > MAX_SOURCE_BYTES {
            return Err(too_big(m.len()));
        }
        Ok(())
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    check(&meta)?;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    check(
        &file
            .metadata()
            .map_err(|e| format!("cannot read it: {e}"))?,
    )?;
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_big(bytes.len() as u64).into());
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let bad = e.utf8_error().valid_up_to();
        // The place of the bad byte: its line, and its column in characters.
        let before = &bytes[..bad];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
        SourceError {
            message: format!("it is not UTF-8 text (a byte 0x{:02x})", bytes[bad]),
            place: Some((
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(col).unwrap_or(u32::MAX),
            )),
        }
    })
}

/// Why a signals file or module cannot be read, and where in it, when a place is known
/// (a byte that is not UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// What is wrong, without any of the file's content.
    pub message: String,
    /// Line and column (from 1) of the fault in the file.
    pub place: Option<(u32, u32)>,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for SourceError {
    fn from(message: String) -> Self {
        Self {
            message,
            place: None,
        }
    }
}

impl SourceError {
    /// `name:line:col: cannot load the file: message`, or `name: cannot load ...` without
    /// a place.
    pub fn line(&self, name: &str) -> String {
        match self.place {
            Some((line, col)) => format!("{name}:{line}:{col}: cannot load the file: {self}"),
            None => format!("{name}: cannot load the file: {self}"),
        }
    }
}

fn too_big(len: u64) -> String {
    format!(
        "it is {len} bytes; a signals file or module is at most {MAX_SOURCE_BYTES} bytes (4 MiB)"
    )
}

/// What the imports of one load may reach, and what they reached. Shared by the resolver,
/// the module loader and the [`Loader`](crate::Loader) that reads it after the load.
#[derive(Clone, Default)]
pub(crate) struct Imports(Arc<Mutex<ImportsInner>>);

#[derive(Default)]
struct ImportsInner {
    /// The signals file's folder, which relative names start from.
    folder: PathBuf,
    /// The folder imports must stay in (canonical); `None`: anywhere.
    root: Option<PathBuf>,
    /// Source of each module by name, to find the place of an import in it.
    sources: HashMap<String, String>,
    /// Where each resolved module was imported and as what, by module name.
    places: HashMap<String, (Location, String)>,
    /// The files imported, canonical, in the order they were loaded.
    files: Vec<PathBuf>,
    /// Files looked for and not found (absolute): creating one may fix the load.
    missing: Vec<PathBuf>,
    /// The first refused import.
    error: Option<Diagnostic>,
    /// Tagging of imported modules for the native tier, when it is wanted.
    tagging: Option<Tagging>,
}

/// Imported modules tagged for the native tier: their functions get tag ids after the
/// library's and the file's, and they become sources of the load's compile.
#[derive(Default)]
pub(crate) struct Tagging {
    /// The next free tag id.
    pub next_id: usize,
    /// The library's unit makers (calls of them are named in modules too).
    pub ctors: Vec<String>,
    /// The modules tagged so far, in load order: name, original text, tagged copy.
    pub modules: Vec<(String, String, Instrumented)>,
    /// Column maps of the tagged modules, by name, shared with the load's locator.
    pub positions: Arc<Mutex<HashMap<String, PositionMap>>>,
}

impl Imports {
    /// Imports of a load of `file`: inside its folder (and below), or anywhere.
    pub(crate) fn new(file: &str, source: &str, anywhere: bool) -> Self {
        let folder = match Path::new(file).parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // A folder that cannot be found allows nothing but itself (an empty root).
        let root = (!anywhere).then(|| folder.canonicalize().unwrap_or_else(|_| folder.clone()));
        let mut sources = HashMap::new();
        sources.insert(file.to_owned(), source.to_owned());
        Self(Arc::new(Mutex::new(ImportsInner {
            folder: folder.clone(),
            root,
            sources,
            ..ImportsInner::default()
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut ImportsInner) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Tags the modules this load imports from now on (see [`Tagging`]).
    pub(crate) fn tag_modules(&self, tagging: Tagging) {
        self.with(|i| i.tagging = Some(tagging));
    }

    /// The modules tagged by this load.
    pub(crate) fn tagged(&self) -> Vec<(String, String, Instrumented)> {
        self.with(|i| i.tagging.as_mut().map(|t| std::mem::take(&mut t.modules)))
            .unwrap_or_default()
    }

    /// A file the code names that is not a module (a sound for `sampler`): `name` relative to
    /// the signals file's folder, under the same rules as imports. The file is watched like
    /// an import. Returns its canonical path.
    pub(crate) fn resolve_file(&self, name: &str) -> Result<PathBuf, String> {
        let path = Path::new(name);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.with(|i| i.folder.join(path))
        };
        let real = self.check(&normalize(&path))?;
        self.with(|i| {
            if !i.files.contains(&real) {
                i.files.push(real.clone());
            }
        });
        Ok(real)
    }

    /// The files the load imported.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.with(|i| i.files.clone())
    }

    /// The files the load read or looked for: what a watcher should watch so that a
    /// change to any of them, or the creation of a missing one, reloads.
    pub(crate) fn watch_list(&self) -> Vec<PathBuf> {
        self.with(|i| i.files.iter().chain(&i.missing).cloned().collect())
    }

    /// The first import that was refused, with its place.
    pub(crate) fn take_error(&self) -> Option<Diagnostic> {
        self.with(|i| i.error.take())
    }

    /// Where `name` is imported in module `base`: the place of its quoted specifier.
    fn place(&self, base: &str, name: &str) -> Location {
        self.with(|i| {
            let (line, col) = i
                .sources
                .get(base)
                .and_then(|src| find_specifier(src, name))
                .unwrap_or((1, 1));
            Location {
                file: base.to_owned(),
                line,
                col,
            }
        })
    }

    /// Records a refused import (the first one wins) and returns the error for QuickJS.
    fn refuse(&self, place: Location, name: &str, why: &str) -> rquickjs::Error {
        let message = format!("import '{name}' refused: {why}");
        self.with(|i| {
            i.error.get_or_insert(Diagnostic {
                location: place,
                message: message.clone(),
            });
        });
        rquickjs::Error::new_loading_message(name, message)
    }

    /// Checks that `path` may be imported: it exists, is a regular file, and (after
    /// following symlinks) lies inside the root. Returns its canonical path.
    fn check(&self, path: &Path) -> Result<PathBuf, String> {
        let real = path.canonicalize().map_err(|e| {
            if let Ok(absolute) = std::path::absolute(path) {
                self.with(|i| {
                    if !i.missing.contains(&absolute) {
                        i.missing.push(absolute);
                    }
                });
            }
            format!("cannot find {}: {e}", path.display())
        })?;
        if let Some(root) = self.with(|i| i.root.clone()) {
            if !real.starts_with(&root) {
                return Err(format!(
                    "{} is outside the folder of the signals file ({}); \
                     `--allow-imports-anywhere` allows it",
                    real.display(),
                    root.display()
                ));
            }
        }
        Ok(real)
    }
}

/// The line and column of the first quoted `name` in `src` that is not on a `//` comment
/// line: where an import names it.
fn find_specifier(src: &str, name: &str) -> Option<(u32, u32)> {
    ['\'', '"', '`'].iter().find_map(|q| {
        let quoted = format!("{q}{name}{q}");
        src.match_indices(&quoted)
            .map(|(at, _)| at)
            .find(|&at| {
                let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
                !src[line_start..at].contains("//")
            })
            .map(|at| line_col(src, at))
    })
}

/// The 1-based line and column (in characters) of byte `at` of `text`.
fn line_col(text: &str, at: usize) -> (u32, u32) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Resolves `*flux.js` to the built-in API and relative paths to files inside the root.
pub(crate) struct FileResolver(pub(crate) Imports);

impl Resolver for FileResolver {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let _ = ctx;
        if name.ends_with("flux.js") {
            return Ok(API_MODULE.to_owned());
        }
        let place = self.0.place(base, name);
        if !(name.starts_with("./") || name.starts_with("../") || name.starts_with('/')) {
            return Err(self.0.refuse(
                place,
                name,
                "only relative paths (./, ../) and flux.js can be imported",
            ));
        }
        let dir = Path::new(base).parent().unwrap_or(Path::new(""));
        let path = normalize(&dir.join(name));
        if let Err(why) = self.0.check(&path) {
            return Err(self.0.refuse(place, name, &why));
        }
        let resolved = path.to_string_lossy().into_owned();
        self.0
            .with(|i| i.places.insert(resolved.clone(), (place, name.to_owned())));
        Ok(resolved)
    }
}

/// Joins `.` and `..` away without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // Above the root is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// Declares the built-in API module and modules read from files (checked again: the file
/// may have changed since it was resolved).
pub(crate) struct FileLoader(pub(crate) Imports);

impl ModuleLoader for FileLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        if name == API_MODULE {
            return Module::declare(ctx.clone(), API_MODULE, api_source());
        }
        let (place, spec) = self.0.with(|i| i.places.get(name).cloned()).unwrap_or((
            Location {
                file: name.to_owned(),
                line: 1,
                col: 1,
            },
            name.to_owned(),
        ));
        let real = self
            .0
            .check(Path::new(name))
            .map_err(|why| self.0.refuse(place.clone(), &spec, &why))?;
        let source = read_source(&real).map_err(|why| {
            let why = match why.place {
                Some((line, col)) => {
                    format!("{} at {}:{line}:{col}", why.message, real.display())
                }
                None => why.message,
            };
            self.0.refuse(place, &spec, &why)
        })?;
        if let Some((line, col, why)) = flux_jit::analyze::too_deep(&source) {
            let here = Location {
                file: name.to_owned(),
                line,
                col,
            };
            return Err(self.0.refuse(here, &spec, &why));
        }
        let run = self.0.with(|i| {
            i.sources.insert(name.to_owned(), source.clone());
            if !i.files.contains(&real) {
                i.files.push(real);
            }
            let t = i.tagging.as_mut()?;
            let ctors: Vec<&str> = t.ctors.iter().map(String::as_str).collect();
            let tagged = instrument_with(
                &source,
                true,
                &Options {
                    id_base: t.next_id,
                    // Sources of a compile: the library, the file, then the modules.
                    source: 2 + t.modules.len(),
                    unit_ctors: &ctors,
                },
            )?;
            t.next_id += tagged.functions.len();
            if let Ok(mut p) = t.positions.lock() {
                p.insert(name.to_owned(), tagged.positions.clone());
            }
            let run = tagged.source.clone();
            t.modules.push((name.to_owned(), source.clone(), tagged));
            Some(run)
        });
        // A module that names the library gets it before any module runs.
        if crate::hooks::names_library(&source) {
            let flux: rquickjs::Object = ctx.globals().get("__flux")?;
            let load: rquickjs::Function = flux.get("loadLibrary")?;
            load.call::<_, ()>(())?;
        }
        Module::declare(ctx.clone(), name, run.unwrap_or(source))
    }
}

#[cfg(test)]
mod tests {
    use super::{find_specifier, is_module, normalize};
    use std::path::Path;

    #[test]
    fn paths_normalize_without_losing_leading_parents() {
        assert_eq!(
            normalize(Path::new("../../a/../etc/passwd")),
            Path::new("../../etc/passwd")
        );
        assert_eq!(normalize(Path::new("a/./b/../c.js")), Path::new("a/c.js"));
        assert_eq!(normalize(Path::new("/x/../../y")), Path::new("/y"));
    }

    #[test]
    fn an_import_is_found_outside_comments() {
        let src = "// import 'fs' in a comment\nimport { a } from 'fs';\n";
        assert_eq!(find_specifier(src, "fs"), Some((2, 19)));
        assert_eq!(find_specifier(src, "nope"), None);
    }

    #[test]
    fn modules_are_told_from_scripts() {
        assert!(is_module("// c\nimport { flux } from './flux.js';"));
        assert!(is_module("/* a\n b */ export const x = 1;"));
        assert!(is_module("flux('a', f);\nimport{flux}from'flux.js'"));
        assert!(!is_module("flux('a', f); // import x from 'y'"));
        assert!(!is_module("const s = 'import x from y';"));
        assert!(!is_module(
            "import('./x.js').then(f);\nconst u = import.meta;"
        ));
        assert!(!is_module("const important = 1; a.import = 2;"));
        assert!(!is_module("let b = ;"));
    }
}
