//! The application's commands to the endpoint (module `command`): the typed methods, each of
//! which records itself on a traced endpoint (built only then: an untraced endpoint copies
//! no argument for a record), and [`Endpoint::command`], which runs a command given as a
//! value by calling the typed method its variant names. Every answer has its method's own
//! type, so no `Done` is ever taken apart again.
//!
//! Inputs: a [`Command`] and the time it is given. Outputs: a [`Done`] or an [`ApiError`],
//! and, on a traced endpoint, the command's record (spec/trace.md §3.3) with the deadline
//! after it if the command moved it. Every command ends with the connection it touched
//! brought up to date (`with_conn`: its timers refiled, its budgets accounted).

use super::budgets::message_fits;
use super::*;
use crate::command::Answer;

impl Endpoint {
    /// Runs one of the application's commands given as a value: the form a trace records
    /// and the replayer and fuzzers build. Each variant is the typed method it names (which
    /// records it, on a traced endpoint); `now` is read only by [`Command::Connect`] and
    /// [`Command::Close`], the commands that act on the time.
    pub fn command(&mut self, now: Instant, command: Command) -> Result<Done, ApiError> {
        match command {
            Command::Connect {
                remote,
                server,
                congestion,
            } => self.connect_any(now, remote, server, congestion).map(Done::Conn),
            Command::OpenStream { conn, header } => self.open_stream(conn, header).map(Done::Stream),
            Command::Write { conn, stream, data } => self.write(conn, stream, data).map(Done::Taken),
            Command::SetPriority {
                conn,
                stream,
                priority,
            } => self.set_priority(conn, stream, priority).map(|()| Done::Unit),
            Command::Finish { conn, stream } => self.finish(conn, stream).map(|()| Done::Unit),
            Command::SendMessage {
                conn,
                label,
                data,
                digest,
            } => self.message(conn, label, data, digest).map(Done::Stream),
            Command::ResetStream { conn, stream, code } => {
                self.reset_stream(conn, stream, code).map(|()| Done::Unit)
            }
            Command::StopSending { conn, stream, code } => {
                self.stop_sending(conn, stream, code).map(|()| Done::Unit)
            }
            Command::DeferDelivery { conn, stream } => self.defer_delivery(conn, stream).map(|()| Done::Unit),
            Command::ConfirmDelivery { conn, stream } => {
                self.confirm_delivery(conn, stream).map(|()| Done::Unit)
            }
            Command::Release { conn } => self.release(conn).map(|()| Done::Unit),
            Command::Reserve { relay } => self.reserve(relay).map(|()| Done::Unit),
            Command::ConnectVia { relay, peer } => self.connect_via(now, relay, peer).map(Done::Conn),
            Command::AcceptStream { conn } => self.accept_stream(conn).map(Answer::done),
            Command::SendDatagram { conn, data } => self.send_datagram(conn, data).map(|()| Done::Unit),
            Command::RecvDatagram { conn } => self.recv_datagram(conn).map(Answer::done),
            Command::NextMessage { conn, max_len } => self.next_message(conn, max_len).map(Answer::done),
            Command::Read {
                conn,
                stream,
                max_len,
                unit,
            } => self.read_unit(conn, stream, max_len, unit).map(Done::Read),
            Command::Close { conn, code, reason } => self.close(now, conn, code, reason).map(|()| Done::Unit),
            Command::Pipe {
                from,
                stream,
                to,
                local,
            } => self.pipe(from, stream, &to, local).map(Done::Pipe),
            Command::AddEntropy { bytes } => {
                self.add_entropy(&bytes);
                Ok(Done::Unit)
            }
        }
    }

    /// A command's record, built only on a traced endpoint (an untraced one copies no
    /// argument for it).
    pub(super) fn record(&self, command: impl FnOnce() -> Command) -> Option<Command> {
        self.trace.as_ref().map(|_| command())
    }

