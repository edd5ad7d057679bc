//! Conversions from the platform's records to the Heroku wire shapes.

use slipway_api_types as wire;
use slipway_core::model;
use slipway_core::PlatformConfig;
use uuid::Uuid;

/// Stable ids for the fixed catalog entries (region, stack, generation, sizes), derived from
/// their names so they never change between restarts.
pub(crate) fn catalog_id(kind: &str, name: &str) -> Uuid {
    let mut bytes = [0u8; 16];
    for (i, b) in format!("{kind}/{name}").bytes().enumerate() {
        bytes[i % 16] = bytes[i % 16].wrapping_mul(31).wrapping_add(b);
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn named(kind: &str, name: &str) -> wire::ResourceRef {
    wire::ResourceRef {
        id: catalog_id(kind, name),
        name: name.to_owned(),
    }
}

pub(crate) fn app(
    config: &PlatformConfig,
    app: &model::App,
    owner: &model::User,
    current: Option<&model::Release>,
    slug: Option<&model::Slug>,
) -> wire::App {
    wire::App {
        acm: false,
        archived_at: None,
        build_stack: named("stack", &app.stack),
        buildpack_provided_description: slug.map(|s| s.buildpack_description.clone()),
        created_at: app.created_at,
        generation: named("generation", "cedar"),
        git_url: config.git_url(&app.name),
        id: app.id,
        internal_routing: None,
        maintenance: app.maintenance,
        name: app.name.clone(),
        organization: None,
        owner: wire::UserRef {
            id: owner.id,
            email: owner.email.clone(),
        },
        region: named("region", &config.region),
        released_at: current.map(|r| r.created_at),
        repo_size: None,
        slug_size: slug.map(|s| s.size as i64),
        space: None,
        stack: named("stack", &app.stack),
        team: None,
        updated_at: app.updated_at,
        web_url: Some(config.web_url(&app.name)),
    }
}

pub(crate) fn app_ref(app: &model::App) -> wire::ResourceRef {
    wire::ResourceRef {
        id: app.id,
        name: app.name.clone(),
    }
}

pub(crate) fn release(
    app: &model::App,
    release: &model::Release,
    current_version: Option<u32>,
    user_id: Uuid,
) -> wire::Release {
    wire::Release {
        addon_plan_names: Vec::new(),
        artifacts: Vec::new(),
        app: app_ref(app),
        created_at: release.created_at,
        description: release.description.clone(),
        id: release.id,
        updated_at: release.created_at,
        slug: release.slug_id.map(|id| wire::IdRef { id }),
        status: match release.status {
            model::ReleaseStatus::Pending => wire::ReleaseStatus::Pending,
            model::ReleaseStatus::Succeeded => wire::ReleaseStatus::Succeeded,
            model::ReleaseStatus::Failed => wire::ReleaseStatus::Failed,
        },
        user: wire::UserRef {
            id: user_id,
            email: release.user_email.clone(),
        },
        version: i64::from(release.version),
        current: current_version == Some(release.version),
        output_stream_url: None,
        eligible_for_rollback: release.slug_id.is_some(),
    }
}

pub(crate) fn formation(
    app: &model::App,
    entry: &model::Formation,
    command: &str,
) -> wire::Formation {
    wire::Formation {
        app: app_ref(app),
        command: command.to_owned(),
        created_at: entry.created_at,
        dyno_size: named("dyno-size", &display_size(&entry.size)),
        id: entry.id,
        quantity: i64::from(entry.quantity),
        size: display_size(&entry.size),
        process_type: entry.process_type.clone(),
        updated_at: entry.updated_at,
    }
}

/// A stored dyno size as Heroku writes it (`standard-1x` → `Standard-1X`), from the one size
/// table, `slipway_model::DynoSize`. A stored size that is not a dyno size is shown as stored:
/// this only displays it (the core refuses to run or scale with it).
pub(crate) fn display_size(size: &str) -> String {
    size.parse::<slipway_model::DynoSize>()
        .map_or_else(|_| size.to_owned(), |size| size.display_name().to_owned())
}

pub(crate) fn dyno(app: &model::App, dyno: &model::Dyno) -> wire::Dyno {
    wire::Dyno {
        app: app_ref(app),
        attach_url: None,
        command: dyno.command.clone(),
        created_at: dyno.created_at,
        id: dyno.id,
        name: dyno.name.clone(),
        release: wire::ReleaseRef {
            id: dyno.release_id,
            version: i64::from(dyno.release_version),
        },
        size: display_size(&dyno.size),
        state: match dyno.state {
            model::DynoState::Starting => wire::DynoState::Starting,
            model::DynoState::Up => wire::DynoState::Up,
            model::DynoState::Crashed => wire::DynoState::Crashed,
            model::DynoState::Down => wire::DynoState::Down,
            model::DynoState::Idle => wire::DynoState::Idle,
            model::DynoState::Complete => wire::DynoState::Complete,
        },
        process_type: dyno.process_type.clone(),
        updated_at: dyno.updated_at,
    }
}

#[cfg(test)]
mod tests;
