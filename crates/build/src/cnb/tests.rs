//! Tests of the CNB platform's pure parts: build plan resolution, layer env semantics (the
//! Rust application and the rendered `.profile.d` script agree, checked with bash),
//! `launch.toml` processes as process types, and `project.toml`.

use std::collections::{BTreeMap, BTreeSet};

use super::env::{self, EnvModification, EnvOp};
use super::plan::{self, BuildpackPlan, Candidate, DetectPlan};
use super::{launch, project};

fn candidate(id: &str, optional: bool, plan: &str) -> Candidate {
    Candidate {
        id: id.to_string(),
        optional,
        alternatives: DetectPlan::parse(plan).expect("plan").alternatives(),
    }
}

/// Resolves `candidates`; `Ok` lists each participant as `id:alternative index`.
fn resolve(candidates: &[Candidate]) -> Result<Vec<String>, Vec<String>> {
    plan::resolve(candidates).map(|resolution| {
        resolution
            .participants
            .iter()
            .map(|(index, chosen)| {
                let alternative = candidates[*index]
                    .alternatives
                    .iter()
                    .position(|a| a == chosen)
                    .expect("a candidate's alternative");
                format!("{}:{alternative}", candidates[*index].id)
            })
            .collect()
    })
}

#[test]
fn build_plans_resolve_as_the_lifecycle_resolves_them() {
    let provides_node = "[[provides]]\nname = \"node\"\n";
    let requires_node = "[[requires]]\nname = \"node\"\n[requires.metadata]\nversion = \"20\"\n";
    let both = "[[provides]]\nname = \"node\"\n[[requires]]\nname = \"node\"\n";
    let check = |candidates: &[Candidate], expected: Result<&[&str], &[&str]>| {
        let got = resolve(candidates);
        let expected = expected
            .map(|ok| ok.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(|err| err.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{candidates:#?}");
    };
    // No plans at all: everyone takes part.
    check(
        &[candidate("a", false, ""), candidate("b", false, "")],
        Ok(&["a:0", "b:0"]),
    );
    // A provider and a requirer meet.
    check(
        &[
            candidate("node", false, provides_node),
            candidate("app", false, requires_node),
        ],
        Ok(&["node:0", "app:0"]),
    );
    // A buildpack may provide and require the same name itself.
    check(&[candidate("self", false, both)], Ok(&["self:0"]));
    // Unmet on a required buildpack fails the group, naming why.
    check(
        &[candidate("node", false, provides_node)],
        Err(&["node provides unused node"]),
    );
    check(
        &[candidate("app", false, requires_node)],
        Err(&["app requires node"]),
    );
    // An optional buildpack whose part is unmet is left out; the rest still resolve.
    check(
        &[
            candidate("extra", true, provides_node),
            candidate("plain", false, ""),
        ],
        Ok(&["plain:0"]),
    );
    // The `or` alternative is taken when the first does not resolve.
    let with_or = "[[requires]]\nname = \"bun\"\n[[or]]\n[[or.requires]]\nname = \"node\"\n";
    check(
        &[
            candidate("node", false, provides_node),
            candidate("app", false, with_or),
        ],
        Ok(&["node:0", "app:1"]),
    );
    // Alternatives on both sides: the first combination that resolves wins.
    let provider_or = "[[provides]]\nname = \"bun\"\n[[or]]\n[[or.provides]]\nname = \"node\"\n";
    check(
        &[
            candidate("runtime", false, provider_or),
            candidate("app", false, requires_node),
        ],
        Ok(&["runtime:1", "app:0"]),
    );
}

#[test]
fn a_buildpack_plan_holds_the_requirements_of_what_it_provides() {
    let candidates = [
        candidate("node", false, "[[provides]]\nname = \"node\"\n"),
        candidate(
            "app",
            false,
            "[[requires]]\nname = \"node\"\n[requires.metadata]\nversion = \"20\"\n",
        ),
        candidate(
            "tests",
            false,
            "[[requires]]\nname = \"node\"\n[requires.metadata]\nbuild = true\n",
        ),
    ];
    let resolution = plan::resolve(&candidates).expect("resolves");
    let plan = BuildpackPlan::for_participant(&resolution, 0, &BTreeSet::new());
    let text = plan.to_toml().expect("toml");
    // What libcnb's buildpacks read back.
    let read: libcnb_data::buildpack_plan::BuildpackPlan = toml::from_str(&text).expect("parse");
    let entries: Vec<(String, String)> = read
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.metadata.to_string().trim().to_string()))
        .collect();
    assert_eq!(
        entries,
        [
            ("node".to_string(), "version = \"20\"".to_string()),
            ("node".to_string(), "build = true".to_string()),
        ]
    );
    // A requirer's own plan is empty; a name already met is not handed on.
    assert!(
        BuildpackPlan::for_participant(&resolution, 1, &BTreeSet::new())
            .entries
            .is_empty()
    );
    let met = BTreeSet::from(["node".to_string()]);
    assert!(BuildpackPlan::for_participant(&resolution, 0, &met)
        .entries
        .is_empty());
}

#[test]
fn detect_plans_that_are_not_toml_are_errors() {
    assert!(DetectPlan::parse("[[provides]\n").is_err());
    assert!(DetectPlan::parse("provides = 3\n").is_err());
    assert_eq!(
        DetectPlan::parse("").expect("empty").alternatives().len(),
        1
    );
}

fn modification(name: &str, op: EnvOp, value: &str) -> EnvModification {
    EnvModification {
        name: name.to_string(),
        op,
        value: value.to_string(),
    }
}

/// Every kind of modification, on set, empty and unset variables, with values that a shell
/// would expand if they were not quoted.
fn env_cases() -> Vec<EnvModification> {
    let append = |d: &str| EnvOp::Append {
        delim: d.to_string(),
    };
    let prepend = |d: &str| EnvOp::Prepend {
        delim: d.to_string(),
    };
    vec![
        modification("SET", EnvOp::Override, "new $HOME `id` 'q'"),
        modification("UNSET_OVERRIDE", EnvOp::Override, "x"),
        modification("KEEP", EnvOp::Default, "ignored"),
        modification("FRESH", EnvOp::Default, "fresh value"),
        modification("EMPTY", EnvOp::Default, "was empty"),
        modification("PATH_LIKE", prepend(":"), "/layer/bin"),
        modification("PATH_LIKE", append(":"), "/late/bin"),
        modification("NO_DELIM", append(""), "tail"),
        modification("NEW_LIST", prepend(":"), "/only"),
        modification("ODD_DELIM", append("' ;"), "x"),
    ]
}

fn env_start() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("SET".to_string(), "old".to_string()),
        ("KEEP".to_string(), "kept".to_string()),
        ("EMPTY".to_string(), String::new()),
        ("PATH_LIKE".to_string(), "/usr/bin:/bin".to_string()),
        ("NO_DELIM".to_string(), "head".to_string()),
        ("ODD_DELIM".to_string(), "a".to_string()),
    ])
}

