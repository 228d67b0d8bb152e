//! What a runtime adapter plugs in ([`Runtime`]), the driver behind its lock as the
//! handles and the adapter's loop share it ([`Shared`]), and the endpoint's handle
//! ([`Endpoint`]): connect, accept, pipe.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use weir_core::congestion::CongestionAlgorithm;
use weir_core::{EndpointLoad, EndpointStats, LocalRead, PublicKey, Reflexive};

use super::{Connection, Pipe, RecvStream};
use crate::driver::Spared;
use crate::{CallId, Driver, Error, RecvState};
use weir_core::ConnectionHandle;

/// What the handles need of the runtime that drives an endpoint's socket. The adapter's
/// loop (a task, a thread) moves datagrams and time between the socket and the
/// [`Driver`]; the handles' calls run on the driver themselves, in the calling task or
/// thread, and tell the runtime through this trait what they changed.
pub trait Runtime: Send + Sync + 'static {
    /// A call changed the driver: it may have left datagrams to send, or moved the
    /// deadline earlier. Called with the driver's lock held, after every call; must not
    /// call back into the handles. An async runtime wakes its loop; a blocking one may send
    /// at once and wake its thread only when it would sleep past the new deadline.
    /// `urgency` says whether what the call left may wait for the loop's next turn.
    fn changed(&self, driver: &mut Driver, urgency: Urgency);

    /// Whether a call the core may answer at once may go on now, or must yield first (with
    /// `cx`'s waker woken when it may go on): a task looping over calls that never wait
    /// would otherwise never let its runtime run the loop. `urgency` is the call's
    /// ([`Urgency::Soon`] for reads). The default always goes on.
    fn poll_proceed(&self, cx: &mut Context<'_>, urgency: Urgency) -> Poll<()> {
        let _ = (cx, urgency);
        Poll::Ready(())
    }

    /// A call the core may answer at once found nothing and is about to wait, its task's
    /// waker left with the driver: the runtime may receive for it, in the calling task,
    /// what the socket holds, and hand it over with [`Shared::hand_over`] (naming the call:
    /// `call`). `Ready` when it handed datagrams over (the call then asks the driver again
    /// at once), `Pending` when the call is to wait (for the socket, if the runtime
    /// registered `cx`'s waker for it, and for the driver). The default receives nothing:
    /// the adapter's loop does.
    fn poll_wait(&self, shared: &Shared, cx: &mut Context<'_>, call: Option<CallId>) -> Poll<()> {
        let _ = (shared, cx, call);
        Poll::Pending
    }

    /// A call the core may answer at once is polled (again): if its task is the one that
    /// waits for the socket's next datagram and the socket holds some, the runtime may
    /// receive them first and hand them over ([`Shared::hand_over`]), as the call would
    /// once the driver told it it must wait: a task the socket woke finds what it waits
    /// for in the socket, not yet with the driver, and an ask before the receive asks for
    /// nothing. Whether it handed datagrams over (naming the call: `call`). It must not
    /// register `cx`'s waker anywhere it was not, nor send: the call may be answered at
    /// once. The default receives nothing.
    fn receive_first(&self, shared: &Shared, cx: &mut Context<'_>, call: Option<CallId>) -> bool {
        let _ = (shared, cx, call);
        false
    }

    /// A waiting call handed datagrams to the driver ([`Shared::hand_over`]): what the core
    /// wrote in answer may go now. Called with the driver's lock held. The default is
    /// [`changed`](Self::changed) with [`Urgency::Now`].
    fn received(&self, driver: &mut Driver) {
        self.changed(driver, Urgency::Now);
    }

    /// A call the core may answer at once is ready in the task `cx` wakes (it may have
    /// waited, and received for itself): `others_wait` says whether other calls are still
    /// parked with the driver, waiting for what the socket may bring. An adapter whose
    /// calls receive makes sure someone still watches the socket. The default does nothing.
    fn call_ready(&self, cx: &Context<'_>, others_wait: bool) {
        let _ = (cx, others_wait);
    }

    /// A call in the task `cx` wakes received for itself as often as it may (four
    /// hand-overs through [`poll_wait`](Self::poll_wait)) and still waits: it stops receiving, its waker left with the driver, and what the socket keeps
    /// bringing is the adapter's loop's to receive. An adapter whose loop stands by while
    /// calls receive has it watch the socket again: nothing else would read it until the
    /// stand-by ended. The default does nothing.
    fn stops_receiving(&self, cx: &Context<'_>) {
        let _ = cx;
    }
}

