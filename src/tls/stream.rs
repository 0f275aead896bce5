//! rustls over monoio sockets, split into independent read and write halves.
//!
//! monoio's owned-buffer I/O does not fit rustls' `Read`/`Write` model directly, and the relay
//! needs both directions of a session in flight at once. Each half owns its side of the TCP
//! socket; the rustls state is shared through an `Rc<RefCell<_>>` that is never borrowed across an
//! `.await`, so the halves cannot observe each other mid-operation.

use std::cell::RefCell;
use std::io::{self, BufRead, Write};
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;
use rustls::Connection;

/// Ciphertext read size; one TLS record is at most 16 KiB plus overhead.
const CIPHER_CHUNK: usize = 18 * 1024;

/// Runs a TLS handshake to completion on `tcp`. Bytes that arrived after the handshake (the peer's
/// first application records) are returned so that the reader half can start with them.
pub async fn handshake(tcp: &mut TcpStream, conn: &mut Connection) -> io::Result<BytesMut> {
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
        if cipher.is_empty() {
            cipher.reserve(CIPHER_CHUNK);
            cipher = read_more(tcp, cipher).await?;
        }
        let consumed = conn.read_tls(&mut &cipher[..])?;
        cipher.advance(consumed);
        if let Err(e) = conn.process_new_packets() {
            // Tell the peer why (the alert is queued by rustls), then give up.
            out.clear();
            if conn.write_tls(&mut out).is_ok() && !out.is_empty() {
                let _ = tcp.write_all(out).await;
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

async fn read_more<R: AsyncReadRent>(tcp: &mut R, mut buf: BytesMut) -> io::Result<BytesMut> {
    let (len, cap) = (buf.len(), buf.capacity());
    let (res, slice) = tcp.read(buf.slice_mut(len..cap)).await;
    buf = slice.into_inner();
    match res? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed the connection during TLS",
        )),
        _ => Ok(buf),
    }
}

/// Splits an established TLS connection into halves.
pub fn split(tcp: TcpStream, conn: Connection, leftover: BytesMut) -> (TlsReader, TlsWriter) {
    let (r, w) = tcp.into_split();
    let conn = Rc::new(RefCell::new(conn));
    (
        TlsReader {
            tcp: r,
            conn: conn.clone(),
            cipher: leftover,
        },
        TlsWriter {
            tcp: w,
            conn,
            out: Vec::with_capacity(CIPHER_CHUNK),
        },
    )
}

/// The receiving half: decrypts into the caller's buffer.
pub struct TlsReader {
    tcp: OwnedReadHalf<TcpStream>,
    conn: Rc<RefCell<Connection>>,
    cipher: BytesMut,
}

impl TlsReader {
    /// Appends decrypted bytes to `buf` (at least one, up to `spare` more); `Ok(0)` means the peer
    /// closed the connection.
    pub async fn read(&mut self, buf: &mut BytesMut, spare: usize) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.conn.borrow_mut();
                let mut reader = conn.reader();
                // Copy straight out of rustls' plaintext buffer: no zero-filling of ours.
                match reader.fill_buf() {
                    Ok(plain) => {
                        let n = plain.len().min(spare);
                        buf.extend_from_slice(&plain[..n]);
                        reader.consume(n);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                if !self.cipher.is_empty() {
                    let consumed = conn.read_tls(&mut &self.cipher[..])?;
                    self.cipher.advance(consumed);
                    conn.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    continue;
                }
            }
            self.cipher.reserve(CIPHER_CHUNK);
            let cipher = std::mem::take(&mut self.cipher);
            match read_more(&mut self.tcp, cipher).await {
                Ok(c) => self.cipher = c,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The sending half: encrypts and writes, holding at most rustls' bounded send buffer.
pub struct TlsWriter {
    tcp: OwnedWriteHalf<TcpStream>,
    conn: Rc<RefCell<Connection>>,
    out: Vec<u8>,
}

impl TlsWriter {
    /// Writes all of `data`.
    pub async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        loop {
            let n = self.conn.borrow_mut().writer().write(data)?;
            data = &data[n..];
            self.flush_records().await?;
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    /// Sends close_notify and shuts the socket down for writing.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.conn.borrow_mut().send_close_notify();
        self.flush_records().await?;
        self.tcp.shutdown().await
    }

    /// Writes every TLS record rustls has queued.
    async fn flush_records(&mut self) -> io::Result<()> {
        {
            let mut conn = self.conn.borrow_mut();
            self.out.clear();
            while conn.wants_write() {
                conn.write_tls(&mut self.out)?;
            }
        }
        if !self.out.is_empty() {
            let (res, back) = self.tcp.write_all(std::mem::take(&mut self.out)).await;
            self.out = back;
            res?;
        }
        Ok(())
    }
}
