//! Third-party add-ons over Heroku's Add-on Partner API (v3): the manifest an administrator
//! registers a provider with, checked as hostile input, and the HTTP client that provisions,
//! changes plans and deprovisions on the provider.
//!
//! The manifest is Heroku's (`id`, `name`, `api.config_vars`, `api.config_vars_prefix`,
//! `api.password`, `api.sso_salt`, `api.production.base_url` and `sso_url`, `api.requires`,
//! `api.regions`, `api.version` "3"). Heroku keeps plans in its partner dashboard, not in the
//! manifest; Slipway takes them from the manifest's `plans` array (`[{"id": "test", "name":
//! "Test", "price": {"cents": 0, "unit": "month"}, "default": true}]`), which the CLI can fill
//! with `--plan NAME` instead. Unknown fields are accepted, as the Partner API asks.
//!
//! The client speaks to the provider as Heroku does: Basic auth with the manifest's `id` and
//! `api.password`, JSON bodies, the add-on's id as the `uuid` that makes a retried provision
//! idempotent, no redirects followed, every connection through the platform's
//! [`OutboundPolicy`], every request bounded by the service's timeout (10 s unless the
//! administrator chose otherwise, at most Heroku's 25 s) and every answer capped at 64 kB.
//! A provider's 422 (or 503) `{"message"}` reaches the user verbatim, capped and with control
//! characters stripped; any other failure gives a generic message naming the service.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slipway_outbound::OutboundPolicy;
use url::Url;

use crate::plans::Service;

/// The largest manifest accepted (bytes of JSON).
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// How long a provider may take to answer unless its registration says otherwise: Heroku asks
/// partners to answer within 3 s and cuts them off at 25 s; 10 s leaves room for a slow one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout a registration may ask for (Heroku's hard limit).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a first deploy waits for an asynchronous provision (a 202) of one of its app.json
/// add-ons to be completed by the provider's callback, unless the manifest's
/// `provision_wait_seconds` says otherwise: a git push stays open that long, so a few minutes,
/// well inside the build's own 15.
pub const DEFAULT_PROVISION_WAIT: Duration = Duration::from_secs(5 * 60);
/// The longest `provision_wait_seconds` a manifest may ask for.
pub const MAX_PROVISION_WAIT: Duration = Duration::from_secs(30 * 60);
/// The largest answer read from a provider.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The longest provider message shown to a user.
const MAX_MESSAGE_CHARS: usize = 1024;
/// The most config vars a service may declare, and plans it may have.
const MAX_CONFIG_VARS: usize = 32;
const MAX_PLANS: usize = 32;
/// The longest config var value a provider may return.
const MAX_VALUE_BYTES: usize = 8 * 1024;
/// The longest URL accepted in a manifest.
const MAX_URL_LEN: usize = 2048;

/// A registered third-party service: the manifest, checked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerService {
    /// The manifest's `id` (`fast-db`): the service name users type.
    pub name: String,
    /// What the catalog calls it (the manifest's `name`, or the id).
    pub human_name: String,
    /// Every config var the provider may return starts with `<prefix>_`.
    pub prefix: String,
    /// The config vars the provider may set.
    pub config_vars: Vec<String>,
    /// Basic auth password of requests to the provider (never shown back).
    pub password: String,
    pub sso_salt: Option<String>,
    pub base_url: String,
    pub sso_url: Option<String>,
    pub requires: Vec<String>,
    pub regions: Vec<String>,
    /// The plans, the default first.
    pub plans: Vec<PartnerPlan>,
    /// How long the provider may take to answer.
    pub timeout_ms: u64,
    /// How long a first deploy waits for an asynchronous provision to complete (records
    /// stored before this field existed get the default).
    #[serde(default = "default_provision_wait_ms")]
    pub provision_wait_ms: u64,
}

fn default_provision_wait_ms() -> u64 {
    millis(DEFAULT_PROVISION_WAIT)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl std::fmt::Debug for PartnerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerService")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("plans", &self.plans)
            .finish_non_exhaustive()
    }
}

/// One plan of a registered service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerPlan {
    /// `test` (the full name is `fast-db:test`).
    pub name: String,
    pub human_name: String,
    pub price_cents: u64,
}

