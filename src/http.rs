//! Limits on what an HTTP client may make a worker wait for and hold, shared by the two built-in
//! HTTP layers (the sync demo's parser and the async workers' hyper): gunicorn's
//! `--keep-alive`, `--limit-request-line`, `--limit-request-fields` and
//! `--limit-request-field_size`, plus a request-head read timeout.
//!
//! What each bound does, on either layer:
//!
//! | bound | when it is exceeded |
//! |---|---|
//! | `header_timeout` | the connection is closed: the request head (request line and headers) did not arrive within it, counted from the moment the worker took the connection, or, between keep-alive requests, from the end of the previous request |
//! | `keep_alive` | an idle keep-alive connection (no request under way) is closed that long after its last request ended (async workers; sync workers serve one request per connection) |
//! | `request_line` | `414 URI Too Long`, and the connection is closed |
//! | `request_fields` | `431 Request Header Fields Too Large`, connection closed |
//! | `request_field_size` | `431 Request Header Fields Too Large`, connection closed |
//!
//! A request under way is never cut by these: once its head is read, only the arbiter's
//! `--timeout` bounds it.

use std::time::Duration;

/// Largest `request_line` (gunicorn's cap).
pub const MAX_REQUEST_LINE: usize = 8190;
/// Largest `request_fields` (gunicorn's cap).
pub const MAX_REQUEST_FIELDS: usize = 32768;
/// Largest `request_field_size` accepted.
pub const MAX_REQUEST_FIELD_SIZE: usize = 1 << 20;

/// What a client may make a worker wait for and hold. Defaults are gunicorn's; the header timeout
/// (gunicorn has none: its sync worker reads under `--timeout`) is 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long an idle keep-alive connection is kept open (`--keep-alive`, 2 s).
    pub keep_alive: Duration,
    /// How long a request head may take to arrive (`--header-timeout`, 10 s).
    pub header_timeout: Duration,
    /// Longest request line in bytes, without its CRLF; 0: up to [`MAX_REQUEST_LINE`]
    /// (`--limit-request-line`, 4094).
    pub request_line: usize,
    /// Most header fields in one request (`--limit-request-fields`, 100).
    pub request_fields: usize,
    /// Longest header field in bytes (`name: value`, without its CRLF); 0: up to
    /// [`MAX_REQUEST_FIELD_SIZE`] (`--limit-request-field_size`, 8190).
    pub request_field_size: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            keep_alive: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            request_line: 4094,
            request_fields: 100,
            request_field_size: 8190,
        }
    }
}

/// A request head over one of the limits: the status to answer before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The request line is longer than `request_line`.
    #[error("request line longer than {limit} bytes")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// More header fields than `request_fields`.
    #[error("more than {limit} header fields")]
    TooManyFields {
        /// The limit in force.
        limit: usize,
    },
    /// A header field longer than `request_field_size`.
    #[error("a header field longer than {limit} bytes")]
    FieldTooLong {
        /// The limit in force.
        limit: usize,
    },
}

impl HeadError {
    /// The HTTP status answered: 414 for the request line, 431 for header fields.
    pub fn status(self) -> u16 {
        match self {
            HeadError::LineTooLong { .. } => 414,
            HeadError::TooManyFields { .. } | HeadError::FieldTooLong { .. } => 431,
        }
    }
}

impl HttpLimits {
    /// The request-line limit in force (0 means the cap).
    pub fn line_limit(&self) -> usize {
        if self.request_line == 0 { MAX_REQUEST_LINE } else { self.request_line.min(MAX_REQUEST_LINE) }
    }

    /// The field-count limit in force.
    pub fn fields_limit(&self) -> usize {
        self.request_fields.clamp(1, MAX_REQUEST_FIELDS)
    }

    /// The field-size limit in force (0 means the cap).
    pub fn field_size_limit(&self) -> usize {
        if self.request_field_size == 0 {
            MAX_REQUEST_FIELD_SIZE
        } else {
            self.request_field_size.min(MAX_REQUEST_FIELD_SIZE)
        }
    }

    /// The most bytes a head within every limit can take (request line, fields, CRLFs): what a
    /// reader buffers at most before answering 431.
    pub fn max_head(&self) -> usize {
        (self.line_limit() + 2)
            .saturating_add(self.fields_limit().saturating_mul(self.field_size_limit() + 2))
            .saturating_add(2)
    }

    /// Checks a request line's length (`METHOD TARGET VERSION`, without CRLF).
    pub fn check_line(&self, len: usize) -> Result<(), HeadError> {
        let limit = self.line_limit();
        if len > limit { Err(HeadError::LineTooLong { limit }) } else { Ok(()) }
    }

    /// Checks the header fields: their number and each one's size (`name.len() + 2 + value.len()`).
    pub fn check_fields(&self, fields: impl IntoIterator<Item = (usize, usize)>) -> Result<(), HeadError> {
        let (count_limit, size_limit) = (self.fields_limit(), self.field_size_limit());
        let mut n = 0;
        for (name, value) in fields {
            n += 1;
            if n > count_limit {
                return Err(HeadError::TooManyFields { limit: count_limit });
            }
            if name + 2 + value > size_limit {
                return Err(HeadError::FieldTooLong { limit: size_limit });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_the_cap_and_limits_are_inclusive() {
        let l = HttpLimits {
            request_line: 10,
            request_fields: 2,
            request_field_size: 8,
            ..HttpLimits::default()
        };
        assert_eq!(l.check_line(10), Ok(()));
        assert_eq!(l.check_line(11), Err(HeadError::LineTooLong { limit: 10 }));
        assert_eq!(l.check_fields([(1, 5), (3, 3)]), Ok(()));
        assert_eq!(l.check_fields([(1, 6)]), Err(HeadError::FieldTooLong { limit: 8 }));
        assert_eq!(l.check_fields([(1, 1); 3]), Err(HeadError::TooManyFields { limit: 2 }));
        let unlimited = HttpLimits { request_line: 0, request_field_size: 0, ..l };
        assert_eq!(unlimited.check_line(MAX_REQUEST_LINE), Ok(()));
        assert!(unlimited.check_line(MAX_REQUEST_LINE + 1).is_err());
        assert_eq!(unlimited.check_fields([(1, MAX_REQUEST_FIELD_SIZE - 3)]), Ok(()));
        assert!(unlimited.max_head() > MAX_REQUEST_LINE + 2 * MAX_REQUEST_FIELD_SIZE);
    }
}
