//! Git's smart-HTTP endpoints and the pre-receive hook's callback.
//!
//! `git push http://<api>/<app>.git main` authenticates with HTTP Basic (the API key as the
//! password; a request without credentials gets 401 and `WWW-Authenticate: Basic` so git asks
//! its credential helper). The server starts `git receive-pack` with a one-time push token in
//! its environment; the repository's hook posts the pushed tree back with that token to
//! [`hook`], which runs the deploy and streams its output, which git shows as `remote:` lines.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use slipway_core::model::{App, User};
use slipway_core::{Command, CoreError, Permission, PushedSource};
use slipway_git::hook::{
    status_line, ENV_HOOK_BIN, ENV_HOOK_TOKEN, ENV_HOOK_URL, HOOK_TOKEN_HEADER,
};
use slipway_git::GitService;

use crate::auth::api_key;
use crate::state::{ApiState, Push};

/// Build output lines queued for a git client before further lines are dropped.
const OUTPUT_QUEUE_LINES: usize = 4096;

/// How long a push token stays valid: as long as the longest build may take.
const PUSH_TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// A plain-text error that git prints (`fatal: ...`) or, for 401, a challenge.
fn git_error(status: StatusCode, message: &str) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Slipway\""),
        );
    }
    response
}

/// The permission a git service needs: fetching reads the app (`view`), pushing deploys it.
fn service_permission(service: Option<GitService>) -> Permission {
    match service {
        Some(GitService::ReceivePack) => Permission::Deploy,
        Some(GitService::UploadPack) | None => Permission::View,
    }
}

/// Authenticates a git request and finds its app, if the user holds `permission` on it.
async fn authorize(
    state: &ApiState,
    headers: &HeaderMap,
    repo: &str,
    permission: Permission,
) -> Result<(User, App), Response> {
    let Some(key) = api_key(headers) else {
        return Err(git_error(
            StatusCode::UNAUTHORIZED,
            "Authentication required: use your Slipway API key as the password.",
        ));
    };
    let user = state.platform.authenticate(&key).await.map_err(|_| {
        git_error(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials: use your Slipway API key as the password.",
        )
    })?;
    let Some(name) = repo.strip_suffix(".git") else {
        return Err(git_error(
            StatusCode::NOT_FOUND,
            "Repository paths look like /<app>.git",
        ));
    };
    let app = state
        .platform
        .app_for(&user, name, permission)
        .await
        .map_err(|error| match error {
            CoreError::Forbidden { .. } | CoreError::PermissionDenied { .. } => {
                git_error(StatusCode::FORBIDDEN, &error.to_string())
            }
            CoreError::NotFound { .. } => git_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "Couldn't find the app {name}. Create it first with `slipway apps:create {name}`."
                ),
            ),
            error => {
                tracing::error!(%error, app = %name, "git authorization failed");
                git_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Slipway could not look the app up; try again.",
                )
            }
        })?;
    Ok((user, app))
}

#[derive(serde::Deserialize)]
pub(crate) struct ServiceQuery {
    service: Option<String>,
}

pub(crate) async fn info_refs(
    State(state): State<ApiState>,
    Path(repo): Path<String>,
    Query(query): Query<ServiceQuery>,
    headers: HeaderMap,
) -> Response {
    let service = query.service.as_deref().and_then(GitService::parse);
    let (_user, app) = match authorize(&state, &headers, &repo, service_permission(service)).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(service) = service else {
        return git_error(
            StatusCode::FORBIDDEN,
            "Only git's smart HTTP protocol is supported; upgrade git.",
        );
    };
    let path = match state.platform.git_repository(&app).await {
        Ok(path) => path,
        Err(error) => return git_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    match state.git.repos.advertise_refs(&path, service).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, service.advertisement_content_type()),
                (header::CACHE_CONTROL, "no-cache".to_owned()),
            ],
            body,
        )
            .into_response(),
        Err(error) => git_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

pub(crate) async fn receive_pack(
    state: State<ApiState>,
    repo: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    rpc(state, repo, headers, body, GitService::ReceivePack).await
}

pub(crate) async fn upload_pack(
    state: State<ApiState>,
    repo: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    rpc(state, repo, headers, body, GitService::UploadPack).await
}

async fn rpc(
    State(state): State<ApiState>,
    Path(repo): Path<String>,
    headers: HeaderMap,
    body: Body,
    service: GitService,
) -> Response {
    let (user, app) =
        match authorize(&state, &headers, &repo, service_permission(Some(service))).await {
            Ok(found) => found,
            Err(response) => return response,
        };
    let path = match state.platform.git_repository(&app).await {
        Ok(path) => path,
        Err(error) => return git_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let token = new_token();
    let mut env = Vec::new();
    if service == GitService::ReceivePack {
        let mut pushes = state.git.pushes.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        pushes.retain(|_, push| push.expires > now);
        pushes.insert(
            token.clone(),
            Push {
                user,
                app: app.clone(),
                expires: now + PUSH_TOKEN_LIFETIME,
            },
        );
        let hook_url = format!(
            "{}/internal/git-hook/{}",
            state.platform.config().api_url.trim_end_matches('/'),
            app.name
        );
        env.push((
            ENV_HOOK_BIN.to_owned(),
            state.git.hook_binary.display().to_string(),
        ));
        env.push((ENV_HOOK_URL.to_owned(), hook_url));
        env.push((ENV_HOOK_TOKEN.to_owned(), token));
    }
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let input: futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> = if gzipped {
        let max = state.platform.config().build.max_push_bytes;
        let spool_dir = state.platform.config().data_dir.clone();
        match gunzip_to_file(stream, max, spool_dir).await {
            Ok(file) => tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)).boxed(),
            Err(GunzipError::TooLarge) => {
                return git_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "The request body inflates to more than {} MB, the most Slipway accepts from git. Push fewer commits at a time, or remove large files from the history.",
                        max / (1024 * 1024)
                    ),
                )
            }
            Err(GunzipError::Invalid(error)) => {
                return git_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Could not decompress the request body: {error}"),
                )
            }
        }
    } else {
        stream.boxed()
    };
    match state.git.repos.rpc(&path, service, input, &env).await {
        Ok(process) => (
            [
                (header::CONTENT_TYPE, service.result_content_type()),
                (header::CACHE_CONTROL, "no-cache".to_owned()),
            ],
            Body::from_stream(process.into_stream()),
        )
            .into_response(),
        Err(error) => git_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// Why a gzip'd request body was refused.
#[derive(Debug)]
enum GunzipError {
    /// It inflates to more than the cap.
    TooLarge,
    Invalid(std::io::Error),
}

/// A writer that refuses (with `FileTooLarge`) to take more than `max` bytes in total.
struct Capped<W> {
    inner: W,
    written: u64,
    max: u64,
}

impl<W: std::io::Write> std::io::Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "the inflated request body is over the cap",
            ));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Inflates a gzip'd request body as it arrives into an unnamed temporary file in `spool_dir`
