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
            let line = format!("[{}] {text}", record.level().as_str().to_lowercase());
            let mut held = held();
            let me = std::thread::current().id();
            match held.iter_mut().find(|(id, _)| *id == me) {
                Some((_, Some(lines))) => lines.push(line),
                _ => eprintln!("{line}"),
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Threads whose records are held ([`hold_this_thread`]): `Some` with the records held so
/// far, `None` once released (its records print as they come).
type Held = Vec<(std::thread::ThreadId, Option<Vec<String>>)>;

static HELD: std::sync::Mutex<Held> = std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Held> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds this thread's records instead of printing them, until [`release`] (unless it came
/// first): a connection opened ahead of need says nothing unless it is used.
pub fn hold_this_thread() {
    let mut held = held();
    let me = std::thread::current().id();
    if !held.iter().any(|(id, _)| *id == me) {
        held.push((me, Some(Vec::new())));
    }
}

/// Prints the records `thread` held, and its later ones as they come.
pub fn release(thread: std::thread::ThreadId) {
    let mut held = held();
    match held.iter_mut().find(|(id, _)| *id == thread) {
        Some((_, lines)) => {
            for line in lines.take().unwrap_or_default() {
                eprintln!("{line}");
            }
        }
        None => held.push((thread, None)),
    }
}

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