    /// Writes a command's record and its answer (`at`: the time, for the commands that act
    /// on it) and the deadline if it moved; hands the answer back.
    pub(super) fn recorded<T: Answer>(
        &mut self,
        at: Option<Instant>,
        record: Option<Command>,
        out: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let (Some(t), Some(command)) = (self.trace.as_mut(), record) {
            t.command(at, &command, &out.clone().map(Answer::done));
        }
        self.trace_deadline();
        out
    }

    /// Mixes fresh random bytes (32 from the operating system's generator, say) into the
    /// generator that connection ids, packet numbers left out and handshake ephemeral keys
    /// are drawn from (spec §11.1). With them, what follows cannot be computed from the
    /// seed: a seed that leaks later does not expose the sessions (forward secrecy; the
    /// generator also forgets each output once given, so the endpoint's memory does not
    /// either). The adapters call it once when they bind; a simulation passes seeded bytes,
    /// or nothing, and stays reproducible. A trace records the call and the bytes' length;
    /// the bytes go with its secrets ([`trace_secrets`](Self::trace_secrets)).
    pub fn add_entropy(&mut self, fresh: &[u8]) {
        // On a traced endpoint, one copy of the fresh bytes (32, say) into the record.
        let record = self.record(|| Command::AddEntropy {
            bytes: Bytes::copy_from_slice(fresh),
        });
        self.entropy.mix(fresh);
        if let Some(t) = self.trace.as_mut() {
            t.entropy(fresh);
        }
        let _ = self.recorded(None, record, Ok(()));
    }

    /// Starts a connection to `remote`. [`Event::Connected`] or [`Event::HandshakeFailed`]
    /// follows.
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<ConnectionHandle, ApiError> {
        self.connect_any(now, remote, None, None)
    }

    /// Like [`connect`](Self::connect), to a server whose public key we know: the
    /// handshake is Noise IK (spec §11.2), one message shorter than XX, and our identity
    /// travels encrypted to that key. If the server does not hold the key, the attempt
    /// fails with [`HandshakeError::ServerKeyMismatch`](crate::HandshakeError). The
    /// connection never falls back to version 1, which cannot prove the key
    /// ([`HandshakeError::DowngradeRefused`](crate::HandshakeError)); on a configuration
    /// without version 2 the call fails with [`ApiError::IdentityNeedsEncryption`].
    pub fn connect_to(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        server: PublicKey,
    ) -> Result<ConnectionHandle, ApiError> {
        self.connect_any(now, remote, Some(server), None)
    }

