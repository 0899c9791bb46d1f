//! Project automation for iterable-export: the generator behind `cargo xtask generate`.
//!
//! Also a library, so that the workspace tests (`tests/`) read the spec exactly as the generator
//! does — with the overlays of `spec/overlays/` applied ([`codegen::overlaid_spec`]).

pub mod codegen;
pub mod overlay;
pub mod transform;
