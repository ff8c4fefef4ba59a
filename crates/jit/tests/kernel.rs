//! A compiled kernel checks the shape of the block it is asked to render.

use std::sync::Arc;

use flux_engine::{Block, Signal, StateMemory};
use flux_jit::analyze::instrument;
use flux_jit::{compile, Captured, NativeSignal, Request, Source, Target};

/// Compiles `requests` against the functions of `source` for `channels` output channels.
fn compile_all(source: &str, requests: &[Request], channels: usize) -> Vec<NativeSignal> {
    let tagged = instrument(source, false).expect("the source parses");
    let target = Target {
        channels,
        state: Arc::new(StateMemory::new(16)),
        file: "k.js".into(),
        globals: Vec::new(),
    };
    let sources = [Source {
        name: "k.js",
        text: source,
        module: false,
    }];
    compile(&sources, &tagged.functions, requests, &target)
        .into_iter()
        .map(|r| r.expect("the update compiles"))
        .collect()
}

/// Compiles `update` (the only function in `source`) for `channels` output channels.
fn kernel(source: &str, channels: usize) -> NativeSignal {
    let request = Request {
        id: "k".into(),
        function: 0,
        captures: Vec::new(),
        seed: 1,
    };
    compile_all(source, &[request], channels)
        .pop()
        .expect("one result")
}

#[test]
fn a_stereo_kernel_renders_a_stereo_block() {
    let mut k = kernel("const update = () => [0.25, 0.5];", 2);
    let mut out = vec![0.0; 8];
    let mut block = Block {
        frames: 4,
        channels: 2,
        sample_rate: 48_000.0,
        clock: &flux_engine::STILL,
        out: &mut out,
    };
    k.render(&mut block).unwrap();
    assert_eq!(out, [0.25, 0.5, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5]);
}

#[test]
#[should_panic(expected = "compiled for 2 channels cannot render 1")]
fn a_stereo_kernel_refuses_a_mono_block() {
    let mut k = kernel("const update = () => [0.25, 0.5];", 2);
    // Four mono frames: the kernel would write eight samples into four.
    let mut out = vec![0.0; 4];
    let _ = k.render(&mut Block {
        frames: 4,
        channels: 1,
        sample_rate: 48_000.0,
        clock: &flux_engine::STILL,
        out: &mut out,
    });
}

#[test]
#[should_panic(expected = "needs 8 samples, not 7")]
fn a_kernel_refuses_a_short_block() {
    let mut k = kernel("const update = () => [0.25, 0.5];", 2);
    let mut out = vec![0.0; 7];
    let _ = k.render(&mut Block {
        frames: 4,
        channels: 2,
        sample_rate: 48_000.0,
        clock: &flux_engine::STILL,
        out: &mut out,
    });
}

#[test]
#[should_panic(expected = "longer than 256")]
fn a_kernel_refuses_a_block_longer_than_the_engine_renders() {
    let mut k = kernel("const update = () => 0.5;", 1);
    let mut out = vec![0.0; 1000];
    let _ = k.render(&mut Block {
        frames: 1000,
        channels: 1,
        sample_rate: 48_000.0,
        clock: &flux_engine::STILL,
        out: &mut out,
    });
}

#[test]
fn closures_of_one_function_that_differ_in_numbers_share_one_kernel() {
    let source = "const make = (f, k) => (sr) => Math.sin(f * k) * 0.1;";
    let inner = 1;
    let request = |id: &str, f: f64, k: f64| Request {
        id: id.into(),
        function: inner,
        captures: vec![Captured::Number(f), Captured::Number(k)],
        seed: 1,
    };
    let requests = [
        request("a", 1.0, 0.5),
        request("b", 2.0, 0.5),
        request("c", 3.0, 0.25),
    ];
    let mut signals = compile_all(source, &requests, 1);
    assert_eq!(signals[0].kernel_address(), signals[1].kernel_address());
    assert_eq!(signals[0].kernel_address(), signals[2].kernel_address());
    // Each instance computes with its own numbers.
    for (s, want) in signals.iter_mut().zip([0.5f64, 1.0, 0.75]) {
        let mut out = vec![0.0; 2];
        let mut block = Block {
            frames: 2,
            channels: 1,
            sample_rate: 48_000.0,
            clock: &flux_engine::STILL,
            out: &mut out,
        };
        s.render(&mut block).unwrap();
        assert_eq!(out, [want.sin() * 0.1; 2]);
    }
    // Alone, a closure keeps its numbers folded in: a kernel of its own.
    let alone = compile_all(source, &requests[..1], 1).pop().unwrap();
    assert_ne!(alone.kernel_address(), signals[0].kernel_address());
}
