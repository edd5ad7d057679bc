//! Deploys: a source tarball (from `git push` or a build's `source_blob`) becomes a slug and a
//! release, atomically. A failed build leaves nothing behind but its output.
//!
//! The source's `app.json` (see `app_json.rs`) is read before anything is built: an invalid
//! one, or one whose required config vars are unset, rejects the deploy. Its `env` defaults
//! and `formation` are written in the release's own transaction; its `scripts.postdeploy` runs
//! after the app's first successful deploy, and its failure does not undo the deploy.
//! app.json's `addons` are provisioned on the first deploy after the build and before the
//! release phase; the deploy's release writes their records and config vars, and a deploy that
//! writes no release drops them again.
//!
//! The buildpacks are the build request's, else the app's (`buildpacks:set`), else app.json's,
//! else the source's `.buildpacks`, else auto-detected; those named by URL are fetched (see
//! `buildpacks/fetch.rs`) before the build starts. A `git push` is recorded as a build (see
//! `builds.rs`), so `builds`, `builds:info` and `builds:output` show it.
//!
//! Tenant input is hostile: the source is unpacked by `slipway_build::unpack_source` (no entry
//! outside the tree, symlinks kept as symlinks, expanded size capped by
//! [`crate::BuildBudget::max_source_bytes`]); app.json is read with
//! `slipway_build::read_tenant_file` (no symlinks, a regular file, 1 MB at most). A failed
//! deploy removes its build directory and the slug it built unless a slug record references
//! it; [`Platform::sweep_orphans`] does the same at start-up for a server killed mid-build.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use slipway_build::BuildRequest;
use slipway_runtime::Limits;
use slipway_store::Op;
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

use crate::app_json::{self, AppJson};
use crate::error::CoreError;
use crate::model::{keys, App, Release, Slug, User};
use crate::output::DeployOutput;
use crate::platform::Platform;
use crate::release_phase::Step;
use crate::releases::ReleaseInputs;
use crate::telemetry::PlatformEvent;

/// How a deploy reads its source and picks its buildpacks.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceOptions {
    /// A build's `source_blob`: a gzip'd or plain tar, whose single top-level directory (as
    /// in GitHub's tarballs) is stripped. Otherwise a plain `git archive` tar, as pushed.
    pub(crate) from_blob: bool,
    /// Buildpacks the build request names; they win over app.json's. Empty: app.json's, or
    /// auto-detection.
    pub(crate) buildpacks: Vec<String>,
}

/// Removes the app from the set of apps being built when the build ends, however it ends.
struct BuildGuard<'a> {
    platform: &'a Platform,
    app: Uuid,
}

impl Drop for BuildGuard<'_> {
    fn drop(&mut self) {
        let mut building = self
            .platform
            .building()
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        building.remove(&self.app);
    }
}

impl Platform {
    /// Builds the tarball (a `git archive` of the app's source), stores the slug and creates
    /// a release. Output lines stream through `output` and into the app's log.
    pub(crate) async fn deploy_tarball<R>(
        &self,
        user: &User,
        app: &App,
        tarball: R,
        commit: Option<String>,
        output: DeployOutput,
    ) -> Result<Release, CoreError>
    where
        R: AsyncRead + Unpin + Send,
    {
        // A push is a build too, as on Heroku: recorded, its output kept for `builds:output`.
        let (record, buffer) = self.record_push_build(user, app, commit.clone()).await?;
        let output: DeployOutput = {
            let buffer = buffer.clone();
            Arc::new(move |line: &str| {
                output(line);
                buffer.push(line);
            })
        };
        let result = self
            .deploy_source(
                user,
                app,
                tarball,
                commit,
                SourceOptions::default(),
                record.id,
                output,
            )
            .await;
        if let Err(error) = &result {
            for line in error.to_string().lines() {
                buffer.push(&format!(" !     {line}"));
            }
        }
        self.finish_build(
            app,
            record,
            result
                .as_ref()
                .ok()
                .map(|release| (release.slug_id, release.id)),
        )
        .await;
        buffer.finish();
        result
    }

