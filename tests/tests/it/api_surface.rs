//! Snapshot of the generated client's public surface.
//!
//! When the spec or the generator changes, this test fails with a diff of the surface: review it
//! with `cargo insta review` (or rerun with `INSTA_UPDATE=always`) and commit the new snapshot
//! together with the regenerated `generated.rs`.

use std::path::Path;

const GENERATED: &str = "../crates/iterable-export-gen/src/generated.rs";

#[test]
fn generated_api_surface() -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    let source = std::fs::read_to_string(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let surface = iterable_export_tests::surface::render(&source)?;
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        description => "Public surface of crates/iterable-export-gen/src/generated.rs. If this changed, the spec or the generator did: review with `cargo insta review` and commit it with the output of `cargo xtask generate`.",
        omit_expression => true,
    }, {
        insta::assert_snapshot!("generated_api_surface", surface);
    });
    Ok(())
}
