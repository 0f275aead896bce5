//! Transport halves the relay reads from and writes to: plain TCP or TLS.

use std::io;

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf};
use monoio::net::TcpStream;

use crate::tls::stream::{TlsReader, TlsWriter};

/// How much a single read may add to a buffer; bounds per-read memory and keeps latency fair.
pub const READ_CHUNK: usize = 64 * 1024;

/// What a connection's first read may add, and the least any read asks for. An idle
/// connection keeps one read pending on each side, and the buffer of a pending read is held
/// by the kernel: starting small keeps an idle session's memory to a few pages.
pub const MIN_READ_CHUNK: usize = 2 * 1024;

/// The receiving side of a connection, with the size its next read asks for: doubled after a
/// read that filled what it asked for (up to [`READ_CHUNK`], for bulk results), halved after
/// one that used less than a quarter (down to [`MIN_READ_CHUNK`], as a session goes quiet).
pub struct ReadHalf {
    inner: Reader,
    chunk: usize,
}

enum Reader {
    Plain(OwnedReadHalf<TcpStream>),
    Tls(TlsReader),
}

/// The sending side of a connection.
pub enum WriteHalf {
    Plain(OwnedWriteHalf<TcpStream>),
    Tls(TlsWriter),
}

impl ReadHalf {
    /// The receiving half of a plain TCP stream.
    pub fn plain(r: OwnedReadHalf<TcpStream>) -> ReadHalf {
        ReadHalf {
            inner: Reader::Plain(r),
            chunk: MIN_READ_CHUNK,
        }
    }

    /// The receiving half of a TLS stream.
    pub fn tls(r: TlsReader) -> ReadHalf {
        ReadHalf {
            inner: Reader::Tls(r),
            chunk: MIN_READ_CHUNK,
        }
    }

    /// Appends what arrives to `buf` (up to the current chunk); `Ok(0)` is end of stream.
    pub async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let want = self.chunk;
        let n = match &mut self.inner {
            Reader::Plain(r) => read_plain(r, buf, want).await?,
            Reader::Tls(r) => r.read(buf, want).await?,
        };
        self.chunk = next_chunk(want, n);
        Ok(n)
    }
}

/// The size of the read after one that asked for `want` and got `got`.
fn next_chunk(want: usize, got: usize) -> usize {
    if got >= want {
        (want * 2).min(READ_CHUNK)
    } else if got < want / 4 {
        (want / 2).max(MIN_READ_CHUNK)
    } else {
        want
    }
}

/// Reads from any monoio reader into the spare capacity of `buf`, appending at most `chunk`
/// bytes.
pub async fn read_plain<R: AsyncReadRent>(
    r: &mut R,
    buf: &mut BytesMut,
    chunk: usize,
) -> io::Result<usize> {
    buf.reserve(chunk);
    let owned = std::mem::take(buf);
    let (len, cap) = (owned.len(), owned.capacity().min(owned.len() + chunk));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_while_they_fill_and_shrink_as_the_session_goes_quiet() {
        let mut chunk = MIN_READ_CHUNK;
        for _ in 0..10 {
            chunk = next_chunk(chunk, chunk);
        }
        assert_eq!(chunk, READ_CHUNK);
        // A read of half what was asked keeps the size.
        assert_eq!(next_chunk(READ_CHUNK, READ_CHUNK / 2), READ_CHUNK);
        for _ in 0..10 {
            chunk = next_chunk(chunk, 5);
        }
        assert_eq!(chunk, MIN_READ_CHUNK);
        assert_eq!(next_chunk(MIN_READ_CHUNK, 0), MIN_READ_CHUNK);
    }
}
