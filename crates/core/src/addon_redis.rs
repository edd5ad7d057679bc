//! `redis:info`: what a Redis add-on's own server says of itself (version, memory used,
//! clients, keys) next to its plan's limits, for an add-on the user may manage or one
//! attached to their app.

use slipway_addons::{RedisInfo, Service};

use crate::addons::Addon;
use crate::error::CoreError;
use crate::model::User;
use crate::platform::Platform;

impl Platform {
    /// The Redis add-on `addon` names (a name, an ID, or an attachment on `app`; `REDIS`
    /// by default) and its server's state.
    pub async fn redis_info(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<(Addon, RedisInfo), CoreError> {
        let addon = self.named_addon(user, app, addon).await?;
        if addon.service != Service::Redis.name() {
            return Err(CoreError::invalid(format!(
                "{} is not a Redis add-on; redis:info shows heroku-redis add-ons.",
                addon.name
            )));
        }
        let info = self
            .addon_servers()?
            .redis_info(&addon.resource)
            .await
            .map_err(|e| CoreError::invalid(e.to_string()))?;
        Ok((addon, info))
    }
}
