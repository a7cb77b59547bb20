//! Passwords never reach the terminal: every message the CLI prints passes through
//! [`redact_text`], which hides the password of any URL or `password=` pair in it.

use migrations_core::connect::redact;

/// `text` with the password of every URL (`scheme://user:secret@host`) and every
/// `password=...` pair replaced by `***`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if piece.contains("://") || piece.to_ascii_lowercase().contains("password=") {
            out.push_str(&redact(piece));
        } else {
            out.push_str(piece);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_text;

    #[test]
    fn hides_passwords_in_text() {
        let text =
            "could not reach postgres://app:s3cret@db:5432/x (refused); also password=hunter2 here";
        let red = redact_text(text);
        assert!(!red.contains("s3cret"), "{red}");
        assert!(!red.contains("hunter2"), "{red}");
        assert!(red.contains("postgres://app:***@db:5432/x"), "{red}");
        assert_eq!(redact_text("no secrets here"), "no secrets here");
    }
}
