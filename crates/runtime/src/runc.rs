//! The runc-backed runtime. (Skeleton: to be implemented.)

use std::path::PathBuf;

/// Where runc keeps its state and where bundles live.
#[derive(Debug, Clone)]
pub struct RuncConfig {
    /// Directory for bundles, overlay layers and per-container files.
    pub state_dir: PathBuf,
}

/// Placeholder until implemented.
#[derive(Debug)]
pub struct RuncRuntime {
    _config: RuncConfig,
}
