//! What a stream the application leaves unread keeps alive of the receive blocks, over
//! 127.0.0.1 (spec/protocol.md §10.3, "Age"). Two endpoints in one process: the client
//! sends, for each of `ROUNDS` rounds 50 ms apart, 1,000 bytes on a stream the server never
//! reads and 400,000 on one it reads as they come. Each unread piece is a slice of the
//! 256 KiB block the driver received its datagram into; until a sweep copies it, it keeps
//! that block alive while the read stream's traffic fills new ones. Prints the most receive
//! blocks alive at once, counted by a global allocator that counts allocations of
//! [`Inbox::BLOCK`] bytes (both endpoints'), and the blocks alive at the end.
//!
//! `cargo run --release -p weir-tokio --example unread_stream [ROUNDS]` (default 40).
//! adapters/bench/README.md, issue 35's thirty-second round, has the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use weir_driver::Inbox;
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
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(40, |n| n.parse().expect("ROUNDS: a count of rounds"));
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
    println!(
        "{rounds} rounds: {got} bytes read, {} left unread; at most {} receive blocks of 256 KiB alive at once, {} at the end",
        rounds * TRICKLE,
        PEAK.load(Ordering::Relaxed),
        LIVE.load(Ordering::Relaxed)
    );
    Ok(())
}
