//! The WAV writer stores f32 frames bit for bit, with an honest header.

use std::path::PathBuf;

use flux_audio::{ErrorKind, WavWriter};

fn temp_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flux-audio-{}-{name}.wav", std::process::id()))
}

#[test]
fn wav_round_trip_is_bit_exact() {
    let path = temp_path("round-trip");
    let channels = 3_u16;
    let special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.5,
        f32::MIN_POSITIVE,
        f32::MIN_POSITIVE / 8.0, // subnormal
        f32::EPSILON,
        -1.0e-30,
        f32::MAX,
        f32::INFINITY,
        f32::NAN,
    ];
    let mut samples: Vec<f32> = special.to_vec();
    samples.extend((0..3000).map(|i| (i as f32 * 0.037).sin() * 0.9));
    assert!(samples.len().is_multiple_of(usize::from(channels)));

    let mut writer = WavWriter::create(&path, 44_100, channels).expect("create");
    // Uneven chunks, each a whole number of frames.
    for chunk in samples.chunks(3 * 7) {
        writer.write(chunk).expect("write");
    }
    assert_eq!(writer.channels(), channels);
    assert_eq!(writer.frames_written(), (samples.len() / 3) as u64);
    writer.finish().expect("finish");

    let mut reader = hound::WavReader::open(&path).expect("open for reading");
    let spec = reader.spec();
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(spec.bits_per_sample, 32);
    assert_eq!(spec.sample_rate, 44_100);
    assert_eq!(spec.channels, channels);
    let read: Vec<u32> = reader
        .samples::<f32>()
        .map(|s| s.expect("read sample").to_bits())
        .collect();
    let written: Vec<u32> = samples.iter().map(|s| s.to_bits()).collect();
    assert_eq!(read, written);
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_partial_frame_is_refused_and_not_written() {
    let path = temp_path("partial");
    let mut writer = WavWriter::create(&path, 48_000, 2).expect("create");
    writer.write(&[0.1, 0.2]).expect("one whole frame");
    let error = writer.write(&[0.1, 0.2, 0.3]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(
        error
            .to_string()
            .starts_with("cannot write 3 samples to wav file"),
        "{error}"
    );
    assert_eq!(writer.frames_written(), 1);
    writer.finish().expect("finish");
    std::fs::remove_file(&path).ok();
}

#[test]
fn an_unwritable_path_is_an_io_error_that_names_it() {
    let path = temp_path("no-such-dir").join("out.wav");
    let error = WavWriter::create(&path, 48_000, 2).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io);
    let message = error.to_string();
    assert!(
        message.starts_with("cannot create wav file \""),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_zero_channel_wav_is_refused() {
    let error = WavWriter::create(temp_path("zero"), 48_000, 0).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn max_frames_keeps_the_data_under_4_gib() {
    for channels in [1u16, 2, 3, 64] {
        let bytes = WavWriter::max_frames(channels) * 4 * u64::from(channels);
        assert!(bytes < u64::from(u32::MAX) - 1024, "{channels} ch: {bytes}");
        assert!(bytes > u64::from(u32::MAX) - 8192, "{channels} ch: {bytes}");
    }
}
