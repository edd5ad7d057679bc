//! Deploys: a source tarball (from `git push` or a build's `source_blob`) becomes a slug and a
//! release, atomically. A failed build leaves nothing behind but its output.
//!
//! The source's `app.json` (see `app_json.rs`) is read before anything is built: an invalid
//! one, or one whose required config vars are unset, rejects the deploy. Its `env` defaults
//! and `formation` are written in the release's own transaction; its `scripts.postdeploy` runs
//! after the app's first successful deploy, and its failure does not undo the deploy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use slipway_build::BuildRequest;
use slipway_store::Op;
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

use crate::app_json::{self, AppJson};
use crate::model::{keys, App, Release, Slug, User};
use crate::releases::ReleaseInputs;
use crate::telemetry::PlatformEvent;
use crate::{CoreError, Platform};

/// Receives each line of build output as it is produced.
pub type DeployOutput = Arc<dyn Fn(&str) + Send + Sync>;

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
            .building
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        building.remove(&self.app);
    }
}

impl Platform {
    /// Builds the tarball (a `git archive` of the app's source), stores the slug and creates
    /// a release. Output lines stream through `output` and into the app's log.
    pub async fn deploy_tarball<R>(
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
        self.deploy_source(
            user,
            app,
            tarball,
            commit,
            SourceOptions::default(),
            Uuid::new_v4(),
            output,
        )
        .await
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
            let mut building = self.building.lock().unwrap_or_else(|p| p.into_inner());
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
        let work_dir = self.config.builds_dir().join(build_id.to_string());
        let result = self
            .build_and_release(
                user, app, tarball, commit, &options, output, build_id, &work_dir,
            )
            .await;
        if let Err(error) = tokio::fs::remove_dir_all(&work_dir).await {
            tracing::warn!(%error, dir = %work_dir.display(), "could not remove a build directory");
        }
        result
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
        let mut file = tokio::fs::File::create(&tar_path)
            .await
            .map_err(io_error("store the pushed source"))?;
        let limit = self.config.max_source_unpacked_bytes;
        let too_large = || {
            CoreError::invalid(format!(
                "The source expands to more than the limit of {} MB when unpacked. Nothing was built; make it smaller (leave out dependencies and build output).",
                limit / (1024 * 1024)
            ))
        };
        // A pushed tarball is plain tar: its size is (about) its unpacked size.
        let copied = tokio::io::copy(&mut (&mut tarball).take(limit + 1), &mut file)
            .await
            .map_err(io_error("receive the pushed source"))?;
        if copied > limit {
            return Err(too_large());
        }
        drop(file);
        let unpack_into = source_dir.clone();
        let from_blob = options.from_blob;
        let scratch = work_dir.join("top-level");
        tokio::task::spawn_blocking(move || {
            unpack_source(&tar_path, &unpack_into, from_blob, &scratch, limit)
        })
        .await
        .map_err(|join| io_error("unpack the pushed source")(std::io::Error::other(join)))?
        .map_err(|error| {
            if error.get_ref().is_some_and(|inner| inner.is::<ExpandedTooLarge>()) {
                too_large()
            } else if from_blob {
                CoreError::invalid(format!(
                    "The source blob is not a tar archive (plain or gzip'd): {error}. Point source_blob.url at a .tar.gz of the app's source."
                ))
            } else {
                io_error("unpack the pushed source")(error)
            }
        })?;

        let log_output: DeployOutput = {
            let logs = self.logs.clone();
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
        let max = self.config.dynos.max_dynos_per_app;
        if let Some((process_type, _)) = manifest
            .formation
            .iter()
            .find(|(_, f)| f.quantity.is_some_and(|q| q > max))
        {
            return Err(CoreError::invalid(format!(
                "Push rejected: app.json's formation asks for more than {max} {process_type} dynos, the limit per app. Lower formation.{process_type}.quantity and push again."
            )));
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
        let buildpacks = if options.buildpacks.is_empty() {
            manifest.buildpacks.clone()
        } else {
            options.buildpacks.clone()
        };

        let cache_dir = self.config.cache_dir(app.id);
        tokio::fs::create_dir_all(&cache_dir)
            .await
            .map_err(io_error("create the build cache"))?;
        let request = BuildRequest {
            app: app.name.clone(),
            source_dir,
            cache_dir,
            config_vars: build_config,
            buildpacks_dir: self.config.buildpacks_dir(),
            buildpacks,
            slug_dir: self.config.slugs_dir(),
            work_dir: work_dir.join("work"),
            uid: self.config.dyno_uid,
            gid: self.config.dyno_gid,
            stack: app.stack.clone(),
            build_id: build_id.simple().to_string()[..12].to_owned(),
            mount_view: slipway_build::MountView::Container,
            step_timeout: Some(std::time::Duration::from_secs(25 * 60)),
        };
        let built =
            slipway_build::build(self.runtime.as_ref(), &request, log_output.clone()).await?;
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
            stack: app.stack.clone(),
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
        let release = self
            .release_with_config(
                user,
                app,
                &slug,
                format!("Deploy {short_commit}"),
                ReleaseInputs {
                    config: None,
                    config_defaults: env_defaults.set,
                    formation: manifest.formation.clone(),
                },
                vec![Op::put_json(keys::slug(app.id, slug.id), &slug)?],
                log_output.clone(),
            )
            .await?;
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
            self.config.web_url(&app.name)
        ));
        if let (true, Some(command)) = (first_deploy, manifest.postdeploy.as_deref()) {
            let failure = self
                .run_postdeploy(
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
                self.logs.publish(
                    &app.name,
                    slipway_logplex::LogLine::app("api", line.clone()),
                );
                log_output(&format!(" !     {line}"));
            }
        }
        Ok(release)
    }
}

