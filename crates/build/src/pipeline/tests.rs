//! Tests of the build pipeline's pure steps.

use super::*;
use crate::{display_size, display_stack};

#[test]
fn release_output_is_read_as_heroku_documents_it() {
    fn check(yaml: &str, expected: Option<&[(&str, &str)]>) {
        let parsed = parse_release_output(yaml)
            .ok()
            .map(|release| release.default_process_types);
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

#[test]
fn release_addons_and_config_vars_are_read() {
    let release = parse_release_output(
        "addons:\n  - heroku-postgresql\nconfig_vars:\n  LANG: en_US.UTF-8\n  PORT: 3000\n  DEBUG: true\n  NESTED: [1]\n",
    )
    .expect("valid YAML");
    assert_eq!(release.addons, vec!["heroku-postgresql".to_string()]);
    assert_eq!(
        release.config_vars,
        BTreeMap::from([
            ("DEBUG".to_string(), "true".to_string()),
            ("LANG".to_string(), "en_US.UTF-8".to_string()),
            ("PORT".to_string(), "3000".to_string()),
        ])
    );
}

#[test]
fn config_var_defaults_never_override_and_quote_values() {
    let script = config_var_defaults_script(&BTreeMap::from([(
        "GREETING".to_string(),
        "it's $HOME; `id`".to_string(),
    )]))
    .expect("a valid name");
    assert!(
        script.contains(
            r#"if [ -z "${GREETING+set}" ]; then export GREETING='it'\''s $HOME; `id`'; fi"#
        ),
        "{script}"
    );
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{script}\nprintf %s \"$GREETING\""))
        .env_remove("GREETING")
        .output()
        .expect("run sh");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "it's $HOME; `id`");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{script}\nprintf %s \"$GREETING\""))
        .env("GREETING", "set by the app")
        .output()
        .expect("run sh");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "set by the app");
    for bad in ["1A", "A-B", "", "A;rm"] {
        let refused =
            config_var_defaults_script(&BTreeMap::from([(bad.to_string(), "x".to_string())]));
        assert!(refused.is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn reports_are_flat_yaml_maps() {
    fn check(yaml: &str, expected: Option<&[(&str, &str)]>) {
        let parsed = parse_report(yaml).ok();
        let expected = expected.map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        });
        assert_eq!(parsed, expected, "bin/report printed {yaml:?}");
    }
    check("", Some(&[]));
    check(
        "python_version: 3.12.7\npackage_manager: pip\ncache_restore: true\nduration: 1.5\n",
        Some(&[
            ("cache_restore", "true"),
            ("duration", "1.5"),
            ("package_manager", "pip"),
            ("python_version", "3.12.7"),
        ]),
    );
    check(
        "empty:\nlist: [a, b]",
        Some(&[("empty", ""), ("list", "- a\n- b")]),
    );
    check("- just\n- a list", None);
    check("{unclosed", None);
}
