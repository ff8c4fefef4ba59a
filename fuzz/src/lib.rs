//! The code the fuzz targets reach that is not a library: the control protocol's frame
//! parser and the OSC decoder live in the `flux` binary, so their files are compiled here
//! as they are (`#[path]`), with the few modules of the binary they name.
//!
//! Only `control::protocol` and `control::osc` are fuzzed; the rest is what they need
//! to compile.

#![allow(dead_code, unused_imports)]

#[path = "../../crates/cli/src/levels.rs"]
pub mod levels;
#[path = "../../crates/cli/src/text.rs"]
pub mod text;
#[path = "../../crates/cli/src/worker.rs"]
pub mod worker;

pub mod control;
