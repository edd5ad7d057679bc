//! The OpenAPI 3 document of the API, served at `GET /openapi.json`: every route of the
//! router, one line each in [`document`], with its parameters (taken from the path's
//! `{placeholders}`) and its request and response bodies (the `slipway-api-types` structs'
//! derived schemas).
//!
//! A test (`openapi/tests.rs`) walks the router's `.route(...)` calls and the document's paths
//! and names every route the one has and the other lacks, so a new route cannot go
//! undocumented.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use axum::Json;
use slipway_api_types as wire;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, RefOr,
    Required, ResponseBuilder,
};
use utoipa::ToSchema;

use crate::auth::CurrentUser;
use crate::conventions::RateLimit;

/// The document, built once.
static DOCUMENT: LazyLock<OpenApi> = LazyLock::new(document);

/// `GET /openapi.json`.
pub(crate) async fn serve(CurrentUser(_user): CurrentUser) -> Response {
    Json(&*DOCUMENT).into_response()
}

/// What a route reads or answers.
enum Body {
    /// Nothing (or nothing worth describing).
    None,
    /// JSON of this schema.
    Json(Box<RefOr<Schema>>),
    /// Bytes of this media type (streams, git's protocol, archives).
    Bytes(&'static str),
}

/// The document under construction: its paths and the schemas they refer to.
struct Doc {
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Doc {
    /// The schema of `T`, registered as a component, by reference.
    fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        if !self.schemas.iter().any(|(known, _)| *known == name) {
            self.schemas.push((name.clone(), T::schema()));
            T::schemas(&mut self.schemas);
        }
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
    }

    /// A JSON body of `T`.
    fn one<T: ToSchema>(&mut self) -> Body {
        Body::Json(Box::new(self.of::<T>()))
    }

    /// A JSON list of `T`.
    fn list<T: ToSchema>(&mut self) -> Body {
        Body::Json(Box::new(ArrayBuilder::new().items(self.of::<T>()).into()))
    }

    /// A JSON object whose fields this document does not spell out.
    fn object() -> Body {
        Body::Json(Box::new(
            ObjectBuilder::new().schema_type(Type::Object).into(),
        ))
    }

    /// A JSON list of objects whose fields this document does not spell out.
    fn objects() -> Body {
        Body::Json(Box::new(
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::Object))
                .into(),
        ))
    }

    /// A JSON object of string values (config vars).
    fn strings() -> Body {
        Body::Json(Box::new(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
                .into(),
        ))
    }

    /// Documents `method path`: its summary, what it reads, and what it answers with `status`.
    fn route(
        &mut self,
        method: HttpMethod,
        path: &str,
        summary: &str,
        request: Body,
        status: u16,
        response: Body,
    ) {
        let error = self.of::<wire::ErrorBody>();
        let mut operation = OperationBuilder::new().summary(Some(summary));
        for name in path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        let is_list = matches!(&response, Body::Json(schema) if matches!(**schema, RefOr::T(Schema::Array(_))));
        if method == HttpMethod::Get && is_list {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("Range")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "`<key> [start]..[end][; max=N, order=asc|desc]`; keys in `Accept-Ranges`.",
                    ))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        match request {
            Body::None => {}
            Body::Json(schema) => {
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(*schema)).build(),
                        )
                        .build(),
                ));
            }
            Body::Bytes(media) => {
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new()
                        .content(media, ContentBuilder::new().build())
                        .build(),
                ));
            }
        }
        let success = match response {
            Body::None => ResponseBuilder::new().description("Done."),
            Body::Json(schema) => ResponseBuilder::new().description("Done.").content(
                "application/json",
                ContentBuilder::new().schema(Some(*schema)).build(),
            ),
            Body::Bytes(media) => ResponseBuilder::new()
                .description("Done.")
                .content(media, ContentBuilder::new().build()),
        };
        operation = operation.response(status.to_string(), success).response(
            "default",
            ResponseBuilder::new()
                .description("An error: Heroku's `{\"id\", \"message\"}`.")
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(error)).build(),
                ),
        );
        self.paths.add_path_operation(path, vec![method], operation);
    }
}

