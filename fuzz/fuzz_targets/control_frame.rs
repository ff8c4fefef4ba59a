//! The control protocol's frame parser on any bytes, with and without a token; what it
//! gives is described and encoded as the server would.

#![no_main]

use flux_fuzz::control::protocol::{parse, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    for token in [None, Some("secret")] {
        match parse(frame, token) {
            Ok((id, request)) => {
                let _ = request.describe();
                let _ = Reply {
                    id,
                    ..Reply::default()
                }
                .to_line();
            }
            Err(refusal) => {
                let _ = Reply::from(refusal).to_line();
            }
        }
    }
});
