//! API keys as Heroku's OAuth authorizations: several per user, each with a description,
//! scope and optional expiry, each token shown once and stored only as its SHA-256 digest.
//!
//! Store keys: `authorizations/<user id>/<authorization id>` → [`Authorization`], and
//! `api-keys/<sha256 of token>` → [`KeyOwner`] (JSON; a bare email on data directories from
//! before authorizations, which still authenticates). Both are written and removed together
//! in one transaction.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use slipway_store::json::{apply_if, get_json, get_json_versioned, range_json};
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, User};
use crate::platform::Platform;

#[cfg(test)]
mod tests;

/// The only scope Slipway grants: full access as the user. Narrower Heroku scopes (`read`,
/// `write`, ...) are refused rather than accepted and silently not enforced.
pub const GLOBAL_SCOPE: &str = "global";
/// Longest description accepted.
const MAX_DESCRIPTION_LEN: usize = 200;
/// Most authorizations one user may hold, so a script in a loop cannot fill the store.
pub(crate) const MAX_AUTHORIZATIONS_PER_USER: usize = 200;
/// Longest expiry accepted: ten years, in seconds.
const MAX_EXPIRES_IN: i64 = 10 * 365 * 24 * 3600;

/// One API key of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    pub id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub description: String,
    pub scope: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the token stops working; `None` never.
    pub expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the current token, hex.
    pub token_digest: String,
    /// The account's API key (created with the account): what `GET
    /// /oauth/authorizations/~` answers and `heroku logout` leaves alone.
    #[serde(default)]
    pub default: bool,
}

/// Who an `api-keys/<digest>` entry belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyOwner {
    pub(crate) email: String,
    pub(crate) authorization: Uuid,
}

/// What a new authorization is asked for with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuthorization {
    pub description: String,
    pub scope: Vec<String>,
    /// Seconds until the token expires; `None` never.
    pub expires_in: Option<i64>,
    pub default: bool,
}

fn authorization_key(user: Uuid, id: Uuid) -> String {
    format!("authorizations/{user}/{id}")
}

fn authorizations_prefix(user: Uuid) -> String {
    format!("authorizations/{user}/")
}

impl NewAuthorization {
    /// Checks what a caller asked for: a description of at most 200 characters without
    /// control characters, the `global` scope only, a positive expiry of at most ten years.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.description.chars().count() > MAX_DESCRIPTION_LEN
            || self.description.chars().any(char::is_control)
        {
            return Err(CoreError::Invalid {
                message: format!(
                    "The description must be at most {MAX_DESCRIPTION_LEN} characters, without control characters."
                ),
            });
        }
        if let Some(other) = self.scope.iter().find(|s| s.as_str() != GLOBAL_SCOPE) {
            return Err(CoreError::Invalid {
                message: format!(
                    "The scope {other:?} is not supported: Slipway API keys are always scope \"global\" (full access as your account)."
                ),
            });
        }
        if let Some(seconds) = self.expires_in {
            if !(1..=MAX_EXPIRES_IN).contains(&seconds) {
                return Err(CoreError::Invalid {
                    message: format!("expires_in must be between 1 and {MAX_EXPIRES_IN} seconds."),
                });
            }
        }
        Ok(())
    }
}

impl Authorization {
    /// The record and the store writes of a new authorization for `token`.
    pub(crate) fn new_ops(
        user: &User,
        new: NewAuthorization,
        token: &str,
    ) -> Result<(Authorization, Vec<Op>), CoreError> {
        let now = Utc::now();
        let authorization = Authorization {
            id: Uuid::new_v4(),
            user_id: user.id,
            email: user.email.clone(),
            description: new.description,
            scope: if new.scope.is_empty() {
                vec![GLOBAL_SCOPE.to_owned()]
            } else {
                new.scope
            },
            created_at: now,
            updated_at: now,
            expires_at: new.expires_in.map(|s| now + Duration::seconds(s)),
            token_digest: key_digest(token),
            default: new.default,
        };
        let ops = authorization.put_ops()?;
        Ok((authorization, ops))
    }

