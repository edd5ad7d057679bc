//! A thin HTTP client for Slipway's Heroku-compatible Platform API: base URL, API key,
//! the v3 `Accept` header, and error bodies turned into [`ApiError`].

use std::path::{Path, PathBuf};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RANGE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use slipway_api_types::{ErrorBody, ACCEPT_V3};

/// Where the CLI talks to when `SLIPWAY_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:5000";

/// A client for one Slipway API endpoint with one API key.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    api_key: String,
    http: reqwest::Client,
}

/// Why an API call failed. The `Display` text is what the user sees after ` ▸    `.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error body (`{"id": ..., "message": ...}`).
    #[error("{message}")]
    Api {
        status: StatusCode,
        id: String,
        message: String,
    },
    /// The API answered non-2xx without a usable error body.
    #[error("HTTP {status} from {method} {url}: {body}")]
    Http {
        status: StatusCode,
        method: Method,
        url: Url,
        body: String,
    },
    /// No connection could be made.
    #[error(
        "Could not reach the Slipway API at {url}: {reason}. Is `slipway server` running? Set SLIPWAY_API_URL to point at it."
    )]
    Unreachable { url: Url, reason: String },
    /// The response body was not the JSON this command expects.
    #[error("Unexpected response from {method} {url}: {reason}. Are the CLI and server versions the same?")]
    Decode {
        method: Method,
        url: Url,
        reason: String,
    },
}

/// Why [`Client::from_env`] could not build a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    #[error("SLIPWAY_API_URL={value:?} is not a valid URL: {reason}. Use something like {DEFAULT_API_URL}")]
    InvalidUrl { value: String, reason: String },
    #[error(
        "No API key: run `slipway login`, set SLIPWAY_API_KEY, or run this on the server host where {} is readable ({reason})",
        path.display()
    )]
    MissingApiKey { path: PathBuf, reason: String },
    #[error("The API key in {} is empty; set SLIPWAY_API_KEY instead", path.display())]
    EmptyKeyFile { path: PathBuf },
}

/// Slipway's default data directory: `$SLIPWAY_DATA_DIR` if set, else `/var/lib/slipway`
/// for root, else `$HOME/.local/share/slipway`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLIPWAY_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/slipway");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/slipway")
}

/// The most pages [`Client::get`] follows for one list (1000 items each at most).
const MAX_PAGES: usize = 1000;

/// A successful response: what was asked, the body, and the `Next-Range` of a cut list.
struct Page {
    method: Method,
    url: Url,
    bytes: Vec<u8>,
    next_range: Option<String>,
}

// The error is the CLI's one `ApiError`, returned by every request method; boxing it here
// alone would make this the odd one out.
#[allow(clippy::result_large_err)]
fn decode_json<T: DeserializeOwned>(method: Method, url: Url, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        method,
        url,
        reason: e.to_string(),
    })
}

impl Client {
    /// A client for the API at `base` authenticating with `api_key`.
    pub fn new(base: Url, api_key: impl Into<String>) -> Client {
        Client {
            base,
            api_key: api_key.into(),
            http: reqwest::Client::builder()
                .user_agent(concat!("slipway-cli/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
        }
    }

    /// A client configured from `SLIPWAY_API_URL` (default `http://127.0.0.1:5000`) and the
    /// first API key found: `SLIPWAY_API_KEY`, then the `~/.netrc` login for the API's host
    /// (what `slipway login` and `heroku login` write), then `<data dir>/admin.key` of a
    /// local server.
    pub fn from_env() -> anyhow::Result<Client> {
        let base = api_url_from_env()?;
        let api_key = match std::env::var("SLIPWAY_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
        {
            Some(key) => key,
            None => match netrc_key(&base) {
                Some(key) => key,
                None => read_key_file(&default_data_dir().join("admin.key"))?,
            },
        };
        Ok(Client::new(base, api_key))
    }

    /// The API key this client sends.
    pub(crate) fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The API base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The base URL with `segments` appended as escaped path segments.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// GET a JSON resource, optionally with a `Range` header. Without one, a list the server
    /// cut into pages (206 with `Next-Range`) is fetched to its end, as the heroku CLI does;
    /// with one, the caller asked for exactly that page.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        range: Option<&str>,
    ) -> Result<T, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(range) = range.and_then(|r| HeaderValue::from_str(r).ok()) {
            headers.insert(RANGE, range);
        }
        let page = self
            .execute(Method::GET, segments, None::<&()>, headers)
            .await?;
        let (method, url) = (page.method.clone(), page.url.clone());
        let mut next = page.next_range.filter(|_| range.is_none());
        if next.is_none() {
            return decode_json(page.method, page.url, &page.bytes);
        }
        let mut items =
            match decode_json::<serde_json::Value>(method.clone(), url.clone(), &page.bytes)? {
                serde_json::Value::Array(items) => items,
                _ => return decode_json(page.method, page.url, &page.bytes),
            };
        // A bound on pages, so a server that always answers `Next-Range` cannot loop us.
        for _ in 0..MAX_PAGES {
            let Some(range) = next.take().and_then(|r| HeaderValue::from_str(&r).ok()) else {
                break;
            };
            let mut headers = HeaderMap::new();
            headers.insert(RANGE, range);
            let page = self
                .execute(Method::GET, segments, None::<&()>, headers)
                .await?;
            match decode_json::<serde_json::Value>(method.clone(), url.clone(), &page.bytes)? {
                serde_json::Value::Array(more) => items.extend(more),
                _ => break,
            }
            next = page.next_range;
        }
        serde_json::from_value(serde_json::Value::Array(items)).map_err(|e| ApiError::Decode {
            method,
            url,
            reason: e.to_string(),
        })
    }

    /// Send a request with an optional JSON body and decode the JSON response.
    pub(crate) async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        self.request(method, segments, body, HeaderMap::new()).await
    }

