//! Every change to the platform as one typed value: the API parses a request into a
//! [`Command`] and hands it to `Platform::execute` (`execute.rs`), the single entry where the
//! caller is authorized and every effect of the change happens. This module holds only the
//! types, so every concern may name them without depending on their execution.
//!
//! Firecracker's shape: the HTTP layer only parses (a pure `parse_*` function per route,
//! tested as tables), the core only executes. Reads stay narrow query methods on
//! `Platform`; only what changes state is a command.
//!
//! A command names its app as the request did (name or id): looking the app up is part of
//! executing it, so the permission check (`access.rs`) cannot be forgotten by a caller.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use slipway_model::{AppName, ConfigKey, DynoName, DynoSize, ProcessType};

use crate::access::{Member, Permission};
use crate::addons::{AddonAttachment, AddonServiceRecord, AddonView};
use crate::backup_schedule::BackupSchedule;
use crate::backups::Backup;
use crate::build_output::SlugDeclaration;
use crate::model::{App, Build, ConfigVars, Domain, Drain, Dyno, Formation, Release, SniEndpoint};
use crate::output::DeployOutput;
use crate::source_fetcher::{SourceBlob, SourceBody};

/// A change asked of the platform.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// `POST /apps`: a new app (a random name when none is given) and its git repository.
    CreateApp { name: Option<AppName> },
    /// `DELETE /apps/{app}`: the app's records, dynos and git repository go.
    DeleteApp { app: String },
    /// `PATCH /apps/{app}`: maintenance mode, a new name (`rename.rs`: the records, the git
    /// repository, the default hostname and the log history move with it) and the stack (only
    /// the platform's own exists).
    UpdateApp { app: String, changes: AppChanges },
    /// `PATCH /apps/{app}/config-vars`: `Some` sets, `None` unsets; one release.
    SetConfig {
        app: String,
        changes: BTreeMap<ConfigKey, Option<String>>,
    },
    /// `PATCH /apps/{app}/formation[/{type}]`: one or more process types, in one transaction.
    Scale {
        app: String,
        changes: Vec<FormationChange>,
    },
    /// `DELETE /apps/{app}/dynos[/{dyno}]`, `DELETE /apps/{app}/formations/{type}`: replaces
    /// the dynos (web dynos with preboot).
    Restart { app: String, target: RestartTarget },
    /// `POST .../actions/stop`: stops the dynos; the formation starts them again.
    Stop { app: String, target: RestartTarget },
    /// `POST /apps/{app}/releases {release}`: a new release with an old one's slug and config.
    Rollback { app: String, release: String },
    /// `POST /apps/{app}/releases {slug}`: releases an uploaded slug.
    ReleaseSlug {
        app: String,
        slug: String,
        description: Option<String>,
    },
    /// `POST /apps/{app}/domains`.
    AddDomain { app: String, hostname: String },
    /// `DELETE /apps/{app}/domains/{domain}` (hostname or id).
    RemoveDomain { app: String, domain: String },
    /// `POST /apps/{app}/log-drains`.
    AddDrain { app: String, url: String },
    /// `DELETE /apps/{app}/log-drains/{drain}` (id, token or URL).
    RemoveDrain { app: String, drain: String },
    /// `POST /apps/{app}/sni-endpoints`.
    AddCertificate {
        app: String,
        certificate: Certificate,
    },
    /// `PATCH /apps/{app}/sni-endpoints/{endpoint}`: a renewal.
    UpdateCertificate {
        app: String,
        endpoint: String,
        certificate: Certificate,
    },
    /// `DELETE /apps/{app}/sni-endpoints/{endpoint}`.
    RemoveCertificate { app: String, endpoint: String },
    /// `POST /apps/{app}/builds`: fetch the source blob (through the platform's
    /// [`crate::SourceFetcher`]) and deploy it, in the background.
    CreateBuild {
        app: String,
        source: SourceBlob,
        buildpacks: Vec<String>,
    },
    /// A `git push`'s tree, posted by the pre-receive hook: build and release it now.
    DeployPush {
        app: String,
        commit: Option<String>,
        push: PushedSource,
    },
    /// `POST /apps/{app}/slugs`: declares a slug whose tarball is uploaded next.
    DeclareSlug { app: String, slug: NewSlug },
    /// `POST /apps/{app}/dynos`: a one-off dyno (`heroku run`, `run:detached`) on the current
    /// release, `run.N` (see `oneoff.rs`).
    RunDyno {
        app: String,
        /// What to run: a Procfile process type (its command, plus any further words) or a
        /// shell command line.
        command: String,
        /// Attached: started when its client claims the `attach_url`. Detached: started now,
        /// its output in the app's log stream.
        attach: bool,
        /// Extra environment (`--env K=V`), over the app's config vars.
        env: BTreeMap<ConfigKey, String>,
        /// `None`: the size of the formation of `process_type`, or of `web`, or standard-1x.
        size: Option<DynoSize>,
        /// A process type of the current release the dyno is run as (its size by default).
        process_type: Option<ProcessType>,
        /// `None`: the maximum, 24 hours.
        time_to_live: Option<Duration>,
        /// Attach with plain pipes instead of a pseudo-terminal.
        force_no_tty: bool,
    },
    /// Provisions an add-on (`SERVICE[:PLAN]`) and attaches it to the app (`addons.rs`).
    CreateAddon {
        app: String,
        plan: String,
        attachment: Option<String>,
        name: Option<String>,
        /// `addons:create ... -- --key value`: passed to a third-party provider as the
        /// provision's `options` (strings or `true`, checked by the API's parser); a built-in
        /// service takes none.
        options: serde_json::Map<String, serde_json::Value>,
    },
    /// Detaches an add-on from its app and drops its data.
    DestroyAddon { addon: String },
    /// Moves an add-on to another plan of its service.
    ChangeAddonPlan { addon: String, plan: String },
    /// Attaches an existing add-on to the app.
    AttachAddon {
        app: String,
        addon: String,
        name: Option<String>,
    },
    /// Removes an attachment (by id, or by name on `app`).
    DetachAddon {
        attachment: String,
        app: Option<String>,
    },
    /// Gives an add-on new credentials and releases them to every attached app.
    RotateAddonCredentials { addon: String },
    /// Registers a third-party add-on service by its manifest (administrators only;
    /// `addons/partner.rs`); `timeout_ms`: how long its provider may take to answer.
    RegisterAddonService {
        manifest: Vec<u8>,
        timeout_ms: Option<u64>,
    },
    /// Removes a registered service that has no add-ons left.
    RemoveAddonService { name: String },
    /// `pg:backups:capture`: dumps a PostgreSQL add-on (name, id, or attachment on `app`) now.
    CaptureBackup { app: String, addon: String },
    /// `pg:backups:restore`: `backup` (`None`: the latest completed) of `from` (`None`: the
    /// add-on itself) into the add-on; `confirm` must be the app's name.
    RestoreBackup {
        app: String,
        addon: String,
        from: Option<String>,
        backup: Option<String>,
        confirm: Option<String>,
    },
    /// `pg:backups:delete`: a backup's record and dump; `confirm` must be the app's name.
    DeleteBackup {
        app: String,
        addon: String,
        backup: String,
        confirm: Option<String>,
    },
    /// `pg:backups:schedule --at '02:00 America/New_York'`: daily backups of the add-on.
    ScheduleBackups {
        app: String,
        addon: String,
        at: String,
    },
    /// `pg:backups:unschedule`.
    UnscheduleBackups { app: String, addon: String },
    /// `POST /apps/{app}/collaborators`: gives an existing user access (`None`: the default
    /// collaborator permissions).
    AddCollaborator {
        app: String,
        email: String,
        permissions: Option<BTreeSet<Permission>>,
    },
    /// `PATCH /apps/{app}/collaborators/{collaborator}`: sets a collaborator's permissions.
    UpdateCollaborator {
        app: String,
        collaborator: String,
        permissions: BTreeSet<Permission>,
    },
    /// `DELETE /apps/{app}/collaborators/{collaborator}` (email or id).
    RemoveCollaborator { app: String, collaborator: String },
    /// `POST /account/app-transfers {app, recipient}` (`heroku apps:transfer EMAIL`): the
    /// recipient, an existing user, owns the app from now on; the old owner stays on as a
    /// collaborator (`access.rs`).
    TransferApp { app: String, recipient: String },
    /// `PUT /apps/{app}/buildpack-installations`: the app's buildpacks, in order (an empty
    /// list clears them); built-ins or buildpack URLs (`buildpacks.rs`).
    SetBuildpacks {
        app: String,
        buildpacks: Vec<String>,
    },
    /// `DELETE /apps/{app}/build-cache`: empties the app's build cache; the next build starts
    /// cold (`builds.rs`).
    PurgeBuildCache { app: String },
}

