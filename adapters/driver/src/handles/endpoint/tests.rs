//! Tests of [`Shared`]'s call machinery: a call's bounded hand-overs (and what it tells the
//! runtime after them), and its wake-ups only once the driver's lock is let go.

use std::sync::atomic::AtomicUsize;
use std::sync::Weak;
use std::task::Wake;

use super::*;

struct Quiet;

impl Runtime for Quiet {
    fn changed(&self, _: &mut Driver, _: Urgency) {}
}

/// A waker that, when woken, tries the driver's lock: a task woken under the lock would
/// find it held.
struct TriesTheLock {
    shared: Weak<Shared>,
    found_free: AtomicUsize,
    found_held: AtomicUsize,
}

impl Wake for TriesTheLock {
    fn wake(self: Arc<Self>) {
        let shared = self.shared.upgrade().expect("alive for the test");
        let counter = match shared.driver.try_lock() {
            Ok(_) => &self.found_free,
            Err(_) => &self.found_held,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A runtime whose calls find datagrams each time they are about to wait, none of them
/// what the call waits for; counts how often, and how often a call stopped receiving.
struct Busy(Arc<AtomicUsize>, Arc<AtomicUsize>);

impl Runtime for Busy {
    fn changed(&self, _: &mut Driver, _: Urgency) {}

    fn poll_wait(&self, _: &Shared, _: &mut Context<'_>, _: Option<CallId>) -> Poll<()> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(())
    }

    fn stops_receiving(&self, _: &Context<'_>) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// A call asks the driver again after each hand-over, and waits after `WAIT_RECEIVES`
/// of them (its waker left with the driver), telling the runtime that it stopped
/// receiving: datagrams that keep coming cannot keep it polling, and are the adapter's
/// loop's to receive. With the default runtime, it waits after asking once.
#[test]
fn a_call_waits_after_a_bounded_number_of_hand_overs() {
    let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (hand_overs, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let runtimes: [(Box<dyn Runtime>, usize); 2] = [
        (
            Box::new(Busy(Arc::clone(&hand_overs), Arc::clone(&stopped))),
            WAIT_RECEIVES,
        ),
        (Box::new(Quiet), 0),
    ];
    for (runtime, received) in runtimes {
        let shared = Shared::new(Driver::new(weir_core::Config::default(), local), local, runtime);
        let mut cx = Context::from_waker(Waker::noop());
        let mut asked = 0;
        let p = shared.poll_busy(&mut cx, Urgency::Soon, None, |d, cx| {
            asked += 1;
            d.poll_accept(cx.waker())
        });
        assert!(p.is_pending());
        assert_eq!(asked, received + 1);
    }
    assert_eq!(hand_overs.load(Ordering::Relaxed), WAIT_RECEIVES);
    assert_eq!(stopped.load(Ordering::Relaxed), 1);
}

/// A call answered by what its last hand-over brought is ready, and has not stopped
/// receiving: the runtime hears of it as of any ready call, not as of one that waits.
#[test]
fn a_call_answered_at_its_last_hand_over_has_not_stopped_receiving() {
    let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (hand_overs, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let busy = Busy(Arc::clone(&hand_overs), Arc::clone(&stopped));
    let shared = Shared::new(
        Driver::new(weir_core::Config::default(), local),
        local,
        Box::new(busy),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let mut asked = 0;
    let p = shared.poll_busy(&mut cx, Urgency::Soon, None, |_, _| {
        asked += 1;
        if asked > WAIT_RECEIVES {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    });
    assert!(p.is_ready());
    assert_eq!(hand_overs.load(Ordering::Relaxed), WAIT_RECEIVES);
    assert_eq!(stopped.load(Ordering::Relaxed), 0);
}

#[test]
fn a_call_is_woken_once_the_lock_is_released() {
    let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let shared = Shared::new(
        Driver::new(weir_core::Config::default(), local),
        local,
        Box::new(Quiet),
    );
    let tries = Arc::new(TriesTheLock {
        shared: Arc::downgrade(&shared),
        found_free: AtomicUsize::new(0),
        found_held: AtomicUsize::new(0),
    });
    let waker = Waker::from(Arc::clone(&tries));
    let cx = Context::from_waker(&waker);
    assert!(shared
        .poll(Urgency::Soon, |d| d.poll_accept(cx.waker()))
        .is_pending());
    // The shutdown answers the waiting accept: its waker runs after the lock is let go.
    shared.shutdown();
    assert_eq!(
        tries.found_held.load(Ordering::Relaxed),
        0,
        "woken under the lock"
    );
    assert_eq!(tries.found_free.load(Ordering::Relaxed), 1);
}
