//! Holding requests for apps with no web dyno up yet: a sleeping app (eco dynos idle after
//! 30 minutes without traffic) or one whose web dynos are booting.
//!
//! The route table says [`RouteStatus::Idle`]. The router asks the platform to wake the app
//! (the `WakeHook`, once per held request; waking an app that is already booting does
//! nothing) and waits on its route table channel — no polling — until the app has a web
//! dyno up, then serves the request as usual. After `RouterConfig::boot_wait` (Heroku: 75 s)
//! it gives up with H20 (`App boot timeout`), as Heroku does.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::RouterConfig;
use crate::logline::ErrorCode;
use crate::route::{AppRoute, RouteStatus, RouteTable};

/// Whether a request for this route must wait for a dyno to come up.
fn must_wait(route: &AppRoute) -> bool {
    route.status == RouteStatus::Idle
}

/// Wakes the app of an [`RouteStatus::Idle`] route and waits until `host` routes to a web
/// dyno that is up. Returns the route to serve with (which may also be one the router must
/// refuse, such as a crash during boot), or H20 after `boot_wait`.
pub(crate) async fn await_dynos(
    config: &RouterConfig,
    routes: &watch::Receiver<Arc<RouteTable>>,
    host: &str,
    route: Arc<AppRoute>,
) -> Result<Arc<AppRoute>, ErrorCode> {
    if !must_wait(&route) {
        return Ok(route);
    }
    if let Some(wake) = &config.wake {
        (wake.0)(&route.app);
    }
    let mut routes = routes.clone();
    let wait = async {
        loop {
            {
                let table = routes.borrow_and_update();
                match table.get(host) {
                    Some(current) if !must_wait(current) => return Some(current.clone()),
                    None => return None,
                    Some(_) => {}
                }
            }
            if routes.changed().await.is_err() {
                return None;
            }
        }
    };
    match tokio::time::timeout(config.boot_wait, wait).await {
        Ok(Some(route)) => Ok(route),
        // The app was deleted (or the router is stopping) while the request waited.
        Ok(None) => Err(ErrorCode::H14),
        Err(_) => Err(ErrorCode::H20),
    }
}
