//! Keeps alsa-lib from printing its own diagnostics while Flux probes devices and MIDI.
//!
//! On a machine without a sound card, opening ALSA's `default` device makes alsa-lib write
//! eight `ALSA lib …` lines to stderr before cpal reports the error Flux turns into its own
//! message. A [`Quiet`] guard installs a handler that drops them, on the calling thread
//! only (alsa-lib's thread-local error handler), and puts the previous one back on drop.

/// While alive, alsa-lib's diagnostics on this thread are dropped (Linux; elsewhere a
/// no-op).
pub struct Quiet {
    #[cfg(target_os = "linux")]
    previous: alsa_sys::snd_local_error_handler_t,
}

impl Quiet {
    /// Silences alsa-lib on this thread until the guard drops.
    pub fn new() -> Quiet {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `snd_lib_error_set_local` only stores the pointer in a thread-local
            // variable; `ignore` has the signature alsa-lib calls it with and lives forever.
            let previous = unsafe { alsa_sys::snd_lib_error_set_local(Some(ignore)) };
            Quiet { previous }
        }
        #[cfg(not(target_os = "linux"))]
        Quiet {}
    }
}

impl Default for Quiet {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: puts back the handler that was there before (a valid one, or none).
        unsafe {
            alsa_sys::snd_lib_error_set_local(self.previous);
        }
    }
}

/// alsa-lib's local error handler that drops the message.
#[cfg(target_os = "linux")]
unsafe extern "C" fn ignore(
    _file: *const std::ffi::c_char,
    _line: std::ffi::c_int,
    _func: *const std::ffi::c_char,
    _err: std::ffi::c_int,
    _fmt: *const std::ffi::c_char,
    _args: *mut alsa_sys::__va_list_tag,
) {
}