impl PartnerService {
    /// The plan called `name`, or the default plan for `None`.
    pub fn plan(&self, name: Option<&str>) -> Option<&PartnerPlan> {
        match name {
            None => self.plans.first(),
            Some(name) => self.plans.iter().find(|p| p.name == name),
        }
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// How long a first deploy waits for an asynchronous provision.
    pub fn provision_wait(&self) -> Duration {
        Duration::from_millis(self.provision_wait_ms)
    }

    /// Checks the provider's URLs against the platform's outbound rules (a provider on a
    /// private address is refused unless the platform allows private URLs).
    pub async fn check_urls(&self, policy: &OutboundPolicy) -> Result<(), ManifestError> {
        for url in std::iter::once(&self.base_url).chain(self.sso_url.as_ref()) {
            let parsed = Url::parse(url).map_err(|_| ManifestError::new("a URL is not valid"))?;
            policy.check_url(&parsed).await.map_err(|error| {
                ManifestError::new(format!("api.production URL {url} is refused: {error}"))
            })?;
        }
        Ok(())
    }

    /// Checks config vars a provider returned: each must be one the manifest declares and
    /// carry the prefix. Names only in messages, never values.
    pub fn check_config(&self, config: &BTreeMap<String, String>) -> Result<(), PartnerError> {
        let prefix = format!("{}_", self.prefix);
        for (name, value) in config {
            if !name.starts_with(&prefix) || !self.config_vars.contains(name) {
                return Err(PartnerError::ConfigVarNotAllowed {
                    service: self.name.clone(),
                    name: clean_message(name, 100),
                    allowed: self.config_vars.join(", "),
                });
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(PartnerError::BadAnswer {
                    service: self.name.clone(),
                    reason: format!("the value of {name} is longer than {MAX_VALUE_BYTES} bytes"),
                });
            }
        }
        Ok(())
    }
}

/// Why a manifest was refused (safe to show: it never quotes the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid add-on manifest: {reason}.")]
pub struct ManifestError {
    pub reason: String,
}

impl ManifestError {
    fn new(reason: impl Into<String>) -> ManifestError {
        ManifestError {
            reason: reason.into(),
        }
    }
}

#[derive(Deserialize)]
struct RawManifest {
    id: Option<String>,
    name: Option<String>,
    api: Option<RawApi>,
    #[serde(default)]
    plans: Vec<RawPlan>,
    /// Slipway's own, like `plans`: how long the provider's asynchronous provisioning may
    /// take before a first deploy waiting for it gives up.
    provision_wait_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct RawApi {
    #[serde(default)]
    config_vars: Vec<String>,
    config_vars_prefix: Option<String>,
    password: Option<String>,
    sso_salt: Option<String>,
    production: Option<RawProduction>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct RawProduction {
    base_url: Option<String>,
    sso_url: Option<String>,
}

#[derive(Deserialize)]
struct RawPlan {
    id: Option<String>,
    name: Option<String>,
    price: Option<RawPrice>,
    #[serde(default)]
    default: bool,
}

#[derive(Deserialize)]
struct RawPrice {
    #[serde(default)]
    cents: u64,
}

/// Parses and checks a manifest. `allow_http`: accept `http://` provider URLs (only when the
/// platform allows private URLs, for tests on one machine); otherwise HTTPS is required, as
/// Heroku requires it. `timeout`: the administrator's choice, `None` for [`DEFAULT_TIMEOUT`].
pub fn parse_manifest(
    bytes: &[u8],
    allow_http: bool,
    timeout: Option<Duration>,
) -> Result<PartnerService, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::new(format!(
            "it is {} bytes; the most accepted is {MAX_MANIFEST_BYTES}",
            bytes.len()
        )));
    }
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|error| {
        ManifestError::new(format!(
            "it is not a JSON object like {{\"id\": \"fast-db\", \"api\": {{...}}}} ({})",
            error_position(&error)
        ))
    })?;
    let name = raw.id.ok_or_else(|| ManifestError::new("id is missing"))?;
    check_slug("id", &name, 50)?;
    if Service::parse(&name).is_some() {
        return Err(ManifestError::new(format!(
            "id {name:?} is a built-in service's name; choose another"
        )));
    }
    let human_name = match raw.name {
        Some(human) => {
            check_text("name", &human, 100)?;
            human
        }
        None => name.clone(),
    };
    let api = raw
        .api
        .ok_or_else(|| ManifestError::new("api is missing"))?;
    match api.version.as_deref() {
        Some("3") => {}
        Some(other) => {
            return Err(ManifestError::new(format!(
                "api.version is {:?}; Slipway speaks version \"3\" of the Partner API",
                clean_message(other, 20)
            )))
        }
        None => return Err(ManifestError::new("api.version is missing (use \"3\")")),
    }
    let prefix = match api.config_vars_prefix {
        Some(prefix) => prefix,
        None => name.to_ascii_uppercase().replace('-', "_"),
    };
    if !is_var_name(&prefix, 40) {
        return Err(ManifestError::new(format!(
            "api.config_vars_prefix {:?} must be uppercase letters, digits and underscores, starting with a letter, at most 40 characters",
            clean_message(&prefix, 50)
        )));
    }
    if api.config_vars.is_empty() || api.config_vars.len() > MAX_CONFIG_VARS {
        return Err(ManifestError::new(format!(
            "api.config_vars must list between 1 and {MAX_CONFIG_VARS} config vars"
        )));
    }
    let mut config_vars: Vec<String> = Vec::new();
    for var in api.config_vars {
        if !is_var_name(&var, 100) || !var.starts_with(&format!("{prefix}_")) {
            return Err(ManifestError::new(format!(
                "api.config_vars entry {:?} must be an uppercase name starting with {prefix}_",
                clean_message(&var, 100)
            )));
        }
        if config_vars.contains(&var) {
            return Err(ManifestError::new(format!(
                "api.config_vars lists {var} twice"
            )));
        }
        config_vars.push(var);
    }
    let password = api
        .password
        .ok_or_else(|| ManifestError::new("api.password is missing"))?;
    if password.len() < 8 || password.len() > 256 || password.chars().any(char::is_control) {
        return Err(ManifestError::new(
            "api.password must be 8 to 256 printable characters",
        ));
    }
    if let Some(salt) = &api.sso_salt {
        if salt.len() > 256 || salt.chars().any(char::is_control) {
            return Err(ManifestError::new(
                "api.sso_salt must be at most 256 printable characters",
            ));
        }
    }
    let production = api
        .production
        .ok_or_else(|| ManifestError::new("api.production is missing"))?;
    let base_url = production
        .base_url
        .ok_or_else(|| ManifestError::new("api.production.base_url is missing"))?;
    check_url("api.production.base_url", &base_url, allow_http)?;
    if let Some(sso_url) = &production.sso_url {
        check_url("api.production.sso_url", sso_url, allow_http)?;
    }
    if api.requires.len() > 10 || api.regions.len() > 50 {
        return Err(ManifestError::new(
            "api.requires takes at most 10 entries and api.regions at most 50",
        ));
    }
    for entry in api.requires.iter().chain(&api.regions) {
        check_text("api.requires and api.regions entries", entry, 100)?;
    }
    let plans = parse_plans(raw.plans)?;
    let provision_wait = match raw.provision_wait_seconds {
        None => DEFAULT_PROVISION_WAIT,
        Some(seconds) if (1..=MAX_PROVISION_WAIT.as_secs()).contains(&seconds) => {
            Duration::from_secs(seconds)
        }
        Some(_) => {
            return Err(ManifestError::new(format!(
                "provision_wait_seconds must be between 1 and {}",
                MAX_PROVISION_WAIT.as_secs()
            )))
        }
    };
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(ManifestError::new(format!(
            "the timeout must be between 1 ms and {} s",
            MAX_TIMEOUT.as_secs()
        )));
    }
    Ok(PartnerService {
        name,
        human_name,
        prefix,
        config_vars,
        password,
        sso_salt: api.sso_salt,
        base_url: base_url.trim_end_matches('/').to_owned(),
        sso_url: production.sso_url,
        requires: api.requires,
        regions: api.regions,
        plans,
        timeout_ms: millis(timeout),
        provision_wait_ms: millis(provision_wait),
    })
}

