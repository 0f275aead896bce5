//! Tests across the codec: real captures and properties.
