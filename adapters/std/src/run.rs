//! The driver thread: moves datagrams, time and commands between the OS and the
//! [`Driver`], and nothing else.
//!
//! The socket is driven through `quinn-udp` (kept blocking, with a read timeout set to the
//! driver's next deadline): sends are batches of equal datagrams cut by the kernel (GSO)
//! where the platform has it, and a receive takes a whole GRO batch (or one datagram) into
//! the [`Inbox`]'s shared blocks.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, UdpSocketState};
use weir_driver::{Command, Config, Driver, Inbox, Outbox};

/// The longest the thread sleeps with no deadline (a command or datagram wakes it sooner).
const IDLE_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Loop {
    driver: Driver,
    socket: UdpSocket,
    /// Datagrams from this address are wake-ups, not peers'.
    waker: SocketAddr,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    state: UdpSocketState,
    outbox: Outbox,
    inbox: Inbox,
}

impl Loop {
    pub(crate) fn new(
        config: Config,
        local: SocketAddr,
        socket: UdpSocket,
        waker: SocketAddr,
        commands: Receiver<Command>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Loop> {
        // quinn-udp turns the socket non-blocking; this thread waits in the receive itself.
        let state = UdpSocketState::new((&socket).into())?;
        socket.set_nonblocking(false)?;
        Ok(Loop {
            driver: Driver::new(config, local),
            socket,
            waker,
            commands,
            stop,
            state,
            outbox: Outbox::new(),
            inbox: Inbox::new(),
        })
    }

    pub(crate) fn public_key(&self) -> weir_driver::PublicKey {
        self.driver.public_key()
    }

    pub(crate) fn run(mut self) {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                self.driver.shutdown();
            }
            loop {
                match self.commands.try_recv() {
                    Ok(c) => self.driver.command(c),
                    Err(TryRecvError::Empty) => break,
                    // Every handle is gone: nobody can use the endpoint any more.
                    Err(TryRecvError::Disconnected) => {
                        self.driver.shutdown();
                        break;
                    }
                }
            }
            self.flush();
            if self.driver.is_shut_down() {
                self.flush();
                return;
            }
            self.wait();
            if self.driver.deadline().is_some_and(|t| t <= Instant::now()) {
                self.driver.handle_timeout();
            }
        }
    }

    /// Waits for a datagram until the driver's next deadline.
    fn wait(&mut self) {
        let wait = self.driver.deadline().map_or(IDLE_WAIT, |t| {
            t.saturating_duration_since(Instant::now()).min(IDLE_WAIT)
        });
        // A zero timeout means "block forever" to the OS: wait at least a microsecond.
        let _ = self
            .socket
            .set_read_timeout(Some(wait.max(Duration::from_micros(1))));
        let mut meta = [RecvMeta::default()];
        let received = {
            let mut bufs = [IoSliceMut::new(self.inbox.room())];
            self.state.recv((&self.socket).into(), &mut bufs, &mut meta)
        };
        match received {
            Ok(1) if meta[0].addr == self.waker => {}
            Ok(1) => {
                let m = meta[0];
                let datagrams = self.inbox.take(m.len);
                self.driver.handle_received(m.addr, datagrams, m.stride);
            }
            // Timeouts, and transient errors (an ICMP unreachable surfacing here) that must
            // not stop the endpoint: the core's own timers deal with a peer that is gone.
            _ => {}
        }
    }

    fn flush(&mut self) {
        while let Some(batch) = self.outbox.next(&mut self.driver, self.state.max_gso_segments()) {
            // A full buffer or an unreachable network (ENOBUFS, ENETUNREACH) loses these
            // datagrams only; recovery resends what mattered. quinn-udp logs such failures
            // (rate-limited) and returns them as success.
            let _ = self.state.send((&self.socket).into(), &batch.transmit());
        }
    }
}
