//! `cargo xtask generate [--check]`: the spec → progenitor → `generated.rs` pipeline.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle};
use sha2::{Digest, Sha256};

use crate::transform;

/// Where the spec lives, relative to the workspace root.
pub const SPEC: &str = "spec/iterable-export-api-openapi.yml";
/// Where the generated client goes, relative to the workspace root.
pub const OUTPUT: &str = "crates/iterable-export-gen/src/generated.rs";
/// The command that fixes a stale file.
const COMMAND: &str = "cargo xtask generate";

/// Write the file, or only compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Regenerate and write the file when its content changed.
    Write,
    /// Regenerate in memory; fail with a diff when the file differs.
    Check,
}

/// What a successful run did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The file already had the generated content.
    UpToDate(PathBuf),
    /// The file was (re)written.
    Written(PathBuf),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::UpToDate(path) => write!(f, "{} is up to date", path.display()),
            Outcome::Written(path) => write!(f, "wrote {}", path.display()),
        }
    }
}

/// The workspace root (the parent of the `xtask` crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs the generator over the workspace's spec and output file.
pub fn generate(mode: Mode) -> Result<Outcome> {
    let root = workspace_root();
    generate_file(&root.join(SPEC), SPEC, &root.join(OUTPUT), mode)
}

/// Runs the generator from `spec` to `output`; `spec_label` is how the header names the spec.
/// Nothing is written unless generation succeeded completely.
pub fn generate_file(spec: &Path, spec_label: &str, output: &Path, mode: Mode) -> Result<Outcome> {
    let text = std::fs::read_to_string(spec).with_context(|| format!("cannot read the spec {}", spec.display()))?;
    let code =
        render(&text, spec_label).with_context(|| format!("cannot generate a client from {}", spec.display()))?;
    let current = match std::fs::read_to_string(output) {
        Ok(current) => Some(current),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", output.display())),
    };
    if current.as_deref() == Some(code.as_str()) {
        return Ok(Outcome::UpToDate(output.to_path_buf()));
    }
    match mode {
        Mode::Check => {
            let old = current.unwrap_or_default();
            let diff = similar::TextDiff::from_lines(&old, &code)
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("{} (checked in)", output.display()),
                    &format!("{} (generated)", output.display()),
                )
                .to_string();
            bail!(
                "{diff}\ngenerated code is out of date: {} differs from what {spec_label} generates; run `{COMMAND}` and commit the result",
                output.display()
            )
        }
        Mode::Write => {
            write_atomically(output, &code)?;
            Ok(Outcome::Written(output.to_path_buf()))
        }
    }
}

/// The complete content of `generated.rs` for a spec's text.
pub fn render(spec_text: &str, spec_label: &str) -> Result<String> {
    let mut doc: serde_json::Value =
        serde_yaml_ng::from_str(spec_text).map_err(|err| anyhow!("malformed YAML: {err}"))?;
    transform::apply_all(&mut doc)?;
    let spec: openapiv3::OpenAPI = serde_json::from_value(doc)
        .map_err(|err| anyhow!("not a valid OpenAPI 3.0 document after transformation: {err}"))?;

    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_derive("schemars::JsonSchema");
    let mut generator = Generator::new(&settings);
    // progenitor reports some unsupported shapes by panicking; turn that into an error.
    let tokens = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| generator.generate_tokens(&spec)))
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            anyhow!("progenitor panicked: {what}; add a transformation in xtask/src/transform.rs")
        })?
        .map_err(|err| anyhow!("progenitor: {err}"))?;
    let file =
        syn::parse_file(&tokens.to_string()).map_err(|err| anyhow!("progenitor produced unparsable code: {err}"))?;
    let body = prettyplease::unparse(&file);

    let digest = Sha256::digest(spec_text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "// @generated by `{COMMAND}` from {spec_label}; do not edit by hand.\n\
         // spec sha256: {hex}\n\
         // generator: progenitor {} (Builder interface, merged tags)\n\n{body}",
        progenitor_version()
    ))
}

fn progenitor_version() -> &'static str {
    "0.15"
}

/// Writes `content` to a uniquely named temporary file next to `path`, then renames it over
/// `path`; on failure the temporary file is removed (`tempfile`).
fn write_atomically(path: &Path, content: &str) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".generated.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, content.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Staleness is a test: plain `cargo test` fails when the spec changed without regenerating.
    #[test]
    fn generated_code_is_fresh() {
        if let Err(err) = generate(Mode::Check) {
            panic!("{err:#}");
        }
    }

    /// A temporary directory, removed when dropped (also when the test fails).
    fn temp_dir() -> Result<tempfile::TempDir> {
        Ok(tempfile::tempdir()?)
    }

    #[test]
    fn malformed_spec_names_the_location_and_leaves_output_untouched() -> Result<()> {
        let tmp = temp_dir()?;
        let dir = tmp.path();
        let spec = dir.join("spec.yml");
        let out = dir.join("generated.rs");
        std::fs::write(&spec, "openapi: 3.1.0\ninfo:\n  title: [unclosed\n")?;
        std::fs::write(&out, "previous content")?;
        let err = generate_file(&spec, "spec.yml", &out, Mode::Write)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains("malformed YAML") && err.contains("line 3"), "{err}");
        assert_eq!(std::fs::read_to_string(&out)?, "previous content");
        Ok(())
    }

    #[test]
    fn missing_spec_is_a_clear_error() {
        let err = generate_file(
            Path::new("/nonexistent/spec.yml"),
            "spec.yml",
            Path::new("/nonexistent/out.rs"),
            Mode::Check,
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(err.starts_with("cannot read the spec /nonexistent/spec.yml"), "{err}");
    }

    #[test]
    fn check_mode_reports_a_diff_and_write_mode_fixes_it() -> Result<()> {
        let tmp = temp_dir()?;
        let dir = tmp.path();
        let spec = dir.join("spec.yml");
        let out = dir.join("generated.rs");
        let text = std::fs::read_to_string(workspace_root().join(SPEC))?;
        // One more enum value, as a spec change would add.
        let changed = text.replacen(
            "          - userUpdate\n",
            "          - userUpdate\n          - xtaskProbe\n",
            1,
        );
        assert_ne!(changed, text, "the fixture edit no longer applies to the spec");
        std::fs::write(&spec, &changed)?;
        std::fs::write(&out, render(&text, "spec.yml")?)?;

        let err = generate_file(&spec, "spec.yml", &out, Mode::Check)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            err.contains("generated code is out of date") && err.contains("run `cargo xtask generate`"),
            "{err}"
        );
        assert!(
            err.contains("+        XtaskProbe,"),
            "the diff shows the new variant: {err}"
        );

        assert_eq!(
            generate_file(&spec, "spec.yml", &out, Mode::Write)?,
            Outcome::Written(out.clone())
        );
        assert_eq!(
            generate_file(&spec, "spec.yml", &out, Mode::Check)?,
            Outcome::UpToDate(out.clone())
        );
        let names: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
        Ok(())
    }

    #[test]
    fn header_names_command_spec_and_digest() -> Result<()> {
        let text = std::fs::read_to_string(workspace_root().join(SPEC))?;
        let code = render(&text, SPEC)?;
        let first = code.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "// @generated by `cargo xtask generate` from spec/iterable-export-api-openapi.yml; do not edit by hand."
        );
        let digest: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(code.contains(&format!("// spec sha256: {digest}\n")));
        Ok(())
    }
}
