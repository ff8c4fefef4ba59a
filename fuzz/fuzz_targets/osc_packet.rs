//! The OSC decoder on any datagram; requests are described, errors encoded as the reply
//! packet the receiver would send.

#![no_main]

use flux_fuzz::control::osc::{decode, error_packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    for request in decode(packet) {
        match request {
            Ok(request) => {
                let _ = request.describe();
            }
            Err(error) => {
                let _ = error_packet(&error);
            }
        }
    }
});
