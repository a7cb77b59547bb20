//! The `squawk-linter` crate's rules, run on one file with what our runner knows about it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use squawk_linter::{Linter, Rule};
use squawk_syntax::SourceFile;

/// One squawk violation: the rule, the byte offset where it starts, and its message.
pub(crate) struct Violation {
    pub rule: Rule,
    pub offset: usize,
    pub message: String,
}

/// What squawk said about a file.
pub(crate) struct Outcome {
    pub violations: Vec<Violation>,
    /// Byte offsets and messages of the parse errors: squawk's rules may miss the statements
    /// there.
    pub parse_errors: Vec<(usize, String)>,
}

/// Runs `rules` on `text`. `in_transaction` is whether the runner wraps the file in a
/// transaction (squawk's `assume_in_transaction`). `Err` when squawk panicked.
pub(crate) fn run(text: &str, in_transaction: bool, rules: &[Rule]) -> Result<Outcome, String> {
    if rules.is_empty() {
        return Ok(Outcome {
            violations: Vec::new(),
            parse_errors: Vec::new(),
        });
    }
    catch_unwind(AssertUnwindSafe(|| {
        let parse = SourceFile::parse(text);
        let parse_errors = parse
            .errors()
            .into_iter()
            .map(|e| (usize::from(e.range().start()), e.message().to_owned()))
            .collect();
        let mut linter = Linter::from(rules.iter().copied());
        linter.settings.assume_in_transaction = in_transaction;
        let violations = linter
            .lint(&parse, text)
            .into_iter()
            .filter(|v| rules.contains(&v.code))
            .map(|v| Violation {
                rule: v.code,
                offset: usize::from(v.text_range.start()),
                message: v.message,
            })
            .collect();
        Outcome {
            violations,
            parse_errors,
        }
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}
