//! The parsers and checks of `apps_extra.rs`, as tables.

use super::*;
use crate::resources::check_region;

#[test]
fn buildpack_installations_parse_to_the_ordered_list() {
    let command = parse_set_buildpacks(
        "demo".into(),
        br#"{"updates":[{"buildpack":"heroku/nodejs"},{"buildpack":"python"}]}"#,
    )
    .unwrap();
    assert_eq!(
        command,
        Command::SetBuildpacks {
            app: "demo".into(),
            buildpacks: vec!["heroku/nodejs".into(), "python".into()],
        }
    );
    // `buildpacks:clear` sends an empty list.
    assert_eq!(
        parse_set_buildpacks("demo".into(), br#"{"updates":[]}"#).unwrap(),
        Command::SetBuildpacks {
            app: "demo".into(),
            buildpacks: vec![],
        }
    );
}

#[test]
fn bad_buildpack_installations_are_refused_with_herokus_errors() {
    for (body, status, id) in [
        (
            &br#"{"updates":[{"buildpack":"heroku/scala"}]}"#[..],
            422,
            "invalid_params",
        ),
        (
            br#"{"updates":[{"buildpack":"/bin"}]}"#,
            422,
            "invalid_params",
        ),
        (
            br#"{"updates":[{"buildpack":"python"},{"buildpack":"heroku/python"}]}"#,
            422,
            "invalid_params",
        ),
        (br#"{"updates":"python"}"#, 400, "bad_request"),
        (br#"{}"#, 400, "bad_request"),
        (b"not json", 400, "bad_request"),
    ] {
        let error = parse_set_buildpacks("demo".into(), body).unwrap_err();
        assert_eq!(
            (error.status.as_u16(), error.id),
            (status, id),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // The 422 lists what can be used.
    let error =
        parse_set_buildpacks("demo".into(), br#"{"updates":[{"buildpack":"x"}]}"#).unwrap_err();
    assert!(error.message.contains("heroku/python"), "{}", error.message);
    // An app path that cannot name an app is a 404.
    let error = parse_set_buildpacks("../etc".into(), br#"{"updates":[]}"#).unwrap_err();
    assert_eq!(error.status.as_u16(), 404);
}

#[test]
fn only_the_platforms_region_and_stack_are_accepted() {
    assert!(check_region("local", "local").is_ok());
    assert!(check_region("local", &catalog_id("region", "local").to_string()).is_ok());
    let error = check_region("local", "us").unwrap_err();
    assert_eq!((error.status.as_u16(), error.id), (422, "invalid_params"));
    assert!(
        error.message.contains("The only region is local"),
        "{}",
        error.message
    );
    assert!(check_region("eu-home", "eu-home").is_ok());
    // Stacks are the core's (`stacks.rs`, tested there and end to end in `stacks.rs`).
}

#[test]
fn regions_carry_the_configured_name() {
    let region = region_json("eu-home");
    assert_eq!(region.name, "eu-home");
    assert_eq!(region.id, catalog_id("region", "eu-home"));
    assert_eq!(region.provider.region, "eu-home");
}

#[test]
fn the_registry_search_finds_built_in_buildpacks_by_namespace_name_or_description() {
    let found = |query: &str| -> Vec<String> {
        registry_search(&parse_registry_search(query))
            .iter()
            .map(|b| {
                format!(
                    "{}/{}",
                    b["namespace"].as_str().unwrap(),
                    b["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    // The three searches `heroku buildpacks:search python` makes.
    assert_eq!(found("in[namespace][]=python"), Vec::<String>::new());
    assert_eq!(found("in[name][]=python"), ["heroku/python"]);
    assert_eq!(found("like[description]=python"), ["heroku/python"]);
    // Scala is not built in: nothing, which the CLI prints as "No buildpacks found".
    assert_eq!(found("in[name][]=scala"), Vec::<String>::new());
    assert_eq!(found("in[name][]=java"), ["heroku/java"]);
    assert_eq!(found("in[name][]=ruby"), ["heroku/ruby"]);
    // heroku/{python,nodejs,ruby,php,go,java,rust,static,procfile}.
    assert_eq!(found("in%5Bnamespace%5D%5B%5D=heroku").len(), 9);
    assert_eq!(found("").len(), 9);
    assert_eq!(
        found("in[name][]=nodejs&in[name][]=procfile"),
        ["heroku/nodejs", "heroku/procfile"]
    );
    assert_eq!(found("in[name][]=%00%FF&junk"), Vec::<String>::new());
}
