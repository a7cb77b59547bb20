//! The `squawk-linter` crate's rules, run on one file with what our runner knows about it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use squawk_linter::{Linter, Rule};
use squawk_syntax::{Parse, SourceFile};

/// One squawk violation: the rule, the byte offset where it starts, and its message.
pub(crate) struct Violation {
    pub rule: Rule,
    pub offset: usize,
    pub message: String,
}

/// Runs `rules` on `text`, already parsed as `parse` (the tree our rules read too).
/// `in_transaction` is whether the runner wraps the file in a transaction (squawk's
/// `assume_in_transaction`). `Err` when squawk panicked.
pub(crate) fn run(
    parse: &Parse<SourceFile>,
    text: &str,
    in_transaction: bool,
    rules: &[Rule],
) -> Result<Vec<Violation>, String> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    catch_unwind(AssertUnwindSafe(|| {
        let mut linter = Linter::from(rules.iter().copied());
        linter.settings.assume_in_transaction = in_transaction;
        linter
            .lint(parse, text)
            .into_iter()
            .filter(|v| rules.contains(&v.code))
            .map(|v| Violation {
                rule: v.code,
                offset: usize::from(v.text_range.start()),
                message: v.message,
            })
            .collect()
    }))
    .map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}
