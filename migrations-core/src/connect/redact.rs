//! Passwords out of connection strings and text, for printing.
//!
//! Two functions, and every connection string or message that may hold one is printed through
//! one of them: [`redact`] for a connection string on its own (a URL, a `key=value` string, or
//! whatever a user put in `DATABASE_URL`), [`redact_text`] for free text (log lines, messages)
//! that may quote one. The library's own messages never quote a connection string at all; these
//! are for `Debug` output and for programs (like the `migrations` CLI) that print text from
//! elsewhere.

use std::ops::Range;

/// What a connection string whose shape is not recognised is printed as: nothing of it.
const HIDDEN: &str = "***";

/// `conn` (a connection string) with every password replaced by `***`, for printing:
///
/// - a URL (`scheme://...`): the password of the user info (`user:secret@`; the user info ends
///   at the last `@`, so an unencoded `@`, `:` or `/` in the password is hidden too), the value
///   of every query parameter whose name ends in `password` (also percent-encoded names, and
///   values holding an unencoded `&`), and a "port" that is not a number (`postgres://u:secret/db`
///   lacks its `@host`, and what looks like a port is a password);
/// - `key=value` pairs (libpq's syntax: spaces around `=`, single-quoted values with
///   backslash escapes): the value of every key ending in `password`;
/// - anything else (no scheme, `postgres:/...`, `user:secret@host/db`, an unterminated quote,
///   ...): `***`, since there is no telling which part is the password.
///
/// Works on any input and never panics. Only user and host names, ports, the database name
/// and the other parameters are kept.
pub fn redact(conn: &str) -> String {
    if conn.trim().is_empty() {
        return conn.to_string();
    }
    if let Some(body) = url_body_start(conn) {
        return redact_url(conn, body);
    }
    match key_value_pairs(conn) {
        Some(pairs) => {
            let mut out = String::with_capacity(conn.len());
            let mut copied = 0;
            let secrets = pairs
                .into_iter()
                .filter(|pair| is_password_key(&conn[pair.key.clone()]))
                .map(|pair| pair.value);
            for range in secrets {
                out.push_str(&conn[copied..range.start]);
                out.push_str(HIDDEN);
                copied = range.end;
            }
            out.push_str(&conn[copied..]);
            out
        }
        None => HIDDEN.to_string(),
    }
}

/// `text` with the password of every URL in it (`scheme://user:secret@host`, see [`redact`])
/// and every `...password=value` pair (a quoted value up to its closing quote) replaced by
/// `***`. For free text: log lines, messages, `Debug` output. A URL ends at whitespace or, when
/// it is quoted (`"`, `'`, `` ` ``, `(`, `<`, `[` before it), at its last closing quote, so
/// `Some("postgres://u:***@h/d?password=***")` keeps its `")`. Text already redacted is left as
/// it is: `redact_text(&redact(x)) == redact(x)`.
///
/// Free text cannot be parsed: a password with unencoded spaces in a URL, or a connection
/// string without a scheme, cannot be found in it. Print connection strings through [`redact`]
/// instead of quoting them in messages.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        search = sep + 3;
        // The scheme: letters, digits, `+ - .` before `://`, starting with a letter.
        let mut start = sep;
        while start > copied && is_scheme_byte(text.as_bytes()[start - 1]) {
            start -= 1;
        }
        while start < sep && !text.as_bytes()[start].is_ascii_alphabetic() {
            start += 1;
        }
        if start == sep {
            continue;
        }
        let end = text[sep..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| sep + i);
        // A quoted URL ends at its last closing quote; what follows is not part of it.
        let closer = text[..start].chars().next_back().and_then(|c| match c {
            '"' | '\'' | '`' => Some(c),
            '(' => Some(')'),
            '<' => Some('>'),
            '[' => Some(']'),
            _ => None,
        });
        let url_end = closer
            .and_then(|c| text[sep..end].rfind(c).map(|i| sep + i))
            .unwrap_or(end);
        out.push_str(&redact_password_pairs(&text[copied..start]));
        out.push_str(&redact_url(&text[start..url_end], sep + 3 - start));
        copied = url_end;
        search = search.max(url_end);
    }
    out.push_str(&redact_password_pairs(&text[copied..]));
    out
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Where the body of a URL starts (after `scheme://`), when `s` (after leading whitespace) is
/// one: the scheme is a letter then letters, digits, `+ - .`.
pub(super) fn url_body_start(s: &str) -> Option<usize> {
    let trimmed = s.trim_start();
    let offset = s.len() - trimmed.len();
    let sep = trimmed.find("://")?;
    let scheme = &trimmed.as_bytes()[..sep];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| is_scheme_byte(b));
    valid.then_some(offset + sep + 3)
}