    fn put_ops(&self) -> Result<Vec<Op>, CoreError> {
        let owner = KeyOwner {
            email: self.email.clone(),
            authorization: self.id,
        };
        Ok(vec![
            Op::put_json(authorization_key(self.user_id, self.id), self)?,
            Op::put_json(keys::api_key(&self.token_digest), &owner)?,
        ])
    }

    /// The store writes that remove this authorization and its token.
    pub(crate) fn delete_ops(&self) -> Vec<Op> {
        vec![
            Op::delete(authorization_key(self.user_id, self.id)),
            Op::delete(keys::api_key(&self.token_digest)),
        ]
    }

    /// Seconds until the token expires (`None`: never), as `access_token.expires_in`.
    pub fn expires_in(&self) -> Option<i64> {
        self.expires_at
            .map(|at| (at - Utc::now()).num_seconds().max(0))
    }

    /// Whether the token has expired.
    pub fn expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= Utc::now())
    }

    /// Whether `token` is this authorization's current token.
    pub fn is_token(&self, token: &str) -> bool {
        key_digest(token) == self.token_digest
    }
}

impl Platform {
    /// The user an API key belongs to, with the authorization it is (`None` for a key
    /// written before authorizations existed). Expired and unknown keys are
    /// [`CoreError::Unauthorized`].
    pub async fn authenticate_token(
        &self,
        api_key: &str,
    ) -> Result<(User, Option<Authorization>), CoreError> {
        if api_key.is_empty() {
            return Err(CoreError::Unauthorized);
        }
        let Some(entry) = self
            .store()
            .get(&keys::api_key(&key_digest(api_key)))
            .await?
        else {
            return Err(CoreError::Unauthorized);
        };
        let (email, authorization_id) = match serde_json::from_slice::<KeyOwner>(&entry.value) {
            Ok(owner) => (owner.email, Some(owner.authorization)),
            Err(_) => (String::from_utf8_lossy(&entry.value).into_owned(), None),
        };
        let user = get_json::<User, _>(self.store().as_ref(), &keys::user(&email))
            .await?
            .ok_or(CoreError::Unauthorized)?;
        let Some(id) = authorization_id else {
            return Ok((user, None));
        };
        let authorization =
            get_json::<Authorization, _>(self.store().as_ref(), &authorization_key(user.id, id))
                .await?
                .ok_or(CoreError::Unauthorized)?;
        if authorization.expired() {
            return Err(CoreError::Unauthorized);
        }
        Ok((user, Some(authorization)))
    }

    /// Creates an authorization for `user`; returns it with its token (shown only now).
    pub async fn create_authorization(
        &self,
        user: &User,
        new: NewAuthorization,
    ) -> Result<(Authorization, String), CoreError> {
        new.validate()?;
        if self.list_authorizations(user).await?.len() >= MAX_AUTHORIZATIONS_PER_USER {
            return Err(CoreError::Invalid {
                message: format!(
                    "You have {MAX_AUTHORIZATIONS_PER_USER} authorizations, the most an account may hold: revoke unused ones with `slipway authorizations:revoke ID`."
                ),
            });
        }
        let token = new_api_key();
        let (authorization, ops) = Authorization::new_ops(user, new, &token)?;
        let mut txn = Txn::new().when(Compare::exists(keys::user(&user.email)));
        for op in ops {
            txn = txn.then(op);
        }
        if !self.store().txn(txn).await?.succeeded {
            return Err(CoreError::Unauthorized);
        }
        Ok((authorization, token))
    }

    /// Every authorization of `user`, oldest first; expired ones are removed as they are
    /// found.
    pub async fn list_authorizations(&self, user: &User) -> Result<Vec<Authorization>, CoreError> {
        let (entries, _) =
            range_json::<Authorization, _>(self.store().as_ref(), &authorizations_prefix(user.id))
                .await?;
        let mut live = Vec::with_capacity(entries.len());
        for (_, authorization) in entries {
            if authorization.expired() {
                let mut txn = Txn::new();
                for op in authorization.delete_ops() {
                    txn = txn.then(op);
                }
                self.store().txn(txn).await?;
            } else {
                live.push(authorization);
            }
        }
        live.sort_by_key(|a| a.created_at);
        Ok(live)
    }

