//! The driver thread: moves datagrams, time and commands between the OS and the
//! [`Driver`], and nothing else.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_core::wire::MAX_DATAGRAM_SIZE;
use weir_driver::{Command, Config, Driver};

/// The longest the thread sleeps with no deadline (a command or datagram wakes it sooner).
const IDLE_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Loop {
    driver: Driver,
    socket: UdpSocket,
    /// Datagrams from this address are wake-ups, not peers'.
    waker: SocketAddr,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    buf: Vec<u8>,
}

impl Loop {
    pub(crate) fn new(
        config: Config,
        local: SocketAddr,
        socket: UdpSocket,
        waker: SocketAddr,
        commands: Receiver<Command>,
        stop: Arc<AtomicBool>,
    ) -> Loop {
        Loop {
            driver: Driver::new(config, local),
            socket,
            waker,
            commands,
            stop,
            buf: vec![0; MAX_DATAGRAM_SIZE],
        }
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
        match self.socket.recv_from(&mut self.buf) {
            Ok((_, from)) if from == self.waker => {}
            Ok((len, from)) => {
                // One copy, out of the reused receive buffer (a buffer pool is issue 10's).
                let datagram = Bytes::copy_from_slice(&self.buf[..len]);
                self.driver.handle_datagram(from, datagram);
            }
            // Timeouts, and transient errors (an ICMP unreachable surfacing here) that must
            // not stop the endpoint: the core's own timers deal with a peer that is gone.
            Err(_) => {}
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.driver.poll_transmit(&mut self.buf) {
            // A full buffer or an unreachable network (ENOBUFS, ENETUNREACH) loses this
            // datagram only; recovery resends what mattered.
            if let Err(e) = self.socket.send_to(&self.buf[..t.len], t.destination) {
                tracing::trace!(%e, to = %t.destination, "send failed");
            }
        }
    }
}
