//! The TOML configuration model and its validation.
