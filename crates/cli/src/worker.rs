//! Threads off the DSP path: a stop flag and a join, and a panic never takes the sound down.
//!
//! The control server, OSC, the scope and the recorder each run on a [`Worker`]; their
//! short-lived helpers (one thread per connection) go through [`spawn_guarded`]. A panic on
//! any of them is caught, printed once (escaped) and the thread ends; the DSP thread and the
//! play loop go on.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A thread that runs until its owner stops or drops it: the loop it runs checks the stop
/// flag it is given. It yields `T`, or nothing when it panicked.
pub struct Worker<T: Send + 'static = ()> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts `run` on a thread called `name`; a panic in `run` is caught and reported.
    ///
    /// # Errors
    ///
    /// When the operating system cannot start a thread.
    pub fn spawn(
        name: &str,
        run: impl FnOnce(&AtomicBool) -> T + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let label = name.to_owned();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || guarded(&label, || run(&flag)))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Sets the stop flag without waiting: for a loop that must then be woken (a blocking
    /// `accept`) before it is joined.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Lets the thread run on without waiting for it (its stop flag is left as it is).
    pub fn detach(mut self) {
        self.handle.take();
    }

    /// Sets the stop flag and waits for the thread; its result, `None` when it panicked.
    pub fn stop(mut self) -> Option<T> {
        self.join()
    }

    fn join(&mut self) -> Option<T> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok().flatten())
    }
}

impl<T: Send + 'static> Drop for Worker<T> {
    fn drop(&mut self) {
        self.join();
    }
}

/// Starts a detached thread called `name` that runs `run`, then `after` (even when `run`
/// panicked: the panic is caught and reported).
///
/// # Errors
///
/// When the operating system cannot start a thread.
pub fn spawn_guarded(
    name: &str,
    run: impl FnOnce() + Send + 'static,
    after: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let label = name.to_owned();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            guarded(&label, run);
            after();
        })
        .map(drop)
}

/// Runs `run`, catching a panic: reports it and returns `None`.
pub fn guarded<T>(name: &str, run: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(value) => Some(value),
        Err(payload) => {
            eprintln!(
                "{}: internal error (the thread stopped; the sound plays on): {}",
                name,
                crate::text::escape(&panic_message(payload.as_ref()))
            );
            None
        }
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_worker_is_caught_and_yields_nothing() {
        let worker = Worker::spawn("flux-test-panic", |_| -> u32 { panic!("boom") }).unwrap();
        assert_eq!(worker.stop(), None);
        let worker = Worker::spawn("flux-test-ok", |stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            7
        })
        .unwrap();
        assert_eq!(worker.stop(), Some(7));
        assert_eq!(guarded("t", || panic!("inner")), None::<()>);
    }
}
