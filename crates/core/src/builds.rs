//! Deploys without git: builds from a source tarball's URL (`POST /apps/{app}/builds`) and
//! slugs uploaded through the API (`POST /apps/{app}/slugs`, then a `PUT` of the tarball).
//!
//! A build is recorded `pending` under `builds/<app id>/<id>` and runs in its own task: the
//! fetch of the tarball (through the [`crate::SourceFetcher`] the platform was given), an
//! optional checksum check, then the same deploy as a `git push`. The record is rewritten
//! `succeeded` (with its slug and release) or `failed` when it ends. A `pending` record whose
//! task is gone (the server restarted) reads as `failed`.
//!
//! Each build's output is kept in memory, the last [`OUTPUT_LINES`] lines of the last
//! [`KEPT_OUTPUTS`] builds, and streamed from its start to any number of readers, who follow
//! it until the build ends.
//!
//! An uploaded slug gets its id when it is declared; its record is written (append-only, like
//! every slug) only once a tarball that unpacks, and matches the declared checksum, is in the
//! content-addressed slug store. Declared slugs wait in memory for their upload, for
//! [`UPLOAD_LIFETIME`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sha2::Digest;
use slipway_store::json::{get_json, range_json};
use slipway_store::{Compare, Op, Txn};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::build_output::{OutputBuffer, SlugDeclaration};
use crate::buildpacks::{parse_buildpack_ref, BuildpackRef};
use crate::deploy::SourceOptions;
use crate::error::CoreError;
use crate::model::{keys, App, Build, BuildStatus, Slug, User};
use crate::output::DeployOutput;
use crate::platform::Platform;
use crate::source_fetcher::{source_blob_unreachable, SourceBlob, SourceFetch};

/// How long a declared slug waits for its upload.
pub(crate) const UPLOAD_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// The largest slug accepted for upload, compressed.
pub(crate) const MAX_ARCHIVE_BYTES: u64 = 1024 * 1024 * 1024;

/// The host of a source blob URL, for messages (never the whole URL: it may carry a token).
pub(crate) fn source_blob_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "that URL".to_owned())
}

/// Why [`store_hashed`] stopped.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("it is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn random_token() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}

