//! Work per datagram: the costliest datagrams, and send budgets.

use super::*;

/// What one `handle_datagram` call cost: allocations made, and heap bytes still held after.
fn cost_of(sim: &mut Sim, server: NodeId, from: SocketAddr, datagram: Bytes) -> (u64, i64) {
    let now = sim.now();
    let (made, held) = (allocations(), live());
    sim.endpoint(server).handle_datagram(now, from, datagram.into());
    (allocations() - made, live() - held)
}

#[test]
fn the_costliest_datagrams_cost_work_bounded_by_the_frames_they_carry() {
    let mut arena = Arena::new(server_config());
    arena.serve = 4 * MIB;
    let server = arena.server;
    let mut peer = RawPeer::new(&mut arena.sim, outsider(1), 100);
    let mut all = Vec::new();
    let report = arena.run(
        Duration::from_secs(30),
        Duration::from_millis(20),
        |sim, _| {
            peer.greet(sim, server);
            peer.poll(sim, server);
            // An honest receiver, so the server keeps sending.
            for pn in std::mem::take(&mut peer.received) {
                all.push(pn);
                let ack = Ack {
                    ranges: AckRanges::single(pn, pn).unwrap(),
                    ack_delay: 0,
                    one_way_delay: 0,
                };
                peer.send(sim, server, &[Frame::Ack(ack)]);
            }
            all.len() < 400
        },
        ignore,
    );
    assert!(report.done.is_some() && peer.closed.is_none());
    let sim = &mut arena.sim;
    // 1. An ACK of 64 ranges (the most a frame carries): every other packet received.
    all.sort_unstable();
    all.dedup();
    let mut picked: Vec<u64> = Vec::new();
    for &pn in all.iter().rev() {
        if picked.last().is_none_or(|&p| p > pn + 1) && picked.len() < 64 {
            picked.push(pn);
        }
    }
    let ranges = AckRanges::new(picked.iter().map(|&pn| AckRange {
        smallest: pn,
        largest: pn,
    }))
    .unwrap();
    let ack = peer
        .packet(
            &[Frame::Ack(Ack {
                ranges,
                ack_delay: 0,
                one_way_delay: 0,
            })],
            0,
        )
        .unwrap();
    // 2. A one-byte STREAM frame past a gap on each of 100 new streams (each opens a stream
    // and holds a piece).
    let opening: Vec<Frame> = (0..100)
        .map(|i| {
            let mut f = on_stream_0(1, b"x", None);
            f.id = StreamId::new(Side::Client, i);
            Frame::Stream(f)
        })
        .collect();
    let opening = peer.packet(&opening, 0).unwrap();
    // 3. As many one-byte pieces with gaps between them as fit, on one stream.
    let pieces: Vec<Frame> = (0..130)
        .map(|i| Frame::Stream(on_stream_0(1000 + 2 * i, b"y", None)))
        .collect();
    let pieces = peer.packet(&pieces, 0).unwrap();
    let mut rows = Vec::new();
    for (name, frames, datagram) in [
        ("ACK of 64 ranges", 1, ack),
        ("100 streams opened", 100, opening),
        ("130 gapped pieces", 130, pieces),
    ] {
        let len = datagram.len();
        let (allocations, held) = cost_of(sim, server, peer.addr, datagram);
        println!(
            "work per datagram: {name} ({len} bytes): {allocations} allocations, {held} bytes held after"
        );
        rows.push((name, frames, allocations));
        // A handful of allocations per frame, whatever the frames are; what stays is the
        // state of the streams opened: 412 bytes each with its one-byte piece (964 while a
        // stream kept a place for both halves, 516 with its whole header inline; the
        // receive budget charges each 2 KiB, `STREAM_COST`).
        assert!(allocations <= 8 + 4 * frames, "{name}: {allocations}");
        assert!(held <= 480 * frames as i64, "{name}: {held}");
    }
    assert!(
        sim.endpoint_ref(server).load().connections == 2,
        "no connection closed: {rows:?}"
    );
}

#[test]
fn send_buffers_add_up_to_the_endpoint_budget_and_a_reader_is_never_starved() {
    let budget = 2 * MIB;
    let mut arena = Arena::new(Config {
        send_buffer_total: budget,
        ..server_config()
    });
    let config = arena.config();
    // The server's application writes 8 MiB to each of three weir clients that never read
    // and to one that reads all it gets.
    arena.serve = 8 * MIB;
    let server = arena.server;
    let idlers: Vec<NodeId> = (0..3).map(|_| arena.sim.add_node(peer_config())).collect();
    let reader = arena.sim.add_node(peer_config());
    for &n in idlers.iter().chain([&reader]) {
        arena.sim.link(n, server, LinkConfig::default());
    }
    let mut started = false;
    let read = std::cell::Cell::new(0u64);
    let report = arena.run(
        Duration::from_secs(60),
        Duration::from_millis(100),
        |sim, now| {
            if !started && now >= Instant::from_micros(100_000) {
                for &n in idlers.iter().chain([&reader]) {
                    sim.connect(n, server);
                }
                started = true;
            }
            read.get() < 8 * MIB
        },
        |sim, node, event| {
            if let (true, Event::StreamReadable { conn, stream }) = (node == reader, event) {
                while let Ok(Read::Data { bytes, .. }) = sim.endpoint(reader).read(conn, stream, usize::MAX) {
                    read.set(read.get() + bytes.len() as u64);
                }
            }
        },
    );
    let read = read.get();
    assert_survived("send budget", &report, bound(&config, 0, 5));
    let floors = 5 * 64 * KIB;
    println!(
        "send budget: {} bytes unacknowledged at peak; the reader read {read}",
        report.peak.bytes_unacknowledged
    );
    assert!(
        report.peak.bytes_unacknowledged <= budget + floors,
        "{:?}",
        report.peak
    );
    // The idlers hold the budget; the reader still got everything, on its floor and the
    // room its own acknowledgements free.
    assert_eq!(read, 8 * MIB);
}
