//! Sleeping and waking eco apps (see `idling.rs` for the router's side).
//!
//! An app sleeps when every one of its web dynos is an `eco` dyno that is `up` (no preboot
//! replacement under way) and neither a web request nor a dyno start happened for
//! `idle_after`. Its `up` eco dynos then log `Idling` and `State changed from up to idle`, are
//! stopped, and keep their slot as an `idle` record (the route table shows the app as idle).
//! A wake-up (a request held by the router) logs `Unidling` and starts each idle dyno at once
//! on the already unpacked slug. Deploys, restarts and resizes wake an app too; cycling
//! skips sleeping dynos.

use chrono::Utc;

use super::{transition, Manager, Which};
use crate::model::DynoState;
use crate::telemetry::PlatformEvent;

/// The size that sleeps.
const SLEEPING_SIZE: &str = "eco";

impl Manager {
    /// Puts to sleep the apps that had no web traffic for `idle_after`.
    pub(super) async fn sleep_idle_apps(&mut self) {
        let idle_after = self.platform.config.dynos.idle_after;
        let Ok(idle_after) = chrono::Duration::from_std(idle_after) else {
            return;
        };
        let now = Utc::now();
        let mut to_save = Vec::new();
        let mut to_stop = Vec::new();
        for app in self.apps.values_mut() {
            let web: Vec<_> = app
                .slots
                .values()
                .filter_map(|slot| {
                    let instance = slot.instance.as_ref()?;
                    (instance.record.process_type == "web").then_some((slot, instance))
                })
                .collect();
            let sleepy = !web.is_empty()
                && web.iter().all(|(slot, instance)| {
                    slot.next.is_none()
                        && !instance.stopping
                        && instance.record.state == DynoState::Up
                        && instance.record.size == SLEEPING_SIZE
                });
            if !sleepy {
                continue;
            }
            let started = web
                .iter()
                .map(|(_, instance)| instance.record.created_at)
                .max()
                .unwrap_or(now);
            let last_request = self.platform.activity.last_request(&app.name);
            let active_at = last_request.map_or(started, |at| at.max(started));
            if now - active_at < idle_after {
                continue;
            }
            for (name, slot) in app.slots.iter_mut() {
                if slot.next.is_some() {
                    continue;
                }
                let Some(instance) = slot.instance.as_mut() else {
                    continue;
                };
                if instance.stopping
                    || instance.record.state != DynoState::Up
                    || instance.record.size != SLEEPING_SIZE
                {
                    continue;
                }
                self.platform
                    .event(&app.name, PlatformEvent::Idling { dyno: name });
                let running = instance.clone();
                to_save.push(transition(
                    &self.platform,
                    &app.name,
                    instance,
                    DynoState::Idle,
                ));
                instance.stopping = true;
                to_stop.push((app.name.clone(), running));
            }
        }
        for record in to_save {
            self.save(&record).await;
        }
        for (app_name, instance) in to_stop {
            self.stop(&app_name, instance);
        }
    }

    /// Starts the idle dynos of `app_name` (a request is waiting for it).
    pub(super) async fn wake(&mut self, app_name: &str) {
        let Some((&app_id, app)) = self.apps.iter().find(|(_, app)| app.name == app_name) else {
            return;
        };
        let idle: Vec<String> = app
            .slots
            .iter()
            .filter(|(_, slot)| {
                slot.instance
                    .as_ref()
                    .is_some_and(|i| i.record.state == DynoState::Idle)
            })
            .map(|(name, _)| name.clone())
            .collect();
        if idle.is_empty() {
            return;
        }
        let desired = match self.desired(app_id).await {
            Ok(Some(desired)) => desired,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, app = app_name, "cannot wake an app");
                return;
            }
        };
        for name in idle {
            let Some(wanted) = desired.dynos.get(&name).cloned() else {
                continue;
            };
            self.platform
                .event(app_name, PlatformEvent::Unidling { dyno: &name });
            self.platform.event(
                app_name,
                PlatformEvent::StateChanged {
                    dyno: &name,
                    from: DynoState::Idle,
                    to: DynoState::Starting,
                },
            );
            self.start(&desired, &name, &wanted, Which::Current).await;
        }
    }
}
