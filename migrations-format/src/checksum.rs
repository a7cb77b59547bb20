//! Text normalisation and the SHA-256 checksum: the one function the macro, the CLI and the lock
//! file all call, so the three agree bit for bit.

use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;

const BOM: &str = "\u{feff}";

/// Drops a leading byte-order mark and turns CRLF and lone CR into LF.
///
/// Borrows when there is nothing to change, which is the common case.
pub fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// SHA-256 of a migration file's normalised text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// Checksums text that is already normalised (see [`normalize`]).
    pub fn of_normalized(text: &str) -> Checksum {
        Checksum(Sha256::digest(text.as_bytes()).into())
    }

    /// Normalises, then checksums: what every caller holding raw file text wants.
    ///
    /// This is the one checksum of the format: the macro, the loader and the lock file all call
    /// it, so a BOM or CRLF line endings (an editor's or git's doing) never change a checksum.
    ///
    /// ```
    /// use migrations_format::Checksum;
    ///
    /// let lf = Checksum::of_file_text("CREATE TABLE t ();\n");
    /// let crlf = Checksum::of_file_text("\u{feff}CREATE TABLE t ();\r\n");
    /// assert_eq!(lf, crlf);
    /// assert_eq!(lf.to_hex().len(), 64);
    /// ```
    pub fn of_file_text(raw: &str) -> Checksum {
        Checksum::of_normalized(&normalize(raw))
    }

    /// The 32 raw bytes of the SHA-256 digest (use [`Checksum::to_hex`] for the text form
    /// stored in the history table and the lock file).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Checksum> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Checksum(bytes))
    }
}

/// The digest of one applied migration in the chain digest (see [`crate::chain_digest`]):
/// SHA-256 of `version:checksum:mode` (`mode` `t` for no-transaction, `f` otherwise).
///
/// The history's trigger computes the same bytes on the server for each applied row
/// (`migrations-core`'s `sql.rs`, `row_digest`), so the two must change together.
pub fn chain_item(version: i64, checksum: &str, no_transaction: bool) -> [u8; 32] {
    let mode = if no_transaction { 't' } else { 'f' };
    Sha256::digest(format!("{version}:{checksum}:{mode}").as_bytes()).into()
}

/// XORs `item` into `acc`: adding an item to a chain digest, or taking it out again.
pub fn xor_into(acc: &mut [u8; 32], item: &[u8; 32]) {
    for (a, b) in acc.iter_mut().zip(item) {
        *a ^= b;
    }
}

/// Lowercase hex digits of `bytes`, by table (a formatter call per byte cost 6% of loading a
/// directory of 2,000 files).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_bom_and_line_endings() {
        assert_eq!(normalize("\u{feff}a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(normalize("a\r\r\nb"), "a\n\nb");
        assert!(matches!(normalize("plain\n"), Cow::Borrowed(_)));
        // Only a leading BOM is dropped.
        assert_eq!(normalize("a\u{feff}"), "a\u{feff}");
    }

    #[test]
    fn variants_share_a_checksum() {
        let lf = Checksum::of_file_text("CREATE TABLE t ();\nSELECT 1;\n");
        for variant in [
            "\u{feff}CREATE TABLE t ();\nSELECT 1;\n",
            "CREATE TABLE t ();\r\nSELECT 1;\r\n",
            "\u{feff}CREATE TABLE t ();\rSELECT 1;\r",
        ] {
            assert_eq!(Checksum::of_file_text(variant), lf);
        }
        assert_ne!(Checksum::of_file_text("CREATE TABLE t ();"), lf);
    }

    #[test]
    fn hex_is_sha256_lowercase() {
        // SHA-256 of the empty string.
        assert_eq!(
            Checksum::of_normalized("").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let c = Checksum::of_normalized("x");
        assert_eq!(Checksum::from_hex(&c.to_hex()), Some(c));
        assert_eq!(Checksum::from_hex("zz"), None);
        assert_eq!(Checksum::from_hex(&"é".repeat(32)), None);
    }
}
