//! [`Platform::execute`]: the one entry for every change. It looks the command's app up for
//! its actor (the authorization point) and hands the typed command to the concern that
//! carries it out. It sits above every concern and the command types; nothing below imports
//! it.

use std::sync::Arc;

use crate::command::{Command, Outcome, RestartTarget};
use crate::error::CoreError;
use crate::formation::RestartMode;
use crate::model::{App, User};
use crate::oneoff::RunRequest;
use crate::platform::Platform;

impl Platform {
    /// Executes `command` on behalf of `actor`: the single entry for every change. Here the
    /// actor is authorized (today: the app's owner; any authenticated user may create an app),
    /// and every effect happens inside the core's transactions.
    pub async fn execute(
        self: &Arc<Self>,
        actor: &User,
        command: Command,
    ) -> Result<Outcome, CoreError> {
        match command {
            Command::CreateApp { name } => self.create_app(actor, name).await.map(Outcome::App),
            Command::DeleteApp { app } => {
                let app = self.app(actor, &app).await?;
                self.stop_one_offs(&app).await;
                self.delete_app(&app).await?;
                Ok(Outcome::AppDeleted(app))
            }
            Command::UpdateApp { app, changes } => {
                let app = self.app(actor, &app).await?;
                self.update_app(actor, app, changes).await.map(Outcome::App)
            }
            Command::SetBuildpacks { app, buildpacks } => {
                let app = self.app(actor, &app).await?;
                self.set_buildpacks(&app, &buildpacks)
                    .await
                    .map(Outcome::Buildpacks)
            }
            Command::SetConfig { app, changes } => {
                let app = self.app(actor, &app).await?;
                let (config, release) = self.update_config_vars(actor, &app, changes).await?;
                Ok(Outcome::Config(config, release))
            }
            Command::Scale { app, changes } => {
                let app = self.app(actor, &app).await?;
                self.scale(actor, &app, &changes)
                    .await
                    .map(Outcome::Formation)
            }
            Command::Restart { app, target } => {
                let app = self.app(actor, &app).await?;
                // A one-off dyno is never restarted: `ps:restart run.N` ends it.
                if !self.stop_one_offs_named(&app, &target).await {
                    self.restart_dynos(&app, &target, RestartMode::Restart)
                        .await?;
                }
                Ok(Outcome::Accepted)
            }
            Command::Stop { app, target } => {
                let app = self.app(actor, &app).await?;
                if !self.stop_one_offs_named(&app, &target).await {
                    self.restart_dynos(&app, &target, RestartMode::Stop).await?;
                }
                Ok(Outcome::Accepted)
            }
            Command::Rollback { app, release } => {
                let app = self.app(actor, &app).await?;
                self.rollback(actor, &app, &release)
                    .await
                    .map(Outcome::Release)
            }
            Command::ReleaseSlug {
                app,
                slug,
                description,
            } => {
                let app = self.app(actor, &app).await?;
                self.release_slug(actor, &app, &slug, description)
                    .await
                    .map(Outcome::Release)
            }
            Command::AddDomain { app, hostname } => {
                let app = self.app(actor, &app).await?;
                self.add_domain(&app, &hostname).await.map(Outcome::Domain)
            }
            Command::RemoveDomain { app, domain } => {
                let app = self.app(actor, &app).await?;
                self.remove_domain(&app, &domain).await.map(Outcome::Domain)
            }
            Command::AddDrain { app, url } => {
                let app = self.app(actor, &app).await?;
                self.add_drain(&app, &url).await.map(Outcome::Drain)
            }
            Command::RemoveDrain { app, drain } => {
                let app = self.app(actor, &app).await?;
                self.remove_drain(&app, &drain).await.map(Outcome::Drain)
            }
            Command::AddCertificate { app, certificate } => {
                let app = self.app(actor, &app).await?;
                self.add_sni_endpoint(&app, &certificate.chain, &certificate.private_key)
                    .await
                    .map(Outcome::Certificate)
            }
            Command::UpdateCertificate {
                app,
                endpoint,
                certificate,
            } => {
                let app = self.app(actor, &app).await?;
                self.update_sni_endpoint(
                    &app,
                    &endpoint,
                    &certificate.chain,
                    &certificate.private_key,
                )
                .await
                .map(Outcome::Certificate)
            }
            Command::RemoveCertificate { app, endpoint } => {
                let app = self.app(actor, &app).await?;
                self.remove_sni_endpoint(&app, &endpoint)
                    .await
                    .map(Outcome::Certificate)
            }
            Command::CreateBuild {
                app,
                source,
                buildpacks,
            } => {
                let app = self.app(actor, &app).await?;
                self.create_build(actor, &app, source, buildpacks)
                    .await
                    .map(Outcome::Build)
            }
            Command::DeployPush { app, commit, push } => {
                let app = self.app(actor, &app).await?;
                self.deploy_tarball(actor, &app, push.tarball, commit, push.output)
                    .await
                    .map(Outcome::Release)
            }
            Command::DeclareSlug { app, slug } => {
                let app = self.app(actor, &app).await?;
                self.declare_slug(&app, slug).map(Outcome::SlugDeclared)
            }
            Command::RunDyno {
                app,
                command,
                attach,
                env,
                size,
                process_type,
                time_to_live,
                force_no_tty,
            } => {
                let app = self.app(actor, &app).await?;
                let request = RunRequest {
                    command,
                    attach,
                    env,
                    size,
                    process_type,
                    time_to_live,
                    force_no_tty,
                };
                let (dyno, attach_url) = self.run_dyno(&app, request).await?;
                Ok(Outcome::OneOff { dyno, attach_url })
            }
            Command::CreateAddon {
                app,
                plan,
                attachment,
                name,
            } => {
                let app = self.app(actor, &app).await?;
                self.create_addon(actor, &app, &plan, attachment, name)
                    .await
                    .map(Outcome::Addon)
            }
            Command::DestroyAddon { addon } => {
                self.destroy_addon(actor, &addon).await.map(Outcome::Addon)
            }
            Command::ChangeAddonPlan { addon, plan } => self
                .change_addon_plan(actor, &addon, &plan)
                .await
                .map(Outcome::Addon),
            Command::AttachAddon { app, addon, name } => {
                let app = self.app(actor, &app).await?;
                self.attach_addon(actor, &app, &addon, name)
                    .await
                    .map(Outcome::AddonAttachment)
            }
            Command::DetachAddon { attachment, app } => {
                let attachment = self
                    .addon_attachment(actor, &attachment, app.as_deref())
                    .await?;
                self.detach_addon(actor, &attachment)
                    .await
                    .map(Outcome::AddonAttachment)
            }
            Command::RotateAddonCredentials { addon } => self
                .rotate_addon_credentials(actor, &addon)
                .await
                .map(Outcome::Addon),
        }
    }

    /// Stops the one-off dynos a restart or stop names, if it names one-off dynos: `run.N`
    /// (one), or the type `run` when the formation has no such type (all of them). `false`:
    /// it names formation dynos.
    async fn stop_one_offs_named(&self, app: &App, target: &RestartTarget) -> bool {
        match target {
            RestartTarget::Dyno(name) => self.stop_one_off(app, &name.to_string()).await,
            RestartTarget::ProcessType(process_type)
                if process_type.as_str() == "run" && self.one_offs().count(app.id) > 0 =>
            {
                self.stop_one_offs(app).await;
                true
            }
            RestartTarget::App | RestartTarget::ProcessType(_) => false,
        }
    }
}

#[cfg(test)]
mod tests;