/// (gone when closed; the data dir, not `/tmp`, which may be a tmpfs in memory), at most `max`
/// inflated bytes; returns the file rewound. Git gzips bodies up to its
/// `http.postBuffer` (1 MB), which can inflate a thousandfold: neither the compressed nor the
/// inflated body is ever held in memory (one chunk at a time, 4 chunks queued at most), and
/// a bomb is cut off at `max` on disk.
async fn gunzip_to_file(
    mut stream: impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
    max: u64,
    spool_dir: PathBuf,
) -> Result<std::fs::File, GunzipError> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let worker = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        use std::io::{Seek, Write};
        let file = tempfile::tempfile_in(&spool_dir)?;
        let mut decoder = flate2::write::GzDecoder::new(Capped {
            inner: std::io::BufWriter::new(file),
            written: 0,
            max,
        });
        while let Some(chunk) = receiver.blocking_recv() {
            decoder.write_all(&chunk)?;
        }
        let capped = decoder.finish()?;
        let mut file = capped.inner.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(file)
    });
    let mut read_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if sender.send(chunk).await.is_err() {
                    break; // The worker stopped; its result says why.
                }
            }
            Err(error) => {
                read_error = Some(error);
                break;
            }
        }
    }
    drop(sender);
    let result = worker
        .await
        .map_err(|join| GunzipError::Invalid(std::io::Error::other(join)))?;
    match (result, read_error) {
        (Err(error), _) if error.kind() == std::io::ErrorKind::FileTooLarge => {
            Err(GunzipError::TooLarge)
        }
        (_, Some(error)) | (Err(error), None) => Err(GunzipError::Invalid(error)),
        (Ok(file), None) => Ok(file),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct HookQuery {
    commit: Option<String>,
}

/// The pre-receive hook's callback: the body is a tarball of the pushed commit; the response
/// streams the build output and ends with a status line.
pub(crate) async fn hook(
    State(state): State<ApiState>,
    Path(app_name): Path<String>,
    Query(query): Query<HookQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let token = headers
        .get(HOOK_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let push = {
        let pushes = state.git.pushes.lock().unwrap_or_else(|p| p.into_inner());
        pushes
            .get(&token)
            .filter(|push| push.app.name == app_name && push.expires > Instant::now())
            .map(|push| (push.user.clone(), push.app.clone()))
    };
    let Some((user, app)) = push else {
        return (
            StatusCode::UNAUTHORIZED,
            "This hook endpoint only serves pushes started by this server.\n",
        )
            .into_response();
    };
    // Build output is tenant output: the queue to a git client that reads slowly is bounded
    // (lines are at most 10,000 bytes, split by the runtime), and lines that do not fit are
    // dropped and counted rather than buffered without limit; the build's log keeps them all.
    let (sender, receiver) = tokio::sync::mpsc::channel::<String>(OUTPUT_QUEUE_LINES);
    let platform = state.platform.clone();
    let git = state.git.clone();
    tokio::spawn(async move {
        let output_sender = sender.clone();
        let dropped = std::sync::atomic::AtomicUsize::new(0);
        let output: slipway_core::DeployOutput = std::sync::Arc::new(move |line: &str| {
            use std::sync::atomic::Ordering;
            let missed = dropped.load(Ordering::Relaxed);
            if missed > 0 {
                let note = format!(
                    " !     {missed} line(s) of output were dropped: the client read too slowly (see `slipway logs`)\n"
                );
                if output_sender.try_send(note).is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                dropped.store(0, Ordering::Relaxed);
            }
            if output_sender.try_send(format!("{line}\n")).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
        let tarball = tokio_util::io::StreamReader::new(
            body.into_data_stream().map_err(std::io::Error::other),
        );
        let command = Command::DeployPush {
            app: app.name.clone(),
            commit: query.commit,
            push: PushedSource {
                tarball: Box::new(tarball),
                output,
            },
        };
        let result = platform.execute(&user, command).await;
        let succeeded = match result {
            Ok(_) => true,
            Err(error) => {
                for line in error.to_string().lines() {
                    let _ = sender.send(format!(" !     {line}\n")).await;
                }
                let _ = sender
                    .send(format!(" !     Push rejected to {}.\n", app.name))
                    .await;
                false
            }
        };
        let _ = sender.send(status_line(succeeded)).await;
        git.pushes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver)
        .map(|line| Ok::<_, std::io::Error>(bytes::Bytes::from(line)));
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response()
}

fn new_token() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}

#[cfg(test)]
mod tests;
