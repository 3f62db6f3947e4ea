//! The job core's rules: the statuses a job, an algorithm run and a webhook
//! delivery can have, and the moves allowed between them.
//!
//! - [`status`]: `JobStatus`, `RunStatus`, `DeliveryStatus`: the same words on
//!   the wire (serde, OpenAPI) and in the database (bound by sqlx, never
//!   written into SQL text).
//! - [`kinds`]: the other closed sets of words: `JobKind`, `AlgorithmStatus`,
//!   `AlgorithmScope`, `KeyScopeType`, `AuthType`.
//! - [`transitions`]: every allowed move, in one table per kind, with why it
//!   happens; [`transitions::check_job`] and its twins refuse the rest. The
//!   store writes a status only through these checks.
//!
//! Read `transitions.rs` top to bottom to know what can happen to a job.

pub mod kinds;
pub mod status;
pub mod transitions;

pub use kinds::{AlgorithmScope, AlgorithmStatus, AuthType, BackfillOutcome, BatchStatus, JobKind, KeyScopeType};
pub use status::{DeliveryStatus, JobStatus, RunStatus, Word};
pub use transitions::IllegalTransition;