    /// DELETE a resource and decode the JSON of what was removed.
    pub(crate) async fn delete<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<T, ApiError> {
        self.request(Method::DELETE, segments, None::<&()>, HeaderMap::new())
            .await
    }

    /// Send a request whose response body does not matter (restarts, stops, deletes).
    pub(crate) async fn send_ignoring_body(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<(), ApiError> {
        self.execute(method, segments, None::<&()>, HeaderMap::new())
            .await
            .map(|_| ())
    }

    /// GET a resource that is not JSON (the platform CA's PEM), as bytes.
    pub(crate) async fn get_bytes(&self, segments: &[&str]) -> Result<Vec<u8>, ApiError> {
        let Page { bytes, .. } = self
            .execute(Method::GET, segments, None::<&()>, HeaderMap::new())
            .await?;
        Ok(bytes)
    }

    /// The underlying HTTP client, for requests outside the API (log streams).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn request<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
        headers: HeaderMap,
    ) -> Result<T, ApiError> {
        let page = self.execute(method, segments, body, headers).await?;
        decode_json(page.method, page.url, &page.bytes)
    }

    async fn execute<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
        headers: HeaderMap,
    ) -> Result<Page, ApiError> {
        let url = self.url(segments);
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers)
            .header(ACCEPT, ACCEPT_V3)
            .header(AUTHORIZATION, format!("Bearer {}", self.api_key));
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| ApiError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let next_range = (status == StatusCode::PARTIAL_CONTENT)
            .then(|| response.headers().get("next-range"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(unreachable)?.to_vec();
        if status.is_success() {
            return Ok(Page {
                method,
                url,
                bytes,
                next_range,
            });
        }
        Err(match ApiError::from_answer(status, method, url, &bytes) {
            // The server's words are for any client; a Slipway user fixes it in Slipway's terms.
            ApiError::Api { status, id, .. } if status == StatusCode::UNAUTHORIZED => ApiError::Api {
                status,
                id,
                message: "Invalid credentials provided: the API key was refused. Set SLIPWAY_API_KEY to a valid API key, or run `slipway login`.".to_owned(),
            },
            other => other,
        })
    }
}

impl ApiError {
    /// The error of a non-2xx answer to `method url`: the server's `{"id","message"}` body
    /// when it sent one, else the status and the start of whatever it sent.
    pub(crate) fn from_answer(status: StatusCode, method: Method, url: Url, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(error) => ApiError::Api {
                status,
                id: error.id,
                message: error.message,
            },
            Err(_) => ApiError::Http {
                status,
                method,
                url,
                body: String::from_utf8_lossy(body).chars().take(200).collect(),
            },
        }
    }
}

/// The API URL from `SLIPWAY_API_URL`, default `http://127.0.0.1:5000`.
pub(crate) fn api_url_from_env() -> Result<Url, ClientConfigError> {
    let url_text = std::env::var("SLIPWAY_API_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    Url::parse(&url_text).map_err(|e| ClientConfigError::InvalidUrl {
        value: url_text.clone(),
        reason: e.to_string(),
    })
}

/// The password of the `~/.netrc` login for the API's host, if there is one. An unreadable
/// netrc counts as none: the next fallback's error says what to do.
pub(crate) fn netrc_key(base: &Url) -> Option<String> {
    let machine = crate::netrc::machine_for(base)?;
    crate::netrc::Netrc::read(&crate::netrc::default_path())
        .ok()?
        .get(&machine)?
        .password
        .filter(|p| !p.is_empty())
}

fn read_key_file(path: &Path) -> Result<String, ClientConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ClientConfigError::MissingApiKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(ClientConfigError::EmptyKeyFile {
            path: path.to_owned(),
        });
    }
    Ok(key.to_owned())
}

/// The innermost error message of a chain (e.g. "Connection refused (os error 111)").
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