/// Checks a `SHA256:<hex>` checksum's form; returns the lowercase hex.
fn checksum_hex(checksum: &str, what: &str) -> Result<String, CoreError> {
    let hex = checksum
        .strip_prefix("SHA256:")
        .or_else(|| checksum.strip_prefix("sha256:"))
        .unwrap_or("");
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CoreError::invalid(format!(
            "Invalid {what} checksum {checksum:?}: write it as SHA256:<64 hex digits>, the SHA-256 of the compressed tarball."
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Streams `body` into a new file at `path`, at most `limit` bytes (a larger body fails as soon
/// as it passes the limit; the caller removes the file); returns the SHA-256 (hex) and size of
/// what was written.
async fn store_hashed<R: AsyncRead + Unpin>(
    mut body: R,
    path: &Path,
    limit: u64,
) -> Result<(String, u64), StoreError> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(StoreError::TooLarge { limit });
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).await?;
    }
    file.sync_all().await?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// A new `pending` build of `app` by `user` from the source at `source_url`, on the app's
/// stack, with a fresh secret for its output stream.
fn pending_build(
    user: &User,
    app: &App,
    source_url: String,
    source_checksum: Option<String>,
    source_version: Option<String>,
    buildpacks: Vec<String>,
) -> Build {
    let now = Utc::now();
    Build {
        id: Uuid::new_v4(),
        app_id: app.id,
        user_email: user.email.clone(),
        status: BuildStatus::Pending,
        source_url,
        source_checksum,
        source_version,
        buildpacks,
        slug_id: None,
        release_id: None,
        stack: app.stack.clone(),
        output_secret: random_token(),
        created_at: now,
        updated_at: now,
    }
}

impl Platform {
    // ----- builds ---------------------------------------------------------------------

    /// Records a pending build and starts it in the background: the platform's
    /// [`crate::SourceFetcher`] fetches the source tarball, which is deployed as a push would
    /// be. Returns the pending record at once; a URL the fetcher refuses is refused before
    /// anything is recorded.
    pub(crate) async fn create_build(
        self: &Arc<Self>,
        user: &User,
        app: &App,
        blob: SourceBlob,
        buildpacks: Vec<String>,
    ) -> Result<Build, CoreError> {
        let url = url::Url::parse(&blob.url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| {
                CoreError::invalid(format!(
                    "source_blob.url {:?} is not an http:// or https:// URL. Point it at a tarball of the app's source.",
                    blob.url
                ))
            })?;
        if let Err(reason) = self.source_fetcher().check(&url).await {
            return Err(CoreError::invalid(format!(
                "source_blob.url is refused: {reason}. Point it at a tarball on a public server."
            )));
        }
        let checksum = blob
            .checksum
            .as_deref()
            .map(|c| checksum_hex(c, "source_blob"))
            .transpose()?;
        // Built-ins by their short name, URLs as given (fetched when the build runs).
        let buildpacks = buildpacks
            .iter()
            .map(|given| match parse_buildpack_ref(given) {
                Ok(BuildpackRef::Builtin(name)) => Ok(name),
                Ok(_) => Ok(given.trim().to_owned()),
                Err(message) => Err(CoreError::invalid(message)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let build = pending_build(
            user,
            app,
            blob.url.clone(),
            blob.checksum.clone(),
            blob.version.clone(),
            buildpacks.clone(),
        );
        let buffer = self.insert_build(user, app, &build).await?;
        let fetch = self
            .source_fetcher()
            .fetch(url, self.config().max_source_blob_bytes);
        let platform = self.clone();
        let (user, app, record) = (user.clone(), app.clone(), build.clone());
        tokio::spawn(async move {
            let output: DeployOutput = {
                let buffer = buffer.clone();
                Arc::new(move |line: &str| buffer.push(line))
            };
            let result = platform
                .run_build(
                    &user,
                    &app,
                    &record,
                    checksum,
                    buildpacks,
                    fetch,
                    output.clone(),
                )
                .await;
            if let Err(error) = &result {
                for line in error.to_string().lines() {
                    output(&format!(" !     {line}"));
                }
                output(" !     Build failed.");
            }
            platform
                .finish_build(&app, record, result.as_ref().ok().copied())
                .await;
            buffer.finish();
        });
        Ok(build)
    }

    /// Empties the app's build cache (`DELETE /apps/{app}/build-cache`, `builds:cache:purge`).
    /// Refused while the app builds: the running build owns the cache until it ends. The app
    /// is marked as building meanwhile, so no build starts on a half-removed cache.
    pub(crate) async fn purge_build_cache(&self, app: &App) -> Result<(), CoreError> {
        {
            let mut building = self.building().lock().unwrap_or_else(|p| p.into_inner());
            if !building.insert(app.id) {
                return Err(CoreError::Conflict {
                    message: format!(
                        "A build is running for {}; purge the build cache once it has finished.",
                        app.name
                    ),
                });
            }
        }
        // The cache, and what the platform keeps beside it for later builds (slug runs, the
        // built-in buildpacks' kept directories): a purged app builds as if for the first time.
        let cache_dir = self.config().cache_dir(app.id);
        let result = match tokio::task::spawn_blocking(move || {
            slipway_build::remove_build_cache(&cache_dir)
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(CoreError::Io {
                app: app.id,
                action: "purge the build cache",
                source: std::io::Error::other(error),
            }),
            Err(join) => Err(CoreError::Io {
                app: app.id,
                action: "purge the build cache",
                source: std::io::Error::other(join),
            }),
        };
        self.building()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&app.id);
        result
    }

    /// Records the build of a `git push` (`pending`, its source the app's git URL at
    /// `commit`), so `builds`, `builds:info` and `builds:output` show pushes as Heroku's do;
    /// returns the record and the buffer its output goes to.
    pub(crate) async fn record_push_build(
        &self,
        user: &User,
        app: &App,
        commit: Option<String>,
    ) -> Result<(Build, Arc<OutputBuffer>), CoreError> {
        let build = pending_build(
            user,
            app,
            self.config().git_url(&app.name),
            None,
            commit,
            Vec::new(),
        );
        let buffer = self.insert_build(user, app, &build).await?;
        Ok((build, buffer))
    }

    /// Registers a new build's output buffer (held by `user` for `app`) and writes its record,
    /// if the app still exists; otherwise the buffer is finished and the app is not found.
    async fn insert_build(
        &self,
        user: &User,
        app: &App,
        build: &Build,
    ) -> Result<Arc<OutputBuffer>, CoreError> {
        let holder = crate::build_output::OutputHolder {
            app_id: app.id,
            user_email: user.email.clone(),
        };
        let buffer = self
            .build_state()
            .register(&build.output_secret, build.id, holder);
        let response = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::exists(keys::app(&app.name)))
                    .then(Op::put_json(keys::build(app.id, build.id), build)?),
            )
            .await?;
        if !response.succeeded {
            buffer.finish();
            return Err(CoreError::not_found("app", app.name.clone()));
        }
        Ok(buffer)
    }

    /// Rewrites a build's record as it ended: `succeeded` with its slug and release, or
    /// `failed`. A store failure is logged (the record then reads `failed` once its output
    /// buffer is finished).
    pub(crate) async fn finish_build(
        &self,
        app: &App,
        mut finished: Build,
        outcome: Option<(Option<Uuid>, Uuid)>,
    ) {
        finished.updated_at = Utc::now();
        match outcome {
            Some((slug_id, release_id)) => {
                finished.status = BuildStatus::Succeeded;
                finished.slug_id = slug_id;
                finished.release_id = Some(release_id);
            }
            None => finished.status = BuildStatus::Failed,
        }
        let write = match Op::put_json(keys::build(app.id, finished.id), &finished) {
            Ok(op) => self
                .store()
                .txn(
                    Txn::new()
                        .when(Compare::exists(keys::app(&app.name)))
                        .then(op),
                )
                .await
                .map(|_| ())
                .map_err(CoreError::from),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = write {
            tracing::error!(%error, build = %finished.id, "could not record the end of a build");
        }
    }

    /// Fetches, checks and deploys a build's source; returns its slug and release ids.
    #[allow(clippy::too_many_arguments)]
    async fn run_build(
        &self,
        user: &User,
        app: &App,
        build: &Build,
        checksum: Option<String>,
        buildpacks: Vec<String>,
        fetch: SourceFetch,
        output: DeployOutput,
    ) -> Result<(Option<Uuid>, Uuid), CoreError> {
        output("-----> Fetching source");
        let host = source_blob_host(&build.source_url);
        let body = fetch.await.map_err(|reason| {
            CoreError::invalid(format!(
                "{reason}. Check source_blob.url and start the build again."
            ))
        })?;
        let limit = self.config().max_source_blob_bytes;
        let path = self
            .config()
            .builds_dir()
            .join(format!("source-{}.tar", build.id.simple()));
        let stored = store_hashed(body, &path, limit).await;
        let result = async {
            let (sha256, size) = stored.map_err(|error| match error {
                StoreError::TooLarge { limit } => CoreError::invalid(format!(
                    "The source blob from {host} is larger than the limit of {} MB. Nothing was built; make the tarball smaller (leave out dependencies and build output).",
                    limit / (1024 * 1024)
                )),
                StoreError::Io(error) => {
                    tracing::warn!(%error, build = %build.id, host, "could not read the source blob");
                    CoreError::invalid(format!(
                        "{}. Check source_blob.url and start the build again.",
                        source_blob_unreachable(&host)
                    ))
                }
            })?;
            output(&format!("       Fetched {size} bytes, SHA256:{sha256}"));
            if let Some(expected) = checksum {
                if expected != sha256 {
                    return Err(CoreError::invalid(format!(
                        "The source blob's checksum is SHA256:{sha256}, not the SHA256:{expected} given. Nothing was built; check the tarball and source_blob.checksum."
                    )));
                }
            }
            let file = tokio::fs::File::open(&path).await.map_err(|source| CoreError::Io {
                app: app.id,
                action: "read the fetched source",
                source,
            })?;
            self.deploy_source(
                user,
                app,
                file,
                build.source_version.clone(),
                SourceOptions {
                    from_blob: true,
                    buildpacks,
                },
                build.id,
                output.clone(),
            )
            .await
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        let release = result?;
        Ok((release.slug_id, release.id))
    }

    /// The app's builds, oldest first. A pending build whose task is gone reads as failed.
    pub async fn builds(&self, app: &App) -> Result<Vec<Build>, CoreError> {
        let (builds, _) =
            range_json::<Build, _>(self.store().as_ref(), &keys::builds(app.id)).await?;
        let mut builds: Vec<Build> = builds
            .into_iter()
            .map(|(_, build)| self.live_status(build))
            .collect();
        builds.sort_by_key(|b| (b.created_at, b.id));
        Ok(builds)
    }

    /// One build by id.
    pub async fn build(&self, app: &App, id: &str) -> Result<Build, CoreError> {
        let build_id: Uuid = id.parse().map_err(|_| CoreError::not_found("build", id))?;
        get_json::<Build, _>(self.store().as_ref(), &keys::build(app.id, build_id))
            .await?
            .map(|build| self.live_status(build))
            .ok_or_else(|| CoreError::not_found("build", id))
    }

    fn live_status(&self, mut build: Build) -> Build {
        if build.status == BuildStatus::Pending && !self.build_state().is_running(&build) {
            build.status = BuildStatus::Failed;
        }
        build
    }

    /// A build's output by the secret in its stream URL, if it is still kept, and who the URL
    /// was issued to (the API checks they may still see the app).
    pub fn build_output(
        &self,
        secret: &str,
    ) -> Option<(Arc<OutputBuffer>, crate::build_output::OutputHolder)> {
        self.build_state().output_and_holder(secret)
    }

    // ----- slugs ----------------------------------------------------------------------

    /// Declares a slug whose tarball will be uploaded with [`Platform::upload_slug`].
    pub(crate) fn declare_slug(
        &self,
        app: &App,
        slug: crate::command::NewSlug,
    ) -> Result<SlugDeclaration, CoreError> {
        let crate::command::NewSlug {
            process_types,
            commit,
            checksum,
            stack,
            buildpack_description,
        } = slug;
        for (name, command) in &process_types {
            let valid_name = !name.is_empty()
                && name.len() <= 30
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                return Err(CoreError::invalid(format!(
                    "Invalid process type {name:?}: names are 1 to 30 letters, digits, dashes and underscores."
                )));
            }
            if command.trim().is_empty() {
                return Err(CoreError::invalid(format!(
                    "Process type {name} has an empty command."
                )));
            }
        }
        let checksum = checksum
            .map(|c| checksum_hex(&c, "slug").map(|hex| format!("SHA256:{hex}")))
            .transpose()?;
        let declaration = SlugDeclaration {
            id: Uuid::new_v4(),
            app_id: app.id,
            process_types,
            commit,
            checksum,
            stack: stack.unwrap_or_else(|| app.stack.clone()),
            buildpack_description,
            created_at: Utc::now(),
            upload_token: random_token(),
        };
        let mut uploads = self.build_state().uploads();
        let now = Instant::now();
        uploads.retain(|_, (_, expires)| *expires > now);
        uploads.insert(
            declaration.upload_token.clone(),
            (declaration.clone(), now + UPLOAD_LIFETIME),
        );
        Ok(declaration)
    }

    /// A declared slug still waiting for its upload.
    pub fn declared_slug(&self, app: &App, slug_id: Uuid) -> Option<SlugDeclaration> {
        let uploads = self.build_state().uploads();
        uploads
            .values()
            .map(|(declaration, _)| declaration)
            .find(|d| d.app_id == app.id && d.id == slug_id)
            .cloned()
    }

    /// Stores an uploaded slug tarball for the declaration `token` names: it must unpack and
    /// match the declared checksum, or nothing is stored.
    pub async fn upload_slug<R: AsyncRead + Unpin>(
        &self,
        token: &str,
        body: R,
    ) -> Result<Slug, CoreError> {
        let declaration = {
            let uploads = self.build_state().uploads();
            uploads
                .get(token)
                .filter(|(_, expires)| *expires > Instant::now())
                .map(|(declaration, _)| declaration.clone())
        };
        let Some(declaration) = declaration else {
            return Err(CoreError::not_found("slug upload", token));
        };
        let io_error = |action: &'static str| {
            move |source: std::io::Error| CoreError::Io {
                app: declaration.app_id,
                action,
                source,
            }
        };
        let slugs_dir = self.config().slugs_dir();
        let partial = slugs_dir.join(format!(".upload-{}.tgz", Uuid::new_v4().simple()));
        let scratch = self
            .config()
            .builds_dir()
            .join(format!("slug-check-{}", Uuid::new_v4().simple()));
        let result = async {
            let (sha256, size) = store_hashed(body, &partial, MAX_ARCHIVE_BYTES).await.map_err(|error| {
                CoreError::invalid(format!("Could not receive the slug: {error}."))
            })?;
            let checksum = format!("SHA256:{sha256}");
            if let Some(expected) = &declaration.checksum {
                if *expected != checksum {
                    return Err(CoreError::invalid(format!(
                        "Checksum mismatch: the uploaded slug is {checksum}, but the slug was declared with {expected}. Nothing was stored; upload the right tarball."
                    )));
                }
            }
            // Unpacked only to check it, in a scratch directory no container sees: owned by
            // `nobody`, never by an app's uid.
            let (uid, gid) = (65_534, 65_534);
            let (tarball, target) = (partial.clone(), scratch.join("app"));
            let unpacked = tokio::task::spawn_blocking(move || {
                slipway_build::unpack_slug(&tarball, &target, uid, gid)?;
                Ok::<bool, slipway_build::BuildError>(
                    std::fs::read_dir(&target)
                        .map(|mut entries| entries.next().is_some())
                        .unwrap_or(false),
                )
            })
            .await
            .map_err(|join| io_error("check the uploaded slug")(std::io::Error::other(join)))?;
            match unpacked {
                Ok(true) => {}
                Ok(false) => {
                    return Err(CoreError::invalid(
                        "The uploaded slug has nothing under ./app. Make it with `tar czf slug.tgz ./app` and upload it again.",
                    ))
                }
                Err(error) => {
                    return Err(CoreError::invalid(format!(
                        "The uploaded slug does not unpack: {error}. Make it with `tar czf slug.tgz ./app` and upload it again."
                    )))
                }
            }
            let path = slugs_dir.join(format!("{sha256}.tgz"));
            tokio::fs::rename(&partial, &path)
                .await
                .map_err(io_error("store the uploaded slug"))?;
            self.keep_in_slug_store(&checksum, &path).await?;
            let slug = Slug {
                id: declaration.id,
                app_id: declaration.app_id,
                checksum,
                size,
                process_types: declaration.process_types.clone(),
                commit: declaration.commit.clone(),
                buildpack_description: declaration
                    .buildpack_description
                    .clone()
                    .unwrap_or_default(),
                stack: declaration.stack.clone(),
                stack_id: crate::stacks::current_build_id(self.config(), &declaration.stack),
                created_at: declaration.created_at,
            };
            let written = self
                .store()
                .txn(
                    Txn::new()
                        .when(Compare::absent(keys::slug(slug.app_id, slug.id)))
                        .then(Op::put_json(keys::slug(slug.app_id, slug.id), &slug)?),
                )
                .await?;
            if !written.succeeded {
                return Err(CoreError::Conflict {
                    message: "This slug was already uploaded; declare a new slug to upload another.".into(),
                });
            }
            Ok(slug)
        }
        .await;
        let _ = tokio::fs::remove_file(&partial).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        if result.is_ok() {
            let mut uploads = self.build_state().uploads();
            uploads.remove(token);
        }
        result
    }
}

#[cfg(test)]
mod tests;