/// How many times a call that is about to wait asks the runtime to receive for it
/// ([`Runtime::poll_wait`]) before it waits: datagrams that keep coming, none of them what
/// it waits for, are then left to the adapter's loop ([`Runtime::stops_receiving`]).
const WAIT_RECEIVES: usize = 4;

/// How soon what a call left must go out ([`Runtime::changed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// The call queued what the peer waits for (data, a finish, a reset, a close, a
    /// handshake): it goes now.
    Now,
    /// The call read, or only asked: the credit, stream slots and receipt a read frees may
    /// go with the loop's next send when that comes within microseconds, together with the
    /// answer the application is likely about to send.
    Soon,
}

/// The driver behind its lock, shared by an endpoint's handles and its adapter's loop.
pub struct Shared {
    /// Held for one call, or one step of the loop, never across a system call or a wait.
    driver: Mutex<Driver>,
    runtime: Box<dyn Runtime>,
    /// The loop ended: calls fail at once.
    stopped: AtomicBool,
    local: SocketAddr,
    public_key: PublicKey,
    /// The last call identity made ([`call_id`](Self::call_id)).
    calls: AtomicU64,
}

impl Shared {
    /// `driver`, for an endpoint whose socket is bound at `local`, driven by `runtime`.
    pub fn new(driver: Driver, local: SocketAddr, runtime: Box<dyn Runtime>) -> Arc<Shared> {
        Arc::new(Shared {
            public_key: driver.public_key(),
            driver: Mutex::new(driver),
            runtime,
            stopped: AtomicBool::new(false),
            local,
            calls: AtomicU64::new(0),
        })
    }

    /// A new call's identity (module `driver::waiting`): a call polled with it is told
    /// apart from the other calls of its task, so that its own hand-over need not wake it.
    pub(crate) fn call_id(&self) -> CallId {
        CallId(self.calls.fetch_add(1, Ordering::Relaxed))
    }

