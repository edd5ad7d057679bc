//! The add-ons table.

use super::*;

#[test]
fn lists_add_ons_with_their_attachments() {
    let addon: Addon = serde_json::from_value(json!({
        "actions": [], "addon_service": {"id": "6c67493d-8fc2-4cd4-9161-4f1ec11cbe69", "name": "heroku-postgresql"},
        "app": {"id": "00000000-0000-0000-0000-000000000001", "name": "demo"},
        "billed_price": {"cents": 500, "unit": "month", "contract": false},
        "billing_entity": {"id": "00000000-0000-0000-0000-000000000001", "name": "demo", "type": "app"},
        "config_vars": ["DATABASE_URL"], "created_at": "2026-11-26T12:00:00Z",
        "id": "00000000-0000-0000-0000-000000000002", "name": "postgresql-curved-12345",
        "plan": {"id": "00000000-0000-0000-0000-000000000003", "name": "heroku-postgresql:essential-0", "price": {"cents": 500, "unit": "month", "contract": false}},
        "provider_id": "postgresql_curved_12345", "provision_message": null, "state": "provisioned",
        "updated_at": "2026-11-26T12:00:00Z", "web_url": null
    }))
    .unwrap();
    let attachment: AddonAttachment = serde_json::from_value(json!({
        "addon": {"id": "00000000-0000-0000-0000-000000000002", "name": "postgresql-curved-12345", "app": {"id": "00000000-0000-0000-0000-000000000001", "name": "demo"}},
        "app": {"id": "00000000-0000-0000-0000-000000000001", "name": "demo"},
        "created_at": "2026-11-26T12:00:00Z", "id": "00000000-0000-0000-0000-000000000004",
        "name": "DATABASE", "namespace": null, "updated_at": "2026-11-26T12:00:00Z", "web_url": null, "log_input_url": null
    }))
    .unwrap();
    assert_eq!(
        format_addons(&[addon], &[attachment]),
        "heroku-postgresql (postgresql-curved-12345)  essential-0  $5.00/month  provisioned\n └─ as DATABASE on demo\n\n"
    );
    assert_eq!(format_addons(&[], &[]), "No add-ons for this app.\n");
}

#[test]
fn options_after_the_double_dash_read_as_the_heroku_cli_reads_them() {
    let parse = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse_options(&args).map(serde_json::Value::Object)
    };
    for (args, want) in [
        (vec![], json!({})),
        (vec!["--region", "eu"], json!({"region": "eu"})),
        (
            vec!["--fork", "--region", "eu"],
            json!({"fork": true, "region": "eu"}),
        ),
        (
            vec!["--region", "eu", "--fork"],
            json!({"region": "eu", "fork": true}),
        ),
        (
            vec!["--k=v=w", "--on=true"],
            json!({"k": "v=w", "on": true}),
        ),
    ] {
        assert_eq!(parse(&args).unwrap(), want, "{args:?}");
    }
    assert!(parse(&["eu"]).is_err());
}