    /// One of `user`'s authorizations by id; `~` is the account's API key.
    pub async fn authorization(&self, user: &User, id: &str) -> Result<Authorization, CoreError> {
        let not_found = || CoreError::NotFound {
            resource: "authorization",
            id: id.to_owned(),
        };
        if id == "~" {
            return self
                .list_authorizations(user)
                .await?
                .into_iter()
                .find(|a| a.default)
                .ok_or_else(not_found);
        }
        let id: Uuid = id.parse().map_err(|_| not_found())?;
        get_json::<Authorization, _>(self.store().as_ref(), &authorization_key(user.id, id))
            .await?
            .filter(|a| !a.expired())
            .ok_or_else(not_found)
    }

    /// Revokes one of `user`'s authorizations: its token stops working at once.
    pub async fn revoke_authorization(
        &self,
        user: &User,
        id: &str,
    ) -> Result<Authorization, CoreError> {
        let authorization = self.authorization(user, id).await?;
        let mut txn = Txn::new();
        for op in authorization.delete_ops() {
            txn = txn.then(op);
        }
        self.store().txn(txn).await?;
        Ok(authorization)
    }

    /// Gives one of `user`'s authorizations a new token; the old one stops working in the
    /// same transaction. Returns the authorization with its new token.
    pub async fn regenerate_authorization(
        &self,
        user: &User,
        id: &str,
    ) -> Result<(Authorization, String), CoreError> {
        let current = self.authorization(user, id).await?;
        let key = authorization_key(current.user_id, current.id);
        let Some((_, revision)) =
            get_json_versioned::<Authorization, _>(self.store().as_ref(), &key).await?
        else {
            return Err(CoreError::NotFound {
                resource: "authorization",
                id: id.to_owned(),
            });
        };
        let token = new_api_key();
        let mut rotated = current.clone();
        rotated.token_digest = key_digest(&token);
        rotated.updated_at = Utc::now();
        let mut txn = Txn::new()
            .when(Compare::mod_revision(key, revision))
            .then(Op::delete(keys::api_key(&current.token_digest)));
        for op in rotated.put_ops()? {
            txn = txn.then(op);
        }
        if !self.store().txn(txn).await?.succeeded {
            return Err(CoreError::Conflict {
                message: "The authorization changed while it was being rotated; try again.".into(),
            });
        }
        Ok((rotated, token))
    }

    /// Gives one of `user`'s authorizations a new description.
    pub async fn describe_authorization(
        &self,
        user: &User,
        id: &str,
        description: &str,
    ) -> Result<Authorization, CoreError> {
        NewAuthorization {
            description: description.to_owned(),
            scope: Vec::new(),
            expires_in: None,
            default: false,
        }
        .validate()?;
        let current = self.authorization(user, id).await?;
        let key = authorization_key(current.user_id, current.id);
        let mut updated = current;
        updated.description = description.to_owned();
        updated.updated_at = Utc::now();
        let applied = apply_if(
            self.store().as_ref(),
            Compare::exists(key.clone()),
            Op::put_json(key, &updated)?,
        )
        .await?;
        if !applied {
            return Err(CoreError::NotFound {
                resource: "authorization",
                id: id.to_owned(),
            });
        }
        Ok(updated)
    }
}

/// The SHA-256 of an API key, hex: all the store keeps of it.
/// Whether a presented secret (a capability URL's token, a drain token) is the expected one,
/// in time that does not depend on where they differ, so a caller timing the answers learns
/// nothing about a secret byte by byte. Only the length can show, and every secret the
/// platform hands out has the same length.
pub fn secrets_match(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

pub(crate) fn key_digest(api_key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(api_key.as_bytes()))
}

/// A new API key.
pub(crate) fn new_api_key() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}