    /// The driver, locked: for the loop's steps. The calls the step lets go on are woken
    /// when the guard is dropped, after the lock is released.
    pub fn driver(&self) -> Locked<'_> {
        // A panic under the lock is a bug; the calls after it carry on with the driver as
        // the panic left it rather than each panicking in turn.
        Locked(Some(self.driver.lock().unwrap_or_else(PoisonError::into_inner)))
    }

    /// The loop ended (shut down, or gone with its runtime): the calls waiting are
    /// answered with [`Error::Shutdown`], and every later call fails at once.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.driver().shutdown();
    }

    /// Datagrams another shard of this endpoint received for it (`Router`), handled now,
    /// in the calling thread; the runtime is then told what the core wrote in answer.
    /// Dropped if the loop ended.
    pub(crate) fn deliver(&self, datagrams: impl Iterator<Item = (SocketAddr, bytes::BytesMut)>) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut driver = self.driver();
        driver.handle_datagrams(datagrams);
        self.runtime.changed(&mut driver, Urgency::Now);
    }

    /// Starts the graceful shutdown (once; later calls change nothing).
    pub fn shutdown(&self) {
        let mut driver = self.driver();
        driver.shutdown();
        self.runtime.changed(&mut driver, Urgency::Now);
    }

    /// Runs `f` on the driver now, in the calling task or thread, then tells the runtime
    /// what it left to send, [`Urgency::Now`].
    pub(crate) fn call<R>(&self, f: impl FnOnce(&mut Driver) -> R) -> Result<R, Error> {
        self.call_as(Urgency::Now, f)
    }

    /// [`call`](Self::call), telling the runtime `urgency`.
    pub(crate) fn call_as<R>(&self, urgency: Urgency, f: impl FnOnce(&mut Driver) -> R) -> Result<R, Error> {
        self.call_by(None, urgency, f)
    }

    /// [`call_as`](Self::call_as) for the call `call` names (`None`: one without an
    /// identity), which is what it registers as if it must wait (module `driver::waiting`).
    /// Every call sets it, so none registers as another.
    fn call_by<R>(
        &self,
        call: Option<CallId>,
        urgency: Urgency,
        f: impl FnOnce(&mut Driver) -> R,
    ) -> Result<R, Error> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        let mut driver = self.driver();
        driver.asking = call;
        let r = f(&mut driver);
        self.runtime.changed(&mut driver, urgency);
        Ok(r)
    }

    /// [`call_as`](Self::call_as) for a poll.
    pub(crate) fn poll<T>(
        &self,
        urgency: Urgency,
        f: impl FnOnce(&mut Driver) -> Poll<Result<T, Error>>,
    ) -> Poll<Result<T, Error>> {
        self.poll_by(None, urgency, f)
    }

    /// [`poll`](Self::poll) for the call `call` names ([`call_by`](Self::call_by)).
    fn poll_by<T>(
        &self,
        call: Option<CallId>,
        urgency: Urgency,
        f: impl FnOnce(&mut Driver) -> Poll<Result<T, Error>>,
    ) -> Poll<Result<T, Error>> {
        match self.call_by(call, urgency, f) {
            Ok(p) => p,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// A poll of a call the core may answer at once: first asks the runtime whether the
    /// task may go on ([`Runtime::poll_proceed`]) and lets it receive what a task that
    /// waits for the socket was woken for ([`Runtime::receive_first`]); if the call is to
    /// wait, lets the runtime receive for it ([`Runtime::poll_wait`]) and asks again after
    /// each hand-over. `call` is the call's identity, if it has one ([`call_id`](Self::call_id)):
    /// its hand-overs then do not wake its task for it, as it asks again at once.
    pub(crate) fn poll_busy<T>(
        &self,
        cx: &mut Context<'_>,
        urgency: Urgency,
        call: Option<CallId>,
        mut f: impl FnMut(&mut Driver, &mut Context<'_>) -> Poll<Result<T, Error>>,
    ) -> Poll<Result<T, Error>> {
        ready!(self.runtime.poll_proceed(cx, urgency));
        self.runtime.receive_first(self, cx, call);
        let mut others_wait = false;
        let mut ask = |cx: &mut Context<'_>| {
            self.poll_by(call, urgency, |d| {
                let p = f(d, cx);
                others_wait = p.is_ready() && d.has_waiting_calls();
                p
            })
        };
        let mut p = ask(cx);
        let mut hand_overs = 0;
        while hand_overs < WAIT_RECEIVES
            && p.is_pending()
            && self.runtime.poll_wait(self, cx, call).is_ready()
        {
            hand_overs += 1;
            p = ask(cx);
        }
        // Pending: the waker stays with the driver, whose hand-overs wake the call.
        if p.is_ready() {
            self.runtime.call_ready(cx, others_wait);
        } else if hand_overs == WAIT_RECEIVES {
            self.runtime.stops_receiving(cx);
        }
        p
    }

    /// Datagrams a runtime received for a waiting call ([`Runtime::poll_wait`]), handed to
    /// the driver in the calling task: as [`Driver::handle_received`] for each, then the
    /// runtime told ([`Runtime::received`]). The calls they let go on are woken, but for
    /// the receiving call itself when it has an identity (`call`; `waker` is its task's):
    /// it asks the driver again at once. Its task is still woken for its other calls, one
    /// of which may have been polled before it and be let go on. Dropped if the loop ended.
    pub fn hand_over(
        &self,
        received: impl Iterator<Item = (SocketAddr, bytes::BytesMut, usize)>,
        waker: &Waker,
        call: Option<CallId>,
    ) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut driver = self.driver();
        for (from, datagrams, stride) in received {
            driver.handle_received(from, datagrams, stride);
        }
        self.runtime.received(&mut driver);
        driver.release(call.map(|call| Spared { waker, call }));
    }
}

