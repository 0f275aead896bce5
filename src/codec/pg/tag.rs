//! Message type bytes of protocol 3.0, split by direction because letters overlap
//! (`D` is Describe from a client but DataRow from a server).

/// Messages sent by the client (frontend).
pub mod frontend {
    /// Bind a portal to a prepared statement (`B`).
    pub const BIND: u8 = b'B';
    /// Close a prepared statement or portal (`C`).
    pub const CLOSE: u8 = b'C';
    /// COPY data (`d`).
    pub const COPY_DATA: u8 = b'd';
    /// COPY finished (`c`).
    pub const COPY_DONE: u8 = b'c';
    /// COPY aborted by the client (`f`).
    pub const COPY_FAIL: u8 = b'f';
    /// Describe a statement or portal (`D`).
    pub const DESCRIBE: u8 = b'D';
    /// Execute a portal (`E`).
    pub const EXECUTE: u8 = b'E';
    /// Flush pending output (`H`).
    pub const FLUSH: u8 = b'H';
    /// Fast-path function call (`F`).
    pub const FUNCTION_CALL: u8 = b'F';
    /// GSSAPI/SSPI response (`p`, shared with the other authentication responses).
    pub const GSS_RESPONSE: u8 = b'p';
    /// Parse a statement (`P`).
    pub const PARSE: u8 = b'P';
    /// Password response (`p`).
    pub const PASSWORD_MESSAGE: u8 = b'p';
    /// Simple query (`Q`).
    pub const QUERY: u8 = b'Q';
    /// First SASL message (`p`).
    pub const SASL_INITIAL_RESPONSE: u8 = b'p';
    /// Later SASL message (`p`).
    pub const SASL_RESPONSE: u8 = b'p';
    /// End of an extended-query pipeline step (`S`).
    pub const SYNC: u8 = b'S';
    /// Close the session (`X`).
    pub const TERMINATE: u8 = b'X';

    /// A readable name for logs and recordings; `None` for bytes no 3.0 client sends.
    pub fn name(tag: u8) -> Option<&'static str> {
        Some(match tag {
            BIND => "Bind",
            CLOSE => "Close",
            COPY_DATA => "CopyData",
            COPY_DONE => "CopyDone",
            COPY_FAIL => "CopyFail",
            DESCRIBE => "Describe",
            EXECUTE => "Execute",
            FLUSH => "Flush",
            FUNCTION_CALL => "FunctionCall",
            PASSWORD_MESSAGE => "PasswordMessage",
            PARSE => "Parse",
            QUERY => "Query",
            SYNC => "Sync",
            TERMINATE => "Terminate",
            _ => return None,
        })
    }
}

/// Messages sent by the server (backend).
pub mod backend {
    /// Any authentication request or result (`R`).
    pub const AUTHENTICATION: u8 = b'R';
    /// Cancellation key (`K`).
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Bind succeeded (`2`).
    pub const BIND_COMPLETE: u8 = b'2';
    /// Close succeeded (`3`).
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// A command finished (`C`).
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// COPY data (`d`).
    pub const COPY_DATA: u8 = b'd';
    /// COPY finished (`c`).
    pub const COPY_DONE: u8 = b'c';
    /// Server is ready for COPY FROM STDIN data (`G`).
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// Server starts COPY TO STDOUT data (`H`).
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// Both-ways COPY, used by replication (`W`).
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// One result row (`D`).
    pub const DATA_ROW: u8 = b'D';
    /// The query string was empty (`I`).
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// An error (`E`).
    pub const ERROR_RESPONSE: u8 = b'E';
    /// Result of a fast-path function call (`V`).
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// The server supports an older minor version or not all options (`v`).
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// The statement or portal returns no rows (`n`).
    pub const NO_DATA: u8 = b'n';
    /// A notice or warning (`N`).
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// A LISTEN notification (`A`).
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// Parameter types of a statement (`t`).
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// A run-time parameter value (`S`).
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Parse succeeded (`1`).
    pub const PARSE_COMPLETE: u8 = b'1';
    /// Execute stopped at its row limit (`s`).
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// Ready for a new query, with the transaction status (`Z`).
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Columns of the rows that follow (`T`).
    pub const ROW_DESCRIPTION: u8 = b'T';

    /// A readable name for logs and recordings; `None` for bytes no 3.0 server sends.
    pub fn name(tag: u8) -> Option<&'static str> {
        Some(match tag {
            AUTHENTICATION => "Authentication",
            BACKEND_KEY_DATA => "BackendKeyData",
            BIND_COMPLETE => "BindComplete",
            CLOSE_COMPLETE => "CloseComplete",
            COMMAND_COMPLETE => "CommandComplete",
            COPY_DATA => "CopyData",
            COPY_DONE => "CopyDone",
            COPY_IN_RESPONSE => "CopyInResponse",
            COPY_OUT_RESPONSE => "CopyOutResponse",
            COPY_BOTH_RESPONSE => "CopyBothResponse",
            DATA_ROW => "DataRow",
            EMPTY_QUERY_RESPONSE => "EmptyQueryResponse",
            ERROR_RESPONSE => "ErrorResponse",
            FUNCTION_CALL_RESPONSE => "FunctionCallResponse",
            NEGOTIATE_PROTOCOL_VERSION => "NegotiateProtocolVersion",
            NO_DATA => "NoData",
            NOTICE_RESPONSE => "NoticeResponse",
            NOTIFICATION_RESPONSE => "NotificationResponse",
            PARAMETER_DESCRIPTION => "ParameterDescription",
            PARAMETER_STATUS => "ParameterStatus",
            PARSE_COMPLETE => "ParseComplete",
            PORTAL_SUSPENDED => "PortalSuspended",
            READY_FOR_QUERY => "ReadyForQuery",
            ROW_DESCRIPTION => "RowDescription",
            _ => return None,
        })
    }
}