/// The URL `url` (its body starting at `body`) with its secrets hidden (see [`redact`]).
fn redact_url(url: &str, body: usize) -> String {
    let (head, rest) = url.split_at(body);
    let query_start = rest.find('?');
    let before_query = &rest[..query_start.unwrap_or(rest.len())];
    // The user info ends at the last `@` before the query; if the query holds an `@` while the
    // part before it does not, the password itself probably holds the `?`: hide up to the last
    // `@`.
    let at = match before_query.rfind('@') {
        Some(at) => Some(at),
        None if query_start.is_some() => rest.rfind('@'),
        None => None,
    };
    let mut out = String::with_capacity(url.len() + 3);
    out.push_str(head);
    let after = match at {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let (hostpath, query) = match after.find('?') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };
    let (hostspec, path) = match hostpath.find('/') {
        Some(i) => hostpath.split_at(i),
        None => (hostpath, ""),
    };
    out.push_str(&redact_hostspec(hostspec));
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_query(query));
    }
    out
}

/// `host:port,...` with everything from the first port that is not a number on hidden: with
/// no `@`, `postgres://user:secret/db` puts the password where the port goes.
fn redact_hostspec(hostspec: &str) -> String {
    let mut offset = 0;
    for item in hostspec.split(',') {
        let port_colon = match item.strip_prefix('[') {
            Some(bracketed) => bracketed
                .find(']')
                .and_then(|close| item[close + 2..].starts_with(':').then_some(close + 2)),
            None => item.find(':'),
        };
        if let Some(colon) = port_colon {
            let port = &item[colon + 1..];
            if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
                return format!("{}:{HIDDEN}", &hostspec[..offset + colon]);
            }
        }
        offset += item.len() + 1;
    }
    hostspec.to_string()
}

/// A URL's query with the value of every `...password` parameter hidden. A value runs to the
/// next `&` that starts another `name=value` pair, so an unencoded `&` in a password does not
/// show the rest of it.
fn redact_query(query: &str) -> String {
    let starts_pair = |segment: &str| {
        segment.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'%' | b'.' | b'-'))
        })
    };
    let mut out = String::with_capacity(query.len());
    let mut hiding = false;
    for (i, segment) in query.split('&').enumerate() {
        if i > 0 && (starts_pair(segment) || !hiding) {
            hiding = false;
        }
        if hiding {
            continue;
        }
        if i > 0 {
            out.push('&');
        }
        match segment.split_once('=') {
            Some((name, _)) if starts_pair(segment) && is_password_key(&lenient_decode(name)) => {
                out.push_str(name);
                out.push('=');
                out.push_str(HIDDEN);
                hiding = true;
            }
            _ => out.push_str(segment),
        }
    }
    out
}

/// A parameter or keyword that holds a secret: `password`, `sslpassword`, any case.
fn is_password_key(name: &str) -> bool {
    name.len() >= 8
        && name.is_char_boundary(name.len() - 8)
        && name[name.len() - 8..].eq_ignore_ascii_case("password")
}

