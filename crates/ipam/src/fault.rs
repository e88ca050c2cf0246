//! Fault injection for the crash suite (tests/reliability). With the `fault-injection` cargo
//! feature, `point("veth")` kills the process with a real SIGKILL when `PODWIRE_FAULT=veth`: no
//! unwinding, no destructors, no rollback, exactly what the OOM killer or a runtime's timeout
//! does. Without the feature (every normal build) it is an empty inline function and the
//! environment is never read.

/// The variable naming the step at which to die.
pub const ENV: &str = "PODWIRE_FAULT";

#[cfg(feature = "fault-injection")]
pub fn point(step: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == step) {
        // SAFETY: kill(2) on our own pid has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL is delivered before kill(2) returns to a single-threaded process; never go on.
        loop {
            std::thread::park();
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_step: &str) {}