fn parse_plans(raw: Vec<RawPlan>) -> Result<Vec<PartnerPlan>, ManifestError> {
    if raw.is_empty() || raw.len() > MAX_PLANS {
        return Err(ManifestError::new(format!(
            "plans must list between 1 and {MAX_PLANS} plans (like [{{\"id\": \"test\"}}], or give --plan)"
        )));
    }
    if raw.iter().filter(|p| p.default).count() > 1 {
        return Err(ManifestError::new("only one plan may be the default"));
    }
    let mut plans: Vec<PartnerPlan> = Vec::new();
    let mut default = 0;
    for (i, plan) in raw.into_iter().enumerate() {
        let name = plan
            .id
            .ok_or_else(|| ManifestError::new("every plan needs an id"))?;
        check_slug("a plan's id", &name, 50)?;
        if plans.iter().any(|p| p.name == name) {
            return Err(ManifestError::new(format!("plan {name} is listed twice")));
        }
        let human_name = match plan.name {
            Some(human) => {
                check_text("a plan's name", &human, 100)?;
                human
            }
            None => name.clone(),
        };
        if plan.default {
            default = i;
        }
        plans.push(PartnerPlan {
            name,
            human_name,
            price_cents: plan.price.map_or(0, |p| p.cents),
        });
    }
    // The default plan first: that is where callers look for it.
    let first = plans.remove(default);
    plans.insert(0, first);
    Ok(plans)
}

