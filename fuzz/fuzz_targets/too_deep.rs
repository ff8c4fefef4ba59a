//! The nesting scan the loader runs before any parser, on any text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|source: &str| {
    if let Some((line, col, message)) = flux_jit::analyze::too_deep(source) {
        assert!(line >= 1 && col >= 1, "{line}:{col} {message}");
    }
});
