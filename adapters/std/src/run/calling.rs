//! How a calling thread waits for its call ([`block_on`]): it polls the call on its own
//! thread; while the call must wait it receives from the socket for it (if the call
//! called into an endpoint and its receiver is free) or parks, and another thread's
//! wake-up unparks it or, while it receives, ends its receive ([`Unpark`]). As the thread
//! goes back to the application, the hold its call started, if any, becomes the driver
//! thread's to end ([`BlockOn`], [`leave_hold`]; the parent module's "Sends in a burst").
//!
//! Inputs: the call (a future), its timeout, the thread-local marks the call's polls leave
//! (`CALLED_NOW`, `CALL_WAITING`, `CALL_READING`, `HOLD_STARTED`). Outputs: the call's
//! answer, or `None` once the timeout passed; `ANSWERED_AT`, which tells the next send
//! whether it is part of a burst.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use weir_driver::Error;

use super::{
    Io, Waiting, ANSWERED_AT, CALLED, CALLED_NOW, CALL_READING, CALL_WAITING, HOLD_STARTED, IN_BLOCK_ON,
};

thread_local! {
    /// This thread's waker, made once: a call answered at once then costs no allocation,
    /// nor a count of the waker's references.
    static WAKER: ThreadWaker = ThreadWaker::new();
}

/// A thread's [`Unpark`] and the [`Waker`] made of it.
struct ThreadWaker {
    unpark: Arc<Unpark>,
    waker: Waker,
}

impl ThreadWaker {
    fn new() -> ThreadWaker {
        let unpark = Arc::new(Unpark {
            thread: std::thread::current(),
            woken: AtomicBool::new(false),
            receiving: Mutex::new(None),
        });
        ThreadWaker {
            waker: Waker::from(Arc::clone(&unpark)),
            unpark,
        }
    }
}

/// Wakes the thread that waits for a call: unparks it, or, while it receives, ends its
/// receive.
pub(super) struct Unpark {
    pub(super) thread: Thread,
    /// Woken since the thread last looked: it polls its call again before it waits.
    pub(super) woken: AtomicBool,
    /// The endpoint the thread receives from, while it does.
    pub(super) receiving: Mutex<Option<Arc<Io>>>,
}

impl Unpark {
    fn receiving(&self) -> MutexGuard<'_, Option<Arc<Io>>> {
        self.receiving.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // A thread wakes itself by handing the driver what it received: no receive to end.
        if self.thread.id() != std::thread::current().id() {
            if let Some(io) = self.receiving().as_ref() {
                io.kick();
            }
        }
        self.thread.unpark();
    }
}

/// Runs `call` to completion on this thread, receiving for it or parking while it waits;
/// `None` if `timeout` passed first (the call is then dropped, which gives it up as its
/// handle's documentation says).
pub(crate) fn block_on<F: Future>(timeout: Option<Duration>, call: F) -> Option<F::Output> {
    WAKER.with(|w| block_on_with(w, timeout, call))
}

/// [`block_on`] with the thread's waker.
fn block_on_with<F: Future>(w: &ThreadWaker, timeout: Option<Duration>, call: F) -> Option<F::Output> {
    let mut call = pin!(call);
    let unpark = &w.unpark;
    let mut cx = Context::from_waker(&w.waker);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut waited = false;
    let _in_block_on = BlockOn::enter();
    loop {
        unpark.woken.store(false, Ordering::Release);
        CALLED_NOW.set(false);
        CALL_READING.set(None);
        CALL_WAITING.set(Waiting::Other);
        if let Poll::Ready(v) = call.as_mut().poll(&mut cx) {
            let at = || CALL_READING.take().unwrap_or_else(Instant::now);
            ANSWERED_AT.set(CALL_WAITING.get().in_burst(waited).then(at));
            return Some(v);
        }
        waited = true;
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return None;
        }
        let called = CALLED_NOW
            .get()
            .then(|| CALLED.with(|c| c.borrow().as_ref().and_then(Weak::upgrade)))
            .flatten();
        if let Some(io) = called {
            *unpark.receiving() = Some(Arc::clone(&io));
            // Receives until the call is woken (by what came, or by another thread), and
            // polls it only then: a large message would otherwise cost a poll per
            // datagram. A wake-up between the poll and here found no receive to end, and
            // is seen here at once.
            let mut received = false;
            while !unpark.woken.load(Ordering::Acquire)
                && deadline.is_none_or(|at| Instant::now() < at)
                && io.receive_for_call(deadline, CALL_WAITING.get())
            {
                received = true;
            }
            *unpark.receiving() = None;
            if received || unpark.woken.load(Ordering::Acquire) {
                continue;
            }
        }
        match deadline {
            None => std::thread::park(),
            Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
        }
    }
}

/// This thread in a blocking call ([`IN_BLOCK_ON`]) until dropped, however the call ends;
/// then the thread goes back to the application ([`leave_hold`]).
struct BlockOn {
    /// Whether the thread was in one already (a call made inside another's poll).
    outer: bool,
}

impl BlockOn {
    fn enter() -> BlockOn {
        BlockOn {
            outer: IN_BLOCK_ON.replace(true),
        }
    }
}

impl Drop for BlockOn {
    fn drop(&mut self) {
        IN_BLOCK_ON.set(self.outer);
        if !self.outer {
            leave_hold();
        }
    }
}

/// The calling thread goes back to the application: the hold its call started, if any,
/// is the driver thread's to end ([`Io::wake_for_hold`]).
pub(super) fn leave_hold() {
    if let Some(io) = HOLD_STARTED.take().and_then(|io| io.upgrade()) {
        io.wake_for_hold();
    }
}

/// [`block_on`] for a call that can fail: a timeout is [`Error::TimedOut`].
pub(crate) fn wait<T>(
    timeout: Option<Duration>,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    block_on(timeout, call).unwrap_or(Err(Error::TimedOut))
}
