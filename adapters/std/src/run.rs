//! The driver thread and what it shares with the calling threads.
//!
//! The [`Driver`] and the [`Outbox`] sit behind one lock ([`Core`]). A call runs on the
//! driver in the calling thread and sends what it left at once, so a call the core can
//! answer (a send with room, a read of what is there) costs no thread switch. The driver
//! thread only receives: it waits in a blocking receive (through `quinn-udp`, into the
//! [`Inbox`]'s shared blocks, a whole GRO batch at a time) with a read timeout set to the
//! core's next deadline, hands what came to the driver and fires its timers. While it
//! waits, it records until when ([`Core::asleep_until`]); a call that moves the deadline
//! earlier wakes it with a one-byte datagram from the endpoint's private waker socket
//! (which the driver thread drops), and no other call does. Sends are batches of equal
//! datagrams cut by the kernel (GSO) where the platform has it.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, UdpSocketState};
use weir_driver::{Config, Driver, Inbox, Outbox};

use crate::Shared;

/// The longest the thread sleeps with no deadline (a datagram or a wake-up ends it sooner).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// What the lock guards.
pub(crate) struct Core {
    pub(crate) driver: Driver,
    outbox: Outbox,
    /// While the driver thread waits in a receive: when its read timeout ends it.
    asleep_until: Option<Instant>,
}

impl Core {
    pub(crate) fn new(config: Config, local: SocketAddr) -> Core {
        Core {
            driver: Driver::new(config, local),
            outbox: Outbox::new(),
            asleep_until: None,
        }
    }

    /// Whether the driver thread sleeps past the driver's deadline and must be woken.
    /// Clears the record: one wake-up per sleep is enough.
    pub(crate) fn oversleeps(&mut self) -> bool {
        let late = self
            .asleep_until
            .is_some_and(|until| self.driver.deadline().is_some_and(|d| d < until));
        if late {
            self.asleep_until = None;
        }
        late
    }
}

/// The socket, shared: calls send through it, the driver thread receives from it.
pub(crate) struct Socket {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl Socket {
    pub(crate) fn new(socket: UdpSocket) -> io::Result<Socket> {
        // quinn-udp turns the socket non-blocking; the driver thread waits in the receive.
        let state = UdpSocketState::new((&socket).into())?;
        socket.set_nonblocking(false)?;
        Ok(Socket { socket, state })
    }

    /// Sends everything the driver has to send now.
    pub(crate) fn flush(&self, core: &mut Core) {
        while let Some(batch) = core.outbox.next(&mut core.driver, self.state.max_gso_segments()) {
            // A full buffer or an unreachable network (ENOBUFS, ENETUNREACH) loses these
            // datagrams only; recovery resends what mattered. quinn-udp logs such failures
            // (rate-limited) and returns them as success.
            let _ = self.state.send((&self.socket).into(), &batch.transmit());
        }
    }
}

/// The driver thread's loop: returns once the driver shut down (or, if the socket cannot
/// be read, at once), after which calls fail with `Shutdown`.
pub(crate) fn run(shared: Arc<Shared>, waker: SocketAddr) {
    let _stopped = Stopped(Arc::clone(&shared));
    let mut inbox = Inbox::new();
    // The read timeout last set: the system call is made only when the wait must be
    // shorter, or is over twice as long (waking early costs a loop, nothing else).
    let mut timeout = Duration::ZERO;
    loop {
        let wait = {
            let mut core = shared.core();
            if shared.stop.load(Ordering::Acquire) {
                core.driver.shutdown();
            }
            let now = Instant::now();
            if core.driver.deadline().is_some_and(|t| t <= now) {
                core.driver.handle_timeout();
            }
            shared.socket.flush(&mut core);
            if core.driver.is_shut_down() {
                return;
            }
            let until = core
                .driver
                .deadline()
                .map_or(now + IDLE_WAIT, |t| t.min(now + IDLE_WAIT));
            core.asleep_until = Some(until);
            until.saturating_duration_since(now)
        };
        // A zero timeout means "block forever" to the OS: wait at least a microsecond.
        let wait = wait.max(Duration::from_micros(1));
        if wait < timeout || wait > timeout * 2 {
            if shared.socket.socket.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            timeout = wait;
        }
        let mut meta = [RecvMeta::default()];
        let received = {
            let mut bufs = [IoSliceMut::new(inbox.room())];
            shared
                .socket
                .state
                .recv((&shared.socket.socket).into(), &mut bufs, &mut meta)
        };
        let mut core = shared.core();
        core.asleep_until = None;
        match received {
            Ok(1) if meta[0].addr == waker => {}
            Ok(1) => {
                let m = meta[0];
                core.driver.handle_received(m.addr, inbox.take(m.len), m.stride);
            }
            // Timeouts, and transient errors (an ICMP unreachable surfacing here) that must
            // not stop the endpoint: the core's own timers deal with a peer that is gone.
            _ => {}
        }
    }
}

/// Marks the endpoint stopped when the driver thread ends, however it ends: calls then
/// fail at once instead of waiting for a thread that is gone.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        // Fails the calls still waiting; a shut-down driver refuses new ones.
        self.0.core().driver.shutdown();
    }
}
