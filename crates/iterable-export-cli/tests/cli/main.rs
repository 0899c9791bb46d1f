//! End-to-end tests: the real `iterable-export` binary against the mock server.

mod common;
mod crash;
mod edges;
mod errors;
mod export;
mod jobs;
mod jobs_early;
mod jobs_left_running;
mod parquet;
mod parquet_staging;
mod resume;
mod singer;
mod singer_catalog;
mod users;
