//! One client connection, plain TCP or TLS, with monoio's owned-buffer I/O.
//!
//! A load generator talks in lock step (write a request, read its answer), so unlike a relay it
//! needs no split halves: the TLS state lives next to its socket and nothing is shared.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::ClientConnection;

use super::tls::TlsClient;

/// How much one read may add to a buffer.
pub const READ_CHUNK: usize = 16 * 1024;
/// Ciphertext read size; one TLS record is at most 16 KiB plus overhead.
const CIPHER_CHUNK: usize = 18 * 1024;

/// An open connection.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// Opens a TCP connection with Nagle off (requests are small and latency is what is measured).
pub async fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect_addr(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

impl Transport {
    /// Runs a TLS handshake on `tcp`. Any error means TLS could not be established.
    pub async fn start_tls(mut tcp: TcpStream, tls: &TlsClient) -> io::Result<Transport> {
        let mut conn = ClientConnection::new(tls.config.clone(), tls.name.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let cipher = handshake(&mut tcp, &mut conn).await?;
        Ok(Transport::Tls(Box::new(TlsStream {
            tcp,
            conn,
            cipher,
            out: Vec::with_capacity(CIPHER_CHUNK),
        })))
    }

    /// Writes all of `buf` and hands the buffer back for reuse.
    pub async fn write_all(&mut self, buf: BytesMut) -> (io::Result<()>, BytesMut) {
        match self {
            Transport::Plain(tcp) => {
                let (res, buf) = tcp.write_all(buf).await;
                (res.map(|_| ()), buf)
            }
            Transport::Tls(tls) => {
                let res = tls.write_all(&buf).await;
                (res, buf)
            }
        }
    }

    /// Appends what arrives to `buf` (up to [`READ_CHUNK`] bytes); `Ok(0)` is end of stream.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => read_into(tcp, buf, READ_CHUNK).await,
            Transport::Tls(tls) => tls.read(buf).await,
        }
    }

    /// Closes the connection; TLS sends close_notify first. Errors are of no interest here.
    pub async fn close(self) {
        match self {
            Transport::Plain(mut tcp) => {
                let _ = tcp.shutdown().await;
            }
            Transport::Tls(mut tls) => {
                tls.conn.send_close_notify();
                let _ = tls.flush_records().await;
                let _ = tls.tcp.shutdown().await;
            }
        }
    }
}

/// Reads from a monoio reader into the spare capacity of `buf`, appending at most `chunk` bytes.
async fn read_into<R: AsyncReadRent>(
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

/// Drives the handshake to completion; returns ciphertext that arrived after it.
async fn handshake(tcp: &mut TcpStream, conn: &mut ClientConnection) -> io::Result<BytesMut> {
    let mut cipher = BytesMut::with_capacity(CIPHER_CHUNK);
    let mut out = Vec::with_capacity(4096);
    loop {
        while conn.wants_write() {
            out.clear();
            conn.write_tls(&mut out)?;
            let (res, back) = tcp.write_all(out).await;
            out = back;
            res?;
        }
        if !conn.is_handshaking() {
            return Ok(cipher);
        }
        if cipher.is_empty() && read_into(tcp, &mut cipher, CIPHER_CHUNK).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection during the TLS handshake",
            ));
        }
        let consumed = conn.read_tls(&mut &cipher[..])?;
        cipher.advance(consumed);
        if let Err(e) = conn.process_new_packets() {
            // Send the alert rustls queued, so the server logs why, then give up.
            out.clear();
            if conn.write_tls(&mut out).is_ok() && !out.is_empty() {
                let _ = tcp.write_all(out).await;
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

/// A TLS client session over its TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    cipher: BytesMut,
    out: Vec<u8>,
}

impl TlsStream {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                Ok(plain) => {
                    let n = plain.len().min(READ_CHUNK);
                    buf.extend_from_slice(&plain[..n]);
                    reader.consume(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.cipher.is_empty()
                && read_into(&mut self.tcp, &mut self.cipher, CIPHER_CHUNK).await? == 0
            {
                return Ok(0);
            }
            let consumed = self.conn.read_tls(&mut &self.cipher[..])?;
            self.cipher.advance(consumed);
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }

    async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        loop {
            let n = self.conn.writer().write(data)?;
            data = &data[n..];
            self.flush_records().await?;
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    async fn flush_records(&mut self) -> io::Result<()> {
        self.out.clear();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.out)?;
        }
        if !self.out.is_empty() {
            let (res, back) = self.tcp.write_all(std::mem::take(&mut self.out)).await;
            self.out = back;
            res?;
        }
        Ok(())
    }
}
