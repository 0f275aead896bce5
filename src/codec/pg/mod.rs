//! Sans-IO PostgreSQL (protocol 3.0) framing and the messages the gateway acts on.
