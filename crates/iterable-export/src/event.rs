//! Typed Iterable events (being written).
