//! Two rust-libp2p swarms over weir on 127.0.0.1: ping and request-response, directly and
//! through the impairing proxy.

mod common;

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, json, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{ping, Multiaddr, StreamProtocol, Swarm, SwarmBuilder};
use weir_sim::proxy::{Impairment, Proxy};

#[derive(NetworkBehaviour)]
struct Node {
    ping: ping::Behaviour,
    echo: json::Behaviour<Vec<u8>, Vec<u8>>,
}

fn swarm() -> Swarm<Node> {
    let protocol = StreamProtocol::new("/weir-test/reverse/1");
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| Ok(weir_libp2p::Transport::new(key, common::config())?))
        .unwrap()
        .with_behaviour(|_| Node {
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(50))),
            echo: json::Behaviour::new(
                [(protocol, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            ),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// A swarm that answers every request with its bytes reversed, listening on 127.0.0.1;
/// returns its peer id and address.
async fn reverser() -> (libp2p::PeerId, Multiaddr) {
    let mut server = swarm();
    server.listen_on("/ip4/127.0.0.1/udp/0".parse().unwrap()).unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let id = *server.local_peer_id();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(NodeEvent::Echo(request_response::Event::Message {
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) = server.select_next_some().await
            {
                let mut reply = request;
                reply.reverse();
                let _ = server.behaviour_mut().echo.send_response(channel, reply);
            }
        }
    });
    (id, addr)
}

/// Sends `count` requests of `size` bytes to `addr` (whose peer is `server`) and checks
/// every reply; returns how many pings succeeded meanwhile.
async fn ask(server: libp2p::PeerId, addr: Multiaddr, count: usize, size: usize) -> usize {
    let mut client = swarm();
    client.dial(addr.with(Protocol::P2p(server))).unwrap();
    let mut sent = std::collections::HashMap::new();
    let (mut answered, mut pings) = (0, 0);
    while answered < count || pings == 0 {
        match client.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                assert_eq!(peer_id, server, "the connection proves the server's peer id");
                for i in 0..count {
                    let body: Vec<u8> = (0..size).map(|b| (b * 7 + i) as u8).collect();
                    let id = client.behaviour_mut().echo.send_request(&peer_id, body.clone());
                    sent.insert(id, body);
                }
            }
            SwarmEvent::Behaviour(NodeEvent::Echo(request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            })) => {
                let mut expected = sent.remove(&request_id).expect("a reply to a request sent once");
                expected.reverse();
                assert_eq!(response, expected);
                answered += 1;
            }
            SwarmEvent::Behaviour(NodeEvent::Echo(request_response::Event::OutboundFailure {
                error,
                ..
            })) => {
                panic!("a request failed: {error}")
            }
            SwarmEvent::Behaviour(NodeEvent::Ping(ping::Event { result, .. })) => {
                result.expect("ping over weir");
                pings += 1;
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => panic!("the dial failed: {error}"),
            SwarmEvent::ConnectionClosed { cause, .. } => panic!("the connection closed: {cause:?}"),
            _ => {}
        }
    }
    pings
}

#[tokio::test]
async fn ping_and_requests_between_two_swarms() {
    let (server, addr) = reverser().await;
    let pings = tokio::time::timeout(Duration::from_secs(30), ask(server, addr, 20, 1000))
        .await
        .expect("20 requests and a ping within the bound");
    assert!(pings >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_through_a_lossy_duplicating_reordering_path() {
    let (server, addr) = reverser().await;
    let Some(Protocol::Udp(port)) = addr.iter().nth(1) else {
        panic!("a udp address");
    };
    let path = Impairment {
        loss: 0.01,
        duplicate: 0.02,
        reorder: 0.10,
        delay: Duration::from_millis(2),
        ..Impairment::default()
    };
    let proxy = Proxy::start(([127, 0, 0, 1], port).into(), path).unwrap();
    let via = Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Udp(proxy.addr().port()));
    tokio::time::timeout(Duration::from_secs(60), ask(server, via, 40, 32 * 1024))
        .await
        .expect("40 requests of 32 KiB within the bound");
    let [there, back] = proxy.stats();
    assert!(
        there.dropped + back.dropped > 0,
        "the path lost datagrams: {there:?} {back:?}"
    );
}