/// The driver, locked ([`Shared::driver`]). Dropping it releases the lock, then wakes the
/// calls that what was done under it lets go on.
pub struct Locked<'a>(Option<MutexGuard<'a, Driver>>);

impl Deref for Locked<'_> {
    type Target = Driver;

    fn deref(&self) -> &Driver {
        // Unreachable: the guard is taken only in the drop.
        self.0.as_deref().expect("the guard is held until the drop")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Driver {
        // Unreachable: the guard is taken only in the drop.
        self.0.as_deref_mut().expect("the guard is held until the drop")
    }
}

impl Locked<'_> {
    /// Releases the lock, then wakes the calls; how many were woken (a loop may let them
    /// run before it sleeps, so that what they change is in the deadline it sleeps to).
    pub fn unlock(mut self) -> usize {
        self.release(None)
    }

    /// Releases the lock, then wakes the calls but `spared`'s own (once released, the
    /// guard's drop does nothing more).
    fn release(&mut self, spared: Option<Spared<'_>>) -> usize {
        let woken = self.0.as_mut().map(|d| d.take_woken(spared)).unwrap_or_default();
        drop(self.0.take());
        let n = woken.len();
        woken.into_iter().for_each(Waker::wake);
        n
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.release(None);
    }
}

/// Runs its closure on the driver when dropped, unless disarmed: how a call given up
/// midway (its future dropped, a blocking call timed out) tells the driver.
pub(crate) struct OnDrop<'a, F: FnOnce(&mut Driver)> {
    shared: &'a Shared,
    f: Option<F>,
}

impl<'a, F: FnOnce(&mut Driver)> OnDrop<'a, F> {
    pub(crate) fn new(shared: &'a Shared, f: F) -> Self {
        OnDrop { shared, f: Some(f) }
    }

    /// The call is over: nothing to tell.
    pub(crate) fn disarm(&mut self) {
        self.f = None;
    }
}

impl<F: FnOnce(&mut Driver)> Drop for OnDrop<'_, F> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            // A loop that ended has nothing to tell.
            let _ = self.shared.call(f);
        }
    }
}

/// The connection attempts of a [`Endpoint::connect_to_peer`] still under way: closed when
/// it is over or dropped.
struct Attempts<'a> {
    shared: &'a Shared,
    pending: Vec<(SocketAddr, ConnectionHandle)>,
}

impl Drop for Attempts<'_> {
    fn drop(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        // A loop that ended has nothing to close.
        let _ = self
            .shared
            .call(|d| pending.into_iter().for_each(|(_, id)| d.abandon_connect(id)));
    }
}

/// An endpoint's handle: connects out, accepts in, pipes streams between its connections.
/// Dropping it starts the graceful shutdown (the peers get a bounded time to acknowledge
/// what was written, then every connection is closed with a CLOSE frame).
///
/// Every call's future is cancel-safe: dropped before it is ready, it has taken nothing
/// (a connect not yet established is closed).
pub struct Endpoint {
    pub(super) shared: Arc<Shared>,
}

