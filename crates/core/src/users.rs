//! Users: the admin bootstrap, accounts with argon2-hashed passwords, and authentication by
//! API key or password. API keys are [`Authorization`]s (`authorizations.rs`), stored only as
//! SHA-256 digests.
//!
//! Store keys owned here besides `users/<email>`: `passwords/<user id>` → the argon2 PHC
//! string of the user's password (never the password), and `account-profiles/<user id>` →
//! what `PATCH /account` may change ([`AccountProfile`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_store::json::{apply_if, get_json};
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::authorizations::{new_api_key, Authorization, NewAuthorization};
use crate::error::CoreError;
use crate::model::{keys, User};
use crate::platform::Platform;

#[cfg(test)]
mod tests;

/// Longest email accepted; RFC 5321 caps a path at 254 characters.
const MAX_EMAIL_LEN: usize = 254;
/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted: argon2 hashes anything, but a megabyte "password" is an attack.
const MAX_PASSWORD_LEN: usize = 1024;
/// Longest account name (`PATCH /account {"name"}`).
const MAX_NAME_LEN: usize = 200;

/// What `PATCH /account` may change, kept apart from [`User`] so that record stays as other
/// parts of the platform read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountProfile {
    pub name: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub last_login: Option<DateTime<Utc>>,
}

fn password_key(user: Uuid) -> String {
    format!("passwords/{user}")
}

fn profile_key(user: Uuid) -> String {
    format!("account-profiles/{user}")
}

/// Checks an email given for a new account: one `@`, no whitespace, control characters or
/// `/` (emails are store keys), at most 254 characters.
pub(crate) fn validate_email(email: &str) -> Result<(), CoreError> {
    let invalid = |why: &str| CoreError::Invalid {
        message: format!("{why} Use an address like someone@example.com."),
    };
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(invalid("The email must be 1 to 254 characters long."));
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(invalid(
            "The email may not contain spaces, control characters or '/'.",
        ));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => Err(invalid("That is not an email address.")),
    }
}

/// Checks a new password's length.
pub(crate) fn validate_password(password: &str) -> Result<(), CoreError> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(CoreError::Invalid {
            message: format!(
                "The password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long."
            ),
        });
    }
    Ok(())
}

/// The argon2 PHC string of `password` with a fresh random salt (argon2id, the crate's
/// default parameters: 19 MiB, two passes).
fn hash_password(password: &str) -> Result<String, CoreError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| CoreError::Invalid {
            message: format!("The password could not be hashed: {e}"),
        })
}

/// Whether `password` matches the PHC string `hash`.
fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A PHC string no password matches, verified against when the email is unknown so an
/// unknown account costs the same argon2 time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never used").unwrap_or_default())
}

/// Failed password logins per email, for a backoff against guessing: after
/// [`LoginThrottle::FREE_FAILURES`] failures each further attempt must wait twice as long as
/// the one before, up to [`LoginThrottle::MAX_DELAY`]. In memory: a restart forgives.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    const FREE_FAILURES: u32 = 5;
    const MAX_DELAY: Duration = Duration::from_secs(300);
    /// The map is bounded so a flood of invented emails cannot grow it without end.
    const MAX_TRACKED: usize = 10_000;

    /// How long `email` must still wait before its next password attempt, if at all.
    pub fn wait(&self, email: &str) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (count, last) = failures.get(&email.to_ascii_lowercase())?;
        let over = count.checked_sub(Self::FREE_FAILURES)?;
        let delay = Duration::from_secs(1u64 << over.min(9)).min(Self::MAX_DELAY);
        delay.checked_sub(last.elapsed()).filter(|d| !d.is_zero())
    }

    fn failed(&self, email: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            if failures.len() >= Self::MAX_TRACKED {
                failures.retain(|_, (_, last)| last.elapsed() < Self::MAX_DELAY);
            }
            let entry = failures
                .entry(email.to_ascii_lowercase())
                .or_insert((0, Instant::now()));
            entry.0 = entry.0.saturating_add(1);
            entry.1 = Instant::now();
        }
    }

    fn succeeded(&self, email: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&email.to_ascii_lowercase());
        }
    }
}

