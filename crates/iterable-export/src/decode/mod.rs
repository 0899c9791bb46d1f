//! Streaming decoders (being written).
