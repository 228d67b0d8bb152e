//! rust-libp2p 0.56 without a swarm: one connection through a libp2p `Transport`, and one
//! substream of its `StreamMuxer` carrying length-prefixed messages (TCP's framing, with
//! the same 64 KiB buffers), as a libp2p protocol's handler sees it. Two transports: weir
//! (`weir-libp2p`) and libp2p's own QUIC (`libp2p-quic`, quinn underneath), so the rows
//! compare the two under one API.
//!
//! A task of each side's runtime polls the muxer for as long as the workload runs, as a
//! swarm's connection task does.

use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use libp2p::core::muxing::{StreamMuxer, StreamMuxerExt};
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportEvent};
use libp2p::core::{Endpoint, Transport};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::oneshot;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::tcp::Framed;
use super::{pair, runtime};
use crate::workload::{drive, serve, Metric, Placement, Workload};

const BUFFER: usize = 64 << 10;

/// Which transport is under the swarm API.
#[derive(Clone, Copy)]
pub(super) enum Under {
    Weir,
    Quic,
}

impl Under {
    fn listen_addr(self) -> Multiaddr {
        match self {
            Under::Weir => "/ip4/127.0.0.1/udp/0",
            Under::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        }
        .parse()
        .expect("a valid multiaddr")
    }
}

pub(super) fn run(under: Under, workload: Workload, placement: Placement) -> io::Result<Vec<(Metric, f64)>> {
    match under {
        Under::Weir => run_with(workload, placement, under, |key| {
            weir_libp2p::Transport::new(key, weir_libp2p::Config::default()).map_err(io::Error::other)
        }),
        Under::Quic => run_with(workload, placement, under, |key| {
            Ok(libp2p::quic::tokio::Transport::new(libp2p::quic::Config::new(
                key,
            )))
        }),
    }
}

fn run_with<T, M>(
    workload: Workload,
    placement: Placement,
    under: Under,
    transport: fn(&Keypair) -> io::Result<T>,
) -> io::Result<Vec<(Metric, f64)>>
where
    T: Transport<Output = (PeerId, M)> + Unpin + 'static,
    T::Error: Send + Sync + 'static,
    M: StreamMuxer + Unpin + 'static,
    M::Substream: Unpin + 'static,
    M::Error: std::fmt::Debug,
{
    pair(
        placement,
        move |ready| {
            runtime()?.block_on(async move {
                let mut t = transport(&Keypair::generate_ed25519())?;
                t.listen_on(ListenerId::next(), under.listen_addr())
                    .map_err(io::Error::other)?;
                let upgrade = loop {
                    match poll_fn(|cx| Pin::new(&mut t).poll(cx)).await {
                        TransportEvent::NewAddress { listen_addr, .. } => {
                            let _ = ready.send(listen_addr);
                        }
                        TransportEvent::Incoming { upgrade, .. } => break upgrade,
                        _ => {}
                    }
                };
                let (_, mut muxer) = upgrade.await.map_err(io::Error::other)?;
                let substream = poll_fn(|cx| muxer.poll_inbound_unpin(cx))
                    .await
                    .map_err(|e| io::Error::other(format!("{e:?}")))?;
                let local = tokio::task::LocalSet::new();
                local
                    .run_until(async move {
                        let (_close, closed) = oneshot::channel();
                        let driver = tokio::task::spawn_local(keep_polling(muxer, closed));
                        let mut link = framed(substream);
                        serve(workload, &mut link).await?;
                        // Ends our side once the client has every byte (weir's close waits
                        // for the acknowledgement), then gives the client's close a moment:
                        // the figures are the client's, taken already.
                        let _ = link.write.shutdown().await;
                        let _ = tokio::time::timeout(Duration::from_secs(1), driver).await;
                        Ok(())
                    })
                    .await
            })
        },
        move |addr: Multiaddr| {
            runtime()?.block_on(async move {
                let mut t = transport(&Keypair::generate_ed25519())?;
                let opts = DialOpts {
                    role: Endpoint::Dialer,
                    port_use: PortUse::New,
                };
                let dial = t.dial(addr, opts).map_err(io::Error::other)?;
                let (_, mut muxer) = dial.await.map_err(io::Error::other)?;
                let substream = poll_fn(|cx| muxer.poll_outbound_unpin(cx))
                    .await
                    .map_err(|e| io::Error::other(format!("{e:?}")))?;
                let local = tokio::task::LocalSet::new();
                local
                    .run_until(async move {
                        let (close, closed) = oneshot::channel();
                        let driver = tokio::task::spawn_local(keep_polling(muxer, closed));
                        let mut link = framed(substream);
                        let figures = drive(workload, &mut link).await?;
                        let _ = close.send(());
                        let _ = driver.await;
                        // Lets the endpoint's task send the close before the runtime goes.
                        tokio::task::yield_now().await;
                        Ok(figures)
                    })
                    .await
            })
        },
    )
}

type Half<S> = tokio::io::ReadHalf<tokio_util::compat::Compat<S>>;
type WriteHalf<S> = tokio::io::WriteHalf<tokio_util::compat::Compat<S>>;

fn framed<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(
    substream: S,
) -> Framed<BufReader<Half<S>>, BufWriter<WriteHalf<S>>> {
    let (read, write) = tokio::io::split(substream.compat());
    Framed {
        read: BufReader::with_capacity(BUFFER, read),
        write: BufWriter::with_capacity(BUFFER, write),
    }
}

/// Polls the muxer (its events, and inbound substreams, dropped) until the connection ends,
/// as a swarm's connection task does, or until told to close it.
async fn keep_polling<M: StreamMuxer + Unpin>(mut muxer: M, mut close: oneshot::Receiver<()>) {
    let mut closing = false;
    poll_fn(|cx| {
        // A receiver is not polled again once it answered.
        closing = closing || Pin::new(&mut close).poll(cx).is_ready();
        if closing {
            return muxer.poll_close_unpin(cx).map(|_| ());
        }
        if let std::task::Poll::Ready(Err(_)) = muxer.poll_unpin(cx) {
            return std::task::Poll::Ready(());
        }
        while let std::task::Poll::Ready(r) = muxer.poll_inbound_unpin(cx) {
            if r.is_err() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}
