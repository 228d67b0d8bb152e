//! quinn 0.11 with rustls and ring (AES-256-GCM, rustls' first choice as it is weir's), one
//! connection and one bidirectional stream with length-prefixed messages; datagrams of 1452
//! bytes from the first packet on (quinn's initial MTU raised to what its discovery finds
//! on loopback).
//! Messages are handed to quinn as `Bytes` (no copy), and the bulk message is read chunk
//! by chunk as quinn received it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quinn::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{localhost, pair, runtime, Route};
use crate::workload::{drive, serve, Link, Metric, Placement, Workload};

struct QuinnLink {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl QuinnLink {
    async fn len(&mut self) -> io::Result<usize> {
        let mut prefix = [0; 4];
        self.recv
            .read_exact(&mut prefix)
            .await
            .map_err(io::Error::other)?;
        Ok(u32::from_le_bytes(prefix) as usize)
    }
}

impl Link for QuinnLink {
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        let len = u32::try_from(msg.len()).map_err(|_| io::Error::other("a message over 4 GiB"))?;
        let mut parts = [Bytes::copy_from_slice(&len.to_le_bytes()), msg];
        self.send
            .write_all_chunks(&mut parts)
            .await
            .map_err(io::Error::other)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        let len = self.len().await?;
        let mut msg = BytesMut::zeroed(len);
        self.recv.read_exact(&mut msg).await.map_err(io::Error::other)?;
        Ok(msg.freeze())
    }

    async fn recv_each(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let len = self.len().await?;
        let mut left = len;
        while left > 0 {
            let chunk = self
                .recv
                .read_chunk(left, true)
                .await
                .map_err(io::Error::other)?
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            each(&chunk.bytes);
            left -= chunk.bytes.len();
        }
        Ok(len as u64)
    }
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.initial_mtu(1452);
    Arc::new(t)
}

pub(super) fn run(workload: Workload, placement: Placement) -> io::Result<Vec<(Metric, f64)>> {
    pair(
        placement,
        move |ready| {
            runtime()?.block_on(async move {
                let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
                    .map_err(io::Error::other)?;
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
                let mut config = quinn::ServerConfig::with_single_cert(vec![cert.cert.der().clone()], key)
                    .map_err(io::Error::other)?;
                config.transport_config(transport());
                let endpoint = quinn::Endpoint::server(config, localhost())?;
                let _ = ready.send((endpoint.local_addr()?, cert.cert.der().clone()));
                let incoming = endpoint.accept().await.ok_or(io::ErrorKind::NotConnected)?;
                let conn = incoming.await?;
                let (send, recv) = conn.accept_bi().await?;
                let mut link = QuinnLink { send, recv };
                serve(workload, &mut link).await?;
                let _ = link.send.finish();
                conn.closed().await;
                Ok(())
            })
        },
        move |(server, cert): (SocketAddr, CertificateDer<'static>)| {
            let route = Route::to(server, workload)?;
            runtime()?.block_on(async move {
                let mut roots = quinn::rustls::RootCertStore::empty();
                roots.add(cert).map_err(io::Error::other)?;
                let mut config =
                    quinn::ClientConfig::with_root_certificates(Arc::new(roots)).map_err(io::Error::other)?;
                config.transport_config(transport());
                let mut endpoint = quinn::Endpoint::client(localhost())?;
                endpoint.set_default_client_config(config);
                let conn = endpoint
                    .connect(route.addr(), "localhost")
                    .map_err(io::Error::other)?
                    .await?;
                let (send, recv) = conn.open_bi().await?;
                let mut link = QuinnLink { send, recv };
                let figures = drive(workload, &mut link).await?;
                conn.close(0u32.into(), b"done");
                endpoint.wait_idle().await;
                Ok(figures)
            })
        },
    )
}
