//! Workspace-level integration tests, compiled into one binary (a module per area).

mod api_surface;
mod data_types;
mod pinned_calls;
