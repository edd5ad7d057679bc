//! The route publisher: turns the store's apps, formation, releases and dyno states into the
//! router's immutable route table and publishes each new snapshot on a `watch` channel.
//!
//! Architecture Invariant: the router never reads the store; it only sees these snapshots,
//! which could as well arrive over the network.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use slipway_router::{AppRoute, Backend, RouteStatus, RouteTable};
use slipway_store::json::range_json;
use slipway_store::Store;
use tokio::sync::{mpsc, watch};

use crate::model::{keys, App, Domain, Dyno, DynoState, Formation, Release, ReleaseStatus};

/// Starts publishing route tables for apps served at `<app>.<domain>`.
pub fn spawn_route_publisher(
    store: Arc<dyn Store>,
    domain: String,
) -> watch::Receiver<Arc<RouteTable>> {
    let domain = Arc::new(domain);
    publish_on_change(
        store,
        &[
            keys::APPS,
            keys::DYNOS,
            keys::FORMATION,
            keys::RELEASES,
            keys::DOMAINS,
        ],
        "route table",
        RouteTable::new(),
        move |store| {
            let domain = domain.clone();
            async move { build_table(store.as_ref(), &domain).await }
        },
    )
}

/// Rebuilds a snapshot with `build` whenever a key under one of `prefixes` changes (a burst
/// of changes gives one rebuild) and publishes it on the returned channel. Watches that fail
/// are re-established, and each re-establishment triggers a rebuild, so no change is missed.
pub(crate) fn publish_on_change<T, E, F, Fut>(
    store: Arc<dyn Store>,
    prefixes: &[&'static str],
    what: &'static str,
    initial: T,
    build: F,
) -> watch::Receiver<Arc<T>>
where
    T: Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    F: Fn(Arc<dyn Store>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send + 'static,
{
    let (sender, receiver) = watch::channel(Arc::new(initial));
    let (changed, mut changes) = mpsc::unbounded_channel::<()>();
    for &prefix in prefixes {
        let store = store.clone();
        let changed = changed.clone();
        tokio::spawn(async move {
            loop {
                let Ok(mut watcher) = store.watch(prefix, None).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let _ = changed.send(());
                while let Some(Ok(_)) = watcher.next().await {
                    if changed.send(()).is_err() {
                        return;
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // Coalesce a burst of changes into one rebuild.
            while changes.try_recv().is_ok() {}
            match build(store.clone()).await {
                Ok(table) => {
                    if sender.send(Arc::new(table)).is_err() {
                        return;
                    }
                }
                Err(error) => tracing::error!(%error, "could not rebuild the {what}"),
            }
        }
    });
    receiver
}

async fn build_table(
    store: &dyn Store,
    domain: &str,
) -> Result<RouteTable, slipway_store::StoreError> {
    let (apps, _) = range_json::<App, _>(store, keys::APPS).await?;
    let (releases, _) = range_json::<Release, _>(store, keys::RELEASES).await?;
    let (formation, _) = range_json::<Formation, _>(store, keys::FORMATION).await?;
    let (dynos, _) = range_json::<Dyno, _>(store, keys::DYNOS).await?;
    let (domains, _) = range_json::<Domain, _>(store, keys::DOMAINS).await?;
    let mut table = RouteTable::new();
    for (_, app) in apps {
        let released = releases
            .iter()
            .any(|(_, r)| r.app_id == app.id && r.status == ReleaseStatus::Succeeded);
        let web_quantity = formation
            .iter()
            .find(|(_, f)| f.app_id == app.id && f.process_type == "web")
            .map(|(_, f)| f.quantity)
            .unwrap_or(0);
        let web: Vec<&Dyno> = dynos
            .iter()
            .map(|(_, d)| d)
            .filter(|d| d.app_id == app.id && d.process_type == "web")
            .collect();
        let backends: Vec<Backend> = web
            .iter()
            .filter(|d| d.state == DynoState::Up)
            .filter_map(|d| {
                d.port.map(|port| Backend {
                    dyno: d.name.clone(),
                    addr: SocketAddr::new(d.address.unwrap_or(Ipv4Addr::LOCALHOST.into()), port),
                })
            })
            .collect();
        let status = if app.maintenance {
            RouteStatus::Maintenance
        } else if !released {
            RouteStatus::NoRelease
        } else if web_quantity == 0 {
            RouteStatus::NoWebDynos
        } else if backends.is_empty()
            && !web.is_empty()
            && web.iter().all(|d| d.state == DynoState::Crashed)
        {
            RouteStatus::Crashed
        } else if backends.is_empty()
            && web
                .iter()
                .any(|d| matches!(d.state, DynoState::Idle | DynoState::Starting))
        {
            // Asleep or booting: the router holds requests (and wakes the app) until a web
            // dyno is up, H20 after 75 s.
            RouteStatus::Idle
        } else {
            RouteStatus::Serving
        };
        let route = Arc::new(AppRoute {
            app: app.name.clone(),
            status,
            backends,
        });
        // Custom domains (`domains:add`) route to the same app.
        for (_, custom) in domains.iter().filter(|(_, d)| d.app_id == app.id) {
            table.insert(custom.hostname.clone(), route.clone());
        }
        table.insert(format!("{}.{domain}", app.name), route);
    }
    Ok(table)
}
