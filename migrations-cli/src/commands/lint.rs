//! `migrations lint [PATH...]`: the safety lint of SPEC section 6 (rules in `migrations-lint`).

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

use migrations_format::load_dir;
use migrations_lint::{all_rules, lint_directory, Finding, Options, Warning};

use crate::context::Context;
use crate::exit::Error;
use crate::output::Style;

pub fn run(
    ctx: &Context<'_>,
    paths: &[PathBuf],
    select: &[String],
    exclude: &[String],
    since: Option<&str>,
    list_rules: bool,
) -> Result<(), Error> {
    if list_rules {
        print_rules(ctx);
        return Ok(());
    }
    let mut dir = load_dir(&ctx.global.dir).map_err(Error::Files)?;
    ctx.substitute_for_lint(&mut dir);
    let options = Options::resolve(&dir.settings.lint, select, exclude, since, paths.to_vec())
        .map_err(|e| Error::Usage(e.to_string()))?;
    let report = lint_directory(&dir, &options).map_err(|e| Error::Usage(e.to_string()))?;

    for w in &report.warnings {
        ctx.out.warn(&w.to_string());
    }
    if !ctx.out.json() {
        // Findings are the errors of this command: printed even with -q.
        for f in &report.findings {
            stdout(&format!(
                "{}:{}:{}: {}: {}\n  {} {} (lock: {})",
                f.path.display(),
                f.line,
                f.column,
                ctx.out.paint(Style::Bad, f.rule),
                f.message,
                ctx.out.paint(Style::Dim, "fix:"),
                f.fix,
                f.lock
            ));
        }
        let n = report.findings.len();
        let summary = format!(
            "{} in {} file{} ({} migration{} linted)",
            match n {
                0 => "no findings".to_owned(),
                1 => "1 finding".to_owned(),
                n => format!("{n} findings"),
            },
            report.files,
            plural(report.files),
            report.migrations,
            plural(report.migrations),
        );
        let style = if n == 0 { Style::Good } else { Style::Bad };
        ctx.out.line(&ctx.out.paint(style, &summary));
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        // stdout stays one JSON document in JSON mode: the annotations go to stderr there
        // (the Actions runner reads workflow commands from both).
        let lines = report
            .findings
            .iter()
            .map(annotation)
            .chain(report.warnings.iter().map(warning_annotation));
        for line in lines {
            if ctx.out.json() {
                eprintln!("{line}");
            } else {
                stdout(&line);
            }
        }
    }
    ctx.out.document(json!({
        "command": "lint",
        "findings": report.findings.iter().map(finding_json).collect::<Vec<Value>>(),
        "counts": report.counts(),
        "migrations": report.migrations,
        "files": report.files,
        "warnings": report.warnings.iter().map(|w| json!({
            "path": w.path.display().to_string(),
            "line": w.line,
            "message": w.message,
        })).collect::<Vec<Value>>(),
    }));
    if report.findings.is_empty() {
        Ok(())
    } else {
        Err(Error::Findings)
    }
}

/// A line on stdout; a closed pipe (`| head`) is not worth a panic.
fn stdout(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "path": f.path.display().to_string(),
        "line": f.line,
        "column": f.column,
        "rule": f.rule,
        "origin": f.origin.as_str(),
        "message": f.message,
        "fix": f.fix,
        "lock": f.lock,
    })
}

fn print_rules(ctx: &Context<'_>) {
    let rules = all_rules();
    for r in &rules {
        let when = if r.default { "default" } else { "opt-in" };
        ctx.out
            .line(&format!("{} ({}, {when})", r.id, r.origin.as_str()));
        ctx.out.line(&format!("  lock: {}", r.lock));
        ctx.out.line(&format!("  fix: {}", r.fix));
    }
    ctx.out.document(json!({
        "command": "lint",
        "rules": rules.iter().map(|r| json!({
            "id": r.id,
            "origin": r.origin.as_str(),
            "default": r.default,
            "lock": r.lock,
            "fix": r.fix,
        })).collect::<Vec<Value>>(),
    }));
}

/// A GitHub Actions `::error` workflow command.
fn annotation(f: &Finding) -> String {
    format!(
        "::error file={},line={},col={},title={}::{}",
        escape_property(&f.path.display().to_string()),
        f.line,
        f.column,
        escape_property(f.rule),
        escape_data(&format!("{}\nfix: {} (lock: {})", f.message, f.fix, f.lock)),
    )
}

fn warning_annotation(w: &Warning) -> String {
    let line = w.line.map(|l| format!(",line={l}")).unwrap_or_default();
    format!(
        "::warning file={}{line}::{}",
        escape_property(&w.path.display().to_string()),
        escape_data(&w.message)
    )
}

/// Escapes a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_data("a%b\nc\r"), "a%25b%0Ac%0D");
        assert_eq!(escape_property("C:\\a,b"), "C%3A\\a%2Cb");
    }
}