/// Reads and checks the source's app.json; no file: an empty manifest.
async fn read_app_json(source_dir: &Path) -> Result<AppJson, CoreError> {
    let path = source_dir.join(app_json::FILE);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            AppJson::parse(&bytes).map_err(|error| CoreError::invalid(format!("Push rejected: {error}")))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(AppJson::default()),
        Err(error) => Err(CoreError::invalid(format!(
            "Push rejected: app.json could not be read ({error}). Make it a regular file and push again."
        ))),
    }
}

/// The error inside the `io::Error` of [`unpack_source`] when the archive expands past its
/// limit.
#[derive(Debug, thiserror::Error)]
#[error("the archive expands to more than {0} bytes")]
struct ExpandedTooLarge(u64);

/// A reader that fails with [`ExpandedTooLarge`] once more than `limit` bytes were read: the
/// uncompressed tar stream bounds what unpacking it writes (file contents are in the stream).
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(ExpandedTooLarge(self.limit)));
        }
        Ok(n)
    }
}

/// Unpacks a source tarball into `dest`, failing once more than `limit` bytes of tar have been
/// read (the caller removes what was written). With `from_blob`, the archive may be gzip'd and
/// a single top-level directory is stripped (moved through `scratch`). Blocking.
fn unpack_source(
    tar_path: &Path,
    dest: &Path,
    from_blob: bool,
    scratch: &Path,
    limit: u64,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader};
    let mut file = BufReader::new(std::fs::File::open(tar_path)?);
    let gzipped = from_blob && file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn std::io::Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(Capped {
        inner: reader,
        read: 0,
        limit,
    });
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    if let Err(error) = archive.unpack(dest) {
        // The tar crate wraps reader errors in its own; say plainly which one this was.
        if archive.into_inner().read > limit {
            return Err(std::io::Error::other(ExpandedTooLarge(limit)));
        }
        return Err(error);
    }
    if !from_blob {
        return Ok(());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dest)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    if let [only] = entries.as_slice() {
        if std::fs::symlink_metadata(only)?.is_dir() {
            std::fs::rename(only, scratch)?;
            std::fs::remove_dir(dest)?;
            std::fs::rename(scratch, dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, &str)], gzip: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, contents.as_bytes())
                .unwrap();
        }
        let tar = builder.into_inner().unwrap();
        if !gzip {
            return tar;
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, &tar).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn source_blobs_unpack_plain_or_gzipped_and_lose_a_single_top_level_directory() {
        for (entries, gzip, from_blob, expected) in [
            (
                &[("app-1234/Procfile", "web: x"), ("app-1234/lib/a.py", "")][..],
                true,
                true,
                &["Procfile", "lib"][..],
            ),
            (
                &[("app-1234/Procfile", "web: x")][..],
                false,
                true,
                &["Procfile"][..],
            ),
            (
                &[("Procfile", "web: x"), ("lib/a.py", "")][..],
                true,
                true,
                &["Procfile", "lib"][..],
            ),
            (&[("lib/a.py", "")][..], false, false, &["lib"][..]),
            (&[("only/a.py", "")][..], false, false, &["only"][..]),
        ] {
            let temp = tempfile::tempdir().unwrap();
            let tar_path = temp.path().join("source.tar");
            std::fs::write(&tar_path, tarball(entries, gzip)).unwrap();
            let dest = temp.path().join("source");
            std::fs::create_dir(&dest).unwrap();
            unpack_source(
                &tar_path,
                &dest,
                from_blob,
                &temp.path().join("scratch"),
                u64::MAX,
            )
            .unwrap();
            let mut found: Vec<String> = std::fs::read_dir(&dest)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            found.sort();
            assert_eq!(
                found, expected,
                "{entries:?} gzip={gzip} from_blob={from_blob}"
            );
        }
    }

    #[test]
    fn a_source_blob_that_is_not_a_tarball_is_an_error() {
        let temp = tempfile::tempdir().unwrap();
        let tar_path = temp.path().join("source.tar");
        std::fs::write(&tar_path, b"<html>not found</html>".repeat(40)).unwrap();
        let dest = temp.path().join("source");
        std::fs::create_dir(&dest).unwrap();
        assert!(unpack_source(&tar_path, &dest, true, &temp.path().join("s"), u64::MAX).is_err());
    }

    #[test]
    fn a_tarball_expanding_past_the_limit_stops_there() {
        // 64 MB of zeros: about 64 KB gzip'd.
        let zeros = "\0".repeat(64 * 1024 * 1024);
        let temp = tempfile::tempdir().unwrap();
        let tar_path = temp.path().join("source.tar");
        let gz = tarball(&[("bomb", zeros.as_str())], true);
        assert!(gz.len() < 1024 * 1024, "{}", gz.len());
        std::fs::write(&tar_path, gz).unwrap();
        let dest = temp.path().join("source");
        std::fs::create_dir(&dest).unwrap();
        let limit = 4 * 1024 * 1024;
        let error =
            unpack_source(&tar_path, &dest, true, &temp.path().join("s"), limit).unwrap_err();
        assert!(
            error.get_ref().is_some_and(|e| e.is::<ExpandedTooLarge>()),
            "{error}"
        );
        let written = std::fs::metadata(dest.join("bomb")).map_or(0, |m| m.len());
        assert!(written <= limit, "{written} bytes written");
        // Under the limit, the same archive unpacks.
        let dest = temp.path().join("big-enough");
        std::fs::create_dir(&dest).unwrap();
        unpack_source(
            &tar_path,
            &dest,
            true,
            &temp.path().join("t"),
            65 * 1024 * 1024,
        )
        .unwrap();
    }
}
