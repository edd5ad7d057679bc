//! The state one router shares between its listeners, threads and both engines: the route
//! table channel, the configuration, the log sink and the dyno connections (pool, quarantine,
//! backlog counters).
//!
//! Architecture Invariant: this module holds state and decides nothing; it sits below both
//! engines and imports only the plain data types and the dyno pool.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{RouterConfig, RouterLogSink};
use crate::route::RouteTable;
use crate::upstream::Upstreams;

/// State shared by every connection of one router.
pub(crate) struct Shared {
    pub(crate) routes: watch::Receiver<Arc<RouteTable>>,
    pub(crate) log: RouterLogSink,
    pub(crate) config: RouterConfig,
    pub(crate) upstreams: Upstreams,
}