/// Where a JSON error is, without quoting the input (it may hold the password).
fn error_position(error: &serde_json::Error) -> String {
    format!("line {}, column {}", error.line(), error.column())
}

/// `[a-z][a-z0-9-]*`, not ending with `-`.
fn check_slug(what: &str, value: &str, max: usize) -> Result<(), ManifestError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ManifestError::new(format!(
            "{what} {:?} must be lowercase letters, digits and dashes, starting with a letter, at most {max} characters",
            clean_message(value, max + 10)
        )))
    }
}

fn check_text(what: &str, value: &str, max: usize) -> Result<(), ManifestError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        Err(ManifestError::new(format!(
            "{what} must be 1 to {max} printable characters"
        )))
    } else {
        Ok(())
    }
}

fn is_var_name(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn check_url(what: &str, value: &str, allow_http: bool) -> Result<(), ManifestError> {
    if value.len() > MAX_URL_LEN {
        return Err(ManifestError::new(format!(
            "{what} is longer than {MAX_URL_LEN} characters"
        )));
    }
    let url =
        Url::parse(value).map_err(|_| ManifestError::new(format!("{what} is not a valid URL")))?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_ok {
        return Err(ManifestError::new(format!(
            "{what} must be an https:// URL"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ManifestError::new(format!(
            "{what} must not carry credentials (Slipway sends api.password itself)"
        )));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(ManifestError::new(format!(
            "{what} needs a host and no query or fragment"
        )));
    }
    Ok(())
}

/// A provider's text made safe to show: control characters become spaces, and it is cut at
/// `max` characters.
pub fn clean_message(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out.trim().to_owned()
}

/// Why a call to a provider failed. Every message is safe to show the user.
#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// The provider's own 422/503 message, cleaned.
    #[error("{message}")]
    Refused { service: String, message: String },
    #[error(
        "The add-on provider {service} did not answer within {seconds} seconds. Try again later."
    )]
    Timeout { service: String, seconds: f64 },
    #[error("The add-on provider {service} could not be reached ({detail}). Try again later.")]
    Unreachable { service: String, detail: String },
    #[error("The add-on provider {service} answered HTTP {status}. Try again later.")]
    Status { service: String, status: u16 },
    #[error("The add-on provider {service} sent an answer Slipway cannot use: {reason}.")]
    BadAnswer { service: String, reason: String },
    #[error("The add-on provider {service} returned the config var {name}, which its manifest does not allow (allowed: {allowed}).")]
    ConfigVarNotAllowed {
        service: String,
        name: String,
        allowed: String,
    },
}

impl PartnerError {
    /// True if the provider may have done the work although the call failed (a timeout or a
    /// dropped connection): the caller then asks for a deprovision, which the `uuid` makes
    /// safe.
    pub fn maybe_done(&self) -> bool {
        matches!(
            self,
            PartnerError::Timeout { .. }
                | PartnerError::Status { .. }
                | PartnerError::BadAnswer { .. }
                | PartnerError::ConfigVarNotAllowed { .. }
        )
    }
}

