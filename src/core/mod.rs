//! The decision logic of the outbox, with no web APIs: entries and their
//! stored format, the lifecycle, the scheduler, the retry policy, outcome
//! classification, conflict strategies and the three-way merge, the config,
//! the page ↔ worker protocol and the in-memory queue with its counts.
//!
//! Out of scope here: storage, fetch, timers, events — the worker layers
//! carry out the decisions this module returns. Time and randomness are
//! always arguments.
pub mod config;
pub mod conflict;
pub mod entry;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod fuzz;
pub mod lifecycle;
pub mod merge;
pub mod outcome;
pub mod protocol;
pub mod queue;
pub mod retry;
pub mod scheduler;
pub mod sort;
