//! Everything edgetrack knows about events that is not glue: the canonical
//! event, each API dialect's decoder and response encoder, validation and its
//! limits, bot rules, dedup keys, identity hashing and export paging.
//!
//! No wasm or worker types live here, so the whole crate builds and tests
//! natively in seconds; `edge-worker` only moves bytes between this crate and
//! Cloudflare's bindings.

pub mod auth;
pub mod bots;
pub mod d1;
pub mod dedup;
pub mod dialect;
pub mod enrich;
pub mod erasure;
pub mod error;
pub mod event;
pub mod export;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hash;
pub mod identity;
pub mod limits;
pub mod payload;
pub mod profile;
pub mod profile_caps;
pub mod queue;
pub mod rate;
pub mod readmodel;
pub mod sink;
pub mod sketch;
pub mod time;
pub mod validate;
pub mod visitor;
pub mod zone;

pub use error::{FieldError, IngestError};
pub use event::{Dialect, Event, PageContext, RequestContext};
