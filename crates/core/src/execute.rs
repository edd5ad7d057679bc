//! [`Platform::execute`]: the one entry for every change. It looks the command's app up for
//! its actor with the permission the command needs ([`required_permission`], the
//! authorization point; `access.rs` holds the matrix) and hands the typed command to the
//! concern that carries it out. It sits above every concern and the command types; nothing below imports
//! it.

use std::sync::Arc;

use crate::access::Permission;
use crate::command::{Command, Outcome, RestartTarget};
use crate::error::CoreError;
use crate::formation::RestartMode;
use crate::model::{App, User};
use crate::oneoff::RunRequest;
use crate::platform::Platform;

impl Platform {
    /// Executes `command` on behalf of `actor`: the single entry for every change. Here the
    /// actor is authorized (the permission [`required_permission`] names, on the command's
    /// app; any authenticated user may create an app), and every effect happens inside the
    /// core's transactions.
    pub async fn execute(
        self: &Arc<Self>,
        actor: &User,
        command: Command,
    ) -> Result<Outcome, CoreError> {
        let needs = required_permission(&command);
        match command {
            Command::CreateApp { name } => self.create_app(actor, name).await.map(Outcome::App),
            Command::DeleteApp { app } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.stop_one_offs(&app).await;
                self.delete_app(&app).await?;
                Ok(Outcome::AppDeleted(app))
            }
            Command::UpdateApp { app, changes } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.update_app(actor, app, changes).await.map(Outcome::App)
            }
            Command::SetBuildpacks { app, buildpacks } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.set_buildpacks(&app, &buildpacks)
                    .await
                    .map(Outcome::Buildpacks)
            }
            Command::PurgeBuildCache { app } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.purge_build_cache(&app)
                    .await
                    .map(|()| Outcome::BuildCachePurged)
            }
            Command::SetConfig { app, changes } => {
                let app = self.app_for(actor, &app, needs).await?;
                let (config, release) = self.update_config_vars(actor, &app, changes).await?;
                Ok(Outcome::Config(config, release))
            }
            Command::Scale { app, changes } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.scale(actor, &app, &changes)
                    .await
                    .map(Outcome::Formation)
            }
            Command::Restart { app, target } => {
                let app = self.app_for(actor, &app, needs).await?;
                // A one-off dyno is never restarted: `ps:restart run.N` ends it.
                if !self.stop_one_offs_named(&app, &target).await {
                    self.restart_dynos(&app, &target, RestartMode::Restart)
                        .await?;
                }
                Ok(Outcome::Accepted)
            }
            Command::Stop { app, target } => {
                let app = self.app_for(actor, &app, needs).await?;
                if !self.stop_one_offs_named(&app, &target).await {
                    self.restart_dynos(&app, &target, RestartMode::Stop).await?;
                }
                Ok(Outcome::Accepted)
            }
            Command::Rollback { app, release } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.rollback(actor, &app, &release)
                    .await
                    .map(Outcome::Release)
            }
            Command::ReleaseSlug {
                app,
                slug,
                description,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.release_slug(actor, &app, &slug, description)
                    .await
                    .map(Outcome::Release)
            }
            Command::AddDomain { app, hostname } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.add_domain(&app, &hostname).await.map(Outcome::Domain)
            }
            Command::RemoveDomain { app, domain } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.remove_domain(&app, &domain).await.map(Outcome::Domain)
            }
            Command::AddDrain { app, url } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.add_drain(&app, &url).await.map(Outcome::Drain)
            }
            Command::RemoveDrain { app, drain } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.remove_drain(&app, &drain).await.map(Outcome::Drain)
            }
            Command::AddCertificate { app, certificate } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.add_sni_endpoint(&app, &certificate.chain, &certificate.private_key)
                    .await
                    .map(Outcome::Certificate)
            }
            Command::UpdateCertificate {
                app,
                endpoint,
                certificate,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
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
                let app = self.app_for(actor, &app, needs).await?;
                self.remove_sni_endpoint(&app, &endpoint)
                    .await
                    .map(Outcome::Certificate)
            }
            Command::CreateBuild {
                app,
                source,
                buildpacks,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.create_build(actor, &app, source, buildpacks)
                    .await
                    .map(Outcome::Build)
            }
            Command::DeployPush { app, commit, push } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.deploy_tarball(actor, &app, push.tarball, commit, push.output)
                    .await
                    .map(Outcome::Release)
            }
            Command::DeclareSlug { app, slug } => {
                let app = self.app_for(actor, &app, needs).await?;
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
                let app = self.app_for(actor, &app, needs).await?;
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
                options,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.create_addon(actor, &app, &plan, attachment, name, options)
                    .await
                    .map(Outcome::Addon)
            }
            Command::DestroyAddon { addon } => {
                self.addon_app_for(actor, &addon, needs).await?;
                self.destroy_addon(actor, &addon).await.map(Outcome::Addon)
            }
            Command::ChangeAddonPlan { addon, plan } => {
                self.addon_app_for(actor, &addon, needs).await?;
                self.change_addon_plan(actor, &addon, &plan)
                    .await
                    .map(Outcome::Addon)
            }
            Command::AttachAddon { app, addon, name } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.attach_addon(actor, &app, &addon, name)
                    .await
                    .map(Outcome::AddonAttachment)
            }
            Command::DetachAddon { attachment, app } => {
                let attachment = self
                    .addon_attachment(actor, &attachment, app.as_deref())
                    .await?;
                self.app_for(actor, &attachment.app_name, needs).await?;
                self.detach_addon(actor, &attachment)
                    .await
                    .map(Outcome::AddonAttachment)
            }
            Command::RotateAddonCredentials { addon } => {
                self.addon_app_for(actor, &addon, needs).await?;
                self.rotate_addon_credentials(actor, &addon)
                    .await
                    .map(Outcome::Addon)
            }
            Command::TransferApp { app, recipient } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.transfer_app(&app, &recipient).await.map(Outcome::App)
            }
            Command::AddCollaborator {
                app,
                email,
                permissions,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.add_collaborator(&app, &email, permissions)
                    .await
                    .map(Outcome::Collaborator)
            }
            Command::UpdateCollaborator {
                app,
                collaborator,
                permissions,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.update_collaborator(&app, &collaborator, permissions)
                    .await
                    .map(Outcome::Collaborator)
            }
            Command::RemoveCollaborator { app, collaborator } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.remove_collaborator(&app, &collaborator)
                    .await
                    .map(Outcome::Collaborator)
            }
            Command::RegisterAddonService {
                manifest,
                timeout_ms,
            } => self
                .register_addon_service(actor, &manifest, timeout_ms)
                .await
                .map(Outcome::AddonService),
            Command::RemoveAddonService { name } => self
                .remove_addon_service(actor, &name)
                .await
                .map(Outcome::AddonService),
            Command::CaptureBackup { app, addon } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.capture_backup(actor, &app.name, &addon)
                    .await
                    .map(Outcome::Backup)
            }
            Command::RestoreBackup {
                app,
                addon,
                from,
                backup,
                confirm,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.restore_backup(
                    actor,
                    &app.name,
                    &addon,
                    from.as_deref(),
                    backup.as_deref(),
                    confirm.as_deref(),
                )
                .await
                .map(Outcome::Backup)
            }
            Command::DeleteBackup {
                app,
                addon,
                backup,
                confirm,
            } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.delete_backup(actor, &app.name, &addon, &backup, confirm.as_deref())
                    .await
                    .map(Outcome::Backup)
            }
            Command::ScheduleBackups { app, addon, at } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.schedule_backups(actor, &app.name, &addon, &at)
                    .await
                    .map(Outcome::BackupSchedule)
            }
            Command::UnscheduleBackups { app, addon } => {
                let app = self.app_for(actor, &app, needs).await?;
                self.unschedule_backups(actor, &app.name, &addon)
                    .await
                    .map(Outcome::BackupSchedule)
            }
        }
    }

    /// The app an add-on belongs to, if `actor` holds `needs` on it: changing an add-on is
    /// an act on the app that owns it.
    async fn addon_app_for(
        &self,
        actor: &User,
        addon: &str,
        needs: Permission,
    ) -> Result<App, CoreError> {
        let view = self.addon(actor, addon).await?;
        self.app_for(actor, &view.addon.app_name, needs).await
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

/// The permission `command` needs on its app (`access.rs` documents the matrix). Creating an
/// app needs none: any signed-in user may, and `View` is what everyone holds on nothing.
pub(crate) fn required_permission(command: &Command) -> Permission {
    match command {
        Command::CreateApp { .. } => Permission::View,
        Command::DeleteApp { .. }
        | Command::AddCollaborator { .. }
        | Command::UpdateCollaborator { .. }
        | Command::RemoveCollaborator { .. }
        | Command::TransferApp { .. } => Permission::Manage,
        Command::UpdateApp { changes, .. } => {
            if changes.name.is_some() {
                Permission::Manage
            } else if changes.maintenance.is_some() {
                Permission::Operate
            } else if changes.stack.is_some() {
                Permission::Deploy
            } else {
                Permission::View
            }
        }
        Command::SetConfig { .. }
        | Command::SetBuildpacks { .. }
        | Command::Rollback { .. }
        | Command::ReleaseSlug { .. }
        | Command::CreateBuild { .. }
        | Command::PurgeBuildCache { .. }
        | Command::DeployPush { .. }
        | Command::DeclareSlug { .. } => Permission::Deploy,
        Command::Scale { .. }
        | Command::Restart { .. }
        | Command::Stop { .. }
        | Command::AddDomain { .. }
        | Command::RemoveDomain { .. }
        | Command::AddDrain { .. }
        | Command::RemoveDrain { .. }
        | Command::AddCertificate { .. }
        | Command::UpdateCertificate { .. }
        | Command::RemoveCertificate { .. }
        | Command::RunDyno { .. }
        | Command::CreateAddon { .. }
        | Command::DestroyAddon { .. }
        | Command::ChangeAddonPlan { .. }
        | Command::AttachAddon { .. }
        | Command::DetachAddon { .. }
        | Command::RotateAddonCredentials { .. }
        | Command::CaptureBackup { .. }
        | Command::RestoreBackup { .. }
        | Command::DeleteBackup { .. }
        | Command::ScheduleBackups { .. }
        | Command::UnscheduleBackups { .. } => Permission::Operate,
        // Administrators only, checked where the services are registered.
        Command::RegisterAddonService { .. } | Command::RemoveAddonService { .. } => {
            Permission::View
        }
    }
}

#[cfg(test)]
mod tests;