/// The provision request's body (Partner API v3).
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionRequest {
    /// The add-on's id: the idempotency key and the id of later calls.
    pub uuid: String,
    /// The add-on's name.
    pub name: String,
    /// The plan, without the service (`test`).
    pub plan: String,
    /// `<api>/addons/<uuid>`.
    pub callback_url: String,
    pub region: String,
    pub options: serde_json::Map<String, serde_json::Value>,
    /// `app<id>@<domain>` (v1's field, still sent by Heroku).
    pub heroku_id: String,
    pub oauth_grant: OauthGrant,
}

/// The credential the provider uses to call back. Slipway hands out the bearer token itself
/// as the `code` (no exchange at an OAuth endpoint): the provider sends it as
/// `Authorization: Bearer <code>`, and it is good for this add-on only.
#[derive(Clone, Serialize)]
pub struct OauthGrant {
    pub code: String,
    pub expires_at: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl std::fmt::Debug for OauthGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthGrant")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a provision answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// 200/201: done, with its config vars (checked against the manifest).
    Done {
        provider_id: Option<String>,
        config: BTreeMap<String, String>,
        message: Option<String>,
    },
    /// 202: the provider finishes later and calls back.
    Pending {
        provider_id: Option<String>,
        message: Option<String>,
    },
}

/// What a plan change answered: optional new config vars (checked) and message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanChanged {
    pub config: BTreeMap<String, String>,
    pub message: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawAnswer {
    id: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
}

/// Parses config vars as providers send them: an object of strings or `[{name, value}]`.
pub fn parse_config(
    service: &str,
    config: &serde_json::Value,
) -> Result<BTreeMap<String, String>, PartnerError> {
    let bad = |reason: &str| PartnerError::BadAnswer {
        service: service.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out = BTreeMap::new();
    match config {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (name, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| bad("config values must be strings"))?;
                out.insert(name.clone(), value.to_owned());
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                let name = item.get("name").and_then(|v| v.as_str());
                let value = item.get("value").and_then(|v| v.as_str());
                match (name, value) {
                    (Some(name), Some(value)) => {
                        out.insert(name.to_owned(), value.to_owned());
                    }
                    _ => return Err(bad("config entries must be {\"name\", \"value\"} strings")),
                }
            }
        }
        _ => return Err(bad("config must be an object or a list")),
    }
    if out.len() > MAX_CONFIG_VARS {
        return Err(bad("too many config vars"));
    }
    Ok(out)
}

fn answer_text(value: Option<serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(clean_message(&s, MAX_MESSAGE_CHARS)),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Speaks the Partner API to providers.
#[derive(Clone)]
pub struct PartnerClient {
    http: reqwest::Client,
    policy: OutboundPolicy,
}

impl std::fmt::Debug for PartnerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerClient").finish_non_exhaustive()
    }
}

impl PartnerClient {
    /// A client whose connections go only where `policy` allows.
    pub fn new(policy: OutboundPolicy) -> Result<PartnerClient, PartnerError> {
        let http = policy
            .http_client(reqwest::Client::builder().user_agent("slipway-addons/partner-api-v3"))
            .build()
            .map_err(|error| PartnerError::Unreachable {
                service: "(any)".into(),
                detail: format!("the HTTP client could not be built: {error}"),
            })?;
        Ok(PartnerClient { http, policy })
    }

