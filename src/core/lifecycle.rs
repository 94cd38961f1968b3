//! The entry lifecycle: one set of state names used by the code, the
//! protocol and the README, and the transitions allowed between them.
//!
//! ```text
//!                 +-------------------------------------------+
//!                 v                                           |
//!   enqueue --> pending ---> in_flight ---> done              |
//!               ^  |  ^        |  |  \----> superseded        |
//!               |  |  |        |  |  \----> failed ----(retry)+
//!               |  |  |        |  |  \----> conflict --(resolve: send)
//!               |  |  |        |  \-------> paused_auth --(auth)
//!               |  |  |        \----------> waiting_retry --(backoff over)--> in_flight
//!               |  |  +-- lease expired / offline
//!               |  +----> blocked (a dependency failed or was cancelled)
//!               +-------- unblocked (the dependency was retried)
//!
//!   every state but done and superseded can be cancelled by the page
//! ```
//!
//! `done`, `cancelled` and `superseded` are final.

use serde::Serialize;
use std::fmt;

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting to be sent.
    Pending,
    /// Being sent now, under a lease.
    InFlight,
    /// The server asked to try later, or an attempt failed; waits for its backoff.
    WaitingRetry,
    /// The server answered 401/403; waits for fresh auth from a page.
    PausedAuth,
    /// The server reported a conflict that a page has to settle.
    Conflict,
    /// A dead letter: kept and shown, retryable by hand.
    Failed,
    /// A dependency failed or was cancelled; never sent while so.
    Blocked,
    /// Cancelled by the page. Final.
    Cancelled,
    /// The remote write stands and this one was dropped. Final.
    Superseded,
    /// The server accepted it. Final.
    Done,
}

impl State {
    /// Every state, in the order the README lists them.
    pub const ALL: [State; 10] = [
        State::Pending,
        State::InFlight,
        State::WaitingRetry,
        State::PausedAuth,
        State::Conflict,
        State::Failed,
        State::Blocked,
        State::Cancelled,
        State::Superseded,
        State::Done,
    ];

    /// The state's name in the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "in_flight",
            State::WaitingRetry => "waiting_retry",
            State::PausedAuth => "paused_auth",
            State::Conflict => "conflict",
            State::Failed => "failed",
            State::Blocked => "blocked",
            State::Cancelled => "cancelled",
            State::Superseded => "superseded",
            State::Done => "done",
        }
    }

    /// Reads a state name.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// True for the states an entry never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, State::Done | State::Cancelled | State::Superseded)
    }

    /// True when the entry still has to reach the server (it holds back
    /// later entries of its entity).
    pub fn is_open(self) -> bool {
        !self.is_final()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The state the entry was in.
    pub from: State,
    /// The state asked for.
    pub to: State,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an entry cannot go from {} to {}", self.from, self.to)
    }
}

impl std::error::Error for InvalidTransition {}

/// Checks a transition against the diagram above.
pub fn transition(from: State, to: State) -> Result<State, InvalidTransition> {
    use State::*;
    let allowed = match (from, to) {
        (Done | Superseded | Cancelled, _) => false,
        (_, Cancelled) => true,
        (Pending, InFlight | Blocked | Failed) => true,
        (InFlight, Done | WaitingRetry | PausedAuth | Conflict | Failed | Superseded | Pending) => {
            true
        }
        (WaitingRetry, InFlight | Pending | Blocked | Failed) => true,
        (PausedAuth, Pending) => true,
        (Conflict, Pending | Superseded | Done) => true,
        (Failed, Pending) => true,
        (Blocked, Pending | Failed) => true,
        _ => false,
    };
    if allowed {
        Ok(to)
    } else {
        Err(InvalidTransition { from, to })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(State::parse("inflight"), None);
    }

    #[test]
    fn a_happy_entry_goes_pending_in_flight_done() {
        assert_eq!(
            transition(State::Pending, State::InFlight),
            Ok(State::InFlight)
        );
        assert_eq!(transition(State::InFlight, State::Done), Ok(State::Done));
    }

    #[test]
    fn final_states_are_never_left() {
        for from in [State::Done, State::Cancelled, State::Superseded] {
            for to in State::ALL {
                assert_eq!(transition(from, to), Err(InvalidTransition { from, to }));
            }
        }
    }

    #[test]
    fn nothing_skips_the_wire_to_done() {
        assert!(transition(State::Pending, State::Done).is_err());
        assert!(transition(State::WaitingRetry, State::Done).is_err());
        assert!(transition(State::Blocked, State::InFlight).is_err());
        assert!(transition(State::Failed, State::InFlight).is_err());
    }

    #[test]
    fn a_dead_letter_can_be_retried_and_a_conflict_resolved() {
        assert_eq!(
            transition(State::Failed, State::Pending),
            Ok(State::Pending)
        );
        assert_eq!(
            transition(State::Conflict, State::Pending),
            Ok(State::Pending)
        );
        assert_eq!(
            transition(State::Conflict, State::Superseded),
            Ok(State::Superseded)
        );
        assert_eq!(
            transition(State::PausedAuth, State::Pending),
            Ok(State::Pending)
        );
    }

    #[test]
    fn error_says_what_was_asked() {
        let error = transition(State::Done, State::Pending).unwrap_err();
        assert_eq!(error.to_string(), "an entry cannot go from done to pending");
    }
}
