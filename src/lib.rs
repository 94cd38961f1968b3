//! sw-outbox: a drop-in offline outbox for any website, running as
//! WebAssembly in the site's service worker.
//!
//! `core` is the whole decision logic and has no web APIs; it builds and
//! tests on the host. `store` (IndexedDB), `replay` (fetch) and `worker`
//! (the service-worker runtime) exist only for `wasm32`.
#![deny(missing_docs)]

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod replay;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(target_arch = "wasm32")]
pub mod worker;