/// Percent-decodes what decodes, keeps the rest (for recognising names only).
fn lenient_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One `key=value` pair of a libpq connection string: the byte ranges of its key and of its
/// value as written (quotes and escapes included; see [`unquote`]).
pub(super) struct Pair {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// When all of `s` is libpq `key=value` pairs (`key = 'quoted \' value' key2=plain`), the
/// pairs; `None` when it is not that shape. The one tokenizer of that syntax: redaction and
/// resolution (which hands the values on to `tokio_postgres`) both use it, so they agree on
/// where every value, and so every password, is.
pub(super) fn key_value_pairs(s: &str) -> Option<Vec<Pair>> {
    let b = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut pairs = Vec::new();
    let mut i = skip_ws(0);
    while i < b.len() {
        let key_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let key = key_start..i;
        i = skip_ws(i);
        if key.is_empty() || b.get(i) != Some(&b'=') {
            return None;
        }
        // As libpq: after `=` and any spaces, the value (which may look like `key=...`).
        i = skip_ws(i + 1);
        let value_start = i;
        if b.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => break,
                    Some(_) => i += 1,
                }
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
        }
        i = i.min(b.len());
        pairs.push(Pair {
            key,
            value: value_start..i,
        });
        i = skip_ws(i);
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// A value of [`key_value_pairs`] as it means: `'a \' b'` is `a ' b`, `a\ b` is `a b`.
pub(super) fn unquote(raw: &str) -> String {
    let inner = match raw.strip_prefix('\'') {
        Some(quoted) => quoted.strip_suffix('\'').unwrap_or(quoted),
        None => raw,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Hides the value of every `...password = value` in free text. A value is single-quoted (to
/// its closing quote, backslash escapes; unterminated: to the end) or runs to whitespace or
/// `&`. A value that is already `***` followed by punctuation is left as it is.
fn redact_password_pairs(s: &str) -> String {
    const KEY: &[u8] = b"password";
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i + KEY.len() <= bytes.len() {
        if !bytes[i..i + KEY.len()].eq_ignore_ascii_case(KEY) {
            i += 1;
            continue;
        }
        let mut j = i + KEY.len();
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            i += 1;
            continue;
        }
        j += 1;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        let value_start = j;
        let already = bytes[j..].starts_with(HIDDEN.as_bytes())
            && bytes.get(j + HIDDEN.len()).is_none_or(|&c| {
                c.is_ascii_whitespace()
                    || matches!(
                        c,
                        b'"' | b'\'' | b'`' | b')' | b']' | b'}' | b'>' | b',' | b';' | b'&'
                    )
            });
        if already {
            j += HIDDEN.len();
        } else if j < bytes.len() && bytes[j] == b'\'' {
            // A quoted value of a key=value string, with backslash escapes.
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'&' {
                j += 1;
            }
        }
        // All positions are at ASCII bytes (or the end), so these are char boundaries.
        out.push_str(&s[copied..value_start]);
        out.push_str(HIDDEN);
        copied = j;
        i = j.max(i + 1);
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            (
                "postgresql://u:p@ss/w@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            ("postgres://u:@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=secret&sslmode=x",
                "postgres://h/db?user=u&password=***&sslmode=x",
            ),
            (
                "postgres://h/db?PassWord=secret",
                "postgres://h/db?PassWord=***",
            ),
            // A percent-encoded name is the same parameter to the parser.
            (
                "postgres://h/db?pass%77ord=secret&a=b",
                "postgres://h/db?pass%77ord=***&a=b",
            ),
            // An unencoded `&` in the value: hidden up to the next `name=value`.
            (
                "postgres://h/db?password=se&cr&et&sslmode=x",
                "postgres://h/db?password=***&sslmode=x",
            ),
            (
                "postgres://h/db?sslpassword=k",
                "postgres://h/db?sslpassword=***",
            ),
            ("postgres://u:se?cret@h/db", "postgres://u:***@h/db"),
            // No `@host`: what stands where the port goes is the password.
            ("postgres://app:S3cr3tX/prod", "postgres://app:***/prod"),
            ("postgres://app:S3cr3tX", "postgres://app:***"),
            ("postgres://app:S3,cr3t/d", "postgres://app:***/d"),
            ("postgres://h:123456/d", "postgres://h:***/d"),
            ("postgres://[::1]:x/d", "postgres://[::1]:***/d"),
            // Ports that are numbers stay, IPv6 and several hosts too.
            (
                "postgres://u:pw@[::1]:5432,h2:6432/d",
                "postgres://u:***@[::1]:5432,h2:6432/d",
            ),
            // A password holding the host name.
            (
                "postgres://u:db.example@db.example/d",
                "postgres://u:***@db.example/d",
            ),
            ("  postgres://u:pw@h/d", "  postgres://u:***@h/d"),
            ("mysql://u:pw@h/d", "mysql://u:***@h/d"),
            // key=value pairs, libpq's syntax.
            (
                "host=h password=secret user=u",
                "host=h password=*** user=u",
            ),
            (
                "host=h password = 'sec ret\\' x' user=u",
                "host=h password = *** user=u",
            ),
            ("host = h password = S3cr3tX", "host = h password = ***"),
            ("password='a b'", "password=***"),
            ("password= host=h", "password= ***"),
            ("password=", "password=***"),
            ("", ""),
            ("postgres://", "postgres://"),
            ("postgres://u:é€@h/d", "postgres://u:***@h/d"),
            // Shapes with no telling where the password is: nothing shown.
            ("postgresql//app:S3cr3tX@db/prod", "***"),
            ("postgres:/u:S3cr3tX@h/d", "***"),
            ("postgres:u:S3cr3tX@h/d", "***"),
            ("u:S3cr3tX@h/d", "***"),
            ("//u:S3cr3tX@h/d", "***"),
            ("x postgres://u:S3cr3tX@h/d", "***"),
            ("host=h password='unterminated S3cr3tX", "***"),
            ("host=h password=a S3cr3tX", "***"),
            ("no password here: mypassword=x", "***"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
            assert_eq!(redact(&redact(input)), expected, "twice: {input}");
        }
    }

    #[test]
    fn redacts_text() {
        let cases = [
            (
                "could not reach postgres://app:s3cret@db:5432/x (refused); also password=hunter2 here",
                "could not reach postgres://app:***@db:5432/x (refused); also password=*** here",
            ),
            ("no secrets here", "no secrets here"),
            // Quoted URLs keep their closing quote; a redacted value is left alone.
            (
                "connecting (ConnectOptions { url: Some(\"postgres://u:***@h/d?password=***\"), x })",
                "connecting (ConnectOptions { url: Some(\"postgres://u:***@h/d?password=***\"), x })",
            ),
            (
                "Some(\"postgres://u:s3cret@h/d?password=s3cret\"), next",
                "Some(\"postgres://u:***@h/d?password=***\"), next",
            ),
            ("url `postgres://u:pw@h/d`: bad", "url `postgres://u:***@h/d`: bad"),
            ("(postgres://u:pw@h/d)", "(postgres://u:***@h/d)"),
            (
                "a host=h password='a b' c",
                "a host=h password=*** c",
            ),
            ("password='a\\'b c' d", "password=*** d"),
            ("password = s3cret, then", "password = *** then"),
            ("PASSWORD=x", "PASSWORD=***"),
            ("sslpassword=x", "sslpassword=***"),
            ("password authentication failed", "password authentication failed"),
            ("two postgres://a:1@h and postgres://b:2@h", "two postgres://a:***@h and postgres://b:***@h"),
            ("://u:p@h", "://u:p@h"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_text(input), expected, "{input}");
            assert_eq!(redact_text(expected), expected, "idempotent: {expected}");
        }
    }

    #[test]
    fn redact_never_panics() {
        let samples = [
            "postgres://u:p@h/d?password=x&a=b",
            "pä:ß://@@::??password=='é\\",
            "password='unterminated \\",
            "://:@?&=#password",
            "x://[é]:é,[::1]:ü/d?pass%7=é&&=",
            "a=' \\é' password=\\é",
        ];
        for s in samples {
            for (i, _) in s.char_indices() {
                for (j, _) in s.char_indices().filter(|(j, _)| *j >= i) {
                    let _ = redact(&s[i..j]);
                    let _ = redact_text(&s[i..j]);
                }
                let _ = redact(&s[i..]);
                let _ = redact_text(&s[i..]);
            }
        }
    }

    #[test]
    fn tokenizes_key_value_pairs() {
        let s = r"host=h  password = 'a \' b' port=5432 options=-c\ x=1 empty=''";
        let pairs = key_value_pairs(s).unwrap();
        let got: Vec<(&str, String)> = pairs
            .iter()
            .map(|p| (&s[p.key.clone()], unquote(&s[p.value.clone()])))
            .collect();
        assert_eq!(
            got,
            [
                ("host", "h".to_string()),
                ("password", "a ' b".to_string()),
                ("port", "5432".to_string()),
                ("options", "-c x=1".to_string()),
                ("empty", String::new()),
            ]
        );
        for not_pairs in ["", "  ", "host", "host=h x", "a='b", "mysql://u@h/d", "=x"] {
            assert!(key_value_pairs(not_pairs).is_none(), "{not_pairs}");
        }
    }
}
