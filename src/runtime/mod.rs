//! Thread-per-core shards, core pinning, listeners and snapshot swapping.