impl Endpoint {
    /// The handle of the endpoint `shared` drives.
    pub fn new(shared: Arc<Shared>) -> Endpoint {
        Endpoint { shared }
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// This endpoint's public key: its identity, which clients name in
    /// [`connect_to`](Self::connect_to). Configured (`Config::identity`) or, if not, new with
    /// each endpoint.
    pub fn public_key(&self) -> PublicKey {
        self.shared.public_key
    }

    /// Our public addresses as recent peers saw them, and whether one serves every
    /// destination (capability ADDRESS_DISCOVERY; `weir_core::Endpoint::reflexive`): what
    /// to tell a peer that should reach us from behind a NAT.
    pub fn reflexive(&self) -> Reflexive {
        self.shared.driver().reflexive()
    }

    /// Starts the graceful shutdown (dropping the handle does the same).
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    /// Connects to `remote`; ready once the handshake finished, or failed (within the
    /// configured handshake timeout) with [`Error::Handshake`].
    pub async fn connect(&self, remote: SocketAddr) -> Result<Connection, Error> {
        self.connect_with_key(remote, None, None).await
    }

    /// Like [`connect`](Self::connect), with a congestion controller of its own instead of
    /// the configured one: [`CongestionAlgorithm::Ledbat`] for a background transfer that
    /// should yield to the other connections, say.
    pub async fn connect_with(
        &self,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
    ) -> Result<Connection, Error> {
        self.connect_with_key(remote, None, Some(congestion)).await
    }

    /// Like [`connect`](Self::connect), to a server whose public key we know (a Noise IK
    /// handshake): fails with [`weir_core::HandshakeError::ServerKeyMismatch`] if the
    /// server at `remote` does not hold it.
    pub async fn connect_to(&self, remote: SocketAddr, server: PublicKey) -> Result<Connection, Error> {
        self.connect_with_key(remote, Some(server), None).await
    }

    /// Connects to the peer whose public key is `key` at whichever of `addresses` answers
    /// first: a handshake to each at once (Noise IK, so the connection is authenticated to
    /// `key` whichever address it takes), the others closed once one succeeds. Fails with
    /// [`Error::Unreachable`], each address's failure listed, when none answers within the
    /// handshake timeout or holds the key (at once, with no address). Cancel-safe: dropped,
    /// every attempt still under way is closed.
    pub async fn connect_to_peer(
        &self,
        key: PublicKey,
        addresses: &[SocketAddr],
    ) -> Result<Connection, Error> {
        self.connect_to_peer_via(key, addresses, &[]).await
    }

    /// [`connect_to_peer`](Self::connect_to_peer) with relays too: besides a handshake to
    /// each address, one through each relay of `relays` (our connections to circuit
    /// relays where the peer may have reserved, [`connect_via`](Self::connect_via)), all at
    /// once; the first to succeed wins, whichever path it took (a relayed one then tries
    /// for a direct path itself). In [`Error::Unreachable`], a relay's failure is listed
    /// under the relay's address.
    pub async fn connect_to_peer_via(
        &self,
        key: PublicKey,
        addresses: &[SocketAddr],
        relays: &[&Connection],
    ) -> Result<Connection, Error> {
        let relays: Vec<ConnectionHandle> = relays.iter().map(|r| self.same(r)).collect::<Result<_, _>>()?;
        let mut unique: Vec<SocketAddr> = Vec::with_capacity(addresses.len());
        for a in addresses {
            if !unique.contains(a) {
                unique.push(*a);
            }
        }
        let mut failed: Vec<(SocketAddr, Error)> = Vec::new();
        let mut attempts = Attempts {
            shared: &self.shared,
            pending: Vec::new(),
        };
        let started = self.shared.call(|d| {
            let mut started: Vec<_> = unique
                .iter()
                .map(|&a| (a, d.connect(a, Some(key), None)))
                .collect();
            for &relay in &relays {
                // A relay connection already gone fails its attempt at once (listed unspecified).
                let at = d
                    .remote_address(relay)
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                started.push((at, d.connect_via(relay, key)));
            }
            started
        })?;
        for (addr, r) in started {
            match r {
                Ok(id) => attempts.pending.push((addr, id)),
                Err(e) => failed.push((addr, e)),
            }
        }
        let won = poll_fn(|cx| {
            self.shared.poll(Urgency::Now, |d| {
                let mut i = 0;
                while let Some(&(addr, id)) = attempts.pending.get(i) {
                    match d.poll_connected(id, cx.waker()) {
                        Poll::Ready(Ok(c)) => {
                            attempts.pending.remove(i);
                            return Poll::Ready(Ok(Some(c)));
                        }
                        Poll::Ready(Err(e)) => {
                            attempts.pending.remove(i);
                            failed.push((addr, e));
                        }
                        Poll::Pending => i += 1,
                    }
                }
                match attempts.pending.is_empty() {
                    true => Poll::Ready(Ok(None)),
                    false => Poll::Pending,
                }
            })
        })
        .await?;
        // The attempts still under way are closed as `attempts` goes.
        drop(attempts);
        match won {
            Some(c) => Ok(Connection::new(&self.shared, c)),
            None => Err(Error::Unreachable { attempts: failed }),
        }
    }

    async fn connect_with_key(
        &self,
        remote: SocketAddr,
        server: Option<PublicKey>,
        congestion: Option<CongestionAlgorithm>,
    ) -> Result<Connection, Error> {
        let id: ConnectionHandle = self.shared.call(|d| d.connect(remote, server, congestion))??;
        self.connected(id).await
    }

    /// The connection `id` a connect started, once its handshake ended; given up (closed)
    /// if dropped before.
    async fn connected(&self, id: ConnectionHandle) -> Result<Connection, Error> {
        let mut given_up = OnDrop::new(&self.shared, move |d: &mut Driver| d.abandon_connect(id));
        let connected = poll_fn(|cx| {
            self.shared
                .poll(Urgency::Now, |d| d.poll_connected(id, cx.waker()))
        })
        .await;
        given_up.disarm();
        Ok(Connection::new(&self.shared, connected?))
    }

    /// Connects to the peer holding `peer` through the relay at the other end of `relay`
    /// (a connection to an endpoint that serves as one, `Config::relay`, where the peer
    /// reserved; spec §12): the handshake runs end to end through the relay's circuit,
    /// authenticated to `peer`, and the relay sees only ciphertext. The connection then
    /// tries for a direct path (a hole punch) and moves there if it opens, back to the relay
    /// if it fails later ([`Connection::path`]). Fails with
    /// [`HandshakeError::Relay`](weir_core::HandshakeError::Relay) if the relay refuses.
    pub async fn connect_via(&self, relay: &Connection, peer: PublicKey) -> Result<Connection, Error> {
        let relay = self.same(relay)?;
        let id: ConnectionHandle = self.shared.call(|d| d.connect_via(relay, peer))??;
        self.connected(id).await
    }

    /// Asks the relay at the other end of `relay` to keep this endpoint reachable by its key
    /// for as long as the connection lasts (spec §12.2): peers then reach it with
    /// [`connect_via`](Self::connect_via). Ready once the relay granted it; fails with
    /// [`Error::Relay`] if it refused.
    pub async fn reserve(&self, relay: &Connection) -> Result<(), Error> {
        let relay = self.same(relay)?;
        self.shared.call(|d| d.reserve(relay))??;
        poll_fn(|cx| {
            self.shared
                .poll(Urgency::Now, |d| d.poll_reserved(relay, cx.waker()))
        })
        .await
    }

    /// The next client that connects.
    pub async fn accept(&self) -> Result<Connection, Error> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// [`accept`](Self::accept) as a poll, for poll-driven code (a libp2p transport, say):
    /// takes a connection only when it returns it.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Result<Connection, Error>> {
        let c = ready!(self.shared.poll(Urgency::Soon, |d| d.poll_accept(cx.waker())))?;
        Poll::Ready(Ok(Connection::new(&self.shared, c)))
    }