impl Platform {
    /// Creates the admin account if there is none yet; returns its new API key. On a data
    /// directory from before accounts had an admin flag, the bootstrap email's record
    /// becomes the admin.
    pub async fn bootstrap_admin(&self, email: &str) -> Result<Option<String>, CoreError> {
        let (users, _) = self.store().range("users/").await?;
        if !users.is_empty() {
            if let Some((mut user, revision)) = slipway_store::json::get_json_versioned::<User, _>(
                self.store().as_ref(),
                &keys::user(email),
            )
            .await?
            {
                if !user.admin {
                    user.admin = true;
                    apply_if(
                        self.store().as_ref(),
                        Compare::mod_revision(keys::user(email), revision),
                        Op::put_json(keys::user(email), &user)?,
                    )
                    .await?;
                }
            }
            return Ok(None);
        }
        let key = new_api_key();
        self.insert_user(email, Some(&key), None, true).await?;
        Ok(Some(key))
    }

    /// Creates a (non-admin) user with the given API key.
    pub async fn create_user(&self, email: &str, api_key: &str) -> Result<User, CoreError> {
        self.insert_user(email, Some(api_key), None, false).await
    }

    /// Creates a (non-admin) account for `users:add`: with a new API key (returned, shown
    /// once) unless only a password is wanted, and with the password if one is given.
    pub async fn add_user(
        &self,
        email: &str,
        password: Option<&str>,
        with_key: bool,
    ) -> Result<(User, Option<String>), CoreError> {
        validate_email(email)?;
        if let Some(password) = password {
            validate_password(password)?;
        }
        if password.is_none() && !with_key {
            return Err(CoreError::Invalid {
                message: "A new account needs a password or an API key to log in with.".into(),
            });
        }
        let key = with_key.then(new_api_key);
        let user = self
            .insert_user(email, key.as_deref(), password, false)
            .await?;
        Ok((user, key))
    }

    /// Writes the user, its password hash and its first authorization (the account's API
    /// key, what `GET /oauth/authorizations/~` answers) in one transaction.
    async fn insert_user(
        &self,
        email: &str,
        api_key: Option<&str>,
        password: Option<&str>,
        admin: bool,
    ) -> Result<User, CoreError> {
        let user = User {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            created_at: Utc::now(),
            admin,
        };
        let mut txn = Txn::new()
            .when(Compare::absent(keys::user(email)))
            .then(Op::put_json(keys::user(email), &user)?);
        if let Some(api_key) = api_key {
            let (_, ops) = Authorization::new_ops(
                &user,
                NewAuthorization {
                    description: "API key".into(),
                    scope: vec!["global".into()],
                    expires_in: None,
                    default: true,
                },
                api_key,
            )?;
            for op in ops {
                txn = txn.then(op);
            }
        }
        if let Some(password) = password {
            txn = txn.then(Op::put(password_key(user.id), hash_password(password)?));
        }
        let response = self.store().txn(txn).await?;
        if !response.succeeded {
            return Err(CoreError::Conflict {
                message: format!("A user with the email {email} already exists."),
            });
        }
        Ok(user)
    }

    /// The user with this email.
    pub async fn user_by_email(&self, email: &str) -> Result<User, CoreError> {
        get_json::<User, _>(self.store().as_ref(), &keys::user(email))
            .await?
            .ok_or_else(|| CoreError::NotFound {
                resource: "user",
                id: email.to_owned(),
            })
    }

    /// Every account, oldest first.
    pub async fn list_users(&self) -> Result<Vec<User>, CoreError> {
        let (users, _) =
            slipway_store::json::range_json::<User, _>(self.store().as_ref(), "users/").await?;
        let mut users: Vec<User> = users.into_iter().map(|(_, user)| user).collect();
        users.sort_by_key(|user| user.created_at);
        Ok(users)
    }

