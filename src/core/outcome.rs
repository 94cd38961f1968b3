//! What one attempt's result means for the entry: done, conflict, retry,
//! paused for auth, or failed.
//!
//! In scope: the mapping from an HTTP status (or a network error / timeout)
//! to an [`Outcome`], per the "Outcome of each attempt" rules of the design.
//!
//! Out of scope: when to retry (see [`super::retry`]), how a conflict is
//! resolved (see [`super::conflict`]), and the entry's state changes, which
//! the queue applies from the outcome.

/// How an attempt ended, as seen by the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The server answered.
    Response {
        /// The HTTP status code.
        status: u16,
        /// The `Retry-After` header, already parsed to ms from now.
        retry_after_ms: Option<u64>,
    },
    /// The fetch failed without an answer (offline, DNS, dropped connection).
    NetworkError,
    /// The attempt timed out before an answer arrived.
    Timeout,
}

/// What to do with the entry after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server accepted the mutation.
    Done,
    /// 409/412. `verify_first` is true for a 412 on a replay whose earlier
    /// attempt may have been applied: compare with the remote state before
    /// calling it a conflict.
    Conflict {
        /// Check whether the mutation was already applied before resolving.
        verify_first: bool,
    },
    /// 408, 425, 429, 5xx, network errors, timeouts.
    Retry {
        /// The server's `Retry-After`, when it sent one.
        after_ms: Option<u64>,
        /// True for network errors, which do not use up max attempts;
        /// timeouts and server answers are false.
        offline: bool,
    },
    /// 401/403: paused until the page provides fresh auth.
    PausedAuth,
    /// Any other 4xx, and anything unexpected (1xx, 3xx, out of range):
    /// failed, kept as a dead letter.
    Failed {
        /// The status that failed the entry.
        status: u16,
    },
}

/// Classifies one attempt of a `method` request.
///
/// `is_replay`: the attempt is a replay from the queue, not the page's first
/// try. `earlier_attempt_uncertain`: a previous attempt of this entry ended by
/// a timeout or a dropped connection, so it may have been applied.
pub fn classify(
    method: &str,
    result: &AttemptResult,
    is_replay: bool,
    earlier_attempt_uncertain: bool,
) -> Outcome {
    let (status, retry_after_ms) = match *result {
        AttemptResult::Response {
            status,
            retry_after_ms,
        } => (status, retry_after_ms),
        AttemptResult::NetworkError => {
            return Outcome::Retry {
                after_ms: None,
                offline: true,
            }
        }
        AttemptResult::Timeout => {
            return Outcome::Retry {
                after_ms: None,
                offline: false,
            }
        }
    };
    match status {
        200..=299 => Outcome::Done,
        // The entity is already gone: an earlier attempt (or someone else)
        // deleted it, which is what this DELETE wanted.
        404 | 410 if is_replay && method.eq_ignore_ascii_case("DELETE") => Outcome::Done,
        409 => Outcome::Conflict {
            verify_first: false,
        },
        412 => Outcome::Conflict {
            verify_first: is_replay && earlier_attempt_uncertain,
        },
        408 | 425 | 429 | 500..=599 => Outcome::Retry {
            after_ms: retry_after_ms,
            offline: false,
        },
        401 | 403 => Outcome::PausedAuth,
        _ => Outcome::Failed { status },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> AttemptResult {
        AttemptResult::Response {
            status,
            retry_after_ms: None,
        }
    }

    fn retry(after_ms: Option<u64>) -> Outcome {
        Outcome::Retry {
            after_ms,
            offline: false,
        }
    }

    fn conflict(verify_first: bool) -> Outcome {
        Outcome::Conflict { verify_first }
    }

    #[test]
    fn every_row_of_the_outcome_table() {
        use Outcome::*;
        // (method, result, is_replay, earlier_attempt_uncertain, expected)
        let rows: Vec<(&str, AttemptResult, bool, bool, Outcome)> = vec![
            ("POST", response(200), false, false, Done),
            ("PUT", response(201), true, false, Done),
            ("PATCH", response(204), true, true, Done),
            ("POST", response(299), true, false, Done),
            ("DELETE", response(404), true, false, Done),
            ("delete", response(410), true, true, Done),
            ("Delete", response(404), true, true, Done),
            (
                "DELETE",
                response(404),
                false,
                false,
                Failed { status: 404 },
            ),
            ("PUT", response(404), true, true, Failed { status: 404 }),
            ("PUT", response(410), true, false, Failed { status: 410 }),
            ("PUT", response(409), false, false, conflict(false)),
            ("PUT", response(409), true, true, conflict(false)),
            ("PUT", response(412), false, false, conflict(false)),
            ("PUT", response(412), false, true, conflict(false)),
            ("PUT", response(412), true, false, conflict(false)),
            ("PUT", response(412), true, true, conflict(true)),
            ("POST", response(408), true, false, retry(None)),
            ("POST", response(425), true, false, retry(None)),
            ("POST", response(429), true, false, retry(None)),
            ("POST", response(500), true, false, retry(None)),
            ("POST", response(503), true, false, retry(None)),
            ("POST", response(599), true, false, retry(None)),
            (
                "POST",
                AttemptResult::Response {
                    status: 429,
                    retry_after_ms: Some(120_000),
                },
                true,
                false,
                retry(Some(120_000)),
            ),
            (
                "POST",
                AttemptResult::Response {
                    status: 503,
                    retry_after_ms: Some(0),
                },
                true,
                false,
                retry(Some(0)),
            ),
            (
                "POST",
                AttemptResult::NetworkError,
                true,
                false,
                Retry {
                    after_ms: None,
                    offline: true,
                },
            ),
            ("POST", AttemptResult::Timeout, true, true, retry(None)),
            ("POST", response(401), true, false, PausedAuth),
            ("DELETE", response(403), true, false, PausedAuth),
            ("POST", response(400), true, false, Failed { status: 400 }),
            ("POST", response(413), true, false, Failed { status: 413 }),
            ("POST", response(422), true, false, Failed { status: 422 }),
            ("POST", response(499), true, false, Failed { status: 499 }),
            ("POST", response(100), true, false, Failed { status: 100 }),
            ("POST", response(301), true, false, Failed { status: 301 }),
            ("POST", response(304), true, false, Failed { status: 304 }),
            ("POST", response(0), true, false, Failed { status: 0 }),
            ("POST", response(600), true, false, Failed { status: 600 }),
            (
                "POST",
                response(u16::MAX),
                true,
                false,
                Failed { status: u16::MAX },
            ),
        ];
        for (method, result, is_replay, uncertain, expected) in rows {
            assert_eq!(
                classify(method, &result, is_replay, uncertain),
                expected,
                "{method} {result:?} replay={is_replay} uncertain={uncertain}"
            );
        }
    }
}
