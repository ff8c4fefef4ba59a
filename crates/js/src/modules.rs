//! Scripts and modules: telling them apart, evaluating them, resolving and loading imports.

use std::path::{Component, Path, PathBuf};

use rquickjs::context::EvalOptions;
use rquickjs::loader::{ImportAttributes, Loader as ModuleLoader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{CaughtError, Ctx, Module};

/// Name the built-in API module resolves to; any import ending in `flux.js` gets it.
pub(crate) const API_MODULE: &str = "flux:api";
/// The built-in API's exports besides the library's.
const API_EXPORTS: &[&str] = &[
    "flux", "clear", "remove", "list", "play", "stop", "mute", "unmute", "solo", "gain",
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
    let b = source.as_bytes();
    let mut i = 0;
    // Whether the last significant character lets a statement start here.
    let mut statement_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    statement_start |= b[i] == b'\n';
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                statement_start = false;
            }
            b'\n' | b';' | b'{' | b'}' => statement_start = true,
            c if c.is_ascii_whitespace() => {}
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &b[start..i];
                if statement_start && (word == b"import" || word == b"export") {
                    let next = b[i..].iter().find(|c| !c.is_ascii_whitespace());
                    if word == b"export" || !matches!(next, Some(b'(') | Some(b'.')) {
                        return true;
                    }
                }
                statement_start = false;
                continue;
            }
            _ => statement_start = false,
        }
        i += 1;
    }
    false
}

pub(crate) fn evaluate<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    source: &str,
    is_module: bool,
) -> Result<(), CaughtError<'js>> {
    use rquickjs::CatchResultExt;
    if is_module {
        let module = Module::declare(ctx.clone(), name, source).catch(ctx)?;
        let (_, promise) = module.eval().catch(ctx)?;
        promise.finish::<()>().catch(ctx)
    } else {
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        options.filename = Some(name.to_owned());
        ctx.eval_with_options::<(), _>(source, options).catch(ctx)
    }
}

/// Resolves `*flux.js` to the built-in API and relative paths to files.
pub(crate) struct FileResolver;

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
        if !(name.starts_with("./") || name.starts_with("../") || name.starts_with('/')) {
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                "only relative paths and flux.js can be imported",
            ));
        }
        let dir = Path::new(base).parent().unwrap_or(Path::new(""));
        Ok(normalize(&dir.join(name)).to_string_lossy().into_owned())
    }
}

/// Joins `.` and `..` away without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Declares the built-in API module and modules read from files.
pub(crate) struct FileLoader;

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
        let source = std::fs::read_to_string(name).map_err(|e| {
            rquickjs::Error::new_loading_message(name, format!("cannot read it: {e}"))
        })?;
        Module::declare(ctx.clone(), name, source)
    }
}

#[cfg(test)]
mod tests {
    use super::is_module;

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
