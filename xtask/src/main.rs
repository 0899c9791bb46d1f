//! Project automation for iterable-export.
//!
//! ```text
//! cargo xtask generate          # regenerate crates/iterable-export-gen/src/generated.rs
//! cargo xtask generate --check  # fail with a diff when the checked-in file is stale
//! ```

use std::process::ExitCode;

use xtask::codegen;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate [--check]   regenerate crates/iterable-export-gen/src/generated.rs from
                       spec/iterable-export-api-openapi.yml and the overlays in
                       spec/overlays/ (applied in file-name order); with --check,
                       change nothing and fail with a diff when the checked-in file
                       is stale";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["generate"] => codegen::generate(codegen::Mode::Write),
        ["generate", "--check"] => codegen::generate(codegen::Mode::Check),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(outcome) => {
            eprintln!("{outcome}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
