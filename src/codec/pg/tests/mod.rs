//! Tests across the codec: recorded PostgreSQL 15 sessions fed at every split point, and
//! properties over arbitrary bytes.

mod captures;
mod props;
mod stream;
