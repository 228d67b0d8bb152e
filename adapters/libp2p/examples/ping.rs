//! Two rust-libp2p nodes over weir: libp2p's ping, and a lookup service on libp2p's
//! request-response (JSON).
//!
//! ```text
//! cargo run -p weir-libp2p --example ping                 # both nodes in this process
//! cargo run -p weir-libp2p --example ping -- listen /ip4/127.0.0.1/udp/4433
//! cargo run -p weir-libp2p --example ping -- dial /ip4/127.0.0.1/udp/4433/p2p/<peer id>
//! ```
//!
//! The listener prints the address to dial, with its peer id; the dialer pings, asks for
//! three keys, prints the answers and exits.

use std::error::Error;

/// Any failure, printed by `main`.
type Failure = Box<dyn Error + Send + Sync>;
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, json, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{ping, Multiaddr, StreamProtocol, Swarm, SwarmBuilder};
use serde::{Deserialize, Serialize};

#[derive(NetworkBehaviour)]
struct Node {
    ping: ping::Behaviour,
    lookup: json::Behaviour<Lookup, Found>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Lookup {
    key: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Found {
    value: Option<String>,
}

fn node() -> Result<Swarm<Node>, Failure> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| Ok(weir_libp2p::Transport::new(key, weir_libp2p::Config::default())?))?
        .with_behaviour(|_| Node {
            ping: ping::Behaviour::default(),
            lookup: json::Behaviour::new(
                [(
                    StreamProtocol::new("/weir-example/lookup/1"),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default(),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Answers lookups until stopped; `ready` gets the address to dial once it listens.
async fn listen(
    at: Multiaddr,
    ready: Option<tokio::sync::oneshot::Sender<Multiaddr>>,
) -> Result<(), Failure> {
    let mut swarm = node()?;
    swarm.listen_on(at)?;
    let mut ready = ready;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address.with(Protocol::P2p(*swarm.local_peer_id()));
                println!("listening on {full}");
                if let Some(ready) = ready.take() {
                    let _ = ready.send(full);
                }
            }
            SwarmEvent::Behaviour(NodeEvent::Lookup(request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            })) => {
                let value = match request.key.as_str() {
                    "weir" => Some("a transport for peer-to-peer systems".to_owned()),
                    "libp2p" => Some("a networking stack for peer-to-peer applications".to_owned()),
                    _ => None,
                };
                println!("{peer} asked for {:?}", request.key);
                let _ = swarm
                    .behaviour_mut()
                    .lookup
                    .send_response(channel, Found { value });
            }
            _ => {}
        }
    }
}

/// Pings `addr`, asks it for three keys and returns once every answer and a ping came.
async fn dial(addr: Multiaddr) -> Result<(), Failure> {
    let mut swarm = node()?;
    swarm.dial(addr)?;
    let (mut answers, mut pinged) = (0, false);
    while answers < 3 || !pinged {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                println!("connected to {peer_id} at {}", endpoint.get_remote_address());
                for key in ["weir", "libp2p", "gopher"] {
                    let lookup = Lookup { key: key.to_owned() };
                    swarm.behaviour_mut().lookup.send_request(&peer_id, lookup);
                }
            }
            SwarmEvent::Behaviour(NodeEvent::Ping(ping::Event { result, .. })) => {
                println!("ping: {:?}", result?);
                pinged = true;
            }
            SwarmEvent::Behaviour(NodeEvent::Lookup(request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            })) => {
                println!("answer: {:?}", response.value);
                answers += 1;
            }
            SwarmEvent::Behaviour(NodeEvent::Lookup(request_response::Event::OutboundFailure {
                error,
                ..
            })) => {
                return Err(error.into());
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => return Err(error.into()),
            _ => {}
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(listen("/ip4/127.0.0.1/udp/0".parse()?, Some(tx)));
            dial(rx.await?).await
        }
        ["listen", at] => listen(at.parse()?, None).await,
        ["dial", addr] => dial(addr.parse()?).await,
        _ => Err("usage: ping [listen <multiaddr> | dial <multiaddr>]".into()),
    }
}