#[test]
fn layer_env_modifications_apply_as_the_lifecycle_applies_them() {
    let mut env = env_start();
    env::apply(&mut env, &env_cases());
    let get = |name: &str| env.get(name).map(String::as_str);
    assert_eq!(get("SET"), Some("new $HOME `id` 'q'"));
    assert_eq!(get("UNSET_OVERRIDE"), Some("x"));
    assert_eq!(get("KEEP"), Some("kept"));
    assert_eq!(get("FRESH"), Some("fresh value"));
    assert_eq!(get("EMPTY"), Some("was empty"));
    assert_eq!(get("PATH_LIKE"), Some("/layer/bin:/usr/bin:/bin:/late/bin"));
    assert_eq!(get("NO_DELIM"), Some("headtail"));
    assert_eq!(get("NEW_LIST"), Some("/only"));
    assert_eq!(get("ODD_DELIM"), Some("a' ;x"));
}

/// The `.profile.d` script a dyno sources makes exactly the changes the build applies.
#[test]
fn the_rendered_launch_script_agrees_with_apply() {
    let mut expected = env_start();
    env::apply(&mut expected, &env_cases());
    let script = env::render(&env_cases());
    let names: BTreeSet<String> = env_cases()
        .into_iter()
        .map(|m| m.name)
        .chain(env_start().into_keys())
        .collect();
    let mut command = std::process::Command::new("bash");
    command.env_clear();
    for (name, value) in env_start() {
        command.env(name, value);
    }
    let mut program = script.clone();
    for name in &names {
        program.push_str(&format!(
            "printf '%s=%s\\0' {name} \"${{{name}-<unset>}}\"\n"
        ));
    }
    let out = command.arg("-c").arg(&program).output().expect("run bash");
    assert!(
        out.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: BTreeMap<String, String> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            (name.to_string(), value.to_string())
        })
        .collect();
    let expected: BTreeMap<String, String> = names
        .iter()
        .map(|name| {
            (
                name.to_string(),
                expected.get(name).cloned().unwrap_or("<unset>".to_string()),
            )
        })
        .collect();
    assert_eq!(got, expected, "{script}");
}

