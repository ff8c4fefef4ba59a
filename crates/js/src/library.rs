//! The unit library (`dsp.js`): its source as every load runs it, its function tags, and
//! which of its functions make units.
//!
//! The library is a plain script of functions. Every load evaluates it inside
//! `(function (mem, slots, buffer, SR, SEED, clock, sample) { ... return [LIBRARY, __play]; })`, so the names
//! it uses for the state memory, its allocator, the sample rate, the seed and the transport's
//! clock are parameters, which
//! the native tier sees as captured values like any other. Its functions are tagged for the
//! native tier from tag id 0; the file's own functions come after them.

use std::sync::OnceLock;

use flux_jit::analyze::{instrument_with, FunctionSite, Options, PositionMap};

/// The library's source, as shipped.
const DSP: &str = include_str!("dsp.js");
/// The sequencing units, loaded after `dsp.js` in the same wrapper; their exports
/// (`const SEQUENCING = {...}`) join the library's.
const SEQ: &str = include_str!("seq.js");
/// The end of the library's wrapper: `play()`'s per-frame function, which lives here so
/// that the native tier compiles it with the function it calls, and the return value.
const PLAY: &str = "function __play(fn, idx, name, view) {
  return (sr) => {
    const t = mem[idx + 63];
    mem[idx + 63] = t + 1 / sr;
    return fn({ t: t, dt: 1 / sr, sr: sr, state: view, name: name, beat: clock.beat, bar: clock.bar });
  };
}
return [Object.assign({}, LIBRARY, typeof SEQUENCING === 'object' ? SEQUENCING : {}), __play];";

/// The file name the library's diagnostics carry.
pub(crate) const LIBRARY_NAME: &str = "flux:dsp.js";

/// The library, prepared once per process.
pub(crate) struct Library {
    /// The wrapped source, as the compiler parses it.
    pub source: String,
    /// The wrapped source with its functions tagged, as QuickJS runs it.
    pub tagged: String,
    /// Columns of `tagged` back to `source`.
    pub positions: PositionMap,
    /// Its functions, tag ids from 0.
    pub sites: Vec<FunctionSite>,
    /// The names it exports (the keys of its `LIBRARY` object).
    pub exports: Vec<String>,
    /// The exports that make units (they take state slots): called while loading only.
    pub ctors: Vec<String>,
}

/// The library of this build.
pub(crate) fn library() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(|| prepare(DSP, SEQ).expect("the built-in dsp.js and seq.js parse"))
}

/// Wraps, tags and reads `dsp` and `seq` after it. `None` when they do not parse.
fn prepare(dsp: &str, seq: &str) -> Option<Library> {
    // The wrapper stays on the first line, so lines of the library keep their numbers.
    let source = format!(
        "(function (mem, slots, buffer, SR, SEED, clock, sample) {{ {dsp}\n{seq}\n{PLAY}\n}})"
    );
    let tagged = instrument_with(&source, false, &Options::default())?;
    let (exports, ctors) = flux_jit::units::library(&format!("{dsp}\n{seq}"))?;
    Some(Library {
        source,
        tagged: tagged.source,
        positions: tagged.positions,
        sites: tagged.functions,
        exports,
        ctors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_lists_its_exports_and_unit_makers() {
        let lib = prepare(
            "function a() { const s = slots(1); return (x) => mem[s] + x; }\n\
             function b() { return a(); }\nfunction c(x) { return x; }\n\
             const LIBRARY = { a, b, c };",
            "",
        )
        .unwrap();
        assert_eq!(lib.exports, ["a", "b", "c"]);
        assert_eq!(lib.ctors, ["a", "b"]);
        assert_eq!(
            lib.sites.len(),
            7,
            "the wrapper, a, its closure, b, c, __play and its closure"
        );
        assert!(lib.tagged.starts_with("(__fx(0, "), "{}", lib.tagged);
    }

    #[test]
    fn the_built_in_library_is_ready() {
        let lib = library();
        assert!(lib.exports.iter().any(|e| e == "sine"));
        assert!(lib.ctors.iter().any(|e| e == "sine"));
        assert!(!lib.ctors.iter().any(|e| e == "mtof"));
        for unit in ["seq", "every", "euclid"] {
            assert!(lib.ctors.iter().any(|e| e == unit), "{unit}");
        }
        assert!(lib.exports.iter().any(|e| e == "swing"));
    }
}