/// What `PATCH /apps/{app}` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppChanges {
    pub maintenance: Option<bool>,
    /// The name the app should have (validated by the core as [`AppName`]).
    pub name: Option<String>,
    /// The stack the app should build on; only the platform's stack exists.
    pub stack: Option<String>,
}

/// How many dynos a process type should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Exactly this many (`ps:scale web=2`).
    Absolute(u32),
    /// This many more (fewer when negative) than the formation has when the change is
    /// written (`ps:scale web+1`), never below zero. Resolved inside the formation's
    /// compare-and-set, so concurrent relative changes all count.
    Relative(i32),
}

impl Quantity {
    /// The quantity after this change to `current`; never below zero.
    pub(crate) fn apply(self, current: u32) -> u32 {
        match self {
            Quantity::Absolute(n) => n,
            Quantity::Relative(delta) => {
                let next = i64::from(current) + i64::from(delta);
                u32::try_from(next.max(0)).unwrap_or(u32::MAX)
            }
        }
    }
}

/// A change to one process type's formation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormationChange {
    pub process_type: ProcessType,
    pub quantity: Option<Quantity>,
    pub size: Option<DynoSize>,
}

/// Which dynos a restart or stop is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartTarget {
    /// Every dyno of the app.
    App,
    /// Every dyno of one process type (`web`).
    ProcessType(ProcessType),
    /// One dyno (`web.2`).
    Dyno(DynoName),
}