    /// Forwards `stream` (one the peer of its connection sends) to a new stream on each
    /// connection of `targets`, fragment by fragment as it arrives, with the same label
    /// and what is left of its total length; the relay never holds the whole stream
    /// (spec/protocol.md §8, Piping). Every connection must belong to this endpoint.
    /// Forwarding starts where reading stopped: bytes a read already fetched (a
    /// `read_chunk(n)` may fetch up to `n` bytes and hand them out over several calls) are
    /// the application's, not forwarded.
    ///
    /// The call takes the stream. If the pipe cannot begin (a target connection that has
    /// ended, say), the stream goes no further: it is stopped with
    /// [`PIPE_BROKEN`](weir_core::PIPE_BROKEN), so its sender learns that the relay could
    /// not pass it on, not that a reader stopped it.
    pub async fn pipe(&self, mut stream: RecvStream, targets: &[&Connection]) -> Result<Pipe, Error> {
        match self.begin_pipe(&stream, targets, LocalRead::Discard) {
            Ok(pipe) => {
                // The pipe owns the stream now: dropping the handle must not stop it.
                stream.state = RecvState::Done;
                Ok(pipe)
            }
            Err(e) => {
                let _ = stream.stop(weir_core::PIPE_BROKEN);
                Err(e)
            }
        }
    }

