//! The native tier's instrumentation (oxc) alone, on any text, as a script and a module.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// As the loader: parsing recurses along the code's shape, so it runs on a large stack.
const STACK: usize = 256 << 20;

fuzz_target!(|source: &str| {
    // The loader refuses what nests too deep before instrumenting it.
    if flux_jit::analyze::too_deep(source).is_some() {
        return;
    }
    let source = source.to_owned();
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let _ = flux_jit::analyze::instrument(&source, false);
            let _ = flux_jit::analyze::instrument(&source, true);
        })
        .expect("a thread")
        .join()
        .expect("instrument panicked");
});