    /// Removes an account with its password and every API key. Refused for the last admin
    /// and for an account that still owns apps: destroy or transfer them first, so removing
    /// a person never silently destroys running apps.
    pub async fn remove_user(&self, email: &str) -> Result<User, CoreError> {
        let (user, revision) = slipway_store::json::get_json_versioned::<User, _>(
            self.store().as_ref(),
            &keys::user(email),
        )
        .await?
        .ok_or_else(|| CoreError::NotFound {
            resource: "user",
            id: email.to_owned(),
        })?;
        if user.admin {
            let admins = self.list_users().await?.iter().filter(|u| u.admin).count();
            if admins <= 1 {
                return Err(CoreError::Invalid {
                    message: format!("{email} is the only admin and cannot be removed."),
                });
            }
        }
        let owned: Vec<String> = self
            .apps(&user)
            .await?
            .into_iter()
            .map(|app| app.name)
            .collect();
        if !owned.is_empty() {
            return Err(CoreError::Invalid {
                message: format!(
                    "{email} still owns {}: destroy them or transfer them to another account first.",
                    owned.join(", ")
                ),
            });
        }
        let authorizations = self.list_authorizations(&user).await?;
        let mut txn = Txn::new()
            .when(Compare::mod_revision(keys::user(email), revision))
            .then(Op::delete(keys::user(email)))
            .then(Op::delete(password_key(user.id)))
            .then(Op::delete(profile_key(user.id)));
        for authorization in &authorizations {
            for op in authorization.delete_ops() {
                txn = txn.then(op);
            }
        }
        let response = self.store().txn(txn).await?;
        if !response.succeeded {
            return Err(CoreError::Conflict {
                message: format!(
                    "The account {email} changed while it was being removed; try again."
                ),
            });
        }
        Ok(user)
    }

    /// Sets (or replaces) a user's password.
    pub async fn set_password(&self, email: &str, password: &str) -> Result<(), CoreError> {
        validate_password(password)?;
        let user = self.user_by_email(email).await?;
        let hash = hash_password(password)?;
        apply_if(
            self.store().as_ref(),
            Compare::exists(keys::user(email)),
            Op::put(password_key(user.id), hash),
        )
        .await?;
        Ok(())
    }

    /// The user whose email and password these are. Every failure is the same
    /// [`CoreError::Unauthorized`] and costs the same argon2 time, whether the email exists
    /// or not; `throttle` counts the failures of each email.
    pub async fn verify_password(
        &self,
        email: &str,
        password: &str,
        throttle: &LoginThrottle,
    ) -> Result<User, CoreError> {
        let user = get_json::<User, _>(self.store().as_ref(), &keys::user(email)).await?;
        let hash = match &user {
            Some(user) => self
                .store()
                .get(&password_key(user.id))
                .await?
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()),
            None => None,
        };
        let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
        let candidate = password.to_owned();
        // Argon2 is deliberately slow: keep it off the async workers.
        let matches = tokio::task::spawn_blocking(move || password_matches(&hash, &candidate))
            .await
            .unwrap_or(false);
        match user {
            Some(user) if matches && password.len() <= MAX_PASSWORD_LEN => {
                throttle.succeeded(email);
                Ok(user)
            }
            _ => {
                throttle.failed(email);
                Err(CoreError::Unauthorized)
            }
        }
    }

    /// The user an API key belongs to.
    pub async fn authenticate(&self, api_key: &str) -> Result<User, CoreError> {
        self.authenticate_token(api_key).await.map(|(user, _)| user)
    }

    /// What `PATCH /account` changed, or the default when nothing has been.
    pub async fn account_profile(&self, user: &User) -> Result<AccountProfile, CoreError> {
        Ok(
            get_json::<AccountProfile, _>(self.store().as_ref(), &profile_key(user.id))
                .await?
                .unwrap_or_default(),
        )
    }

    /// Sets the account's display name (`None` clears it).
    pub async fn set_account_name(
        &self,
        user: &User,
        name: Option<&str>,
    ) -> Result<AccountProfile, CoreError> {
        if let Some(name) = name {
            if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
                return Err(CoreError::Invalid {
                    message: format!(
                        "The name must be at most {MAX_NAME_LEN} characters, without control characters."
                    ),
                });
            }
        }
        let mut profile = self.account_profile(user).await?;
        profile.name = name.map(str::to_owned);
        profile.updated_at = Some(Utc::now());
        slipway_store::json::put_json(self.store().as_ref(), &profile_key(user.id), &profile)
            .await?;
        Ok(profile)
    }

    /// The password hash stored for a user, for tests that check no password is kept.
    pub async fn password_hash(&self, user: &User) -> Result<Option<String>, CoreError> {
        Ok(self
            .store()
            .get(&password_key(user.id))
            .await?
            .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }
}
