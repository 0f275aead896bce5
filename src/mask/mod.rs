//! Masking of values leaving the database: column rules, value detectors, and the rewriting of
//! DataRow, COPY, error and notification messages. Pure: no I/O, no catalog access (the proxy
//! resolves table OIDs to names and hands them in).

pub mod detect;
mod error;
mod messages;
mod policy;
mod row;
mod rules;
mod style;
mod types;

pub use detect::Detectors;
pub use error::MaskError;
pub use messages::{mask_error_fields, mask_notification, mask_text, CopyFormat, CopyPlan};
pub use policy::MaskPolicy;
pub use row::{ColumnAction, ColumnResolver, RefuseReason, RowPlan};
pub use rules::{glob_match, ColumnRules};
pub use style::{Applied, HashKey, MaskStyle, FULL_MASK, HASH_HEX_LEN, HASH_PREFIX, MIN_KEY_LEN};
