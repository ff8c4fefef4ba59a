//! Diagnostics: what went wrong in a signals file, and where.

use std::fmt;

use rquickjs::{Ctx, Value};

/// A place in a source file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file as the user named it.
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl Location {
    /// Parses `file:line:col`.
    pub fn parse(s: &str) -> Option<Location> {
        let mut parts = s.rsplitn(3, ':');
        let col = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        let file = parts.next()?;
        (!file.is_empty()).then(|| Location {
            file: file.to_owned(),
            line,
            col,
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One problem found in a signals file: `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is.
    pub location: Location,
    /// What it is, e.g. `SyntaxError: unexpected token in expression: ';'`.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Name of the built-in API's source in stack traces; never a user location.
pub(crate) const PRELUDE_NAME: &str = "<flux>";

/// The first frame of a QuickJS stack trace that lies in user code: past the library's
/// frames (a unit refusing its arguments names the user's call), unless only the library
/// is on the stack.
///
/// Frames look like `    at name (file:line:col)` or `    at file:line:col`.
pub(crate) fn first_user_frame(stack: &str) -> Option<Location> {
    let frames = stack.lines().filter_map(|line| {
        let line = line.trim().strip_prefix("at ")?;
        let inner = match (line.rfind('('), line.ends_with(')')) {
            (Some(open), true) => &line[open + 1..line.len() - 1],
            _ => line,
        };
        Location::parse(inner).filter(|l| l.file != PRELUDE_NAME && l.file != "native")
    });
    let mut library = None;
    for frame in frames {
        if frame.file != crate::library::LIBRARY_NAME {
            return Some(frame);
        }
        library.get_or_insert(frame);
    }
    library
}

/// Where the `update` of signal `index` is defined (`file:line:col` of the source QuickJS
/// ran), when it is user code.
pub(crate) fn update_place(flux: &rquickjs::Object<'_>, index: usize) -> Option<String> {
    let update: rquickjs::Function = flux
        .get::<_, rquickjs::Function>("update")
        .ok()?
        .call((index,))
        .ok()?;
    let file: String = update.get("fileName").ok()?;
    let line: i32 = update.get("lineNumber").ok()?;
    let col: i32 = update.get("columnNumber").ok()?;
    (line > 0 && col > 0 && !file.is_empty() && file != PRELUDE_NAME)
        .then(|| format!("{file}:{line}:{col}"))
}

/// Where a caught exception says it happened.
pub(crate) enum Place {
    /// A frame of the stack, in the coordinates of the source QuickJS ran.
    Stack(Location),
    /// A place the Flux API attached (`fluxLocation`), already in the user's coordinates.
    Api(Location),
    /// Unknown.
    Nowhere,
}

/// Turns a caught JavaScript exception into a message and, when known, its place.
pub(crate) fn describe_exception<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> (Place, String) {
    let _ = ctx;
    if let Some(obj) = value.as_object() {
        let name: Option<String> = obj.get("name").ok();
        let message: Option<String> = obj.get("message").ok();
        let stack: Option<String> = obj.get("stack").ok();
        let api: Option<String> = obj.get("fluxLocation").ok();
        if name.is_some() || message.is_some() {
            let text = match (name, message) {
                (Some(n), Some(m)) if !m.is_empty() => format!("{n}: {m}"),
                (Some(n), _) => n,
                (None, Some(m)) => m,
                (None, None) => unreachable!(),
            };
            let place = match (
                api.as_deref().and_then(Location::parse),
                stack.as_deref().and_then(first_user_frame),
            ) {
                (Some(l), _) => Place::Api(l),
                (None, Some(l)) => Place::Stack(l),
                (None, None) => Place::Nowhere,
            };
            return (place, text);
        }
    }
    (
        Place::Nowhere,
        format!("uncaught exception: {}", show_value(value)),
    )
}

/// A short rendering of any JavaScript value, for messages.
pub(crate) fn show_value(value: &Value<'_>) -> String {
    if let Some(s) = value.as_string() {
        return format!("{:?}", s.to_string().unwrap_or_default());
    }
    if let Some(n) = value.as_number() {
        return n.to_string();
    }
    if let Some(b) = value.as_bool() {
        return b.to_string();
    }
    if value.is_undefined() {
        return "undefined".into();
    }
    if value.is_null() {
        return "null".into();
    }
    format!("a value of type {}", value.type_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_frames_with_and_without_a_function_name() {
        let stack = "    at render (<flux>:99:20)\n    at update (dir/signals.js:12:7)\n";
        assert_eq!(
            first_user_frame(stack),
            Some(Location {
                file: "dir/signals.js".into(),
                line: 12,
                col: 7
            })
        );
        assert_eq!(
            first_user_frame("    at a.js:3:11\n").unwrap().to_string(),
            "a.js:3:11"
        );
        assert_eq!(first_user_frame("    at f (<flux>:1:2)\n"), None);
    }
}