#[test]
fn env_dirs_are_read_with_the_lifecycles_suffixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, value: &str| std::fs::write(dir.path().join(name), value).expect("w");
    write("PLAIN", "p");
    write("A.append", "a");
    write("A.delim", ",");
    write("B.prepend", "b");
    write("C.default", "c");
    write("D.override", "d");
    write("bad-name.override", "x");
    write("E.weird", "x");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("F.override")).expect("link");
    let mut skipped = Vec::new();
    let read = env::read_env_dir(dir.path(), &mut skipped).expect("read");
    assert_eq!(
        read,
        [
            modification(
                "A",
                EnvOp::Append {
                    delim: ",".to_string()
                },
                "a"
            ),
            modification(
                "B",
                EnvOp::Prepend {
                    delim: String::new()
                },
                "b"
            ),
            modification("C", EnvOp::Default, "c"),
            modification("D", EnvOp::Override, "d"),
            modification("PLAIN", EnvOp::Override, "p"),
        ]
    );
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(env::read_env_dir(&dir.path().join("missing"), &mut skipped)
        .expect("missing is empty")
        .is_empty());
}

fn launch_toml(text: &str) -> libcnb_data::launch::Launch {
    toml::from_str(text).expect("launch.toml")
}

#[test]
fn launch_processes_become_process_types() {
    let first = launch_toml(
        r#"
[[processes]]
type = "web"
command = ["bundle", "exec", "rackup", "--port", "$PORT"]
default = true

[[processes]]
type = "worker"
command = ["bash", "-c", "echo 'hi'; sleep 1"]
working-dir = "jobs dir"
"#,
    );
    let second = launch_toml(
        r#"
[[processes]]
type = "worker"
command = ["./bin/worker"]
args = ["--queue=default", "--port=$(PORT)", "$$(LITERAL)", "$(not a ref)", "$(HOME)$(PORT)"]
"#,
    );
    let (types, default) =
        launch::process_types(&[("a".to_string(), first.clone()), ("b".to_string(), second)])
            .expect("valid");
    assert_eq!(default.as_deref(), Some("web"));
    assert_eq!(
        types,
        BTreeMap::from([
            (
                "web".to_string(),
                "bundle exec rackup --port '$PORT'".to_string()
            ),
            (
                "worker".to_string(),
                r#"./bin/worker '--queue=default' '--port='"${PORT}" '$(LITERAL)' '$(not a ref)' "${HOME}""${PORT}""#
                    .to_string()
            ),
        ])
    );
    let (types, _) = launch::process_types(&[("a".to_string(), first)]).expect("valid");
    assert_eq!(
        types["worker"],
        r#"cd 'jobs dir' && bash -c 'echo '\''hi'\''; sleep 1'"#
    );
    let bad = launch_toml("[[processes]]\ntype = \"Web.Server\"\ncommand = [\"x\"]\n");
    let error = launch::process_types(&[("a".to_string(), bad)]).expect_err("invalid type");
    assert!(error.contains("Web.Server"), "{error}");
}

/// The group's paths and the build env a project.toml should give.
type ProjectExpectation<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

#[test]
fn project_toml_groups_and_env() {
    let check = |text: &str, expected: Result<ProjectExpectation, &str>| {
        let got = project::parse(text);
        match expected {
            Ok((group, env)) => {
                let project = got.unwrap_or_else(|e| panic!("{text}: {e}"));
                let paths: Vec<String> = project
                    .group
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                assert_eq!(paths, group, "{text}");
                let env: Vec<(String, String)> = env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(project.env, env, "{text}");
            }
            Err(fragment) => {
                let error = got.expect_err(text);
                assert!(error.contains(fragment), "{text}: {error}");
            }
        }
    };
    check("", Ok((&[], &[])));
    check(
        "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nuri = \"buildpacks/a\"\n\
         [[io.buildpacks.group]]\nid = \"b\"\nuri = \"./bp/b/\"\n\
         [[io.buildpacks.build.env]]\nname = \"X\"\nvalue = \"1\"\n",
        Ok((&["buildpacks/a", "bp/b"], &[("X", "1")])),
    );
    check(
        "[[build.buildpacks]]\nuri = \"old/style\"\n[[build.env]]\nname = \"Y\"\nvalue = \"2\"\n",
        Ok((&["old/style"], &[("Y", "2")])),
    );
    check(
        "[[io.buildpacks.group]]\nid = \"heroku/python\"\n",
        Err("heroku/python without a uri"),
    );
    check(
        "[[io.buildpacks.group]]\nuri = \"../x\"\n",
        Err("leaves the app's directory"),
    );
    check(
        "[[io.buildpacks.group]]\nuri = \"file:///etc\"\n",
        Err("is an absolute path"),
    );
    check(
        "[[io.buildpacks.group]]\nuri = \"docker://heroku/builder\"\n",
        Err("is not a path inside the app"),
    );
    check(
        "[[io.buildpacks.group]]\nuri = \".\"\n",
        Err("the app's own"),
    );
    check("[io", Err("not valid TOML"));
}