    /// [`Platform::deploy_tarball`] with options, under a given build id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn deploy_source<R>(
        &self,
        user: &User,
        app: &App,
        tarball: R,
        commit: Option<String>,
        options: SourceOptions,
        build_id: Uuid,
        output: DeployOutput,
    ) -> Result<Release, CoreError>
    where
        R: AsyncRead + Unpin + Send,
    {
        {
            let mut building = self.building().lock().unwrap_or_else(|p| p.into_inner());
            if !building.insert(app.id) {
                return Err(CoreError::Conflict {
                    message: format!(
                        "A build is already running for {}. Wait for it to finish, then push again.",
                        app.name
                    ),
                });
            }
        }
        let _guard = BuildGuard {
            platform: self,
            app: app.id,
        };
        let work_dir = self.config().builds_dir().join(build_id.to_string());
        let mut built_slug = None;
        let result = self
            .build_and_release(
                user,
                app,
                tarball,
                commit,
                &options,
                output,
                build_id,
                &work_dir,
                &mut built_slug,
            )
            .await;
        self.discard_build_dir(&work_dir).await;
        if let (Err(_), Some(slug)) = (&result, built_slug) {
            self.remove_slug_if_unreferenced(app.id, &slug).await;
        }
        result
    }

    /// Removes a finished build's directory off the push's critical path: it is renamed into
    /// the trash directory (one rename, however many files the build wrote; a Python or
    /// Node.js build leaves thousands) and deleted there in the background, one deletion at a
    /// time, so that a burst of builds does not take every blocking thread. What a server
    /// stopped mid-deletion leaves, the start-up sweep removes. When the rename fails the
    /// directory is deleted in place, as before.
    async fn discard_build_dir(&self, work_dir: &Path) {
        static DELETIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        let trash = build_trash_dir(&self.config().builds_dir());
        let moved = trash.join(Uuid::new_v4().to_string());
        let renamed = match tokio::fs::create_dir_all(&trash).await {
            Ok(()) => tokio::fs::rename(work_dir, &moved).await,
            Err(error) => Err(error),
        };
        let doomed = match renamed {
            Ok(()) => moved,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => {
                if let Err(error) = tokio::fs::remove_dir_all(work_dir).await {
                    if error.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(%error, dir = %work_dir.display(), "could not remove a build directory");
                    }
                }
                return;
            }
        };
        tokio::spawn(async move {
            let _permit = DELETIONS.acquire().await;
            if let Err(error) = tokio::fs::remove_dir_all(&doomed).await {
                tracing::warn!(%error, dir = %doomed.display(), "could not remove a build directory");
            }
        });
    }

    /// After a failed deploy: removes the slug file it built unless a slug record (of any
    /// app: slugs are content-addressed) references it. Only when no other build is running,
    /// since another build may have packed the same content and not yet written its record;
    /// otherwise the next start-up sweep removes it.
    async fn remove_slug_if_unreferenced(&self, app_id: Uuid, slug: &Path) {
        let others_building = self
            .building()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|id| *id != app_id);
        if others_building {
            return;
        }
        let Some(digest) = slug
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tgz"))
        else {
            return;
        };
        match self.referenced_slug_digests().await {
            Ok(referenced) if !referenced.contains(digest) => {
                if let Err(error) = tokio::fs::remove_file(slug).await {
                    tracing::warn!(%error, slug = %slug.display(), "could not remove the slug of a failed deploy");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not list slug records; the slug of a failed deploy stays until the next start")
            }
        }
    }

    /// The digests of every slug some slug record names, of every app. A release names its
    /// slug by id, and the slug record is written in the release's transaction, so this is
    /// every slug a release (and so a rollback) can need, plus uploaded slugs not yet
    /// released.
    async fn referenced_slug_digests(&self) -> Result<HashSet<String>, CoreError> {
        let (slugs, _) =
            slipway_store::json::range_json::<Slug, _>(self.store().as_ref(), keys::SLUGS).await?;
        Ok(slugs
            .into_iter()
            .map(|(_, slug)| slug.digest().to_owned())
            .collect())
    }

    /// Called once at start-up, before the dyno manager and the API: removes what builds
    /// and deploys of a previous server process left behind (see [`Platform::sweep_orphans`]:
    /// build containers, build directories, slug files no slug record references, partial
    /// files). Dynos a previous server process left running are re-adopted by the dyno
    /// manager when it starts (see `dyno_manager`), not stopped.
    pub async fn clean_up_previous_run(&self) -> Result<(), CoreError> {
        self.sweep_orphans().await
    }

    /// Removes what a previous server process's builds left behind. Called at start-up, before
    /// anything builds: no build of this process is running, so
    ///
    /// - build containers (label `role=build`) still running are stopped;
    /// - everything under the builds directory (sources, work dirs, fetched blobs, scratch
    ///   copies) goes;
    /// - in the slug store, partial files (`.partial-*`, `.upload-*`) and every `<sha256>.tgz`
    ///   no slug record references go; a slug any record references stays (rollback needs
    ///   it);
    /// - unpacked slugs: half-done temporaries (`.<digest>.<uuid>`) and copies (one per app
    ///   uid, `<digest>-<uid>`) of slugs no record references go; copies of referenced slugs
    ///   stay, running dynos have them as their `/app`'s lower layer.
    pub(crate) async fn sweep_orphans(&self) -> Result<(), CoreError> {
        match self.runtime().list().await {
            Ok(containers) => {
                for container in containers {
                    if container.labels.get("role").map(String::as_str) == Some("build") {
                        tracing::info!(id = %container.id, "stopping a build container left by the previous run");
                        if let Err(error) = self
                            .runtime()
                            .stop(&container.id, std::time::Duration::from_secs(1))
                            .await
                        {
                            tracing::warn!(%error, id = %container.id, "could not stop a leftover build container");
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not list containers to find leftover builds")
            }
        }
        let referenced = self.referenced_slug_digests().await?;
        let builds_dir = self.config().builds_dir();
        let slugs_dir = self.config().slugs_dir();
        let unpacked_dir = self.config().unpacked_slugs_dir();
        let removed = tokio::task::spawn_blocking(move || {
            let mut removed = 0usize;
            let mut remove = |path: &Path| {
                let result = match std::fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
                    Ok(_) => std::fs::remove_file(path),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => removed += 1,
                    Err(error) => {
                        tracing::warn!(%error, path = %path.display(), "could not remove a leftover")
                    }
                }
            };
            for entry in read_dir_names(&builds_dir) {
                remove(&builds_dir.join(entry));
            }
            let trash = build_trash_dir(&builds_dir);
            if trash.exists() {
                remove(&trash);
            }
            for name in read_dir_names(&slugs_dir) {
                let keep = name
                    .strip_suffix(".tgz")
                    .is_some_and(|digest| !digest.starts_with('.') && referenced.contains(digest));
                if !keep {
                    remove(&slugs_dir.join(name));
                }
            }
            for name in read_dir_names(&unpacked_dir) {
                // `<digest>-<uid>` (one copy per app uid), or `<digest>` from older versions.
                let digest = name
                    .rsplit_once('-')
                    .filter(|(_, uid)| uid.parse::<u32>().is_ok())
                    .map_or(name.as_str(), |(digest, _)| digest);
                if name.starts_with('.') || !referenced.contains(digest) {
                    remove(&unpacked_dir.join(name));
                }
            }
            removed
        })
        .await
        .map_err(|join| CoreError::Io {
            app: Uuid::nil(),
            action: "remove leftovers of previous builds",
            source: std::io::Error::other(join),
        })?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed leftovers of builds and deploys of the previous run"
            );
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_and_release<R>(
        &self,
        user: &User,
        app: &App,
        mut tarball: R,
        commit: Option<String>,
        options: &SourceOptions,
        output: DeployOutput,
        build_id: Uuid,
        work_dir: &Path,
        built_slug: &mut Option<PathBuf>,
    ) -> Result<Release, CoreError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let io_error = |action: &'static str| {
            move |source: std::io::Error| CoreError::Io {
                app: app.id,
                action,
                source,
            }
        };
        let source_dir = work_dir.join("source");
        tokio::fs::create_dir_all(&source_dir)
            .await
            .map_err(io_error("create the build directory"))?;
        let tar_path = work_dir.join("source.tar");
        let max_source = self.config().build.max_source_bytes;
        let mut file = tokio::fs::File::create(&tar_path)
            .await
            .map_err(io_error("store the pushed source"))?;
        // The stored tarball is capped too: a stream longer than the cap is cut off and
        // refused before it fills the disk.
        let received = tokio::io::copy(&mut (&mut tarball).take(max_source + 1), &mut file)
            .await
            .map_err(io_error("receive the pushed source"))?;
        drop(file);
        if received > max_source {
            return Err(slipway_build::BuildError::ArchiveTooLarge {
                what: "source",
                max: max_source,
            }
            .into());
        }
        let unpack_into = source_dir.clone();
        let from_blob = options.from_blob;
        let scratch = work_dir.join("top-level");
        tokio::task::spawn_blocking(move || {
            unpack_source(&tar_path, &unpack_into, from_blob, &scratch, max_source)
        })
        .await
        .map_err(|join| io_error("unpack the pushed source")(std::io::Error::other(join)))?
        .map_err(|error| match error {
            slipway_build::BuildError::Io { .. } if from_blob => CoreError::invalid(format!(
                "The source blob is not a tar archive (plain or gzip'd): {error}. Point source_blob.url at a .tar.gz of the app's source."
            )),
            other => other.into(),
        })?;

        let log_output: DeployOutput = {
            let logs = self.logs().clone();
            let name = app.name.clone();
            let output = output.clone();
            Arc::new(move |line: &str| {
                output(line);
                logs.publish(&name, PlatformEvent::Build { line }.to_line());
            })
        };

        // app.json: checked before anything is built.
        let manifest = read_app_json(&source_dir).await?;
        let config_vars = self.config_vars(app).await?;
        let env_defaults = manifest.env_defaults(&config_vars);
        if !env_defaults.missing.is_empty() {
            let first = &env_defaults.missing[0];
            return Err(CoreError::invalid(format!(
                "Push rejected: app.json requires config vars that are not set: {}. Set them (`slipway config:set {first}=... -a {}`) or give them a value in app.json, then push again.",
                env_defaults.missing.join(", "),
                app.name
            )));
        }
        let max = self.config().dynos.max_dynos_per_app;
        if let Some((process_type, _)) = manifest
            .formation
            .iter()
            .find(|(_, f)| f.quantity.is_some_and(|q| q > max))
        {
            return Err(CoreError::invalid(format!(
                "Push rejected: app.json's formation asks for more than {max} {process_type} dynos, the limit per app. Lower formation.{process_type}.quantity and push again."
            )));
        }
        // app.json's add-ons are provisioned on the first deploy only; a service no one
        // registered rejects the push before the build rather than after it.
        if !manifest.addons.is_empty()
            && self
                .current_release(app)
                .await?
                .and_then(|r| r.slug_id)
                .is_none()
        {
            self.check_manifest_addons(&manifest.addons).await?;
        }
        if !env_defaults.set.is_empty() {
            log_output(&format!(
                "-----> Setting config vars from app.json: {}",
                env_defaults
                    .set
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut build_config = config_vars;
        build_config.extend(env_defaults.set.clone());
        // A build request's buildpacks win, then the app's own (`heroku buildpacks:set`),
        // then app.json's, then the source's `.buildpacks`, then auto-detection.
        let installed = self.buildpacks(app).await?;
        let buildpacks = if !options.buildpacks.is_empty() {
            options.buildpacks.clone()
        } else if !installed.is_empty() {
            log_output(&format!(
                "-----> Using buildpack{} set on the app: {}",
                if installed.len() == 1 { "" } else { "s" },
                installed
                    .iter()
                    .map(|b| crate::buildpacks::display_buildpack(b))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            installed
        } else if !manifest.buildpacks.is_empty() {
            manifest.buildpacks.clone()
        } else {
            let listed = read_dot_buildpacks(&source_dir).await?;
            if !listed.is_empty() {
                log_output(&format!(
                    "-----> Using the buildpack{} listed in .buildpacks",
                    if listed.len() == 1 { "" } else { "s" }
                ));
            }
            listed
        };
        let buildpacks = self
            .resolve_build_buildpacks(&buildpacks, &log_output)
            .await?;

        let stack = self.resolve_build_stack(app)?;
        let app_uid = self.app_uid(app).await?;
        let cache_dir = self.config().cache_dir(app.id);
        tokio::fs::create_dir_all(&cache_dir)
            .await
            .map_err(io_error("create the build cache"))?;
        let request = BuildRequest {
            app: app.name.clone(),
            source_dir,
            cache_dir,
            config_vars: build_config,
            buildpacks_dir: self.config().buildpacks_dir(),
            buildpacks,
            slug_dir: self.config().slugs_dir(),
            work_dir: work_dir.join("work"),
            uid: app_uid,
            gid: app_uid,
            stack: stack.name.clone(),
            source_version: commit.clone(),
            rootfs: stack.build_rootfs.clone(),
            build_id: build_id.simple().to_string()[..12].to_owned(),
            mount_view: slipway_build::MountView::Container,
            step_timeout: None,
            build_timeout: Some(self.config().build.timeout),
            limits: Limits {
                memory_bytes: Some(self.config().build.memory_bytes),
                pids: Some(self.config().build.pids),
                cpu_shares: Some(self.config().build.cpu_shares),
                ..Limits::default()
            },
            max_slug_bytes: Some(self.config().build.max_slug_bytes),
            platform_env: self.config().runtime_source_env(),
        };
        let built =
            slipway_build::build(self.runtime().as_ref(), &request, log_output.clone()).await?;
        *built_slug = Some(built.path.clone());
        self.keep_in_slug_store(&built.checksum, &built.path)
            .await?;
        for process_type in manifest.formation.keys() {
            if !built.process_types.contains_key(process_type) {
                log_output(&format!(
                    "       Warning: app.json's formation names process type {process_type}, which this app does not declare; ignored"
                ));
            }
        }

        let slug = Slug {
            id: Uuid::new_v4(),
            app_id: app.id,
            checksum: built.checksum.clone(),
            size: built.size,
            process_types: built.process_types.clone(),
            commit: commit.clone(),
            buildpack_description: built.buildpack_description.clone(),
            stack: stack.name.clone(),
            stack_id: stack.id,
            created_at: Utc::now(),
        };
        log_output("-----> Launching...");
        let short_commit: String = commit
            .as_deref()
            .unwrap_or("unknown")
            .chars()
            .take(7)
            .collect();
        let first_deploy = self
            .current_release(app)
            .await?
            .and_then(|r| r.slug_id)
            .is_none();
        // app.json's add-ons: provisioned on the first deploy only, before the release phase,
        // and attached by this deploy's own release.
        let manifest_addons = if first_deploy {
            self.provision_manifest_addons(app, &manifest.addons, &log_output)
                .await?
        } else {
            Default::default()
        };
        let mut config_defaults = env_defaults.set;
        config_defaults.extend(manifest_addons.vars);
        let mut ops = vec![Op::put_json(keys::slug(app.id, slug.id), &slug)?];
        ops.extend(manifest_addons.ops);
        let released = self
            .release_with_config(
                user,
                app,
                &slug,
                format!("Deploy {short_commit}"),
                ReleaseInputs {
                    config: None,
                    config_defaults,
                    formation: manifest.formation.clone(),
                },
                ops,
                log_output.clone(),
            )
            .await;
        let release = match released {
            Ok(release) => release,
            Err(error) => {
                self.drop_unreleased_manifest_addons(manifest_addons.addons)
                    .await;
                return Err(error);
            }
        };
        self.event(
            &app.name,
            PlatformEvent::Deploy {
                commit: &short_commit,
                user: &user.email,
            },
        );
        log_output(&format!("       Released v{}", release.version));
        log_output(&format!(
            "       {} deployed to Slipway",
            self.config().web_url(&app.name)
        ));
        if let (true, Some(command)) = (first_deploy, manifest.postdeploy.as_deref()) {
            let failure = self
                .run_step(
                    Step::Postdeploy,
                    app,
                    &slug,
                    &release.config_vars,
                    command,
                    log_output.clone(),
                )
                .await?;
            if let Some(reason) = failure {
                let line = format!(
                    "Postdeploy script failed: {reason}. v{} stays deployed; run the script again by hand once fixed (its output is in `slipway logs`, as app[postdeploy.1]).",
                    release.version
                );
                self.logs().publish(
                    &app.name,
                    slipway_logplex::LogLine::app("api", line.clone()),
                );
                log_output(&format!(" !     {line}"));
            }
        }
        Ok(release)
    }
}

/// Where finished build directories wait for their deletion: beside the builds directory
/// (not in it, where a build directory is a running build's), on the same filesystem.
fn build_trash_dir(builds_dir: &Path) -> PathBuf {
    builds_dir.with_file_name("builds.trash")
}

/// Reads and checks the source's app.json through `read_tenant_file` (no symlinks, a regular
/// file, 1 MB at most); no file: an empty manifest.
async fn read_app_json(source_dir: &Path) -> Result<AppJson, CoreError> {
    let source_dir = source_dir.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        slipway_build::read_tenant_file(&source_dir, app_json::FILE, slipway_build::TENANT_FILE_CAP)
    })
    .await
    .map_err(|join| {
        CoreError::invalid(format!(
            "Push rejected: app.json could not be read ({join})"
        ))
    })?;
    match read {
        Ok(Some(bytes)) => AppJson::parse(&bytes)
            .map_err(|error| CoreError::invalid(format!("Push rejected: {error}"))),
        Ok(None) => Ok(AppJson::default()),
        Err(error) => Err(CoreError::invalid(format!("Push rejected: {error}"))),
    }
}

/// The source's `.buildpacks` (one buildpack per line), read through `read_tenant_file`; no
/// file: none.
async fn read_dot_buildpacks(source_dir: &Path) -> Result<Vec<String>, CoreError> {
    let source_dir = source_dir.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        slipway_build::read_tenant_file(&source_dir, ".buildpacks", slipway_build::TENANT_FILE_CAP)
    })
    .await
    .map_err(|join| {
        CoreError::invalid(format!(
            "Push rejected: .buildpacks could not be read ({join})"
        ))
    })?;
    match read {
        Ok(Some(bytes)) => slipway_build::parse_dot_buildpacks(&String::from_utf8_lossy(&bytes))
            .map_err(|error| {
                CoreError::invalid(format!(
                    "Push rejected: {error}. Fix .buildpacks and push again."
                ))
            }),
        Ok(None) => Ok(Vec::new()),
        Err(error) => Err(CoreError::invalid(format!("Push rejected: {error}"))),
    }
}

