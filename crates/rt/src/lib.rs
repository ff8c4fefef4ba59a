//! Real-time thread set-up, in one place for every thread that keeps audio time: the
//! engine's DSP thread and the audio crate's null-output clock.

/// Asks the OS to schedule the calling thread as a real-time (audio) thread; returns
/// whether it did.
///
/// `SCHED_FIFO` at priority 70 on Unix (kept only if the process may have it), the highest
/// priority elsewhere. `FLUX_NO_REALTIME` in the environment turns it off. Without the
/// privilege the thread runs at normal priority, which works but is more exposed to a busy
/// machine. Call it from the thread itself, once, as it starts.
pub fn promote_to_realtime() -> bool {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    if std::env::var_os("FLUX_NO_REALTIME").is_some() {
        return false;
    }
    let Ok(value) = ThreadPriorityValue::try_from(70u8) else {
        return false;
    };
    #[cfg(unix)]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(value),
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        )
        .is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = value;
        thread_priority::set_current_thread_priority(ThreadPriority::Max).is_ok()
    }
}

/// CPU time the calling thread has used so far, or `None` where the OS does not say.
///
/// Unlike a wall clock it does not run while the thread is preempted, so a busy machine
/// does not make the thread's own work look slower. One system call; no allocation, lock
/// or wait, so it may be read on the DSP thread.
pub fn thread_cpu_time() -> Option<std::time::Duration> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call, and
        // CLOCK_THREAD_CPUTIME_ID is a clock every supported Unix provides.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| {
            std::time::Duration::new(
                u64::try_from(ts.tv_sec).unwrap_or(0),
                u32::try_from(ts.tv_nsec).unwrap_or(0),
            )
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_work_and_not_sleep() {
        let Some(start) = thread_cpu_time() else {
            return;
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = thread_cpu_time().unwrap() - start;
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = thread_cpu_time().unwrap() - start - slept;
        assert!(slept < std::time::Duration::from_millis(20), "{slept:?}");
        assert!(worked > slept, "{worked:?} after {slept:?} of sleep");
    }
}
