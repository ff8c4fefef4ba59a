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
