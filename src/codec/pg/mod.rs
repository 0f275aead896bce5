//! Sans-IO PostgreSQL (protocol 3.0) framing and the messages the gateway acts on.
//!
//! Decoders take a `BytesMut` read buffer and return a message, `Ok(None)` for "need more
//! bytes", or a [`CodecError`]; lengths are checked against a caller limit before anything is
//! buffered for them. Frames are zero-copy slices of the read buffer; typed decoders borrow from
//! a [`Frame`] and read only the messages a decision needs. Encoders append to a `BytesMut`.

mod auth;
mod backend;
mod error;
mod extended;
mod frame;
mod frontend;
mod notice;
mod rows;
mod startup;
pub mod tag;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use auth::{
    encode_auth_cleartext, encode_auth_md5, encode_auth_ok, encode_auth_sasl,
    encode_auth_sasl_continue, encode_auth_sasl_final, Authentication,
};
pub use backend::{
    encode_parameter_status, encode_ready_for_query, BackendKeyData, ParameterStatus,
    ReadyForQuery, TransactionStatus,
};
pub use error::CodecError;
pub use extended::{
    encode_describe, encode_parse, encode_sync, Bind, Close, Describe, Execute, Parse, Target,
};
pub use frame::{decode_frame, peek_header, Frame, HEADER_LEN};
pub use frontend::{
    encode_password, encode_query, encode_sasl_initial_response, encode_sasl_response,
    encode_terminate, PasswordMessage, Query, SaslInitialResponse, SaslResponse,
};
pub use notice::{
    encode_error, encode_error_with_detail, encode_fields, encode_notice, field, ErrorNotice,
};
pub use rows::{
    encode_command_complete, encode_copy_data, encode_copy_response, encode_data_row,
    encode_notification, encode_row_description, CommandComplete, CopyData, CopyResponse, DataRow,
    DataRowEncoder, FieldDescription, NotificationResponse, RowDescription, FORMAT_BINARY,
    FORMAT_TEXT,
};
pub use startup::{
    decode_startup, encode_cancel_request, encode_ssl_request, encode_startup, CancelRequest,
    StartupMessage, StartupPacket, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, MAX_STARTUP_LEN,
    PROTOCOL_3_0, SSL_REQUEST_CODE,
};