    /// `POST {base_url}`: provisions. The config of a synchronous answer is checked against
    /// the manifest; the caller deprovisions if it is refused.
    pub async fn provision(
        &self,
        service: &PartnerService,
        request: &ProvisionRequest,
    ) -> Result<Provisioned, PartnerError> {
        let body = serde_json::to_vec(request).map_err(|error| PartnerError::BadAnswer {
            service: service.name.clone(),
            reason: format!("the request could not be encoded: {error}"),
        })?;
        let (status, answer) = self
            .call(
                service,
                reqwest::Method::POST,
                &service.base_url,
                Some(body),
            )
            .await?;
        let provider_id = answer.id.as_ref().and_then(|id| match id {
            serde_json::Value::String(s) => Some(clean_message(s, 200)),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        if status == 202 {
            return Ok(Provisioned::Pending {
                provider_id,
                message: answer_text(answer.message),
            });
        }
        let config = match &answer.config {
            Some(config) => parse_config(&service.name, config)?,
            None => BTreeMap::new(),
        };
        service.check_config(&config)?;
        Ok(Provisioned::Done {
            provider_id,
            config,
            message: answer_text(answer.message),
        })
    }

    /// `PUT {base_url}/{uuid}` with `{plan}`.
    pub async fn change_plan(
        &self,
        service: &PartnerService,
        uuid: &str,
        plan: &str,
    ) -> Result<PlanChanged, PartnerError> {
        let body = serde_json::to_vec(&serde_json::json!({ "plan": plan })).map_err(|error| {
            PartnerError::BadAnswer {
                service: service.name.clone(),
                reason: format!("the request could not be encoded: {error}"),
            }
        })?;
        let url = format!("{}/{uuid}", service.base_url);
        let (_, answer) = self
            .call(service, reqwest::Method::PUT, &url, Some(body))
            .await?;
        let config = match &answer.config {
            Some(config) => parse_config(&service.name, config)?,
            None => BTreeMap::new(),
        };
        service.check_config(&config)?;
        Ok(PlanChanged {
            config,
            message: answer_text(answer.message),
        })
    }

    /// `DELETE {base_url}/{uuid}`. A 404 or 410 means the provider has nothing under that
    /// uuid (a retried deprovision, or a provision that never happened): done.
    pub async fn deprovision(
        &self,
        service: &PartnerService,
        uuid: &str,
    ) -> Result<(), PartnerError> {
        let url = format!("{}/{uuid}", service.base_url);
        match self
            .call(service, reqwest::Method::DELETE, &url, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(PartnerError::Status { status, .. }) if status == 404 || status == 410 => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// One request: policy check, Basic auth, timeout over the whole exchange (body read
    /// included), capped answer. Returns the success status and the parsed answer.
    async fn call(
        &self,
        service: &PartnerService,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, RawAnswer), PartnerError> {
        let timeout = service.timeout();
        match tokio::time::timeout(timeout, self.exchange(service, method, url, body)).await {
            Ok(result) => result,
            Err(_) => Err(PartnerError::Timeout {
                service: service.name.clone(),
                seconds: timeout.as_secs_f64(),
            }),
        }
    }

    async fn exchange(
        &self,
        service: &PartnerService,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, RawAnswer), PartnerError> {
        let unreachable = |detail: String| PartnerError::Unreachable {
            service: service.name.clone(),
            detail,
        };
        let parsed = Url::parse(url).map_err(|_| unreachable("its URL is not valid".into()))?;
        self.policy
            .check_url(&parsed)
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let mut request = self
            .http
            .request(method, parsed)
            .basic_auth(&service.name, Some(&service.password))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = request.send().await.map_err(|error| {
            tracing::warn!(service = %service.name, error = %slipway_outbound::error_chain(&error), "an add-on provider could not be reached");
            unreachable(if error.is_connect() {
                "connection refused or failed".into()
            } else {
                "the connection failed".into()
            })
        })?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| unreachable("the answer was cut off".into()))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(PartnerError::BadAnswer {
                    service: service.name.clone(),
                    reason: format!("its answer is larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let answer = || -> RawAnswer {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                RawAnswer::default()
            } else {
                serde_json::from_slice(&bytes).unwrap_or_default()
            }
        };
        match status {
            200..=299 => {
                if !bytes.iter().all(u8::is_ascii_whitespace)
                    && serde_json::from_slice::<RawAnswer>(&bytes).is_err()
                {
                    return Err(PartnerError::BadAnswer {
                        service: service.name.clone(),
                        reason: "its answer is not a JSON object".into(),
                    });
                }
                Ok((status, answer()))
            }
            422 | 503 => {
                let message = answer_text(answer().message).filter(|m| !m.is_empty());
                Err(PartnerError::Refused {
                    service: service.name.clone(),
                    message: message.unwrap_or_else(|| {
                        format!(
                            "The add-on provider {} refused the request (HTTP {status}).",
                            service.name
                        )
                    }),
                })
            }
            _ => Err(PartnerError::Status {
                service: service.name.clone(),
                status,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
