//! The default device either opens with a sane configuration or says there is none.

use flux_audio::{open_device, ErrorKind, OutputConfig};

#[test]
fn the_default_device_opens_or_reports_no_device() {
    // A headless machine (CI) has no default device; a workstation has one.
    match open_device(None, &OutputConfig::default()) {
        Ok(device) => {
            assert!(device.sample_rate() > 0);
            assert!(device.channels() > 0);
            assert!(device.name().contains(": "), "{}", device.name());
        }
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::NoDevice, "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with("cannot open the default output device")
                    || message.ends_with("has no default output device"),
                "{message}"
            );
        }
    }
}

#[test]
fn zero_settings_are_refused_before_any_device_is_touched() {
    let zero_rate = OutputConfig {
        sample_rate: Some(0),
        ..OutputConfig::default()
    };
    let error = open_device(Some("anything"), &zero_rate).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.to_string(), "a sample rate of 0 is not valid");
}
