//! Deploys: a source tarball (from `git push` or a build's `source_blob`) becomes a slug and a
//! release, atomically. A failed build leaves nothing behind but its output.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use slipway_build::BuildRequest;
use slipway_store::Op;
use tokio::io::AsyncRead;
use uuid::Uuid;

use crate::model::{keys, App, Release, Slug, User};
use crate::telemetry::PlatformEvent;
use crate::{CoreError, Platform};

/// Receives each line of build output as it is produced.
pub type DeployOutput = Arc<dyn Fn(&str) + Send + Sync>;

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
        let build_id = Uuid::new_v4();
        let work_dir = self.config.builds_dir().join(build_id.to_string());
        let result = self
            .build_and_release(user, app, tarball, commit, output, build_id, &work_dir)
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
        tokio::io::copy(&mut tarball, &mut file)
            .await
            .map_err(io_error("receive the pushed source"))?;
        drop(file);
        let unpack_into = source_dir.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&tar_path)?;
            let mut archive = tar::Archive::new(file);
            archive.set_preserve_permissions(true);
            archive.set_overwrite(true);
            archive.unpack(&unpack_into)
        })
        .await
        .map_err(|join| io_error("unpack the pushed source")(std::io::Error::other(join)))?
        .map_err(io_error("unpack the pushed source"))?;

        let log_output: DeployOutput = {
            let logs = self.logs.clone();
            let name = app.name.clone();
            let output = output.clone();
            Arc::new(move |line: &str| {
                output(line);
                logs.publish(&name, PlatformEvent::Build { line }.to_line());
            })
        };
        let cache_dir = self.config.cache_dir(app.id);
        tokio::fs::create_dir_all(&cache_dir)
            .await
            .map_err(io_error("create the build cache"))?;
        let config_vars = self.config_vars(app).await?;
        let request = BuildRequest {
            app: app.name.clone(),
            source_dir,
            cache_dir,
            config_vars,
            buildpacks_dir: self.config.buildpacks_dir(),
            buildpacks: Vec::new(),
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
        let release = self
            .release_with_config(
                user,
                app,
                &slug,
                format!("Deploy {short_commit}"),
                None,
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
        Ok(release)
    }
}
