//! The synchronization primitives the lock-free code uses, swapped for loom's under `--cfg loom`.
//!
//! This is the tokio pattern: the ring buffer names `crate::sync::*` instead of `std::sync::*`,
//! so the very same code runs under the loom model checker, which then explores every
//! interleaving of the atomics *and* checks every access to a slot ([`UnsafeCell`]) for races.
//! Only what the modeled code uses lives here; the runner thread and its counters are not
//! modeled and use std directly.

#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    hint::spin_loop,
    sync::{
        atomic::{fence, AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread::yield_now,
};

/// Parks the current thread. Under loom there is no time, so no timeout: a wake-up the model
/// can lose shows up as a deadlock.
#[cfg(loom)]
pub(crate) fn park_timeout(_timeout: std::time::Duration) {
    loom::thread::park();
}

#[cfg(not(loom))]
pub(crate) use std::thread::park_timeout;

#[cfg(not(loom))]
pub(crate) use std::{
    hint::spin_loop,
    sync::{
        atomic::{fence, AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread::yield_now,
};

/// Sleeps the current thread. Loom has no notion of time, so under loom a sleep is a yield: the
/// model only needs to know that the thread gives way.
#[cfg(not(loom))]
pub(crate) fn sleep(duration: std::time::Duration) {
    std::thread::sleep(duration);
}

/// Sleeps the current thread. Loom has no notion of time, so under loom a sleep is a yield: the
/// model only needs to know that the thread gives way.
#[cfg(loom)]
pub(crate) fn sleep(_duration: std::time::Duration) {
    loom::thread::yield_now();
}

/// `std::cell::UnsafeCell` behind loom's closure API (`with`/`with_mut`), so the ring buffer's
/// slot accesses compile unchanged under loom, where the same calls are checked for races.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps a value.
    #[inline]
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the content.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the content.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