/// A certificate chain and its private key, as uploaded.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    pub chain: String,
    pub private_key: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key never reaches a log line.
        f.debug_struct("Certificate")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

/// What a declared slug will be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSlug {
    pub process_types: BTreeMap<String, String>,
    pub commit: Option<String>,
    pub checksum: Option<String>,
    pub stack: Option<String>,
    pub buildpack_description: Option<String>,
}

/// A pushed tree (a `git archive` tarball streaming in) and where its build output goes.
pub struct PushedSource {
    pub tarball: SourceBody,
    pub output: DeployOutput,
}

impl std::fmt::Debug for PushedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedSource").finish_non_exhaustive()
    }
}

impl PartialEq for PushedSource {
    /// A stream has no value to compare: two pushes are the same only if they send their
    /// output to the same place (parser tests compare every other command by value).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.output, &other.output)
    }
}

/// What a command did, for the API to show.
#[derive(Debug)]
pub enum Outcome {
    /// The app as it is now (created or changed).
    App(App),
    /// The app as it was before it was deleted.
    AppDeleted(App),
    /// The config vars after the change, and the release that carries them.
    Config(ConfigVars, Release),
    /// The formation entries the command changed.
    Formation(Vec<Formation>),
    /// The dynos will be replaced; nothing to show.
    Accepted,
    Release(Release),
    Domain(Domain),
    Drain(Drain),
    Certificate(SniEndpoint),
    Build(Build),
    SlugDeclared(SlugDeclaration),
    /// A one-off dyno as created; `attach_url` (only for an attached one, and only here) is
    /// where its client connects.
    OneOff {
        dyno: Dyno,
        attach_url: Option<String>,
    },
    Addon(AddonView),
    AddonAttachment(AddonAttachment),
    AddonService(AddonServiceRecord),
    Backup(Backup),
    BackupSchedule(BackupSchedule),
    /// A collaborator as added, changed or removed.
    Collaborator(Member),
    /// The app's buildpacks after the change, in order.
    Buildpacks(Vec<String>),
    /// The build cache was emptied.
    BuildCachePurged,
}
