//! Custom domains and maintenance mode: what the router answers for besides `<app>.<domain>`.
//!
//! A custom domain is one key, `domains/<hostname>` → [`Domain`], written with a compare-and-set
//! on its absence, so a hostname belongs to at most one app even when two adds race. The route
//! publisher reads the prefix and maps each hostname to its app. The app's default hostname
//! (`<app>.<domain>`) is not stored; [`Platform::domains`] lists it first with kind `heroku`.

use chrono::Utc;
use slipway_store::json::{apply_if, get_json, get_json_versioned, range_json};
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, App, Domain, DomainKind};
use crate::platform::Platform;

fn key(hostname: &str) -> String {
    format!("{}{hostname}", keys::DOMAINS)
}

/// Lowercases `hostname` and checks it is a DNS name the router can route: a
/// [`slipway_model::Hostname`] of at least two labels that is not a wildcard.
pub fn normalize_hostname(hostname: &str) -> Result<String, CoreError> {
    let invalid = || {
        CoreError::invalid(format!(
            "{hostname:?} is not a valid hostname. Use a name like www.example.com."
        ))
    };
    let host = hostname
        .trim()
        .parse::<slipway_model::Hostname>()
        .map_err(|_| invalid())?;
    // A custom domain is routed by exact match: a wildcard would never be, and a single label
    // is no public name.
    if host.is_wildcard() || !host.as_str().contains('.') {
        return Err(invalid());
    }
    Ok(host.into())
}

impl Platform {
    /// The default hostname first, then custom domains by hostname.
    pub async fn domains(&self, app: &App) -> Result<Vec<Domain>, CoreError> {
        let (stored, _) = range_json::<Domain, _>(self.store().as_ref(), keys::DOMAINS).await?;
        let mut domains = vec![Domain {
            // The default hostname is not a record of its own; it shares the app's id.
            id: app.id,
            app_id: app.id,
            hostname: format!("{}.{}", app.name, self.config().domain),
            kind: DomainKind::Heroku,
            created_at: app.created_at,
        }];
        domains.extend(
            stored
                .into_iter()
                .map(|(_, domain)| domain)
                .filter(|domain| domain.app_id == app.id),
        );
        Ok(domains)
    }

    /// Adds a custom domain; a hostname another app (or this one) already has is refused.
    pub(crate) async fn add_domain(&self, app: &App, hostname: &str) -> Result<Domain, CoreError> {
        let hostname = normalize_hostname(hostname)?;
        if hostname.ends_with(&format!(".{}", self.config().domain))
            || hostname == self.config().domain
        {
            return Err(CoreError::invalid(format!(
                "{hostname} is under the platform's own domain {}; apps already answer at <app>.{}.",
                self.config().domain, self.config().domain
            )));
        }
        let domain = Domain {
            id: Uuid::new_v4(),
            app_id: app.id,
            hostname: hostname.clone(),
            kind: DomainKind::Custom,
            created_at: Utc::now(),
        };
        let response = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::absent(key(&hostname)))
                    .when(Compare::exists(keys::app(&app.name)))
                    .then(Op::put_json(key(&hostname), &domain)?),
            )
            .await?;
        if response.succeeded {
            return Ok(domain);
        }
        if self.store().get(&keys::app(&app.name)).await?.is_none() {
            return Err(CoreError::not_found("app", app.name.clone()));
        }
        // A hostname left behind by a destroyed app is free again.
        if let Some((owner, revision)) =
            get_json_versioned::<Domain, _>(self.store().as_ref(), &key(&hostname)).await?
        {
            let (apps, _) = range_json::<App, _>(self.store().as_ref(), keys::APPS).await?;
            if !apps.iter().any(|(_, a)| a.id == owner.app_id) {
                let applied = apply_if(
                    self.store().as_ref(),
                    Compare::mod_revision(key(&hostname), revision),
                    Op::put_json(key(&hostname), &domain)?,
                )
                .await?;
                if applied {
                    return Ok(domain);
                }
            }
        }
        Err(CoreError::Conflict {
            message: format!(
                "The domain {hostname} is already in use by another app or this one. Remove it there first."
            ),
        })
    }

    /// Removes one of the app's custom domains, named by hostname or id.
    pub(crate) async fn remove_domain(
        &self,
        app: &App,
        hostname_or_id: &str,
    ) -> Result<Domain, CoreError> {
        let found = match normalize_hostname(hostname_or_id) {
            Ok(hostname) => get_json::<Domain, _>(self.store().as_ref(), &key(&hostname)).await?,
            Err(_) => None,
        };
        let found = match found {
            Some(domain) => Some(domain),
            None => self
                .domains(app)
                .await?
                .into_iter()
                .find(|d| d.kind == DomainKind::Custom && d.id.to_string() == hostname_or_id),
        };
        let domain = found
            .filter(|d| d.app_id == app.id)
            .ok_or_else(|| CoreError::not_found("domain", hostname_or_id))?;
        self.store().delete(&key(&domain.hostname)).await?;
        Ok(domain)
    }

    /// Turns maintenance mode on or off: the router answers every request with H80's page.
    /// The caller was authorized for `app` by `Platform::execute`.
    pub(crate) async fn set_maintenance(&self, app: &App, on: bool) -> Result<App, CoreError> {
        loop {
            let app_key = keys::app(&app.name);
            let (mut current, revision) = self.app_record(app).await?;
            if current.maintenance == on {
                return Ok(current);
            }
            current.maintenance = on;
            current.updated_at = Utc::now();
            let applied = apply_if(
                self.store().as_ref(),
                Compare::mod_revision(app_key.clone(), revision),
                Op::put_json(app_key.clone(), &current)?,
            )
            .await?;
            if applied {
                return Ok(current);
            }
        }
    }
}

#[cfg(test)]
mod tests;
