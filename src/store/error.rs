//! A store that could not answer, and store addresses as they may be shown.

/// A store address with any password replaced, for messages and logs: the URL form
/// (`postgres://user:password@host/db`, `?password=` too) and libpq's `key=value` form
/// (`host=db password=secret`, quoted values included).
pub fn redact(address: &str) -> String {
    let mut out = match (address.find("://"), address.rfind('@')) {
        (Some(s), Some(at)) if at > s => match address[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &address[..s + 3], &address[at..]),
            None => address.to_owned(),
        },
        _ => address.to_owned(),
    };
    // `password=` as a query parameter or a key=value pair: its value, to the next separator
    // (or the closing quote of a quoted value), is hidden.
    let mut from = 0;
    while let Some(i) = out[from..].find("password=").map(|i| from + i) {
        let starts_key = i == 0 || matches!(out.as_bytes()[i - 1], b' ' | b'\t' | b'?' | b'&');
        let v = i + "password=".len();
        if !starts_key {
            from = v;
            continue;
        }
        let end = if out[v..].starts_with('\'') {
            let mut j = v + 1;
            let bytes = out.as_bytes();
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(out.len())
        } else {
            out[v..].find([' ', '\t', '&']).map_or(out.len(), |k| v + k)
        };
        out.replace_range(v..end, "***");
        from = v + 3;
    }
    out
}

/// A store that could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is unreachable (the database went away, ...).
    #[error("registry store unavailable: {0}")]
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_in_messages() {
        assert_eq!(redact("postgres://herd:s3cret@db:5432/x"), "postgres://herd:***@db:5432/x");
        assert_eq!(redact("postgres://herd@db/x"), "postgres://herd@db/x");
        assert_eq!(redact("host=/tmp dbname=x"), "host=/tmp dbname=x");
        assert_eq!(redact("host=db password=s3cret dbname=x"), "host=db password=*** dbname=x");
        assert_eq!(redact("password='s3 \\' cret' host=db"), "password=*** host=db");
        assert_eq!(
            redact("postgres://herd@db/x?password=s3cret&sslmode=off"),
            "postgres://herd@db/x?password=***&sslmode=off"
        );
        assert_eq!(redact("host=db mypassword=x"), "host=db mypassword=x", "only the password key");
        for secret in
            ["host=db password=s3cret", "postgres://u:s3cret@h/d", "password='s3cret'", "x?password=s3cret"]
        {
            assert!(!redact(secret).contains("s3cret"), "{secret}");
        }
    }
}
