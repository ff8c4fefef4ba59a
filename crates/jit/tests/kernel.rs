//! A compiled kernel checks the shape of the block it is asked to render.

use std::sync::Arc;

use flux_engine::{Block, Signal, StateMemory};
use flux_jit::analyze::instrument;
use flux_jit::{compile, NativeSignal, Request, Source, Target};

/// Compiles `update` (the only function in `source`) for `channels` output channels.
fn kernel(source: &str, channels: usize) -> NativeSignal {
    let tagged = instrument(source, false).expect("the source parses");
    assert_eq!(tagged.functions.len(), 1, "{source}");
    let request = Request {
        id: "k".into(),
        function: 0,
        captures: Vec::new(),
        seed: 1,
    };
    let target = Target {
        channels,
        state: Arc::new(StateMemory::new(16)),
        file: "k.js".into(),
    };
    let sources = [Source {
        name: "k.js",
        text: source,
        module: false,
    }];
    compile(&sources, &tagged.functions, &[request], &target)
        .pop()
        .expect("one result")
        .expect("the update compiles")
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
