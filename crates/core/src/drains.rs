//! Log drains: the records that survive restarts (`drains/<app id>/<drain id>`), kept in step
//! with the log hub that delivers to them.

use chrono::Utc;
use slipway_logplex::{DrainConfig, DrainError};
use slipway_store::json::range_json;
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{App, Drain};
use crate::platform::Platform;

fn key(app: Uuid, id: &str) -> String {
    format!("drains/{app}/{id}")
}

impl From<DrainError> for CoreError {
    fn from(error: DrainError) -> CoreError {
        match error {
            DrainError::NotFound { .. } => CoreError::not_found("log drain", error.to_string()),
            other => CoreError::invalid(other.to_string()),
        }
    }
}

impl Platform {
    pub async fn drains(&self, app: &App) -> Result<Vec<Drain>, CoreError> {
        let (drains, _) =
            range_json::<Drain, _>(self.store().as_ref(), &format!("drains/{}/", app.id)).await?;
        Ok(drains.into_iter().map(|(_, drain)| drain).collect())
    }

    /// Validates and starts a drain, then records it.
    pub(crate) async fn add_drain(&self, app: &App, url: &str) -> Result<Drain, CoreError> {
        let config = DrainConfig::new(url)?;
        self.logs().check_drain_url(url).await?;
        self.logs().add_drain(&app.name, config.clone())?;
        let drain = Drain {
            app_id: app.id,
            app_name: app.name.clone(),
            config,
            created_at: Utc::now(),
        };
        let stored = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::exists(crate::model::keys::app(&app.name)))
                    .then(Op::put_json(key(app.id, &drain.config.id), &drain)?),
            )
            .await;
        match stored {
            Ok(response) if response.succeeded => Ok(drain),
            Ok(_) => {
                let _ = self.logs().remove_drain(&app.name, &drain.config.id);
                Err(CoreError::not_found("app", app.name.clone()))
            }
            Err(error) => {
                let _ = self.logs().remove_drain(&app.name, &drain.config.id);
                Err(error.into())
            }
        }
    }

    /// Stops and forgets a drain named by its id, token or URL.
    pub(crate) async fn remove_drain(
        &self,
        app: &App,
        id_token_or_url: &str,
    ) -> Result<Drain, CoreError> {
        let drain = self
            .drains(app)
            .await?
            .into_iter()
            .find(|d| {
                d.config.id == id_token_or_url
                    || crate::authorizations::secrets_match(id_token_or_url, &d.config.token)
                    || d.config.url == id_token_or_url
            })
            .ok_or_else(|| CoreError::not_found("log drain", id_token_or_url))?;
        self.store().delete(&key(app.id, &drain.config.id)).await?;
        let _ = self.logs().remove_drain(&app.name, &drain.config.id);
        Ok(drain)
    }

    /// Starts every recorded drain (at server start).
    pub async fn restore_drains(&self) -> Result<usize, CoreError> {
        let (drains, _) = range_json::<Drain, _>(self.store().as_ref(), "drains/").await?;
        let (apps, _) =
            range_json::<App, _>(self.store().as_ref(), crate::model::keys::APPS).await?;
        let mut started = 0;
        for (_, drain) in drains {
            // Drains of a destroyed app (or of an older app with the same name) stay stopped.
            if !apps.iter().any(|(_, app)| app.id == drain.app_id) {
                continue;
            }
            match self.logs().add_drain(&drain.app_name, drain.config.clone()) {
                Ok(()) => started += 1,
                Err(error) => {
                    tracing::warn!(%error, app = %drain.app_name, "could not restore a log drain")
                }
            }
        }
        Ok(started)
    }
}
