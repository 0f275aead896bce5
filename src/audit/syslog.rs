//! Audit events to the local syslog daemon: one RFC 3164 datagram per event on `/dev/log`,
//! `<86>sluice[PID]: {json}`.
//!
//! Facility `authpriv` (10), severity `info` (6): audit events name identities and the
//! statements they ran, and syslog daemons route `authpriv` to a file only root can read
//! (`/var/log/secure`, `/var/log/auth.log`), where `local0` usually goes nowhere or to a
//! world-readable log. The daemon adds the timestamp and host name.
//!
//! The socket is non-blocking: a slow or stopped daemon must never hold up the writer thread
//! and with it the file. A datagram the daemon cannot take now is lost and counted as a
//! write error, and the syslog output rests until the next tick.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// `authpriv.info`.
const PRIORITY: u8 = 10 * 8 + 6;

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";

pub struct Syslog {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    prefix: Vec<u8>,
    datagram: Vec<u8>,
    /// A send failed this tick; skip until the next one.
    resting: bool,
}

impl Syslog {
    /// Connects to the syslog socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Syslog> {
        let mut s = Syslog {
            path: path.to_owned(),
            socket: None,
            prefix: format!("<{PRIORITY}>sluice[{}]: ", std::process::id()).into_bytes(),
            datagram: Vec::with_capacity(1024),
            resting: false,
        };
        s.socket = Some(s.open()?);
        Ok(s)
    }

    fn open(&self) -> io::Result<UnixDatagram> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(&self.path)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }

    /// Sends one event (`line` without its newline). While resting after a failure, every
    /// event is an error too: it did not reach syslog.
    pub fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let socket = match &self.socket {
            Some(s) if !self.resting => s,
            _ => {
                return Err(io::Error::other(
                    "skipped until the next tick after a failed send",
                ))
            }
        };
        self.datagram.clear();
        self.datagram.extend_from_slice(&self.prefix);
        self.datagram.extend_from_slice(line);
        match socket.send(&self.datagram) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.resting = true;
                if e.kind() != io::ErrorKind::WouldBlock {
                    // The daemon may have restarted: reconnect on the tick.
                    self.socket = None;
                }
                Err(e)
            }
        }
    }

    /// The tick: stop resting, and reconnect if the socket was lost.
    pub fn tick(&mut self) -> io::Result<()> {
        self.resting = false;
        if self.socket.is_none() {
            self.socket = Some(self.open()?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_authpriv_datagram_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let mut s = Syslog::connect(&path).unwrap();
        s.send(br#"{"kind":"connection"}"#).unwrap();
        let mut buf = [0u8; 256];
        let n = daemon.recv(&mut buf).unwrap();
        let expected = format!(
            "<86>sluice[{}]: {{\"kind\":\"connection\"}}",
            std::process::id()
        );
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), expected);
    }

    #[test]
    fn a_vanished_daemon_is_an_error_then_a_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let mut s = Syslog::connect(&path).unwrap();
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        assert!(s.send(b"{}").is_err());
        // Until the tick, events are not even tried, and each is an error.
        assert!(s.send(b"{}").is_err());
        assert!(s.tick().is_err());
        let daemon = UnixDatagram::bind(&path).unwrap();
        s.tick().unwrap();
        s.send(b"{}").unwrap();
        let mut buf = [0u8; 64];
        assert!(daemon.recv(&mut buf).unwrap() > 0);
    }
}
