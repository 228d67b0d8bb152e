//! The driver thread, what the calls tell it ([`Io`], the [`Runtime`]), and how a calling
//! thread waits for a call ([`block_on`]).
//!
//! A call runs on the driver in the calling thread and sends what it left at once
//! ([`Io::changed`]), so a call the core can answer (a send with room, a read of what is
//! there) costs no thread switch. A call that must wait parks its thread; the driver
//! registered the thread's waker and unparks it when what it waits for changes. The driver
//! thread only receives: it waits in a blocking receive (through `quinn-udp`, into the
//! [`Inbox`]'s shared blocks, a whole GRO batch at a time) with a read timeout set to the
//! core's next deadline, hands what came to the driver and fires its timers. While it
//! waits, it records until when (`asleep_until`); a call that moves the deadline earlier
//! wakes it with a one-byte datagram from the endpoint's private waker socket (which the
//! driver thread drops), and no other call does. Sends are batches of equal datagrams cut
//! by the kernel (GSO) where the platform has it.
//!
//! Two rules keep a request and its answer to one datagram each way and spare most of
//! those wake-ups. After waking calls, the thread sleeps at most [`WOKEN_WAIT`] first: the
//! woken calls read what came and move the core's timers before it decides how long to
//! sleep. And what a read leaves to send ([`Urgency::Soon`]: credit, stream slots, a
//! receipt) is not sent by the reading thread while the driver thread is about to send
//! anyway (busy, or back within `WOKEN_WAIT`): the answer the application writes next, if
//! it writes one, carries it.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, UdpSocketState};
use weir_driver::{Config, Driver, Error, Inbox, Outbox, Runtime, Shared, Urgency};

/// The longest the thread sleeps with no deadline (a datagram or a wake-up ends it sooner).
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// The longest the thread sleeps after waking calls: they read what came and move the
/// core's timers (an acknowledgement's delay, say), and a short first sleep lets them run
/// before the thread sleeps to a deadline they would have to wake it from, with a datagram.
const WOKEN_WAIT: Duration = Duration::from_micros(200);

/// What the calls and the driver thread share beside the driver: the socket, what is
/// being sent, and how to wake the thread.
pub(crate) struct Io {
    socket: Socket,
    /// Taken after the driver's lock, never before it.
    sending: Mutex<Sending>,
    /// The endpoint was dropped: the driver thread shuts down.
    stop: AtomicBool,
    waker: UdpSocket,
    driver_addr: SocketAddr,
}

/// The send side's state.
struct Sending {
    outbox: Outbox,
    /// While the driver thread waits in a receive: when its read timeout ends it.
    asleep_until: Option<Instant>,
}

impl Io {
    fn sending(&self) -> MutexGuard<'_, Sending> {
        self.sending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The endpoint was dropped: wakes the driver thread to shut down (a lost wake-up only
    /// delays it to its next deadline).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.send_to(&[0], self.driver_addr);
    }
}

/// The [`Runtime`] the handles tell: an [`Io`] shared with the driver thread.
struct Calls(Arc<Io>);

impl Runtime for Calls {
    /// Sends what the call left, and wakes the driver thread if it sleeps past the driver's
    /// new deadline (one wake-up per sleep is enough). What a read left waits while the
    /// driver thread is about to send anyway (it is busy, or wakes within [`WOKEN_WAIT`]):
    /// the application's answer, if it sends one first, carries it.
    fn changed(&self, driver: &mut Driver, urgency: Urgency) {
        let mut sending = self.0.sending();
        let driver_sends_soon = sending
            .asleep_until
            .is_none_or(|until| until <= Instant::now() + WOKEN_WAIT);
        if urgency == Urgency::Soon && driver_sends_soon {
            return;
        }
        self.0.socket.flush(&mut sending.outbox, driver);
        let late = sending
            .asleep_until
            .is_some_and(|until| driver.deadline().is_some_and(|d| d < until));
        if late {
            sending.asleep_until = None;
            drop(sending);
            let _ = self.0.waker.send_to(&[0], self.0.driver_addr);
        }
    }
}

/// Binds the socket and starts the driver thread: the endpoint's handle, what the thread
/// shares with the calls, and the thread.
pub(crate) fn start(
    addr: SocketAddr,
    config: Config,
) -> Result<(weir_driver::Endpoint, Arc<Io>, JoinHandle<()>), Error> {
    let socket = weir_driver::bind_socket(addr)?;
    let local = socket.local_addr()?;
    // The driver is woken through its own socket; an unspecified address is reached
    // through the loopback address of its family.
    let driver_addr = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port()),
        _ => local,
    };
    let waker = UdpSocket::bind(SocketAddr::new(driver_addr.ip(), 0))?;
    let waker_addr = waker.local_addr()?;
    let io = Arc::new(Io {
        socket: Socket::new(socket)?,
        sending: Mutex::new(Sending {
            outbox: Outbox::new(),
            asleep_until: None,
        }),
        stop: AtomicBool::new(false),
        waker,
        driver_addr,
    });
    let shared = Shared::new(
        Driver::new(config, local),
        local,
        Box::new(Calls(Arc::clone(&io))),
    );
    let thread = {
        let (shared, io) = (Arc::clone(&shared), Arc::clone(&io));
        std::thread::Builder::new()
            .name(format!("weir-driver {local}"))
            .spawn(move || run(&shared, &io, waker_addr))?
    };
    Ok((weir_driver::Endpoint::new(shared), io, thread))
}