    /// Forwards `stream` to a new stream on each of `targets`, as [`pipe`](Self::pipe)
    /// does, while the application keeps reading it through `stream` (Freenet's fork: a
    /// relay that stores what it forwards). The application reads the very bytes the
    /// targets are sent, no second copy; the pipe's buffer also bounds what waits for the
    /// application, so a reader that stops holds the forwarding back. Forwarding starts
    /// where reading stopped. If the fork cannot begin, the stream is left as it was.
    /// Stopping `stream`, or dropping it before its end, stops the sender, and so fails the
    /// pipe ([`PipeFailure::SourceStopped`](weir_core::PipeFailure)): every target is reset
    /// with the code.
    pub async fn fork(&self, stream: &RecvStream, targets: &[&Connection]) -> Result<Pipe, Error> {
        self.begin_pipe(stream, targets, LocalRead::Keep)
    }

    /// Starts the pipe of [`pipe`](Self::pipe) and [`fork`](Self::fork).
    fn begin_pipe(
        &self,
        stream: &RecvStream,
        targets: &[&Connection],
        local: LocalRead,
    ) -> Result<Pipe, Error> {
        self.same(stream.connection())?;
        for t in targets {
            self.same(t)?;
        }
        let to: Vec<ConnectionHandle> = targets.iter().map(|t| t.id()).collect();
        let (from, id) = (stream.connection().id(), stream.id());
        let pipe = self.shared.call(|d| d.pipe(from, id, &to, local))??;
        Ok(Pipe::new(&self.shared, pipe))
    }

    /// The endpoint's counters since it started: datagrams, drops by reason, handshakes
    /// refused, resets, relayed datagrams ([`EndpointStats`]).
    pub fn stats(&self) -> EndpointStats {
        self.shared.driver().endpoint_stats()
    }

    /// What the endpoint holds now: connections, handshakes pending, bytes buffered
    /// ([`EndpointLoad`]).
    pub fn load(&self) -> EndpointLoad {
        self.shared.driver().load()
    }
    /// `conn`'s handle, if it belongs to this endpoint.
    fn same(&self, conn: &Connection) -> Result<ConnectionHandle, Error> {
        match Arc::ptr_eq(conn.shared(), &self.shared) {
            true => Ok(conn.id()),
            false => Err(Error::WrongEndpoint),
        }
    }
}

impl Drop for Endpoint {
    /// Starts the graceful shutdown; the adapter's loop finishes it.
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

#[cfg(test)]
mod tests;
