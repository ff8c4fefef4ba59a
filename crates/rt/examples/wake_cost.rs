//! What a thread that only sleeps costs on this machine: it wakes once per period (128
//! frames at 48 kHz by default, the null output's period: 375 times a second) for five
//! seconds, at real-time priority as the DSP thread asks and without, and prints its CPU
//! time per wake-up. The floor under `flux play`'s idle cost (BENCHMARKS.md, "Idle cost").
//!
//! ```sh
//! cargo run --release -p flux-rt --example wake_cost [PERIOD_FRAMES]
//! ```

use std::time::{Duration, Instant};

fn main() {
    let frames: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .filter(|&f| f > 0)
        .unwrap_or(128);
    let period = Duration::from_nanos(1_000_000_000 * frames / 48_000);
    for realtime in [true, false] {
        let run = std::thread::spawn(move || {
            let promoted = realtime && flux_rt::promote_to_realtime();
            let start = Instant::now();
            let cpu = flux_rt::thread_cpu_time().unwrap_or_default();
            let mut wakes = 0u32;
            while start.elapsed() < Duration::from_secs(5) {
                wakes += 1;
                // As the null clock sleeps: parked until an absolute deadline.
                let deadline = start + period * wakes;
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    std::thread::park_timeout(deadline - now);
                }
            }
            let used = flux_rt::thread_cpu_time().unwrap_or_default() - cpu;
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "period {frames} frames, {}: {wakes} wake-ups in {seconds:.1} s, {:.1} us of CPU each, {:.2}% of a core",
                if promoted { "real-time" } else { "normal priority" },
                used.as_secs_f64() * 1e6 / f64::from(wakes),
                used.as_secs_f64() / seconds * 100.0
            );
        });
        run.join().expect("the sleeping thread panicked");
    }
}
