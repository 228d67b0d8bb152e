//! Accepting a connection (spec/protocol.md §7, §10.1-§10.2, §11.2): a HELLO goes through
//! the accept policy, admission (address validation with RETRY tokens, half-open limits,
//! bans; module `admission`), the budgets, and version and parameter negotiation, and
//! becomes a server connection with its answer; a client's own connection starts in
//! `open_connection`.
//!
//! Inputs: a HELLO datagram, or the application's connect. Outputs: a new connection in its
//! slot, or a stateless REJECT or RETRY queued.

use super::*;

impl Endpoint {
    pub(super) fn open_connection(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        congestion: CongestionAlgorithm,
        server: Option<PublicKey>,
    ) -> Result<ConnectionHandle, ApiError> {
        let proves = server.is_some() || self.config.peer_policy.checks();
        if proves && !self.config.versions.contains(VERSION_2) {
            return Err(ApiError::IdentityNeedsEncryption);
        }
        if self.by_cid.len() >= self.config.max_connections {
            return Err(ApiError::ConnectionLimit);
        }
        let config = self.connection_config().ok_or(ApiError::ConnectionLimit)?;
        let ids = self.new_slot();
        let (slot, cid, handle) = (ids.handle.index(), ids.cid, ids.handle);
        let conn = Connection::client(ids, now, &config, remote, congestion, &self.identity, server);
        self.conns[slot as usize] = Some(Box::new(conn));
        self.by_cid.insert(cid, slot);
        self.touch_fresh(slot);
        Ok(handle)
    }

    pub(super) fn on_hello(&mut self, now: Instant, from: SocketAddr, datagram: Bytes) {
        let len = datagram.len();
        let Ok(mut packet) = Packet::decode(datagram, None) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let PacketKind::Handshake { scid: client } = packet.header.kind else {
            return;
        };
        let version = packet.header.version;
        let Some((hello, noise)) = packet.frames().find_map(|f| match f {
            Frame::Hello(h) => Some((*h, None)),
            Frame::NoiseHello(n) => Some((n.hello.clone(), Some(*n))),
            _ => None,
        }) else {
            self.stats.dropped_unknown_connection += 1;
            return;
        };
        let key = HelloKey::new(from, client, noise.as_ref());
        if let Some(&slot) = self.by_hello.get(&key.digest) {
            // Another copy: the connection answers with the same ACCEPT.
            if let Some(conn) = self.conns[slot as usize].as_mut() {
                conn.on_datagram_len(from, len);
                conn.handle_packet(now, &self.config, from, &mut packet);
            }
            self.touch_fresh(slot);
            return;
        }
        let refuse = |reason| Reject {
            reason,
            versions: self.config.versions,
        };
        // Policy first (an endpoint that only connects out has nothing to validate), then
        // admission (spec §10), then the versions and parameters.
        if self.config.accept == AcceptPolicy::Refuse {
            return self.reject(from, client, refuse(RejectReason::REFUSED), version);
        }
        let load = Load {
            pending: self.pending,
            connections: self.by_cid.len(),
        };
        let validated = match self
            .admission
            .decide(&self.config, now, from, client, &hello.token, load)
        {
            Admission::Admit { validated } => validated,
            Admission::Reject(reason) => {
                if reason == RejectReason::INVALID_TOKEN {
                    self.stats.invalid_tokens += 1;
                }
                return self.reject(from, client, refuse(reason), version);
            }
            Admission::Retry(token) => {
                self.stats.retries_sent += 1;
                return self.push_stateless(Stateless::Retry {
                    to: from,
                    client,
                    token,
                    version,
                });
            }
            Admission::Drop(Dropped::Banned) => return self.stats.dropped_banned += 1,
            Admission::Drop(Dropped::RateLimited) => return self.stats.dropped_rate_limited += 1,
        };
        let Some(config) = self.connection_config() else {
            // Every byte of the receive budget is promised to other connections.
            return self.reject(from, client, refuse(RejectReason::AT_CAPACITY), version);
        };
        // The connection's id first: its stateless reset token goes in the ACCEPT.
        let cid = self.fresh_cid();
        let reset = Some(self.identity.reset_token(&cid.0));
        let answer = match noise {
            None => handshake::negotiate(&config, &hello, version, reset).map(ServerAnswer::V1),
            Some(n) => {
                self.stats.noise_hellos_read += 1;
                let entropy = self.entropy.child();
                handshake::accept_noise(&config, &self.identity, entropy, client, &n, reset)
                    .map(ServerAnswer::V2)
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(reject) => return self.reject(from, client, reject, version),
        };
        self.admission.admitted(from.ip());
        let ids = self.new_slot_with(cid);
        let slot = ids.handle.index();
        let mut conn = Connection::server(
            ids,
            now,
            &config,
            from,
            (client, key),
            &packet.header,
            &hello.params,
            answer,
            validated,
        );
        conn.on_datagram_len(from, len);
        self.conns[slot as usize] = Some(Box::new(conn));
        self.by_cid.insert(cid, slot);
        self.by_hello.insert(key.digest, slot);
        self.marks[slot as usize].half_open = true;
        self.pending += 1;
        self.touch_fresh(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::Net;
    use super::*;
    use crate::HandshakeError;
    use alloc::vec;

    #[test]
    fn a_client_beyond_max_connections_is_refused_at_capacity() {
        let server = Config {
            max_connections: 1,
            ..Config::default()
        };
        let mut net = Net::new(vec![server, Config::default(), Config::default()]);
        let first = net.eps[1].connect(net.now, net.addrs[0]).unwrap();
        net.run_until(Instant::ZERO + Duration::from_secs(1));
        let second = net.eps[2].connect(net.now, net.addrs[0]).unwrap();
        net.run_until(net.now + Duration::from_secs(2));
        assert!(net.events[1]
            .iter()
            .any(|e| matches!(e, Event::Connected { conn, .. } if *conn == first)));
        let refused = net.events[2].iter().any(|e| {
            matches!(e, Event::HandshakeFailed {
                conn,
                reason: HandshakeError::Rejected { reason, .. },
            } if *conn == second && *reason == RejectReason::AT_CAPACITY)
        });
        assert!(refused, "{:?}", net.events[2]);
        assert_eq!(net.eps[0].connection_count(), 1);
    }

    #[test]
    fn a_burst_of_events_taken_leaves_the_queue_small() {
        let mut ep = Endpoint::new(Config::default(), 1);
        for i in 0..10 * EVENTS_KEPT as u32 {
            let conn = ConnectionHandle::from_index(i);
            ep.events.push_back(Event::Writable { conn });
        }
        let mut taken = 0;
        while ep.poll_event().is_some() {
            taken += 1;
        }
        assert_eq!(taken, 10 * EVENTS_KEPT);
        assert!(ep.events.capacity() <= EVENTS_KEPT, "{}", ep.events.capacity());
    }
}