/// Unparks the thread that waits for a call.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `call` to completion on this thread, parking it while the call waits; `None` if
/// `timeout` passed first (the call is then dropped, which gives it up as its handle's
/// documentation says).
pub(crate) fn block_on<F: Future>(timeout: Option<Duration>, call: F) -> Option<F::Output> {
    thread_local! {
        // One per thread, made once: a call answered at once then costs no allocation.
        static WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    }
    let mut call = pin!(call);
    let waker = WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if let Poll::Ready(v) = call.as_mut().poll(&mut cx) {
            return Some(v);
        }
        match deadline {
            None => std::thread::park(),
            Some(at) => {
                let now = Instant::now();
                if now >= at {
                    return None;
                }
                std::thread::park_timeout(at - now);
            }
        }
    }
}

/// [`block_on`] for a call that can fail: a timeout is [`Error::TimedOut`].
pub(crate) fn wait<T>(
    timeout: Option<Duration>,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    block_on(timeout, call).unwrap_or(Err(Error::TimedOut))
}

/// The socket, shared: calls send through it, the driver thread receives from it.
struct Socket {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl Socket {
    fn new(socket: UdpSocket) -> io::Result<Socket> {
        // quinn-udp turns the socket non-blocking; the driver thread waits in the receive.
        let state = UdpSocketState::new((&socket).into())?;
        socket.set_nonblocking(false)?;
        Ok(Socket { socket, state })
    }

    /// Sends everything the driver has to send now.
    fn flush(&self, outbox: &mut Outbox, driver: &mut Driver) {
        while let Some(batch) = outbox.next(driver, self.state.max_gso_segments()) {
            // A full buffer or an unreachable network (ENOBUFS, ENETUNREACH) loses these
            // datagrams only; recovery resends what mattered. quinn-udp logs such failures
            // (rate-limited) and returns them as success.
            let _ = self.state.send((&self.socket).into(), &batch.transmit());
        }
    }
}

/// The driver thread's loop: returns once the driver shut down (or, if the socket cannot
/// be read, at once), after which calls fail with `Shutdown`.
fn run(shared: &Arc<Shared>, io: &Io, waker: SocketAddr) {
    let _stopped = Stopped(Arc::clone(shared));
    let mut inbox = Inbox::new();
    // The read timeout last set: the system call is made only when the wait must be
    // shorter, or is over twice as long (waking early costs a loop, nothing else).
    let mut timeout = Duration::ZERO;
    let mut woke = 0;
    loop {
        let wait = {
            let mut driver = shared.driver();
            if io.stop.load(Ordering::Acquire) {
                driver.shutdown();
            }
            let now = Instant::now();
            if driver.deadline().is_some_and(|t| t <= now) {
                driver.handle_timeout();
            }
            let mut sending = io.sending();
            io.socket.flush(&mut sending.outbox, &mut driver);
            if driver.is_shut_down() {
                return;
            }
            let longest = if woke > 0 { WOKEN_WAIT } else { IDLE_WAIT };
            let until = driver.deadline().map_or(now + longest, |t| t.min(now + longest));
            sending.asleep_until = Some(until);
            until.saturating_duration_since(now)
        };
        // A zero timeout means "block forever" to the OS: wait at least a microsecond.
        let wait = wait.max(Duration::from_micros(1));
        if wait < timeout || wait > timeout * 2 {
            if io.socket.socket.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            timeout = wait;
        }
        let mut meta = [RecvMeta::default()];
        let received = {
            let mut bufs = [IoSliceMut::new(inbox.room())];
            io.socket
                .state
                .recv((&io.socket.socket).into(), &mut bufs, &mut meta)
        };
        let mut driver = shared.driver();
        io.sending().asleep_until = None;
        match received {
            Ok(1) if meta[0].addr == waker => {}
            Ok(1) => {
                let m = meta[0];
                driver.handle_received(m.addr, inbox.take(m.len), m.stride);
            }
            // Timeouts, and transient errors (an ICMP unreachable surfacing here) that must
            // not stop the endpoint: the core's own timers deal with a peer that is gone.
            _ => {}
        }
        woke = driver.unlock();
    }
}

/// Marks the endpoint stopped when the driver thread ends, however it ends: calls then
/// fail at once instead of waiting for a thread that is gone.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.stop();
    }
}
