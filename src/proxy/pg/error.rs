//! Why a PostgreSQL session ended badly, which side was at fault, and what the client is told.

use std::io;

use crate::metrics::ErrorKind;

/// A session failure. The client-facing text never includes secrets or upstream internals.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client broke the protocol (malformed or oversized message, unexpected packet).
    #[error("client protocol violation: {0}")]
    ClientProtocol(String),
    /// The client's connection failed.
    #[error("client connection: {0}")]
    ClientIo(io::Error),
    /// The client did not present a usable session token (or the gateway refuses the startup).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The client's startup asked for something the gateway does not allow.
    #[error("{0}")]
    Refused(String),
    /// Plaintext on a listener that requires TLS.
    #[error("TLS required")]
    TlsRequired,
    /// The client took too long to authenticate.
    #[error("authentication timed out")]
    AuthTimeout,
    /// The upstream could not be reached or refused the gateway.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The upstream's connection failed.
    #[error("upstream connection: {0}")]
    UpstreamIo(io::Error),
    /// The upstream sent an error during connection setup; forwarded as is.
    #[error("upstream error {code}: {message}")]
    UpstreamFatal { code: String, message: String },
    /// The policy hooks ended the session (a message they cannot follow safely).
    #[error("{1}")]
    Policy(&'static str, String),
}

impl SessionError {
    /// SQLSTATE and message for the FATAL sent to the client.
    pub fn client_error(&self) -> (&str, String) {
        match self {
            SessionError::ClientProtocol(m) => ("08P01", format!("protocol violation: {m}")),
            SessionError::ClientIo(_) => ("08006", "connection failure".into()),
            SessionError::Auth(m) => ("28P01", format!("sluice: authentication failed: {m}")),
            SessionError::Refused(m) => ("0A000", format!("sluice: {m}")),
            SessionError::TlsRequired => (
                "28000",
                "sluice: this listener requires TLS (connect with sslmode=require)".into(),
            ),
            SessionError::AuthTimeout => ("08006", "sluice: authentication timed out".into()),
            SessionError::Upstream(_) | SessionError::UpstreamIo(_) => (
                "08006",
                "sluice: the upstream database is unavailable".into(),
            ),
            SessionError::UpstreamFatal { code, message } => (code.as_str(), message.clone()),
            SessionError::Policy(code, message) => (code, message.clone()),
        }
    }

    /// The kind it is counted as in the statistics. Authentication failures have a counter
    /// of their own; they are counted here as the client's fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::ClientProtocol(_) | SessionError::Auth(_) => ErrorKind::ClientProtocol,
            SessionError::ClientIo(_) => ErrorKind::ClientIo,
            SessionError::Refused(_) | SessionError::TlsRequired => ErrorKind::StartupRefused,
            SessionError::AuthTimeout => ErrorKind::AuthTimeout,
            SessionError::Upstream(_) | SessionError::UpstreamIo(_) => ErrorKind::UpstreamLost,
            SessionError::UpstreamFatal { .. } => ErrorKind::UpstreamConnect,
            SessionError::Policy(..) => ErrorKind::PolicyFatal,
        }
    }
}
