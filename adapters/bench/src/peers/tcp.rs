//! tokio TCP with length-prefixed messages (a 4-byte little-endian length, then the bytes),
//! `TCP_NODELAY`, and 64 KiB read and write buffers, as a careful user writes it.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::{localhost, pair, runtime};
use crate::workload::{drive, serve, Link, Metric, Placement, Workload};

const BUFFER: usize = 64 << 10;

/// Length-prefixed messages over a byte stream.
pub(super) struct Framed<R, W> {
    pub(super) read: R,
    pub(super) write: W,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Framed<R, W> {
    async fn len(&mut self) -> io::Result<usize> {
        let mut prefix = [0; 4];
        self.read.read_exact(&mut prefix).await?;
        Ok(u32::from_le_bytes(prefix) as usize)
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Link for Framed<R, W> {
    async fn send(&mut self, msg: Bytes) -> io::Result<()> {
        let len = u32::try_from(msg.len()).map_err(|_| io::Error::other("a message over 4 GiB"))?;
        self.write.write_all(&len.to_le_bytes()).await?;
        self.write.write_all(&msg).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.write.flush().await
    }

    async fn recv(&mut self) -> io::Result<Bytes> {
        let len = self.len().await?;
        let mut msg = BytesMut::zeroed(len);
        self.read.read_exact(&mut msg).await?;
        Ok(msg.freeze())
    }

    async fn recv_each(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let len = self.len().await?;
        let mut left = len;
        let mut buf = vec![0; BUFFER];
        while left > 0 {
            let want = left.min(BUFFER);
            let n = self.read.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            each(&buf[..n]);
            left -= n;
        }
        Ok(len as u64)
    }
}

type TcpLink = Framed<BufReader<tokio::net::tcp::OwnedReadHalf>, BufWriter<tokio::net::tcp::OwnedWriteHalf>>;

fn framed(stream: TcpStream) -> io::Result<TcpLink> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    Ok(Framed {
        read: BufReader::with_capacity(BUFFER, read),
        write: BufWriter::with_capacity(BUFFER, write),
    })
}

pub(super) fn run(workload: Workload, placement: Placement) -> io::Result<Vec<(Metric, f64)>> {
    pair(
        placement,
        move |ready| {
            runtime()?.block_on(async move {
                let listener = TcpListener::bind(localhost()).await?;
                let _ = ready.send(listener.local_addr()?);
                let mut link = framed(listener.accept().await?.0)?;
                serve(workload, &mut link).await
            })
        },
        move |server| {
            runtime()?.block_on(async move {
                let mut link = framed(TcpStream::connect(server).await?)?;
                drive(workload, &mut link).await
            })
        },
    )
}
