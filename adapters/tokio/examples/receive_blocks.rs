//! What the application's reads and a relay's pipes keep alive of the receive blocks, over
//! 127.0.0.1: each received datagram is a slice of a 256 KiB block its driver received it
//! into, and a piece held as a slice keeps its whole block alive (spec/protocol.md §10.3).
//! Prints the most blocks alive at once, counted by a global allocator that counts
//! allocations of [`Inbox::BLOCK`] bytes (every endpoint's in the process), and the blocks
//! alive at the end. adapters/bench/rounds.md, issue 35's thirty-second round, has the
//! figures.
//!
//! - `cargo run --release -p weir-tokio --example receive_blocks unread [ROUNDS]` (default
//!   40): for each of `ROUNDS` rounds 50 ms apart, 1,000 bytes on a stream the server never
//!   reads and 400,000 on one it reads as they come (§10.3, "Age": until a sweep copies an
//!   unread piece, it keeps its block alive while the read stream's traffic fills new ones).
//! - `cargo run --release -p weir-tokio --example receive_blocks pipe [LOSS_PERCENT]`
//!   (default 0): 16 MiB from a sender through a relay's pipe to a receiver, the relay's
//!   onward path 20 ms each way and losing that share of datagrams (weir-sim's proxy). The
//!   relay holds each piece it forwards, a slice of its block, until the receiver
//!   acknowledges it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use weir_driver::Inbox;
use weir_sim::proxy::{Impairment, Proxy};
use weir_tokio::{Config, Endpoint, Error};

struct Blocks;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; blocks are only counted.
unsafe impl GlobalAlloc for Blocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: the caller's promises about `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() == Inbox::BLOCK {
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
        // SAFETY: as above; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count(layout: Layout) {
    if layout.size() == Inbox::BLOCK {
        let live = LIVE.fetch_add(1, Ordering::Relaxed) + 1;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Blocks = Blocks;

const TRICKLE: usize = 1_000;
const BULK: usize = 400_000;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("unread") => unread(args.next().map_or(40, |n| n.parse().expect("ROUNDS: a count"))).await,
        Some("pipe") => {
            pipe(
                args.next()
                    .map_or(0.0, |l| l.parse().expect("LOSS_PERCENT: a number")),
            )
            .await
        }
        _ => {
            eprintln!("usage: receive_blocks unread [ROUNDS] | pipe [LOSS_PERCENT]");
            std::process::exit(2);
        }
    }
}

fn report(what: &str) {
    println!(
        "{what}: at most {} receive blocks of 256 KiB alive at once, {} at the end",
        PEAK.load(Ordering::Relaxed),
        LIVE.load(Ordering::Relaxed)
    );
}

async fn unread(rounds: usize) -> Result<(), Error> {
    let server = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let addr = server.local_addr();
    let reader = tokio::spawn(async move {
        let conn = server.accept().await?;
        // The client opens the unread stream first: kept, never read.
        let unread = conn.accept_stream().await?;
        let mut read = conn.accept_stream().await?;
        let mut got = 0;
        while got < rounds * BULK {
            match read.read_chunk(usize::MAX).await? {
                Some(chunk) => got += chunk.len(),
                None => break,
            }
        }
        Ok::<_, Error>((server, conn, unread, got))
    });
    let client = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let conn = client.connect(addr).await?;
    let mut trickle = conn.open_stream(None).await?;
    let mut bulk = conn.open_stream(None).await?;
    let (small, large) = (Bytes::from(vec![1u8; TRICKLE]), Bytes::from(vec![2u8; BULK]));
    for _ in 0..rounds {
        trickle.write_all_chunk(small.clone()).await?;
        bulk.write_all_chunk(large.clone()).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_server, _conn, _unread, got) = reader.await.expect("the reader's task")?;
    report(&format!(
        "{rounds} rounds, {got} bytes read, {} left unread",
        rounds * TRICKLE
    ));
    Ok(())
}

const PIPED: usize = 16 << 20;

async fn pipe(loss_percent: f64) -> Result<(), Error> {
    let receiver = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let relay = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let sender = Endpoint::bind("127.0.0.1:0".parse().unwrap(), Config::default())?;
    let impairment = Impairment {
        delay: Duration::from_millis(20),
        loss: loss_percent / 100.0,
        seed: 1,
        ..Impairment::default()
    };
    let proxy = Proxy::start(receiver.local_addr(), impairment).expect("the proxy");
    let onward = relay.connect(proxy.addr()).await?;
    let to_relay = sender.connect(relay.local_addr()).await?;
    let mut out = to_relay.open_stream(None).await?;
    let writer = tokio::spawn(async move {
        out.write_all_chunk(Bytes::from(vec![3u8; PIPED])).await?;
        out.finish().await?;
        Ok::<_, Error>((sender, to_relay))
    });
    let from_sender = relay.accept().await?;
    let stream = from_sender.accept_stream().await?;
    let pipe = relay.pipe(stream, &[&onward]).await?;
    let at_receiver = receiver.accept().await?;
    let got = at_receiver
        .accept_stream()
        .await?
        .read_to_end(PIPED as u64)
        .await?;
    let stats = pipe.wait().await?;
    let _ = writer.await.expect("the writer's task")?;
    report(&format!(
        "{} bytes piped, {} received, {loss_percent}% lost onward",
        stats.bytes_forwarded,
        got.len()
    ));
    Ok(())
}
