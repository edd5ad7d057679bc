//! Tests of the build pipeline's pure steps.

use super::*;

#[test]
fn container_ids_are_sanitized() {
    assert_eq!(
        container_id("my app", "b/1", "compile-0-python"),
        "build.my-app.b-1.compile-0-python"
    );
}

#[test]
fn release_output_is_read_as_heroku_documents_it() {
    fn check(yaml: &str, expected: Option<&[(&str, &str)]>) {
        let parsed = parse_release_output(yaml).ok();
        let expected = expected.map(|types| {
            types
                .iter()
                .map(|(name, command)| (name.to_string(), command.to_string()))
                .collect::<BTreeMap<_, _>>()
        });
        assert_eq!(parsed, expected, "bin/release printed {yaml:?}");
    }
    check("", Some(&[]));
    check("  \n", Some(&[]));
    check("---\naddons: []\n", Some(&[]));
    check(
        "---\naddons: []\ndefault_process_types:\n  web: python app.py\n",
        Some(&[("web", "python app.py")]),
    );
    check(
        "config_vars:\n  PATH: /app/bin\ndefault_process_types:\n  web: npm start\n  worker: node w.js",
        Some(&[("web", "npm start"), ("worker", "node w.js")]),
    );
    check("default_process_types:\n", Some(&[]));
    check("~", Some(&[]));
    check("default_process_types: [web]", None);
    check("default_process_types:\n  web: [1, 2]", None);
    check("{unclosed", None);
}

#[test]
fn stack_and_size_display() {
    assert_eq!(display_stack("heroku-24"), "Heroku-24");
    assert_eq!(display_size(12_897_485), "12.3M");
    assert_eq!(display_size(2048), "2.0K");
}