/// The names in a directory; none when it cannot be read.
fn read_dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Unpacks a source tarball into `dest` with `slipway_build::unpack_source` (hostile
/// entries refused, at most `max_bytes` expanded). With `from_blob`, the archive may be gzip'd
/// and a single top-level directory is stripped (moved through `scratch`). Blocking.
fn unpack_source(
    tar_path: &Path,
    dest: &Path,
    from_blob: bool,
    scratch: &Path,
    max_bytes: u64,
) -> Result<(), slipway_build::BuildError> {
    use std::io::{BufRead, BufReader};
    let io = |action| {
        move |e| slipway_build::BuildError::Io {
            action,
            path: PathBuf::from("the source"),
            source: e,
        }
    };
    let mut file = BufReader::new(std::fs::File::open(tar_path).map_err(io("open"))?);
    let gzipped = from_blob
        && file
            .fill_buf()
            .map_err(io("read"))?
            .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn std::io::Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    slipway_build::unpack_source(reader, dest, 0, 0, max_bytes)?;
    if !from_blob {
        return Ok(());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dest)
        .map_err(io("read"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io("read"))?;
    if let [only] = entries.as_slice() {
        if std::fs::symlink_metadata(only)
            .map_err(io("inspect"))?
            .is_dir()
        {
            std::fs::rename(only, scratch).map_err(io("move"))?;
            std::fs::remove_dir(dest).map_err(io("move"))?;
            std::fs::rename(scratch, dest).map_err(io("move"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
