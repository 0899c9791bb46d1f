//! `cargo xtask generate [--check]`: the spec → overlays → transformations → progenitor →
//! `generated.rs` pipeline.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::overlay::{self, Overlay};
use crate::transform;

/// Where the spec lives, relative to the workspace root.
pub const SPEC: &str = "spec/iterable-export-api-openapi.yml";
/// Where the overlays live, relative to the workspace root (applied in file-name order).
pub const OVERLAYS: &str = "spec/overlays";
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

/// Runs the generator over the workspace's spec, overlays and output file.
pub fn generate(mode: Mode) -> Result<Outcome> {
    let root = workspace_root();
    generate_file(&root, SPEC, OVERLAYS, &root.join(OUTPUT), mode)
}

/// The workspace's spec as the transformations see it: the file with every overlay applied.
/// The workspace tests read the spec's enums through this, so they see what the generator saw.
pub fn overlaid_spec() -> Result<Value> {
    let root = workspace_root();
    let text = read_spec(&root.join(SPEC))?;
    let mut doc = parse_spec(&text)?;
    overlay::apply_all(&mut doc, &overlay::load_dir(&root, OVERLAYS)?)?;
    Ok(doc)
}

/// Runs the generator from `root/spec` and the overlays in `root/overlays_dir` to `output`;
/// `spec` and `overlays_dir` (relative to `root`) are how the header and errors name them. Nothing is
/// written unless generation succeeded completely.
pub fn generate_file(root: &Path, spec: &str, overlays_dir: &str, output: &Path, mode: Mode) -> Result<Outcome> {
    let spec_path = root.join(spec);
    let text = read_spec(&spec_path)?;
    let overlays = overlay::load_dir(root, overlays_dir)?;
    let code = render(&text, spec, &overlays)
        .with_context(|| format!("cannot generate a client from {}", spec_path.display()))?;
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
                "{diff}\ngenerated code is out of date: {} differs from what {spec} and the overlays in {overlays_dir} generate; run `{COMMAND}` and commit the result",
                output.display()
            )
        }
        Mode::Write => {
            write_atomically(output, &code)?;
            Ok(Outcome::Written(output.to_path_buf()))
        }
    }
}

fn read_spec(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read the spec {}", path.display()))
}

fn parse_spec(text: &str) -> Result<Value> {
    serde_yaml_ng::from_str(text).map_err(|err| anyhow!("malformed YAML: {err}"))
}

