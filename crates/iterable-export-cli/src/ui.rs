//! Progress bars on a terminal, plain log lines elsewhere.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How the program talks to the person running it.
#[derive(Debug, Clone)]
pub struct Ui {
    multi: MultiProgress,
    /// Progress bars are drawn (stderr is a terminal and not --quiet).
    pub bars: bool,
    /// Summaries are printed (not --quiet).
    pub summary: bool,
}

impl Ui {
    /// Sets up progress drawing and logging.
    pub fn init(quiet: bool, verbose: u8) -> Ui {
        let bars = !quiet && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if bars {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        });
        let default = match (quiet, verbose) {
            (true, 0) => "error",
            (false, 0) if bars => "warn",
            (_, 0) => "info",
            (_, 1) => "debug",
            _ => "trace",
        };
        let filter = EnvFilter::try_from_env("ITERABLE_EXPORT_LOG").unwrap_or_else(|_| {
            EnvFilter::new(format!("iterable_export={default},iterable_export_cli={default},warn"))
        });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(bars)
            .with_writer(SuspendingWriter { multi: multi.clone() })
            .try_init();
        Ui {
            multi,
            bars,
            summary: !quiet,
        }
    }

    /// A progress bar for one export: its position counts bytes, its message the records.
    pub fn bar(&self, name: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        let style = ProgressStyle::with_template(
            "{spinner} {prefix:<22} {msg:>19}  {decimal_bytes:>10}  {decimal_bytes_per_sec:>12}  {elapsed_precise}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// Prints a line to stderr without tearing the progress bars.
    pub fn line(&self, text: &str) {
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{text}");
        });
    }
}

/// Writes log lines to stderr while the progress bars step aside.
#[derive(Clone)]
struct SuspendingWriter {
    multi: MultiProgress,
}

struct LineWriter {
    multi: MultiProgress,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.multi.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for SuspendingWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            multi: self.multi.clone(),
        }
    }
}

/// `1234567` → `1.2 MB` style sizes (decimal units, as throughput is usually quoted).
pub fn human_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(1_234_567_890), "1.2 GB");
    }
}
