//! Lists and caching: every JSON list a GET answers is paginated by its `Range` header
//! (`<key> [start]..[end][; max=N, order=asc|desc]`, sort keys per list in `Accept-Ranges`,
//! 200 items by default, 1000 at most; 206 and a `Next-Range` only when the list goes on), and
//! every JSON body a GET answers carries a strong `ETag`, which `If-None-Match` turns into a
//! 304 without a body.
//!
//! The pagination works on the response's JSON, whatever handler made it: items are compared
//! by the sort key's field, numbers as numbers and strings as strings.

use std::cmp::Ordering;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use slipway_api_types::{ListRange, RangeOrder};

use crate::error::ApiError;

/// The largest JSON body a GET may answer with and still be paginated and tagged.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// The fields a list may be sorted by, the default first, by the list's last path segment.
pub(super) fn sort_keys(path: &str) -> &'static [&'static str] {
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match last {
        "apps" => &["id", "name"],
        "releases" => &["version", "id"],
        "domains" => &["id", "hostname"],
        "dynos" => &["id", "name"],
        "formation" => &["id", "type"],
        "addons" | "addon-attachments" | "addon-services" | "plans" | "sni-endpoints" => {
            &["id", "name"]
        }
        "log-drains" => &["id", "url", "token"],
        "builds" => &["id", "created_at"],
        _ => &["id"],
    }
}

/// The largest page a `Range` may ask for (the server's `--api-max-page-size`, Heroku's 1000).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageLimit(pub(crate) usize);

/// One page of a list: its items, and the range of the next page when the list goes on.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) items: Vec<Value>,
    pub(super) next: Option<ListRange>,
    /// Whether the items were re-ordered or cut (otherwise the body can go out as it came).
    pub(super) changed: bool,
}

fn range_error(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "requested_range_not_satisfiable",
        message,
    )
}

/// The sort key of an item as a `Range` bound spells it.
fn bound_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Orders two field values: numbers as numbers, strings as strings, `null` (or a missing
/// field) first, mixed kinds by kind.
fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// Orders a field value against a bound from a `Range` header: a number against a bound that
/// is a number, anything else as text.
fn compare_to_bound(value: &Value, bound: &str) -> Ordering {
    if let (Value::Number(number), Ok(bound)) = (value, bound.parse::<f64>()) {
        return number
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&bound)
            .unwrap_or(Ordering::Equal);
    }
    bound_text(value).as_str().cmp(bound)
}

/// Pages `items` as the `Range` header `header` asks (`None` or blank: the first page in the
/// handler's order, sorted by the default key only when it has to be cut).
pub(super) fn paginate(
    mut items: Vec<Value>,
    header: Option<&str>,
    keys: &[&str],
    page_limit: usize,
) -> Result<Page, ApiError> {
    let asked = match header {
        Some(text) => ListRange::parse(text).map_err(|error| range_error(error.to_string()))?,
        None => None,
    };
    let default_key = keys.first().copied().unwrap_or("id");
    if let Some(range) = &asked {
        if !keys.contains(&range.field.as_str()) {
            return Err(range_error(format!(
                "This list cannot be sorted by `{}`; sort it by {} (see `Accept-Ranges`).",
                range.field,
                keys.iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
    }
    let explicit = asked.is_some();
    let mut range = asked.unwrap_or_else(|| ListRange::all(default_key));
    range.max = range.max.min(page_limit);
    if !explicit && items.len() <= range.max {
        return Ok(Page {
            items,
            next: None,
            changed: false,
        });
    }
    let field = range.field.as_str();
    let key = |item: &Value| item.get(field).cloned().unwrap_or(Value::Null);
    // Compares in the order the client asked for, so that `start` is where the listing
    // begins and `end` where it stops, ascending or not.
    let directed = |ordering: Ordering| match range.order {
        RangeOrder::Asc => ordering,
        RangeOrder::Desc => ordering.reverse(),
    };
    items.sort_by(|a, b| directed(compare(&key(a), &key(b))));
    items.retain(|item| {
        let value = key(item);
        let after_start = range.start.as_deref().is_none_or(|start| {
            match directed(compare_to_bound(&value, start)) {
                Ordering::Greater => true,
                Ordering::Equal => !range.start_exclusive,
                Ordering::Less => false,
            }
        });
        let before_end = range
            .end
            .as_deref()
            .is_none_or(|end| directed(compare_to_bound(&value, end)) != Ordering::Greater);
        after_start && before_end
    });
    let next = if items.len() > range.max {
        items.truncate(range.max);
        items.last().map(|last| ListRange {
            start: Some(bound_text(&key(last))),
            start_exclusive: true,
            ..range.clone()
        })
    } else {
        None
    };
    Ok(Page {
        items,
        next,
        changed: true,
    })
}

/// A strong entity tag of a body: a digest of its bytes.
pub(super) fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether an `If-None-Match` header names `tag` (or is `*`). Weak tags match their strong
/// twin, as the weak comparison `If-None-Match` uses says.
pub(super) fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// Paginates a GET's JSON list and tags a GET's JSON body, answering 304 when the client
/// already holds it.
pub(super) async fn paginate_and_tag(
    State(PageLimit(page_limit)): State<PageLimit>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return next.run(request).await;
    }
    let range = request
        .headers()
        .get(header::RANGE)
        .map(|value| value.to_str().map(str::to_owned));
    let if_none_match = request.headers().clone();
    let keys = sort_keys(request.uri().path());
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || !super::errors::is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(mut bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        tracing::error!("a JSON response too large to paginate or tag");
        return ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    if bytes.first() == Some(&b'[') {
        if let Ok(items) = serde_json::from_slice::<Vec<Value>>(&bytes) {
            let header = match &range {
                Some(Ok(text)) => Some(text.as_str()),
                Some(Err(_)) => {
                    return range_error("The Range header must be plain text.").into_response()
                }
                None => None,
            };
            let page = match paginate(items, header, keys, page_limit) {
                Ok(page) => page,
                Err(error) => return error.into_response(),
            };
            if let Ok(value) = HeaderValue::from_str(&keys.join(", ")) {
                parts.headers.insert(header::ACCEPT_RANGES, value);
            }
            if let Some(next) = &page.next {
                parts.status = StatusCode::PARTIAL_CONTENT;
                if let Ok(value) = HeaderValue::from_str(&next.to_string()) {
                    parts.headers.insert("next-range", value);
                }
            }
            if page.changed {
                match serde_json::to_vec(&page.items) {
                    Ok(json) => bytes = json.into(),
                    Err(_) => {
                        return ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)
                            .into_response()
                    }
                }
            }
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let tag = etag(&bytes);
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, value);
    }
    if none_match(&if_none_match, &tag) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}
