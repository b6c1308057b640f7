//! The error kinds that carry a meaning beyond their message: `main` maps
//! them to exit codes. A leaf: every module may return them, none is needed
//! to build them.

/// A bad flag value, or flags that contradict each other or a checkpoint:
/// main prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
