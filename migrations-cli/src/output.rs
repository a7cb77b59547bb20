//! Everything the CLI prints: results on stdout (text or one JSON document), diagnostics on
//! stderr, colour only on a terminal (or when asked), and a live line per running migration.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::cli::{ColorChoice, Format, Global};

pub struct Output {
    pub format: Format,
    pub quiet: bool,
    color: bool,
    live: bool,
    /// Fields learnt while a command ran (`lock_holder`), added to its JSON document. A
    /// mutex, not a cell: the engine's event callback, which adds them, must be `Send`.
    extra: std::sync::Mutex<serde_json::Map<String, Value>>,
}

/// Styles for text output.
#[derive(Clone, Copy)]
pub enum Style {
    Good,
    Bad,
    Warn,
    Dim,
}

impl Output {
    pub fn new(global: &Global) -> Output {
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_tty && !no_color,
        };
        Output {
            format: global.format,
            quiet: global.quiet,
            color,
            live: global.format == Format::Text && !global.quiet && std::io::stderr().is_terminal(),
            extra: Default::default(),
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    pub fn paint(&self, style: Style, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match style {
            Style::Good => "32",
            Style::Bad => "31",
            Style::Warn => "33",
            Style::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// A line of text results (nothing in JSON mode or with -q).
    pub fn line(&self, text: &str) {
        if self.format == Format::Text && !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        }
    }

    /// A field for the command's JSON document, learnt while it ran (see [`Output::document`]).
    pub fn add_field(&self, key: &str, value: Value) {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        extra.insert(key.to_owned(), value);
    }

    /// The fields given to [`Output::add_field`] so far.
    pub fn extra_fields(&self) -> serde_json::Map<String, Value> {
        self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The JSON document of a command (JSON mode only), with the fields learnt while it ran.
    pub fn document(&self, mut value: Value) {
        if let Some(object) = value.as_object_mut() {
            for (key, field) in self.extra_fields() {
                object.entry(key).or_insert(field);
            }
        }
        if self.format == Format::Json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
    }

    /// A warning on stderr (also in JSON mode: stdout stays one document).
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            eprintln!("{} {text}", self.paint(Style::Warn, "warning:"));
        }
    }

    /// A live spinner with elapsed time for a running migration, on a terminal only.
    pub fn live(&self, message: String) -> Option<ProgressBar> {
        if !self.live {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    }
}

/// The session holding the migrations lock, for JSON: `{ "pid", "application_name", "since" }`
/// (`since` RFC 3339, or `null` when the server hides it).
pub fn holder_json(holder: &migrations_core::LockHolder) -> Value {
    serde_json::json!({
        "pid": holder.pid,
        "application_name": holder.application_name,
        "since": holder.since_rfc3339(),
    })
}

/// Milliseconds, for JSON.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