    /// Like [`connect`](Self::connect), with a congestion controller of its own instead of
    /// the configured one (a bulk transfer beside interactive connections, say).
    pub fn connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
    ) -> Result<ConnectionHandle, ApiError> {
        self.connect_any(now, remote, None, Some(congestion))
    }

    /// [`connect_to`](Self::connect_to) with a congestion controller of its own.
    pub fn connect_to_with(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        server: PublicKey,
        congestion: CongestionAlgorithm,
    ) -> Result<ConnectionHandle, ApiError> {
        self.connect_any(now, remote, Some(server), Some(congestion))
    }

    /// Opens a stream to send on. Its header (protocol label, total length, digest; all
    /// optional, `StreamHeader::default()` for none) rides on the opening frame and the
    /// peer sees it in [`Event::StreamOpened`].
    pub fn open_stream(
        &mut self,
        conn: ConnectionHandle,
        header: StreamHeader,
    ) -> Result<StreamId, ApiError> {
        let record = self.record(|| Command::OpenStream {
            conn,
            header: header.clone(),
        });
        let out = self.with_conn_then(conn, |c| c.open_stream(header), Self::touch_fresh);
        self.recorded(None, record, out)
    }

    /// Queues what fits of `data` in the connection's send buffer
    /// ([`Config::send_buffer`], within [`Config::send_buffer_total`] for all
    /// connections) on a stream and says how many bytes it took (the rest is
    /// for a later call); [`ApiError::WouldBlock`] if none fit, then [`Event::Writable`]
    /// follows once there is room. The bytes are kept by reference (no copy) until
    /// acknowledged.
    pub fn write(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        data: Bytes,
    ) -> Result<usize, ApiError> {
        let record = self.record(|| Command::Write {
            conn,
            stream,
            data: data.clone(),
        });
        let wanted = data.len() as u64;
        let out = self.budgeted_write(conn, wanted, |c, room| {
            let fits = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
            match c.write(stream, data.slice(..fits))? {
                // Nothing fit in the endpoint's budget (an empty write stays Ok(0)).
                0 if wanted > 0 => Err(ApiError::WouldBlock),
                taken => Ok(taken),
            }
        });
        self.recorded(None, record, out)
    }

    /// Puts a stream we send in a priority class (default [`Priority::Normal`]) at once: one
    /// waiting for its turn waits in the new class from now on (spec §8, Priorities), so a
    /// message made [`Priority::High`] right after [`send_message`](Self::send_message) goes
    /// before the streams queued ahead of it.
    pub fn set_priority(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        priority: Priority,
    ) -> Result<(), ApiError> {
        let record = self.record(|| Command::SetPriority {
            conn,
            stream,
            priority,
        });
        let out = self.with_conn(conn, |c| c.set_priority(stream, priority));
        self.recorded(None, record, out)
    }

    /// Ends a stream after what was written.
    pub fn finish(&mut self, conn: ConnectionHandle, stream: StreamId) -> Result<(), ApiError> {
        let record = self.record(|| Command::Finish { conn, stream });
        let out = self.with_conn_then(conn, |c| c.finish(stream), Self::touch_fresh);
        self.recorded(None, record, out)
    }

    /// Sends `data` as one message: a new stream, written and finished, whose total length
    /// the receiver learns at once. Messages are independent: no head-of-line blocking.
    /// Whole or not at all: [`ApiError::WouldBlock`] if the send buffer lacks room now
    /// ([`Event::Writable`] follows when it has it), [`ApiError::MessageTooLong`] if the
    /// message is larger than the whole buffer or than the peer takes (its
    /// [`Config::max_message_len`](crate::Config::max_message_len)).
    pub fn send_message(
        &mut self,
        conn: ConnectionHandle,
        label: Option<Label>,
        data: Bytes,
    ) -> Result<StreamId, ApiError> {
        self.message(conn, label, data, MessageDigest::None)
    }

    /// [`send_message`](Self::send_message) with the message's digest attached (SHA-256,
    /// computed here; about 1.6 GiB/s on a CPU with SHA extensions): the final receiver, behind any number of relays,
    /// gets [`Read::VerificationFailed`] instead of the
    /// message if its bytes were changed on the way.
    pub fn send_verified_message(
        &mut self,
        conn: ConnectionHandle,
        label: Option<Label>,
        data: Bytes,
    ) -> Result<StreamId, ApiError> {
        self.message(conn, label, data, MessageDigest::Attached)
    }

    /// Abandons a stream we send; the peer gets [`Event::StreamReset`].
    pub fn reset_stream(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        code: u64,
    ) -> Result<(), ApiError> {
        let record = self.record(|| Command::ResetStream { conn, stream, code });
        let out = self.with_conn(conn, |c| c.reset_stream(stream, code));
        self.recorded(None, record, out)
    }

    /// Asks the peer to stop sending a stream; what still arrives is discarded. On a stream
    /// whose delivery was deferred and that was read to its end, tells the sender it was not
    /// delivered, with `code`. The stream is not to be read again: once nothing more of it
    /// can come (at once if it was whole, else when the peer's reset or the rest up to its
    /// end arrives) it is gone and its place among the peer's streams is free (spec §4.6);
    /// a reset is still told as [`Event::StreamReset`], and a read of it then is
    /// [`ApiError::UnknownStream`]. A stream a pipe forwards (a fork's included) is piped no
    /// more: the pipe fails with [`PipeFailure::SourceStopped`](crate::PipeFailure) and
    /// resets every target with `code`.
    pub fn stop_sending(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        code: u64,
    ) -> Result<(), ApiError> {
        let record = self.record(|| Command::StopSending { conn, stream, code });
        let out = self.with_conn(conn, |c| c.stop_sending(stream, code));
        if out.is_ok() {
            // A pipe whose source this was fails now, not at some later input that may
            // never come.
            self.pump_pipes(Some(conn));
        }
        self.recorded(None, record, out)
    }

    /// Makes the delivery of a stream the peer sends the application's to confirm (spec §8,
    /// Delivery): reading it to its end no longer tells the sender it was delivered; call
    /// [`confirm_delivery`](Self::confirm_delivery) once the bytes are kept (a file flushed
    /// and renamed into place, say), or [`stop_sending`](Self::stop_sending) to say they
    /// were not. Call it before the stream's end is read. A digest mismatch is reported at
    /// once regardless. Until confirmed or refused, the stream counts against the streams
    /// the peer may open.
    pub fn defer_delivery(&mut self, conn: ConnectionHandle, stream: StreamId) -> Result<(), ApiError> {
        let record = self.record(|| Command::DeferDelivery { conn, stream });
        let out = self.with_conn(conn, |c| c.defer_delivery(stream));
        self.recorded(None, record, out)
    }

    /// Tells the sender that a stream whose delivery was deferred
    /// ([`defer_delivery`](Self::defer_delivery)) and read to its end is delivered.
    /// [`ApiError::NothingToConfirm`] if it was not deferred, not read to its end, or
    /// settled already.
    pub fn confirm_delivery(&mut self, conn: ConnectionHandle, stream: StreamId) -> Result<(), ApiError> {
        let record = self.record(|| Command::ConfirmDelivery { conn, stream });
        let out = self.with_conn(conn, |c| c.settle_delivery(stream, None));
        self.recorded(None, record, out)
    }

    /// The next stream the peer opened that the application has not taken yet (by this
    /// call, by [`next_message`](Self::next_message), or by reading, stopping or piping it
    /// by its id), in the order they opened, with what its opening frame announced; `None`
    /// while there is none ([`Event::StreamOpened`] says when there may be). Requests and
    /// replies ([`wire::request`]) are never offered here, nor to
    /// [`next_message`](Self::next_message). Works on a connection kept after its end
    /// ([`release`](Self::release)) too.
    pub fn accept_stream(
        &mut self,
        conn: ConnectionHandle,
    ) -> Result<Option<(StreamId, StreamHeader)>, ApiError> {
        let record = self.record(|| Command::AcceptStream { conn });
        let out = self.with_conn(conn, |c| Ok(c.accept_stream()));
        self.recorded(None, record, out)
    }

    /// The next whole message on a stream the peer opened and the application has not
    /// taken: [`Read::Data`] (all of it, at offset 0) or [`Read::VerificationFailed`], with
    /// its stream; `None` while none is whole ([`Event::StreamReadable`] says when one may
    /// be). Messages gathered whole first, in the order they became so; then the streams
    /// offered to [`accept_stream`](Self::accept_stream), in the order they opened: each
    /// one with something to read is taken, and from then on gathered as its bytes arrive
    /// (their credit goes back to the peer at once) until whole. A message longer than
    /// `max_len` is refused and its stream stopped (code 0); one reset by its sender is
    /// skipped (the sender knows).
    pub fn next_message(
        &mut self,
        conn: ConnectionHandle,
        max_len: u64,
    ) -> Result<Option<(StreamId, Read)>, ApiError> {
        let record = self.record(|| Command::NextMessage { conn, max_len });
        let out = match self.lookup(conn) {
            // Nothing to take: answered without what a change costs (the connection's
            // timers filed again, a turn to send), which a call that polls for a message
            // while it waits would pay at every poll.
            Some(c) if !c.has_message_news() => Ok(None),
            _ => {
                let advise = self.config.advise_buffer;
                self.with_conn_then(conn, |c| Ok(c.next_message(max_len, advise)), Self::touch_fresh)
            }
        };
        self.recorded(None, record, out)
    }

    /// The application holds nothing of `conn` any more and will read nothing more from
    /// it. A connection that ends with something the application was not told (bytes it has
    /// not read: the peer's last message may come just before its CLOSE; or how a stream
    /// ended before the application finished it) is kept, reachable by no datagram, so that
    /// they can still be read, its streams accepted, its `finish` told, until all of it is
    /// taken or it is released (or newer ones push it out past `Config::max_connections` kept at once);
    /// once released, it is let go of as soon as it ends (at once, if it has). Releasing
    /// does not close a connection: [`close`](Self::close) does.
    pub fn release(&mut self, conn: ConnectionHandle) -> Result<(), ApiError> {
        let record = self.record(|| Command::Release { conn });
        let out = match self.lookup(conn) {
            Some(_) => {
                self.retained.release(conn);
                self.touch(conn.index());
                Ok(())
            }
            None => Err(ApiError::UnknownConnection),
        };
        self.recorded(None, record, out)
    }

    /// Reads the next contiguous bytes of a stream (at most `max_len`), as soon as they exist.
    pub fn read(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        max_len: usize,
    ) -> Result<Read, ApiError> {
        self.read_unit(conn, stream, max_len as u64, ReadUnit::Contiguous)
    }

    /// Reads a whole message: [`Read::Pending`] until it is complete, then all of it as one
    /// [`Read::Data`]. Errs with [`ApiError::MessageTooLong`] past `max_len` bytes.
    pub fn read_message(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        max_len: u64,
    ) -> Result<Read, ApiError> {
        self.read_unit(conn, stream, max_len, ReadUnit::Message)
    }

    /// Closes a connection with an application code and reason; the peer is told.
    pub fn close(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        code: u64,
        reason: Reason,
    ) -> Result<(), ApiError> {
        let record = self.record(|| Command::Close {
            conn,
            code,
            reason: reason.clone(),
        });
        let out = self.with_conn(conn, |c| {
            c.close(now, code, reason);
            Ok(())
        });
        self.recorded(Some(now), record, out)
    }

    /// Forwards stream `stream` of `from` (one the peer sends) to a new stream on each
    /// connection of `to`, with the same label and what is left of its total length,
    /// fragment by fragment as it arrives (spec §8, Piping). Piping starts at the stream's read
    /// offset: the application may read a header first and pipe the rest. With
    /// [`LocalRead::Keep`] the application keeps reading the stream too.
    /// [`Event::PipeFinished`] or [`Event::PipeFailed`] ends it; [`Endpoint::pipe_stats`]
    /// says how it goes.
    pub fn pipe(
        &mut self,
        from: ConnectionHandle,
        stream: StreamId,
        to: &[ConnectionHandle],
        local: LocalRead,
    ) -> Result<PipeId, ApiError> {
        let record = self.record(|| Command::Pipe {
            from,
            stream,
            to: to.to_vec(),
            local,
        });
        let out = self.start_pipe(from, stream, to, local);
        self.recorded(None, record, out)
    }

    fn connect_any(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        server: Option<PublicKey>,
        congestion: Option<CongestionAlgorithm>,
    ) -> Result<ConnectionHandle, ApiError> {
        let record = self.record(|| Command::Connect {
            remote,
            server,
            congestion: congestion.clone(),
        });
        let cc = congestion.unwrap_or_else(|| self.config.congestion.clone());
        let out = self.open_connection(now, remote, cc, server);
        self.recorded(Some(now), record, out)
    }

    fn message(
        &mut self,
        conn: ConnectionHandle,
        label: Option<Label>,
        data: Bytes,
        digest: MessageDigest,
    ) -> Result<StreamId, ApiError> {
        let record = self.record(|| Command::SendMessage {
            conn,
            label: label.clone(),
            data: data.clone(),
            digest,
        });
        let len = data.len() as u64;
        let most = self.most_buffered();
        let out = self.budgeted_write(conn, len, |c, room| {
            // Refusals first: a caller retrying after WouldBlock should not pay for the
            // hash twice.
            message_fits(c, len, room, most)?;
            let header = StreamHeader {
                label,
                total_len: None,
                digest: match digest {
                    MessageDigest::None => None,
                    MessageDigest::Attached => Some(Digest::of(&data)),
                },
            };
            c.send_message(header, data)
        });
        self.recorded(None, record, out)
    }

    fn read_unit(
        &mut self,
        conn: ConnectionHandle,
        stream: StreamId,
        max_len: u64,
        unit: ReadUnit,
    ) -> Result<Read, ApiError> {
        let record = self.record(|| Command::Read {
            conn,
            stream,
            max_len,
            unit,
        });
        let advise = self.config.advise_buffer;
        let out = self.with_conn_then(
            conn,
            |c| {
                c.take_stream(stream);
                match unit {
                    ReadUnit::Contiguous => c.read(stream, usize::try_from(max_len).unwrap_or(usize::MAX)),
                    ReadUnit::Message => c.read_message(stream, max_len, advise),
                }
            },
            Self::touch_fresh,
        );
        self.recorded(None, record, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same calls, made once through the typed methods and once as values: each
    /// answers the same and the two traces are the same text.
    #[test]
    fn typed_methods_and_command_values_are_one_vocabulary() {
        let config = Config::default();
        let mut typed = Endpoint::new_traced(config.clone(), 5);
        let mut valued = Endpoint::new_traced(config, 5);
        let now = Instant::from_micros(1_000);
        let remote: SocketAddr = "10.0.0.2:9000".parse().unwrap();
        let c = typed.connect(now, remote).unwrap();
        let done = valued.command(
            now,
            Command::Connect {
                remote,
                server: None,
                congestion: None,
            },
        );
        assert_eq!(done, Ok(Done::Conn(c)));
        let s = StreamId(0);
        let data = Bytes::from_static(b"hello");
        assert_eq!(
            typed.write(c, s, data.clone()).map(Done::Taken),
            valued.command(
                now,
                Command::Write {
                    conn: c,
                    stream: s,
                    data
                }
            )
        );
        assert_eq!(
            typed.read_message(c, s, 9).map(Done::Read),
            valued.command(
                now,
                Command::Read {
                    conn: c,
                    stream: s,
                    max_len: 9,
                    unit: ReadUnit::Message,
                }
            )
        );
        let later = Instant::from_micros(2_000);
        assert_eq!(
            typed.close(later, c, 7, Reason::default()).map(|()| Done::Unit),
            valued.command(
                later,
                Command::Close {
                    conn: c,
                    code: 7,
                    reason: Reason::default(),
                }
            )
        );
        let trace = typed.take_trace();
        assert!(trace.contains("2000 close #0 7"), "{trace}");
        assert_eq!(trace, valued.take_trace());
    }

    /// A message read that finds nothing to take changes nothing, so the connection is not
    /// offered a turn to send for it; one that takes a message is.
    #[test]
    fn a_message_read_that_finds_nothing_leaves_the_connection_alone() {
        let (mut net, c) = super::super::harness::Net::connected();
        let s = net.eps[1].connections().next().unwrap();
        assert!(net.eps[1].ready.is_empty());
        assert_eq!(net.eps[1].next_message(s, 100), Ok(None));
        assert!(
            net.eps[1].ready.is_empty(),
            "nothing to send for a read of nothing"
        );
        net.eps[0]
            .send_message(c, None, Bytes::from_static(b"hi"))
            .unwrap();
        net.run_until(net.now + crate::time::Duration::from_micros(1));
        let (_, read) = net.eps[1].next_message(s, 100).unwrap().expect("the message");
        assert!(matches!(read, Read::Data { bytes, .. } if bytes == "hi"));
        assert_eq!(
            net.eps[1].ready.len(),
            1,
            "a read that took something is a change"
        );
    }

    /// A message read reserves a large message's announced length once two pieces came,
    /// as far as the connection's receive window allows beside what the other messages
    /// being gathered hold unfilled: one growth of its buffer, not one per doubling, and a
    /// peer announcing lengths it does not send pins at most a window more than arrived.
    #[test]
    fn a_message_read_reserves_the_announced_length_within_the_window() {
        let (mut net, c) = super::super::harness::Net::connected();
        let (client, server) = (net.addrs[0], net.addrs[1]);
        let s = net.eps[1].connections().next().unwrap();
        // The client's datagrams handed over one at a time; when none may leave, the
        // server's answers go back and time moves on.
        let step = |net: &mut super::super::harness::Net| {
            let mut buf = [0u8; 1500];
            for _ in 0..1000 {
                if let Some(t) = net.eps[0].poll_transmit(net.now, &mut buf) {
                    net.eps[1].handle_datagram(net.now, client, BytesMut::from(&buf[..t.len]));
                    return;
                }
                while let Some(t) = net.eps[1].poll_transmit(net.now, &mut buf) {
                    net.eps[0].handle_datagram(net.now, server, BytesMut::from(&buf[..t.len]));
                }
                net.now += crate::time::Duration::from_micros(100);
                let now = net.now;
                net.eps.iter_mut().for_each(|ep| ep.handle_timeout(now));
            }
            panic!("the client sends nothing");
        };
        let len = 1usize << 20;
        // A message sent, then `datagrams` of the client's handed over, the server's
        // message read asking after each (so taking the stream, and gathering the rest as
        // it arrives).
        let send = |net: &mut super::super::harness::Net, fill: u8, datagrams: usize| {
            net.eps[0]
                .send_message(c, None, Bytes::from(alloc::vec![fill; len]))
                .unwrap();
            for _ in 0..datagrams {
                step(net);
                assert!(matches!(net.eps[1].next_message(s, 1 << 30), Ok(None)));
            }
            net.eps[1].lookup(s).unwrap().gathering()
        };
        let (held, room, window) = send(&mut net, 7, 2);
        assert!(held > 1_000 && held < 3_000, "two pieces: {held}");
        assert!(window >= len as u64, "the default window holds it: {window}");
        assert_eq!(held + room, len as u64, "reserved whole at the second piece");

        // A second message announced as long, beside the first still gathering: it may
        // reserve only what the window leaves beside the first's room.
        let (held, room, window) = send(&mut net, 8, 20);
        assert!(
            room <= window + held.max(4096),
            "{room} unfilled with {held} held, window {window}"
        );
        let mut whole = alloc::vec::Vec::new();
        for _ in 0..10 {
            net.run_until(net.now + crate::time::Duration::from_secs(1));
            while let Ok(Some((_, read))) = net.eps[1].next_message(s, 1 << 30) {
                if let Read::Data { bytes, .. } = read {
                    whole.push(bytes);
                }
            }
        }
        assert_eq!(whole.len(), 2, "both came whole");
        assert!(whole[0].iter().all(|&b| b == 7) && whole[0].len() == len);
        assert!(whole[1].iter().all(|&b| b == 8) && whole[1].len() == len);
    }

    /// `may_transmit` is false only when a poll for datagrams would give none at any time:
    /// once the queue of connections to send for is empty, until a call gives one a turn.
    #[test]
    fn may_transmit_says_when_a_poll_would_find_nothing() {
        let mut net = super::super::harness::Net::new(alloc::vec![Config::default(), Config::default()]);
        let server = net.addrs[1];
        let c = net.eps[0].connect(net.now, server).unwrap();
        assert!(net.eps[0].may_transmit(), "the HELLO waits");
        net.run_until(Instant::from_micros(100_000));
        assert!(!net.eps[0].may_transmit());
        let mut buf = [0u8; 1500];
        assert!(net.eps[0].poll_transmit(net.now, &mut buf).is_none());
        net.eps[0]
            .send_message(c, None, Bytes::from_static(b"hi"))
            .unwrap();
        assert!(net.eps[0].may_transmit());
        assert!(net.eps[0].poll_transmit(net.now, &mut buf).is_some());
        // A traced endpoint records every poll: it always polls.
        let traced = Endpoint::new_traced(Config::default(), 3);
        assert!(traced.may_transmit());
    }
}