/// Builds the document: one line per route. A route added to the router needs its line here
/// (the test in `openapi/tests.rs` names the missing ones).
#[rustfmt::skip]
pub(crate) fn document() -> OpenApi {
    use Body::{Bytes, None as No};
    use HttpMethod::{Delete, Get, Patch, Post, Put};
    let mut d = Doc {
        paths: Paths::new(),
        schemas: Vec::new(),
    };
    let o = Doc::object;
    // Account and apps.
    let b = d.one::<wire::Account>(); d.route(Get, "/account", "The caller's account.", No, 200, b);
    let b = d.one::<RateLimit>(); d.route(Get, "/account/rate-limits", "The requests the caller may still make.", No, 200, b);
    let b = d.list::<wire::App>(); d.route(Get, "/apps", "The apps the caller can see.", No, 200, b);
    let (q, b) = (d.one::<wire::AppCreate>(), d.one::<wire::App>()); d.route(Post, "/apps", "Create an app.", q, 201, b);
    let b = d.one::<wire::App>(); d.route(Get, "/apps/{app}", "An app, by id or name.", No, 200, b);
    let b = d.one::<wire::App>(); d.route(Delete, "/apps/{app}", "Destroy an app.", No, 200, b);
    let (q, b) = (d.one::<wire::AppUpdate>(), d.one::<wire::App>()); d.route(Patch, "/apps/{app}", "Update an app.", q, 200, b);
    // Releases, config vars, formation.
    let b = d.list::<wire::Release>(); d.route(Get, "/apps/{app}/releases", "An app's releases.", No, 200, b);
    let (q, b) = (d.one::<wire::ReleaseCreate>(), d.one::<wire::Release>()); d.route(Post, "/apps/{app}/releases", "Roll back, or release a slug.", q, 201, b);
    let b = d.one::<wire::Release>(); d.route(Get, "/apps/{app}/releases/{release}", "A release, by id or version.", No, 200, b);
    d.route(Get, "/apps/{app}/releases/{release}/config-vars", "A release's config vars.", No, 200, Doc::strings());
    d.route(Get, "/apps/{app}/config-vars", "An app's config vars.", No, 200, Doc::strings());
    d.route(Patch, "/apps/{app}/config-vars", "Set (a value) or unset (`null`) config vars.", Doc::strings(), 200, Doc::strings());
    let b = d.list::<wire::Formation>(); d.route(Get, "/apps/{app}/formation", "An app's process types.", No, 200, b);
    let (q, b) = (d.one::<wire::FormationBatchUpdate>(), d.list::<wire::Formation>()); d.route(Patch, "/apps/{app}/formation", "Scale or resize several process types.", q, 200, b);
    let b = d.one::<wire::Formation>(); d.route(Get, "/apps/{app}/formation/{type}", "A process type.", No, 200, b);
    let (q, b) = (d.one::<wire::FormationUpdate>(), d.one::<wire::Formation>()); d.route(Patch, "/apps/{app}/formation/{type}", "Scale or resize a process type.", q, 200, b);
    // Dynos.
    let b = d.list::<wire::Dyno>(); d.route(Get, "/apps/{app}/dynos", "An app's dynos.", No, 200, b);
    let (q, b) = (d.one::<wire::DynoCreate>(), d.one::<wire::Dyno>()); d.route(Post, "/apps/{app}/dynos", "Run a one-off dyno.", q, 201, b);
    d.route(Delete, "/apps/{app}/dynos", "Restart every dyno.", No, 202, o());
    let b = d.one::<wire::Dyno>(); d.route(Get, "/apps/{app}/dynos/{dyno}", "A dyno, by id or name.", No, 200, b);
    d.route(Delete, "/apps/{app}/dynos/{dyno}", "Restart a dyno.", No, 202, o());
    d.route(Post, "/apps/{app}/dynos/{dyno}/actions/stop", "Stop a dyno.", No, 202, o());
    d.route(Delete, "/apps/{app}/formations/{type}", "Restart a process type's dynos.", No, 202, o());
    d.route(Post, "/apps/{app}/formations/{type}/actions/stop", "Stop a process type's dynos.", No, 202, o());
    // Domains, certificates, logs.
    let b = d.list::<wire::Domain>(); d.route(Get, "/apps/{app}/domains", "An app's domains.", No, 200, b);
    let (q, b) = (d.one::<wire::DomainCreate>(), d.one::<wire::Domain>()); d.route(Post, "/apps/{app}/domains", "Add a custom domain.", q, 201, b);
    let b = d.one::<wire::Domain>(); d.route(Get, "/apps/{app}/domains/{domain}", "A domain, by id or hostname.", No, 200, b);
    let b = d.one::<wire::Domain>(); d.route(Delete, "/apps/{app}/domains/{domain}", "Remove a custom domain.", No, 200, b);
    d.route(Get, "/apps/{app}/sni-endpoints", "An app's SSL certificates.", No, 200, Doc::objects());
    d.route(Post, "/apps/{app}/sni-endpoints", "Add an SSL certificate.", o(), 201, o());
    d.route(Get, "/apps/{app}/sni-endpoints/{endpoint}", "An SSL certificate.", No, 200, o());
    d.route(Patch, "/apps/{app}/sni-endpoints/{endpoint}", "Replace an SSL certificate.", o(), 200, o());
    d.route(Delete, "/apps/{app}/sni-endpoints/{endpoint}", "Remove an SSL certificate.", No, 200, o());
    let (q, b) = (d.one::<wire::LogSessionCreate>(), d.one::<wire::LogSession>()); d.route(Post, "/apps/{app}/log-sessions", "Open a log session.", q, 201, b);
    let b = d.list::<wire::LogDrain>(); d.route(Get, "/apps/{app}/log-drains", "An app's log drains.", No, 200, b);
    let (q, b) = (d.one::<wire::LogDrainCreate>(), d.one::<wire::LogDrain>()); d.route(Post, "/apps/{app}/log-drains", "Add a log drain.", q, 201, b);
    let b = d.one::<wire::LogDrain>(); d.route(Get, "/apps/{app}/log-drains/{drain}", "A log drain, by id, URL or token.", No, 200, b);
    let b = d.one::<wire::LogDrain>(); d.route(Delete, "/apps/{app}/log-drains/{drain}", "Remove a log drain.", No, 200, b);
    // Add-ons.
    let b = d.list::<wire::Addon>(); d.route(Get, "/apps/{app}/addons", "An app's add-ons.", No, 200, b);
    let (q, b) = (d.one::<wire::AddonCreate>(), d.one::<wire::Addon>()); d.route(Post, "/apps/{app}/addons", "Provision an add-on.", q, 201, b);
    let b = d.one::<wire::Addon>(); d.route(Get, "/apps/{app}/addons/{addon}", "An app's add-on.", No, 200, b);
    let (q, b) = (d.one::<wire::AddonUpdate>(), d.one::<wire::Addon>()); d.route(Patch, "/apps/{app}/addons/{addon}", "Change an add-on's plan.", q, 200, b);
    let b = d.one::<wire::Addon>(); d.route(Delete, "/apps/{app}/addons/{addon}", "Destroy an add-on.", No, 200, b);
    d.route(Get, "/apps/{app}/addons/{addon}/backups", "An add-on's backups.", No, 200, Doc::objects());
    d.route(Post, "/apps/{app}/addons/{addon}/backups", "Capture a backup.", No, 201, o());
    d.route(Get, "/apps/{app}/addons/{addon}/backups/{backup}", "A backup.", No, 200, o());
    d.route(Delete, "/apps/{app}/addons/{addon}/backups/{backup}", "Delete a backup.", No, 200, o());
    d.route(Get, "/apps/{app}/addons/{addon}/backups/{backup}/dump", "A backup's dump.", No, 200, Bytes("application/octet-stream"));
    d.route(Post, "/apps/{app}/addons/{addon}/actions/restore", "Restore a backup.", o(), 200, o());
    let b = d.list::<wire::AddonAttachment>(); d.route(Get, "/apps/{app}/addon-attachments", "An app's add-on attachments.", No, 200, b);
    let b = d.list::<wire::Addon>(); d.route(Get, "/addons", "Every add-on the caller can see.", No, 200, b);
    let b = d.one::<wire::Addon>(); d.route(Get, "/addons/{addon}", "An add-on.", No, 200, b);
    let (q, b) = (d.one::<wire::AddonUpdate>(), d.one::<wire::Addon>()); d.route(Patch, "/addons/{addon}", "Change an add-on's plan.", q, 200, b);
    let b = d.one::<wire::Addon>(); d.route(Delete, "/addons/{addon}", "Destroy an add-on.", No, 200, b);
    let b = d.list::<wire::AddonAttachment>(); d.route(Get, "/addons/{addon}/addon-attachments", "An add-on's attachments.", No, 200, b);
    let b = d.one::<wire::Addon>(); d.route(Post, "/addons/{addon}/actions/rotate-credentials", "Rotate an add-on's credentials.", No, 200, b);
    d.route(Get, "/addons/{addon}/stats", "An add-on's usage.", No, 200, o());
    d.route(Get, "/apps/{app}/addons/{addon}/sso", "Single sign-on to a third-party add-on's dashboard.", No, 200, o());
    let b = d.list::<wire::AddonAttachment>(); d.route(Get, "/addon-attachments", "Every attachment the caller can see.", No, 200, b);
    let (q, b) = (d.one::<wire::AddonAttachmentCreate>(), d.one::<wire::AddonAttachment>()); d.route(Post, "/addon-attachments", "Attach an add-on to an app.", q, 201, b);
    let b = d.one::<wire::AddonAttachment>(); d.route(Get, "/addon-attachments/{attachment}", "An attachment.", No, 200, b);
    let b = d.one::<wire::AddonAttachment>(); d.route(Delete, "/addon-attachments/{attachment}", "Detach an add-on.", No, 200, b);
    let b = d.list::<wire::AddonService>(); d.route(Get, "/addon-services", "The add-on services.", No, 200, b);
    let b = d.one::<wire::AddonService>(); d.route(Get, "/addon-services/{service}", "An add-on service.", No, 200, b);
    let b = d.list::<wire::Plan>(); d.route(Get, "/addon-services/{service}/plans", "A service's plans.", No, 200, b);
    let b = d.one::<wire::Plan>(); d.route(Get, "/addon-services/{service}/plans/{plan}", "A plan.", No, 200, b);
    let (q, b) = (d.one::<wire::AddonResolve>(), d.list::<wire::Addon>()); d.route(Post, "/actions/addons/resolve", "Find an add-on by name.", q, 200, b);
    let (q, b) = (d.one::<wire::AddonAttachmentResolve>(), d.list::<wire::AddonAttachment>()); d.route(Post, "/actions/addon-attachments/resolve", "Find an attachment by name.", q, 200, b);
    // Builds and slugs.
    let b = d.list::<wire::Build>(); d.route(Get, "/apps/{app}/builds", "An app's builds.", No, 200, b);
    let (q, b) = (d.one::<wire::BuildCreate>(), d.one::<wire::Build>()); d.route(Post, "/apps/{app}/builds", "Build a source tarball.", q, 201, b);
    let b = d.one::<wire::Build>(); d.route(Get, "/apps/{app}/builds/{build}", "A build.", No, 200, b);
    d.route(Delete, "/apps/{app}/build-cache", "Empty an app's build cache.", No, 200, o());
    let (q, b) = (d.one::<wire::SlugCreate>(), d.one::<wire::Slug>()); d.route(Post, "/apps/{app}/slugs", "Create a slug to upload.", q, 201, b);
    let b = d.one::<wire::Slug>(); d.route(Get, "/apps/{app}/slugs/{slug}", "A slug.", No, 200, b);
    // Outside the Platform API: streams, uploads, git, the CA and this document.
    d.route(Get, "/openapi.json", "This document.", No, 200, o());
    d.route(Get, "/log-sessions/{id}", "A log session's lines (text or Server-Sent Events).", No, 200, Bytes("text/plain"));
    d.route(Get, "/build-outputs/{secret}", "A build's output.", No, 200, Bytes("text/plain"));
    d.route(Put, "/slug-uploads/{token}", "Upload a slug's archive.", Bytes("application/octet-stream"), 200, No);
    d.route(Get, "/{repo}/info/refs", "Git smart-HTTP: the refs.", No, 200, Bytes("application/x-git-upload-pack-advertisement"));
    d.route(Post, "/{repo}/git-receive-pack", "Git smart-HTTP: a push.", Bytes("application/x-git-receive-pack-request"), 200, Bytes("application/x-git-receive-pack-result"));
    d.route(Post, "/{repo}/git-upload-pack", "Git smart-HTTP: a fetch.", Bytes("application/x-git-upload-pack-request"), 200, Bytes("application/x-git-upload-pack-result"));
    d.route(Post, "/internal/git-hook/{app}", "Git's pre-receive hook (a push's one-time token).", Bytes("application/octet-stream"), 200, Bytes("text/plain"));
    d.route(Get, "/slipway/ca.pem", "The platform CA's certificate.", No, 200, Bytes("application/x-pem-file"));
    d.route(Get, "/slipway/cluster/routes", "Route table snapshots for standalone routers (the cluster token; NDJSON).", No, 200, Bytes("application/x-ndjson"));
    d.route(Get, "/slipway/cluster/certs", "Certificates and private keys standalone routers serve over HTTPS (the cluster token; NDJSON).", No, 200, Bytes("application/x-ndjson"));
    d.route(Post, "/slipway/cluster/router-events", "Standalone routers' log lines and wake-ups (the cluster token; NDJSON).", Bytes("application/x-ndjson"), 200, o());
    // Cluster mode's host agents (`agents.rs`, the cluster token as Bearer).
    d.route(Post, "/slipway/agents/{name}/sync", "A host agent's sync: lease, states, assignments.", o(), 200, o());
    d.route(Post, "/slipway/agents/{name}/logs", "A host agent's batch of dyno output.", o(), 204, No);
    d.route(Get, "/slipway/agents/slugs/{digest}", "A slug's archive by its SHA-256, for host agents.", No, 200, Bytes("application/gzip"));
    // Accounts and API keys (`account.rs`).
    d.route(Patch, "/account", "Update the caller's account (name, password).", o(), 200, o());
    d.route(Get, "/account/keys", "SSH keys (none: git is HTTPS only).", No, 200, Doc::objects());
    d.route(Get, "/account/features", "Account features (none).", No, 200, Doc::objects());
    d.route(Get, "/oauth/authorizations", "The caller's API keys.", No, 200, Doc::objects());
    d.route(Post, "/oauth/authorizations", "Create an API key (Basic email:password for `login -i`).", o(), 201, o());
    d.route(Get, "/oauth/authorizations/{id}", "An API key, by id or `~`.", No, 200, o());
    d.route(Patch, "/oauth/authorizations/{id}", "Update an API key's description.", o(), 200, o());
    d.route(Delete, "/oauth/authorizations/{id}", "Revoke an API key.", No, 200, o());
    d.route(Post, "/oauth/authorizations/{id}/actions/regenerate-tokens", "Rotate an API key.", No, 200, o());
    d.route(Delete, "/oauth/sessions/~", "Log out.", No, 200, o());
    d.route(Get, "/slipway/users", "Every account (administrators).", No, 200, Doc::objects());
    d.route(Post, "/slipway/users", "Add an account (administrators).", o(), 201, o());
    d.route(Patch, "/slipway/users/{email}", "Set an account's password.", o(), 200, o());
    d.route(Delete, "/slipway/users/{email}", "Remove an account (administrators).", No, 200, o());
    // Collaborators (`collaborators.rs`).
    d.route(Get, "/apps/{app}/collaborators", "An app's owner and collaborators.", No, 200, Doc::objects());
    d.route(Post, "/apps/{app}/collaborators", "Give a user access to an app.", o(), 201, o());
    d.route(Get, "/apps/{app}/collaborators/{collaborator}", "A collaborator, by id or email.", No, 200, o());
    d.route(Patch, "/apps/{app}/collaborators/{collaborator}", "Set a collaborator's permissions.", o(), 200, o());
    d.route(Delete, "/apps/{app}/collaborators/{collaborator}", "Remove a collaborator.", No, 200, o());
    // Apps: buildpacks, stacks, regions, features, teams (`apps_extra.rs`).
    d.route(Get, "/users/{user}/apps", "A user's apps (`~`: the caller's).", No, 200, Doc::objects());
    d.route(Get, "/apps/{app}/buildpack-installations", "An app's buildpacks, in order.", No, 200, Doc::objects());
    d.route(Put, "/apps/{app}/buildpack-installations", "Set an app's buildpacks.", o(), 200, Doc::objects());
    d.route(Get, "/buildpacks/{slug}", "A built-in buildpack (the CLI's registry lookup).", No, 200, o());
    d.route(Get, "/buildpacks", "Search the built-in buildpacks (the CLI's registry search).", No, 200, Doc::objects());
    d.route(Get, "/stacks", "The platform's stacks.", No, 200, Doc::objects());
    d.route(Get, "/stacks/{stack}", "A stack.", No, 200, o());
    d.route(Get, "/apps/{app}/available-stacks", "The stacks an app may use.", No, 200, Doc::objects());
    d.route(Post, "/slipway/stacks/{stack}/builds", "Build a stack with debootstrap (administrators); its progress.", No, 200, Bytes("text/plain"));
    d.route(Get, "/regions", "The platform's region.", No, 200, Doc::objects());
    d.route(Get, "/regions/{region}", "A region.", No, 200, o());
    d.route(Get, "/apps/{app}/features", "An app's features.", No, 200, Doc::objects());
    d.route(Get, "/apps/{app}/features/{feature}", "An app feature.", No, 200, o());
    d.route(Patch, "/apps/{app}/features/{feature}", "Enable or disable an app feature.", o(), 200, o());
    d.route(Get, "/teams", "Teams (none).", No, 200, Doc::objects());
    d.route(Get, "/apps/{app}/pipeline-couplings", "Pipelines (none: 404).", No, 404, o());
    d.route(Patch, "/apps/{app}/domains/{domain}", "Change a domain's SSL certificate.", o(), 200, o());
    // Third-party add-on services (`addon_services.rs`).
    d.route(Get, "/slipway/addon-services", "Registered third-party services (administrators).", No, 200, Doc::objects());
    d.route(Post, "/slipway/addon-services", "Register a third-party service by its manifest.", o(), 201, o());
    d.route(Delete, "/slipway/addon-services/{name}", "Remove a registered service.", No, 200, o());
    d.route(Get, "/addons/{addon}/config", "A partner add-on's config (provider callback).", No, 200, Doc::objects());
    d.route(Patch, "/addons/{addon}/config", "A partner add-on's config (provider callback).", o(), 200, Doc::objects());
    d.route(Post, "/addons/{addon}/actions/provision", "Mark a partner add-on provisioned (provider callback).", No, 200, o());
    // Backup schedules and Redis (`addons_backups.rs`).
    d.route(Put, "/apps/{app}/addons/{addon}/backup-schedule", "Schedule daily backups.", o(), 200, o());
    d.route(Delete, "/apps/{app}/addons/{addon}/backup-schedule", "Stop daily backups.", No, 200, o());
    d.route(Get, "/apps/{app}/backup-schedules", "An app's backup schedules.", No, 200, Doc::objects());
    d.route(Get, "/apps/{app}/addons/{addon}/redis-info", "A Redis add-on's server facts.", No, 200, o());
    d.route(Get, "/pipelines", "Pipelines (none).", No, 200, Doc::objects());
    d.route(Get, "/spaces", "Private spaces (none).", No, 200, Doc::objects());
    d.route(Post, "/auth", "Start a browser login (`heroku login`, HEROKU_LOGIN_HOST).", o(), 200, o());
    d.route(Get, "/auth/browser/{id}", "A browser login's page.", No, 200, Bytes("text/html"));
    d.route(Post, "/auth/browser/{id}", "Log a waiting CLI in (email and password, form-encoded).", Bytes("application/x-www-form-urlencoded"), 200, Bytes("text/html"));
    d.route(Get, "/addons-sso/apps/{app}/addons/{addon}", "An add-on's web_url: a login page (no key; the browser's user signs in).", No, 200, Bytes("text/html"));
    d.route(Post, "/addons-sso/apps/{app}/addons/{addon}", "Open an add-on (email and password, form-encoded): the provider's SSO form, or a built-in's page.", Bytes("application/x-www-form-urlencoded"), 200, Bytes("text/html"));
    d.route(Get, "/auth/cli/{id}", "Wait for a browser login's key (Bearer: the login's token).", No, 200, o());
    d.route(Post, "/account/app-transfers", "Transfer an app to another user (done at once).", o(), 201, o());
    d.route(Get, "/apps/{app}/webhooks", "App webhooks (none).", No, 200, Doc::objects());
    d.route(Get, "/client/v11/apps/{app}/transfers", "An app's PostgreSQL backups as Heroku Data transfers.", No, 200, Doc::objects());
    finish(d)
}

fn finish(d: Doc) -> OpenApi {
    let mut components = ComponentsBuilder::new()
        .schemas_from_iter(d.schemas)
        .build();
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Slipway Platform API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The Heroku Platform API v3 subset Slipway serves. Send `Accept: application/vnd.heroku+json; version=3` and `Authorization: Bearer <API key>`.",
                )),
        )
        .paths(d.paths)
        .components(Some(components))
        .security(Some([utoipa::openapi::security::SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]))
        .build()
}

#[cfg(test)]
mod tests;
