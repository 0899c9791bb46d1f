//! Integration tests of the facade against the mock server (one binary, a module per area).

mod body_reader;
mod common;
mod early_end;
mod endpoints;
mod errors;
mod jobs;
mod jobs_early;
mod jobs_limits;
mod jobs_listing;
mod jobs_mock;
mod jobs_orphans;
mod jobs_server;
mod resilience;
