//! Runs container specs as plain host processes, without isolation, for logic tests.
//! (Skeleton: to be implemented.)

/// Placeholder until implemented.
#[derive(Debug, Default)]
pub struct ProcessRuntime;
