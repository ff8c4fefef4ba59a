//! Smoke runs of the decoders on random input: they refuse, they never panic.

use proptest::prelude::*;

use super::osc::decode;
use super::protocol::parse;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn control_frames_of_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes, None);
        let _ = parse(&bytes, Some("secret"));
    }

    #[test]
    fn control_frames_of_json_like_text_never_panic(
        text in r#"\{("(op|id|token|signal|value|index|fade|code|name|line)":(-?[0-9.e+]{0,12}|"[a-z]{0,8}"|null|true|\[|\{|\]|\}),?){0,8}\}?"#
    ) {
        let _ = parse(text.as_bytes(), None);
    }

    #[test]
    fn osc_datagrams_of_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn osc_bundles_of_random_bytes_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
        size in any::<u32>(),
    ) {
        let mut packet = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
        packet.extend_from_slice(&size.to_be_bytes());
        packet.extend_from_slice(&tail);
        let _ = decode(&packet);
        let mut message = b"/flux/gain\0\0,".to_vec();
        message.extend_from_slice(&tail);
        let _ = decode(&message);
    }
}
