//! Log sessions: `POST /apps/{app}/log-sessions` returns a `logplex_url` that carries its own
//! short-lived secret; a GET on it streams the app's log without any other credentials, as
//! Server-Sent Events when the client asks for `text/event-stream` (what `heroku logs`
//! reads), as plain lines otherwise. The secret is compared in constant time, and the stream
//! starts only while the session's creator may still see the app: removing a collaborator
//! (or their account) ends what their URLs can open.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use slipway_api_types as wire;
use slipway_logplex::{LogFilter, LogLine, SeqTailEvent, Source, DEFAULT_HISTORY};

use crate::app_in_path::AppInPath;
use crate::error::ApiError;
use crate::request::{last_event_id, parse_body, wants_event_stream};
use crate::response::line_stream;
use crate::state::{ApiState, Session};

/// An unused session expires after this long, as Logplex's do.
const SESSION_LIFETIME: Duration = Duration::from_secs(360);
const DEFAULT_LINES: usize = 100;

/// The session's filter from the request's `source`, `dyno` and `type`.
fn filter_for(request: &wire::LogSessionCreate) -> Result<LogFilter, ApiError> {
    let source = match request.source.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Source::parse(text).ok_or_else(|| {
            ApiError::invalid_params(format!("Unknown log source {text:?}: use app or heroku."))
        })?),
    };
    let process = request
        .dyno_name
        .clone()
        .or_else(|| request.process_type.clone())
        .filter(|p| !p.is_empty());
    Ok(LogFilter { source, process })
}

/// What a log session shows: the filter, how many past lines, and whether it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    filter: LogFilter,
    lines: usize,
    tail: bool,
}

/// `POST /apps/{app}/log-sessions {lines, tail, source, dyno, type}` (an empty body is the
/// defaults: the last 100 lines, not following).
pub(crate) fn parse_create_session(body: &[u8]) -> Result<SessionRequest, ApiError> {
    let request: wire::LogSessionCreate = parse_body(body)?;
    let lines = match request.lines {
        None => DEFAULT_LINES,
        Some(n) if (0..=DEFAULT_HISTORY as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid_params(format!(
                "lines must be between 0 and {DEFAULT_HISTORY}, not {n}."
            )))
        }
    };
    Ok(SessionRequest {
        filter: filter_for(&request)?,
        lines,
        tail: request.tail.unwrap_or(false),
    })
}

pub(crate) async fn create_session(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::LogSession>), ApiError> {
    let request = parse_create_session(&body)?;
    let session = Session {
        secret: new_secret(),
        app: app.name.clone(),
        user_email: user.email.clone(),
        filter: request.filter,
        lines: request.lines,
        tail: request.tail,
        expires: Instant::now() + SESSION_LIFETIME,
    };
    let id = uuid::Uuid::new_v4();
    let url = format!(
        "{}/log-sessions/{id}?token={}",
        state.platform.config().api_url.trim_end_matches('/'),
        session.secret
    );
    {
        let mut sessions = state
            .log_sessions
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(id, session);
    }
    let now = Utc::now();
    Ok((
        StatusCode::CREATED,
        Json(wire::LogSession {
            created_at: now,
            id,
            logplex_url: url,
            updated_at: now,
        }),
    ))
}

#[derive(serde::Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// `Error L11`: the tail fell behind and lines were skipped.
fn missed_line(count: u64) -> LogLine {
    LogLine::heroku(
        "logplex",
        format!("Error L11 (Tail buffer overflow) -> This tail session dropped {count} messages since {}", Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00")),
    )
}

pub(crate) async fn stream_session(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let session = {
        let sessions = state
            .log_sessions
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        id.parse::<uuid::Uuid>()
            .ok()
            .and_then(|id| sessions.get(&id).cloned())
            .filter(|s| {
                query
                    .token
                    .as_deref()
                    .is_some_and(|token| slipway_core::secrets_match(token, &s.secret))
                    && s.expires > Instant::now()
            })
    };
    let Some(session) = session else {
        return (
            StatusCode::NOT_FOUND,
            "This log session does not exist or has expired; create a new one.\n",
        )
            .into_response();
    };
    if !may_still_see(&state, &session.user_email, &session.app).await {
        return (
            StatusCode::FORBIDDEN,
            "You no longer have access to this app, so its log sessions are closed to you.\n",
        )
            .into_response();
    }
    let sse = wants_event_stream(&headers);
    // A reconnecting client resumes right after the last line it saw (`Last-Event-ID`).
    let resume_after = last_event_id(&headers);
    let logs = state.platform.logs();
    let (recent, mut tail) = match resume_after {
        Some(after) => logs.since(&session.app, after, &session.filter),
        None => logs.recent_and_tail_seq(&session.app, session.lines, &session.filter),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(256);
    let format = move |sequence: Option<u64>, line: &LogLine| -> String {
        match (sse, sequence) {
            (true, Some(sequence)) => format!("id: {sequence}\ndata: {line}\n\n"),
            (true, None) => format!("data: {line}\n\n"),
            (false, _) => format!("{line}\n"),
        }
    };
    let filter = session.filter.clone();
    let follow = session.tail;
    tokio::spawn(async move {
        for (sequence, line) in recent {
            if sender.send(format(Some(sequence), &line)).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        loop {
            let event = tokio::select! {
                event = tail.next_seq() => event,
                _ = sender.closed() => return,
            };
            let text = match event {
                Some(SeqTailEvent::Line(sequence, line)) if filter.matches(&line) => {
                    format(Some(sequence), &line)
                }
                Some(SeqTailEvent::Line(..)) => continue,
                Some(SeqTailEvent::Missed(count)) => format(None, &missed_line(count)),
                None => return,
            };
            if sender.send(text).await.is_err() {
                return;
            }
        }
    });
    // Whatever lines are ready go out in one write: one syscall per line caps a tail at a
    // fraction of what the pipeline delivers.
    let stream = futures::StreamExt::map(
        futures::StreamExt::ready_chunks(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
            512,
        ),
        |lines| Ok::<_, Infallible>(bytes::Bytes::from(lines.concat())),
    );
    line_stream(sse, stream)
}

/// Whether the account `email` still exists and may see `app`: a capability URL works only
/// as long as the access it was issued under.
pub(crate) async fn may_still_see(state: &ApiState, email: &str, app: &str) -> bool {
    let Ok(user) = state.platform.user_by_email(email).await else {
        return false;
    };
    state.platform.access(&user, app).await.is_ok()
}

fn new_secret() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}

#[cfg(test)]
mod tests;
