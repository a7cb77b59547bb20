//! The runner's `log` records on stderr, with any URL password redacted: the connection
//! wait's notice unless `-q`; every record down to debug with `-v`.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if log::max_level() >= LevelFilter::Debug {
            return metadata.level() <= Level::Debug;
        }
        // Without -v, only the connection wait's notice: the CLI prints the runner's other
        // news itself (the lock wait and report warnings are `warning:` lines), and saying
        // them twice would be noise.
        metadata.level() <= Level::Info
            && metadata
                .target()
                .starts_with("migrations_core::connect::wait")
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let text = crate::redact::redact_text(&record.args().to_string());
            eprintln!("[{}] {text}", record.level().as_str().to_lowercase());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

pub fn init(debug: bool, quiet: bool) {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(if debug {
            LevelFilter::Debug
        } else if quiet {
            LevelFilter::Off
        } else {
            LevelFilter::Info
        });
    }
}
