//! Transport halves the relay reads from and writes to: plain TCP or TLS.

use std::io;

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf};
use monoio::net::TcpStream;

use crate::tls::stream::{TlsReader, TlsWriter};

/// How much a single read may add to a buffer; bounds per-read memory and keeps latency fair.
pub const READ_CHUNK: usize = 64 * 1024;

/// The receiving side of a connection.
pub enum ReadHalf {
    Plain(OwnedReadHalf<TcpStream>),
    Tls(TlsReader),
}

/// The sending side of a connection.
pub enum WriteHalf {
    Plain(OwnedWriteHalf<TcpStream>),
    Tls(TlsWriter),
}

impl ReadHalf {
    /// Appends what arrives to `buf` (up to [`READ_CHUNK`] bytes); `Ok(0)` is end of stream.
    pub async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(r) => read_plain(r, buf).await,
            ReadHalf::Tls(r) => r.read(buf, READ_CHUNK).await,
        }
    }
}

/// Reads from any monoio reader into the spare capacity of `buf`, appending.
pub async fn read_plain<R: AsyncReadRent>(r: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    buf.reserve(READ_CHUNK);
    let owned = std::mem::take(buf);
    let (len, cap) = (owned.len(), owned.capacity().min(owned.len() + READ_CHUNK));
    let (res, slice) = r.read(owned.slice_mut(len..cap)).await;
    *buf = slice.into_inner();
    res
}

impl WriteHalf {
    /// Writes all of `data`; the buffer is handed to the kernel without a copy on plain TCP.
    pub async fn write_all(&mut self, data: Bytes) -> io::Result<()> {
        match self {
            WriteHalf::Plain(w) => w.write_all(data).await.0.map(|_| ()),
            WriteHalf::Tls(w) => w.write_all(&data).await,
        }
    }

    /// Flushes and closes the sending direction (TLS close_notify first).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            WriteHalf::Plain(w) => w.shutdown().await,
            WriteHalf::Tls(w) => w.shutdown().await,
        }
    }
}
