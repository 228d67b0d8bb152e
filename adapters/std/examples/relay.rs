//! weir-std: a sender, a relay that pipes what it is sent to a receiver, and the receiver,
//! on 127.0.0.1. The relay never holds the whole stream, and the sender learns when the
//! receiver has read it all, through the relay.
use bytes::Bytes;
use weir_std::{Config, Endpoint, Error};

fn main() -> Result<(), Error> {
    let any = "127.0.0.1:0".parse().unwrap();
    let (receiver, relay) = (
        Endpoint::bind(any, Config::default())?,
        Endpoint::bind(any, Config::default())?,
    );
    let sender = Endpoint::bind(any, Config::default())?;
    let next_hop = relay.connect(receiver.local_addr())?;
    let to_relay = sender.connect(relay.local_addr())?;
    // `send_message` returns once the receiver read every byte (its receipt came back
    // through the relay), so it runs on a thread of its own.
    let sending = std::thread::spawn(move || to_relay.send_message(Bytes::from(vec![7u8; 10 << 20]))); // 10 MiB
    let from = relay.accept()?;
    let pipe = relay.pipe(from.accept_stream()?, &[&next_hop])?;
    let at_receiver = receiver.accept()?;
    let got = at_receiver.recv_message()?;
    let stats = pipe.wait()?;
    sending.join().expect("the sending thread")?;
    println!(
        "{} bytes arrived, and the sender knows; the relay had at most {} in flight",
        got.len(),
        stats.in_flight_peak
    );
    Ok(())
}
