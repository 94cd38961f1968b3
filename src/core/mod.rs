//! The decision logic of the outbox, with no web APIs.
pub mod conflict;
pub mod merge;
pub mod outcome;
pub mod retry;
