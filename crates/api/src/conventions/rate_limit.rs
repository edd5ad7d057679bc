//! The rate limit: a token bucket per account (every API key of a user takes from the user's
//! one bucket, as on Heroku; a credential that names no account, such as a git push's
//! one-time token, has a bucket of its own; requests without one take from their peer
//! address's, or their capability URL's), `RateLimit-Remaining` on every response, 429 when
//! the bucket is empty, and `GET /account/rate-limits`, which reads the bucket without taking
//! from it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use slipway_core::Platform;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sha2::{Digest, Sha256};

use crate::auth::{api_key, CurrentUser};
use crate::error::ApiError;

/// The route that reports the bucket and is not counted.
pub(crate) const RATE_LIMITS_PATH: &str = "/account/rate-limits";

/// How many buckets are kept at most; past it, full buckets (the same as no bucket) go.
const MAX_BUCKETS: usize = 100_000;

/// How long a credential's account is remembered, so that a busy client costs one store read
/// per this long rather than one per request. A key revoked meanwhile still fails
/// authentication at once; only which bucket its requests take from lags.
const ACCOUNT_CACHE_TTL: Duration = Duration::from_secs(30);

/// The account (a stable id) a presented API key belongs to, if it is a valid key.
pub(crate) type AccountOf = Arc<dyn Fn(String) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// The buckets of every caller, refilled continuously up to `capacity` over an hour.
#[derive(Clone)]
pub(crate) struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
    /// Resolves credentials to accounts; without it, every credential is its own bucket.
    account_of: Option<AccountOf>,
    /// Credential digests → (account, when resolved).
    accounts: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("capacity", &self.capacity)
            .field("per_account", &self.account_of.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The bucket a request takes from, as the middleware found it.
#[derive(Clone, Debug)]
pub(crate) struct BucketKey(String);

/// What `GET /account/rate-limits` answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RateLimit {
    /// The requests the caller may still make now.
    pub(crate) remaining: u64,
}

impl RateLimiter {
    /// Buckets of `per_hour` requests, refilled at `per_hour` an hour.
    pub(crate) fn new(per_hour: u32) -> RateLimiter {
        let capacity = f64::from(per_hour.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / 3600.0,
            buckets: Arc::new(Mutex::new(HashMap::new())),
            account_of: None,
            accounts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Buckets per account, `account_of` telling whose a credential is.
    pub(crate) fn with_account_of(mut self, account_of: AccountOf) -> RateLimiter {
        self.account_of = Some(account_of);
        self
    }

    /// Buckets per account of `platform`: a key's account is the user it authenticates.
    pub(crate) fn with_accounts_of(self, platform: Arc<Platform>) -> RateLimiter {
        self.with_account_of(Arc::new(move |key: String| {
            let platform = platform.clone();
            async move {
                platform
                    .authenticate(&key)
                    .await
                    .ok()
                    .map(|user| user.id.to_string())
            }
            .boxed()
        }))
    }

    /// Whose bucket a request takes from: its credential's account when the credential is
    /// valid, else as [`bucket_key`] says.
    pub(crate) async fn bucket_for(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        path: &str,
    ) -> String {
        let fallback = bucket_key(headers, peer, path);
        let (Some(account_of), Some(key)) = (&self.account_of, api_key(headers)) else {
            return fallback;
        };
        let now = Instant::now();
        {
            let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((account, at)) = accounts.get(&fallback) {
                if now.saturating_duration_since(*at) < ACCOUNT_CACHE_TTL {
                    return format!("account:{account}");
                }
            }
        }
        let Some(account) = account_of(key).await else {
            return fallback;
        };
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if accounts.len() >= MAX_BUCKETS {
            accounts.retain(|_, (_, at)| now.saturating_duration_since(*at) < ACCOUNT_CACHE_TTL);
            if accounts.len() >= MAX_BUCKETS {
                accounts.clear();
            }
        }
        accounts.insert(fallback, (account.clone(), now));
        format!("account:{account}")
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * self.per_second).min(self.capacity),
            updated: now,
        }
    }

    /// Takes one token from `key`'s bucket: the tokens left, or how long until one is back.
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<u64, Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let full = self.capacity;
            buckets.retain(|_, bucket| self.refilled(*bucket, now).tokens < full);
        }
        let current = buckets.get(key).copied().unwrap_or(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let mut bucket = self.refilled(current, now);
        if bucket.tokens < 1.0 {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            buckets.insert(key.to_owned(), bucket);
            return Err(Duration::from_secs_f64(wait.max(0.0)));
        }
        bucket.tokens -= 1.0;
        if buckets.len() < MAX_BUCKETS || buckets.contains_key(key) {
            buckets.insert(key.to_owned(), bucket);
        }
        Ok(bucket.tokens as u64)
    }

    /// The tokens left in `key`'s bucket, taking none.
    pub(crate) fn remaining(&self, key: &str, now: Instant) -> u64 {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .get(key)
            .map_or(self.capacity, |bucket| self.refilled(*bucket, now).tokens) as u64
    }
}

fn digest(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Whose bucket a request takes from: its credential's (a digest: the bucket map never holds
/// a key), its peer's, or, with neither, its capability URL's (log streams, build outputs).
pub(crate) fn bucket_key(headers: &HeaderMap, peer: Option<SocketAddr>, path: &str) -> String {
    if let Some(key) = api_key(headers) {
        return format!("key:{}", digest(&key));
    }
    if let Some(peer) = peer {
        return format!("peer:{}", peer.ip());
    }
    format!("path:{}", digest(path))
}

fn remaining_header(response: &mut Response, remaining: u64) {
    response
        .headers_mut()
        .insert("ratelimit-remaining", HeaderValue::from(remaining));
}

/// Takes a token for every request but the rate-limit report, answering 429 when there is
/// none, and says what is left on every response.
pub(super) async fn rate_limit(
    State(limiter): State<RateLimiter>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let key = limiter
        .bucket_for(request.headers(), peer, request.uri().path())
        .await;
    let now = Instant::now();
    if request.uri().path() == RATE_LIMITS_PATH {
        request.extensions_mut().insert(limiter.clone());
        request.extensions_mut().insert(BucketKey(key.clone()));
        let mut response = next.run(request).await;
        remaining_header(&mut response, limiter.remaining(&key, Instant::now()));
        return response;
    }
    match limiter.take(&key, now) {
        Ok(remaining) => {
            let mut response = next.run(request).await;
            remaining_header(&mut response, remaining);
            response
        }
        Err(wait) => {
            let mut response = ApiError::for_status(StatusCode::TOO_MANY_REQUESTS).into_response();
            remaining_header(&mut response, 0);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            response
        }
    }
}

/// `GET /account/rate-limits`: the caller's tokens left (not counted).
pub(crate) async fn rate_limits(
    CurrentUser(_user): CurrentUser,
    Extension(limiter): Extension<RateLimiter>,
    Extension(BucketKey(key)): Extension<BucketKey>,
) -> Json<RateLimit> {
    Json(RateLimit {
        remaining: limiter.remaining(&key, Instant::now()),
    })
}
