//! The control plane's side of standalone routers (`slipway router`): `GET
//! /slipway/cluster/routes` streams the route table (a snapshot line at once and on every
//! change, a heartbeat line every few seconds otherwise), and `POST
//! /slipway/cluster/router-events` takes a long-lived stream of the router's log lines and
//! wake-ups; `GET /slipway/cluster/certs` streams the certificates the router serves over
//! HTTPS, private keys included. All authenticate with the cluster token (`<data>/cluster-token`) as a Bearer
//! credential, compared in constant time; a user's API key, even an admin's, gets 401.
//!
//! Router log lines go to the app's log on this control plane and count as web traffic;
//! wake-ups wake the app, as the built-in router's hooks do. The event lines are parsed by
//! [`parse_router_event`], a pure function: a line is capped, an app name must be one, and a
//! message cannot carry a line break (which would forge a second log line).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use futures::StreamExt;
use slipway_api_types::cluster::{
    CertSnapshot, CertStreamMessage, RouteSnapshot, RouteStreamMessage, RouterEvent,
    HEARTBEAT_SECS, MAX_EVENT_LINE_BYTES, NDJSON,
};
use slipway_model::{AppName, SecretToken};
use tokio::sync::watch;

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::{ApiState, ClusterApi};

#[cfg(test)]
mod tests;

/// The cluster API, if the caller presents its token.
fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Arc<ClusterApi>, ApiError> {
    let cluster = state
        .cluster
        .clone()
        .ok_or_else(|| ApiError::for_status(StatusCode::NOT_FOUND))?;
    let presented = bearer_token(headers)
        .and_then(|token| token.parse::<SecretToken>().ok())
        .ok_or_else(refused)?;
    if presented == cluster.token {
        Ok(cluster)
    } else {
        Err(refused())
    }
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Invalid cluster token. Give the router the control plane's <data-dir>/cluster-token with --token-file.",
    )
}

/// `GET /slipway/cluster/routes`: NDJSON, a snapshot line now and at every change, a
/// heartbeat line every [`HEARTBEAT_SECS`] s, until the client leaves or the server stops.
pub(crate) async fn routes(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cluster = authenticate(&state, &headers)?;
    Ok(watch_stream(
        cluster.routes.clone(),
        |snapshot: &RouteSnapshot| RouteStreamMessage::Snapshot(snapshot.clone()),
        RouteStreamMessage::Heartbeat,
    ))
}

/// `GET /slipway/cluster/certs`: the certificates a standalone router serves over HTTPS, as
/// the route stream is (a snapshot now and at every change, heartbeats between). Private keys
/// go to a holder of the cluster token only, which routers are told to use over HTTPS (`slipway
/// router --https` refuses a plain `http://` control plane that is not on loopback).
pub(crate) async fn certs(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cluster = authenticate(&state, &headers)?;
    Ok(watch_stream(
        cluster.certs.clone(),
        |snapshot: &CertSnapshot| CertStreamMessage::Snapshot(snapshot.clone()),
        CertStreamMessage::Heartbeat,
    ))
}

/// An NDJSON response: `snapshot` of the channel's value now and at every change, `heartbeat`
/// every [`HEARTBEAT_SECS`] s otherwise, until the client leaves or the publisher is gone.
fn watch_stream<T, M>(
    mut receiver: watch::Receiver<Arc<T>>,
    snapshot: fn(&T) -> M,
    heartbeat_message: M,
) -> Response
where
    T: Send + Sync + 'static,
    M: serde::Serialize + Clone + Send + 'static,
{
    let first = receiver.borrow_and_update().clone();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The interval's first tick is immediate; the snapshot is the first line instead.
    heartbeat.reset();
    let stream = futures::stream::unfold(
        (receiver, Some(first), heartbeat),
        move |(mut receiver, pending, mut heartbeat)| {
            let heartbeat_message = heartbeat_message.clone();
            async move {
                let message = match pending {
                    Some(value) => snapshot(&value),
                    None => tokio::select! {
                        changed = receiver.changed() => {
                            // The publisher is gone: the server is stopping.
                            changed.ok()?;
                            let value = receiver.borrow_and_update().clone();
                            heartbeat.reset();
                            snapshot(&value)
                        }
                        _ = heartbeat.tick() => heartbeat_message,
                    },
                };
                let mut line = serde_json::to_vec(&message).ok()?;
                line.push(b'\n');
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(line)),
                    (receiver, None, heartbeat),
                ))
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, NDJSON),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// What a router event line asks of the control plane, checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CheckedEvent {
    Log {
        app: AppName,
        line: slipway_logplex::LogLine,
    },
    Wake {
        app: AppName,
    },
    Dropped {
        count: u64,
    },
}

fn too_long() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("A router event line is longer than {MAX_EVENT_LINE_BYTES} bytes."),
    )
}

/// Parses one event line (without its newline). A log line's timestamp is the router's, but
/// never in the future of this control plane (a clock off by hours would file it out of
/// order for good); its message has its line breaks replaced by spaces.
pub(crate) fn parse_router_event(line: &[u8]) -> Result<CheckedEvent, ApiError> {
    if line.len() > MAX_EVENT_LINE_BYTES {
        return Err(too_long());
    }
    let event: RouterEvent = serde_json::from_slice(line)
        .map_err(|error| ApiError::bad_request(format!("Invalid router event: {error}.")))?;
    let app = |name: String| {
        name.parse::<AppName>()
            .map_err(|error| ApiError::invalid_params(error.to_string()))
    };
    Ok(match event {
        RouterEvent::Log {
            app: name,
            timestamp,
            message,
        } => {
            let mut line =
                slipway_logplex::LogLine::heroku("router", message.replace(['\r', '\n'], " "));
            line.timestamp = timestamp.min(Utc::now());
            CheckedEvent::Log {
                app: app(name)?,
                line,
            }
        }
        RouterEvent::Wake { app: name } => CheckedEvent::Wake { app: app(name)? },
        RouterEvent::Dropped { count } => CheckedEvent::Dropped { count },
    })
}

/// `POST /slipway/cluster/router-events`: reads NDJSON events until the router ends the
/// request, acting on each as it arrives; answers how many it took. A bad line ends the
/// stream with its error (the router reconnects); what came before it was taken.
pub(crate) async fn router_events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    authenticate(&state, &headers)?;
    let mut stream = body.into_data_stream();
    let mut line = Vec::new();
    let mut accepted: u64 = 0;
    let mut act = |line: &[u8]| -> Result<(), ApiError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match parse_router_event(line)? {
            CheckedEvent::Log { app, line } => {
                state.platform.note_web_request(app.as_str());
                state.platform.logs().publish(app.as_str(), line);
            }
            CheckedEvent::Wake { app } => state.platform.wake_app(app.as_str()),
            CheckedEvent::Dropped { count } => {
                tracing::warn!(
                    count,
                    "a standalone router dropped events (its queue was full)"
                );
            }
        }
        accepted += 1;
        Ok(())
    };
    while let Some(chunk) = stream.next().await {
        // A broken body is the router going away: what it sent was taken.
        let Ok(chunk) = chunk else { break };
        let mut rest: &[u8] = &chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&rest[..end]);
            act(&line)?;
            line.clear();
            rest = &rest[end + 1..];
        }
        if line.len() + rest.len() > MAX_EVENT_LINE_BYTES {
            return Err(too_long());
        }
        line.extend_from_slice(rest);
    }
    act(&line)?;
    Ok(Json(serde_json::json!({ "accepted": accepted })))
}
