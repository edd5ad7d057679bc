//! Users and their API keys: the admin bootstrap, accounts, and authentication by key
//! (stored only as a SHA-256 digest).

use chrono::Utc;
use slipway_store::json::get_json;
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, User};
use crate::platform::Platform;

impl Platform {
    /// Creates the admin account if there is none yet; returns its new API key.
    pub async fn bootstrap_admin(&self, email: &str) -> Result<Option<String>, CoreError> {
        let (users, _) = self.store().range("users/").await?;
        if !users.is_empty() {
            return Ok(None);
        }
        let key = new_api_key();
        self.insert_user(email, &key, true).await?;
        Ok(Some(key))
    }

    /// Creates a (non-admin) user with the given API key.
    pub async fn create_user(&self, email: &str, api_key: &str) -> Result<User, CoreError> {
        self.insert_user(email, api_key, false).await
    }

    async fn insert_user(
        &self,
        email: &str,
        api_key: &str,
        admin: bool,
    ) -> Result<User, CoreError> {
        let user = User {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            created_at: Utc::now(),
            admin,
        };
        let response = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::absent(keys::user(email)))
                    .then(Op::put_json(keys::user(email), &user)?)
                    .then(Op::put(
                        keys::api_key(&key_digest(api_key)),
                        email.as_bytes().to_vec(),
                    )),
            )
            .await?;
        if !response.succeeded {
            return Err(CoreError::Conflict {
                message: format!("A user with the email {email} already exists."),
            });
        }
        Ok(user)
    }

    /// The user an API key belongs to.
    pub async fn authenticate(&self, api_key: &str) -> Result<User, CoreError> {
        if api_key.is_empty() {
            return Err(CoreError::Unauthorized);
        }
        let Some(email) = self
            .store()
            .get(&keys::api_key(&key_digest(api_key)))
            .await?
        else {
            return Err(CoreError::Unauthorized);
        };
        let email = String::from_utf8_lossy(&email.value).into_owned();
        get_json::<User, _>(self.store().as_ref(), &keys::user(&email))
            .await?
            .ok_or(CoreError::Unauthorized)
    }
}

pub(crate) fn key_digest(api_key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(api_key.as_bytes()))
}

fn new_api_key() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}