/// The complete content of `generated.rs` for a spec's text and the overlays to apply to it.
pub fn render(spec_text: &str, spec_label: &str, overlays: &[Overlay]) -> Result<String> {
    let mut doc = parse_spec(spec_text)?;
    overlay::apply_all(&mut doc, overlays)?;
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
    let mut file =
        syn::parse_file(&tokens.to_string()).map_err(|err| anyhow!("progenitor produced unparsable code: {err}"))?;
    add_value_lists(&mut file)?;
    let body = prettyplease::unparse(&file);

    let mut header = format!(
        "// @generated by `{COMMAND}` from {spec_label}; do not edit by hand.\n// spec sha256: {}\n",
        sha256_hex(spec_text)
    );
    for overlay in overlays {
        header.push_str(&format!(
            "// overlay {} sha256: {}\n",
            overlay.label,
            sha256_hex(&overlay.text)
        ));
    }
    Ok(format!(
        "{header}// generator: progenitor {} (Builder interface, merged tags)\n\n{body}",
        progenitor_version()
    ))
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Gives every enum of `types` whose variants are all unit variants (the spec's string enums:
/// `DataTypeName`, `Range`) a constant listing its values in the spec's order:
///
/// ```text
/// impl DataTypeName {
///     pub const ALL: &[Self] = &[Self::EmailSend, ...];
/// }
/// ```
///
/// so that code iterating over data types uses the generated list, never a copy that drifts.
fn add_value_lists(file: &mut syn::File) -> Result<()> {
    let types = file
        .items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(m) if m.ident == "types" => m.content.as_mut().map(|(_, items)| items),
            _ => None,
        })
        .ok_or_else(|| anyhow!("progenitor's output has no `types` module; has its layout changed?"))?;
    let mut at = 0;
    while at < types.len() {
        let list = match &types[at] {
            syn::Item::Enum(e)
                if matches!(e.vis, syn::Visibility::Public(_))
                    && !e.variants.is_empty()
                    && e.variants.iter().all(|v| matches!(v.fields, syn::Fields::Unit)) =>
            {
                let name = e.ident.to_string();
                let variants: Vec<String> = e.variants.iter().map(|v| format!("Self::{}", v.ident)).collect();
                let code = format!(
                    "impl {name} {{\n\
                     #[doc = \" Every value of `{name}`, in the spec's order (with the overlays applied).\"]\n\
                     #[doc = \"\"]\n\
                     #[doc = \" Emitted by `{COMMAND}` from the enum above.\"]\n\
                     pub const ALL: &[Self] = &[{}];\n\
                     }}",
                    variants.join(", ")
                );
                Some(syn::parse_str::<syn::Item>(&code).map_err(|err| anyhow!("the value list of {name}: {err}"))?)
            }
            _ => None,
        };
        at += 1;
        if let Some(list) = list {
            types.insert(at, list);
            at += 1;
        }
    }
    Ok(())
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

    /// Staleness is a test: plain `cargo test` fails when the spec or an overlay changed without
    /// regenerating.
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

    fn error(result: Result<Outcome>) -> String {
        match result {
            Ok(outcome) => panic!("expected an error, got {outcome:?}"),
            Err(err) => format!("{err:#}"),
        }
    }

    /// A copy of the workspace's spec and overlays in `dir` (`spec.yml`, `overlays/`).
    fn copy_inputs(dir: &Path) -> Result<Vec<PathBuf>> {
        let root = workspace_root();
        std::fs::copy(root.join(SPEC), dir.join("spec.yml"))?;
        std::fs::create_dir(dir.join("overlays"))?;
        let mut copied = Vec::new();
        for overlay in overlay::load_dir(&root, OVERLAYS)? {
            let name = overlay.label.rsplit('/').next().unwrap_or_default();
            let to = dir.join("overlays").join(name);
            std::fs::write(&to, &overlay.text)?;
            copied.push(to);
        }
        Ok(copied)
    }

    #[test]
    fn malformed_spec_names_the_location_and_leaves_output_untouched() -> Result<()> {
        let tmp = temp_dir()?;
        let dir = tmp.path();
        let out = dir.join("generated.rs");
        std::fs::write(dir.join("spec.yml"), "openapi: 3.1.0\ninfo:\n  title: [unclosed\n")?;
        std::fs::write(&out, "previous content")?;
        let err = error(generate_file(dir, "spec.yml", "overlays", &out, Mode::Write));
        assert!(err.contains("malformed YAML") && err.contains("line 3"), "{err}");
        assert_eq!(std::fs::read_to_string(&out)?, "previous content");
        Ok(())
    }

    #[test]
    fn missing_spec_is_a_clear_error() {
        let err = error(generate_file(
            Path::new("/nonexistent"),
            "spec.yml",
            "overlays",
            Path::new("/nonexistent/out.rs"),
            Mode::Check,
        ));
        assert!(err.starts_with("cannot read the spec /nonexistent/spec.yml"), "{err}");
    }

    #[test]
    fn check_mode_reports_a_diff_and_write_mode_fixes_it() -> Result<()> {
        let tmp = temp_dir()?;
        let dir = tmp.path();
        let spec = dir.join("spec.yml");
        let out = dir.join("generated.rs");
        let text = std::fs::read_to_string(workspace_root().join(SPEC))?;
        // One more enum value, as a spec change would add (no overlays in this directory).
        let changed = text.replacen(
            "          - userUpdate\n",
            "          - userUpdate\n          - xtaskProbe\n",
            1,
        );
        assert_ne!(changed, text, "the fixture edit no longer applies to the spec");
        std::fs::write(&spec, &changed)?;
        std::fs::write(&out, render(&text, "spec.yml", &[])?)?;

        let err = error(generate_file(dir, "spec.yml", "overlays", &out, Mode::Check));
        assert!(
            err.contains("generated code is out of date") && err.contains("run `cargo xtask generate`"),
            "{err}"
        );
        assert!(
            err.contains("+        XtaskProbe,"),
            "the diff shows the new variant: {err}"
        );

        assert_eq!(
            generate_file(dir, "spec.yml", "overlays", &out, Mode::Write)?,
            Outcome::Written(out.clone())
        );
        assert_eq!(
            generate_file(dir, "spec.yml", "overlays", &out, Mode::Check)?,
            Outcome::UpToDate(out.clone())
        );
        let names: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
        Ok(())
    }

    /// Editing an overlay without regenerating fails the check exactly like a spec edit, and a
    /// broken overlay leaves `generated.rs` untouched.
    #[test]
    fn overlay_edits_are_caught_and_broken_overlays_write_nothing() -> Result<()> {
        let tmp = temp_dir()?;
        let dir = tmp.path();
        let out = dir.join("generated.rs");
        let overlays = copy_inputs(dir)?;
        let data_types = overlays
            .iter()
            .find(|p| p.to_string_lossy().ends_with("-all-data-types.yaml"))
            .ok_or_else(|| anyhow!("no *-all-data-types.yaml overlay"))?;
        assert_eq!(
            generate_file(dir, "spec.yml", "overlays", &out, Mode::Write)?,
            Outcome::Written(out.clone())
        );

        // One line in the overlay: a new data type.
        let text = std::fs::read_to_string(data_types)?;
        let edited = text.replacen(
            "        - journeyExit\n",
            "        - journeyExit\n        - xtaskProbe\n",
            1,
        );
        assert_ne!(edited, text, "the fixture edit no longer applies to the overlay");
        std::fs::write(data_types, &edited)?;
        let err = error(generate_file(dir, "spec.yml", "overlays", &out, Mode::Check));
        assert!(
            err.contains("generated code is out of date")
                && err.contains("differs from what spec.yml and the overlays in overlays generate")
                && err.contains("run `cargo xtask generate`"),
            "{err}"
        );
        assert!(
            err.contains("+        XtaskProbe,"),
            "the diff shows the new variant: {err}"
        );
        assert!(
            err.contains("+// overlay overlays/10-all-data-types.yaml sha256: "),
            "{err}"
        );

        // A target that no longer matches: an error naming file, action and target; nothing written.
        let before = std::fs::read(&out)?;
        let broken = text.replacen(
            "$.components.parameters.dataTypeName.schema\n",
            "$.components.parameters.dataType.schema\n",
            1,
        );
        assert_ne!(broken, text, "the fixture edit no longer applies to the overlay");
        std::fs::write(data_types, &broken)?;
        let err = error(generate_file(dir, "spec.yml", "overlays", &out, Mode::Write));
        assert!(
            err.contains("overlays/10-all-data-types.yaml: actions[1] (\"The 53 names of Iterable's Swagger (API 1.8), spelled and ordered as it has them.\"), target `$.components.parameters.dataType.schema`: selects nothing"),
            "{err}"
        );
        assert_eq!(std::fs::read(&out)?, before, "generated.rs is untouched");

        // An unreadable overlay: the same.
        std::fs::write(data_types, [0xff, 0xfe])?;
        let err = error(generate_file(dir, "spec.yml", "overlays", &out, Mode::Write));
        assert!(
            err.starts_with("overlays/10-all-data-types.yaml: cannot read the overlay"),
            "{err}"
        );
        assert_eq!(std::fs::read(&out)?, before, "generated.rs is untouched");
        Ok(())
    }

    /// Overlays are only blamed for an invalid document when the spec was valid before them; the
    /// workspace's spec is, so a broken overlay is always caught at the overlay.
    #[test]
    fn the_spec_is_valid_before_and_after_the_overlays() -> Result<()> {
        let text = std::fs::read_to_string(workspace_root().join(SPEC))?;
        overlay::validate(&parse_spec(&text)?).map_err(|err| anyhow!(err))?;
        overlay::validate(&overlaid_spec()?).map_err(|err| anyhow!(err))?;
        Ok(())
    }

    #[test]
    fn header_names_command_spec_overlays_and_digests() -> Result<()> {
        let root = workspace_root();
        let text = std::fs::read_to_string(root.join(SPEC))?;
        let overlays = overlay::load_dir(&root, OVERLAYS)?;
        assert!(!overlays.is_empty());
        let code = render(&text, SPEC, &overlays)?;
        let mut lines = code.lines();
        assert_eq!(
            lines.next().unwrap_or_default(),
            "// @generated by `cargo xtask generate` from spec/iterable-export-api-openapi.yml; do not edit by hand."
        );
        assert_eq!(
            lines.next().unwrap_or_default(),
            format!("// spec sha256: {}", sha256_hex(&text))
        );
        for overlay in &overlays {
            assert!(overlay.label.starts_with("spec/overlays/"), "{}", overlay.label);
            assert_eq!(
                lines.next().unwrap_or_default(),
                format!("// overlay {} sha256: {}", overlay.label, sha256_hex(&overlay.text))
            );
        }
        assert!(
            lines
                .next()
                .unwrap_or_default()
                .starts_with("// generator: progenitor ")
        );
        Ok(())
    }

    /// `DataTypeName::ALL` is emitted from the enum, which comes from the overlaid spec: the same
    /// values, in the same order.
    #[test]
    fn value_lists_are_emitted_from_the_overlaid_enums() -> Result<()> {
        let root = workspace_root();
        let text = std::fs::read_to_string(root.join(SPEC))?;
        let code = render(&text, SPEC, &overlay::load_dir(&root, OVERLAYS)?)?;
        let names: Vec<String> = overlaid_spec()?
            .pointer("/components/parameters/dataTypeName/schema/enum")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("no dataTypeName enum"))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert_eq!(names.len(), 53, "Iterable's Swagger lists 53 data types");
        let start = code
            .find("impl DataTypeName {")
            .ok_or_else(|| anyhow!("no value list for DataTypeName"))?;
        let list = &code[start..];
        let list = &list[list.find("= &[").unwrap_or(0)..list.find("];").unwrap_or(0)];
        let variants: Vec<&str> = list
            .split(',')
            .map(|v| v.trim().trim_start_matches("= &[").trim())
            .filter(|v| !v.is_empty())
            .collect();
        assert_eq!(variants.len(), names.len(), "{list}");
        assert_eq!(variants.first().copied(), Some("Self::EmailSend"));
        assert_eq!(variants.last().copied(), Some("Self::WhatsAppUsageInfo"));
        assert!(code.contains("impl Range {"), "every unit-only enum gets a list");
        Ok(())
    }
}
