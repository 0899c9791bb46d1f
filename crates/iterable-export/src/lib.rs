//! Fast, complete and safe exports from Iterable's Export API.
//!
//! (Crate docs are written as the facade is completed.)
#![deny(missing_docs)]

mod decode;
mod error;
mod event;

pub use decode::*;
pub use error::{Error, Result};
pub use event::*;
