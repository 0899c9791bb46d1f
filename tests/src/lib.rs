//! Workspace-level tests of iterable-export.
//!
//! The tests live in `tests/tests/it/` (one binary, a module per area); this library holds the
//! helpers they share:
//!
//! - [`surface`]: renders the public surface of the generated client as stable text, for the
//!   API-surface snapshot.

pub mod surface;
