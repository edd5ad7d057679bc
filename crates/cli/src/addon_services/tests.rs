//! The services table and the manifest file's reading.

use super::*;

#[test]
fn services_are_a_heroku_like_table() {
    let now = chrono::Utc::now();
    let service = |name: &str, human: &str| AddonService {
        cli_plugin_name: None,
        created_at: now,
        human_name: human.into(),
        id: uuid::Uuid::nil(),
        name: name.into(),
        state: "ga".into(),
        supports_multiple_installations: true,
        supports_sharing: true,
        updated_at: now,
    };
    let table = format_services(&[
        service("heroku-postgresql", "Heroku Postgres"),
        service("fast-db", "Fast DB"),
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], " Slug               Name             State");
    assert_eq!(lines[2], " heroku-postgresql  Heroku Postgres  ga");
    assert_eq!(lines[3], " fast-db            Fast DB          ga");
}

#[test]
fn manifest_files_are_capped_and_plans_replace_the_manifests() {
    let path = std::env::temp_dir().join(format!(
        "slipway-addon-manifest-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, r#"{"id": "fast-db", "plans": [{"id": "old"}]}"#).expect("write");
    let manifest = read_manifest(&path, &["test".into(), "pro".into()]).expect("read");
    assert_eq!(manifest["plans"], json!([{"id": "test"}, {"id": "pro"}]));
    let kept = read_manifest(&path, &[]).expect("read");
    assert_eq!(kept["plans"], json!([{"id": "old"}]));
    std::fs::write(&path, vec![b' '; 64 * 1024 + 1]).expect("write");
    let error = read_manifest(&path, &[]).expect_err("too big").to_string();
    assert!(error.contains("larger than 65536"), "{error}");
    std::fs::remove_file(&path).expect("remove");
}
