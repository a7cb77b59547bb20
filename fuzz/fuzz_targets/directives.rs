//! The header directive parser: `directive::parse_header` (and `parse_comment`,
//! `parse_duration` through it).
//!
//! Invariants beyond "no panic": every reported line exists in the input; a line reported as
//! holding a directive is a `--` comment line; an accepted header's directives stand on
//! comment lines of the header (before the first SQL line); every error message is non-empty;
//! the parse depends only on the header, so appending SQL after it changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrations_format::directive::{parse_comment, parse_duration, parse_header};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;
    let lines: Vec<&str> = text.lines().collect();
    let is_comment_line = |line: u32| {
        line >= 1
            && lines
                .get(line as usize - 1)
                .is_some_and(|l| l.trim().starts_with("--"))
    };
    let result = parse_header(text);
    match &result {
        Ok(d) => {
            if let Some(line) = d.no_transaction {
                assert!(is_comment_line(line), "{line} in {text:?}");
            }
            for (rule, line) in &d.lint_ignore {
                assert!(!rule.is_empty());
                assert!(is_comment_line(*line), "{line} in {text:?}");
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(is_comment_line(e.line), "{} in {text:?}", e.line);
                assert!(!e.message.is_empty());
            }
        }
    }
    // SQL after the header does not change it (the header ends at the first SQL line).
    if !text.contains('\r') {
        let mut longer = text.to_owned();
        if !longer.is_empty() && !longer.ends_with('\n') {
            longer.push('\n');
        }
        longer.push_str("SELECT 1;\n-- migrations:bogus\n");
        assert_eq!(parse_header(&longer), result, "{text:?}");
    }
    // Each line on its own, as a comment body and as a duration.
    for line in lines.iter().take(16) {
        if let Some(Err(message)) = parse_comment(line) {
            assert!(!message.is_empty());
        }
        if let Ok(d) = parse_duration(line) {
            assert!(d.as_millis() <= u128::from(u64::MAX));
        }
    }
});
