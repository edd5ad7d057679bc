//! The add-on page's HTML: what it posts to a provider, escaped, and what it says of a
//! built-in add-on.

use std::collections::BTreeMap;

use axum::http::header;
use chrono::Utc;
use slipway_core::{Addon, AddonAttachment, AddonSso, AddonView};
use uuid::Uuid;

use super::*;

fn view(service: &str, plan: &str) -> AddonView {
    let now = Utc::now();
    let addon = Addon {
        id: Uuid::new_v4(),
        name: "postgresql-curved-12345".into(),
        app_id: Uuid::new_v4(),
        app_name: "demo".into(),
        service: service.into(),
        plan: plan.into(),
        resource: "postgresql_curved_12345".into(),
        url: "postgres://u:secret-password@10.0.0.1:5432/db".into(),
        created_at: now,
        updated_at: now,
        partner: None,
    };
    let attachment = AddonAttachment {
        id: Uuid::new_v4(),
        name: "DATABASE".into(),
        addon_id: addon.id,
        addon_name: addon.name.clone(),
        app_id: addon.app_id,
        app_name: "demo".into(),
        created_at: now,
        updated_at: now,
    };
    AddonView {
        addon,
        attachments: vec![attachment],
    }
}

async fn body(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let policy = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned(), policy)
}

#[tokio::test]
async fn the_sso_page_posts_every_field_escaped_and_runs_only_its_hashed_script() {
    let form = AddonSso {
        action: "https://fast-db.example/sso?x=\"><script>".into(),
        method: "post",
        params: BTreeMap::from([
            ("id".to_owned(), "r-1".to_owned()),
            ("email".to_owned(), "a\"<b>@example.com".to_owned()),
        ]),
    };
    let (status, html, policy) = body(sso_page(&view("fast-db", "test"), &form)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("action=\"https://fast-db.example/sso?x=&quot;&gt;&lt;script&gt;\""),
        "{html}"
    );
    assert!(
        html.contains(
            "<input type=\"hidden\" name=\"email\" value=\"a&quot;&lt;b&gt;@example.com\">"
        ),
        "{html}"
    );
    assert!(html.contains("<input type=\"hidden\" name=\"id\" value=\"r-1\">"));
    assert_eq!(html.matches("<script>").count(), 1, "{html}");
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest("document.forms[0].submit();"));
    assert!(
        policy.contains(&format!("script-src 'sha256-{hash}'")),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

#[tokio::test]
async fn a_built_in_add_on_gets_an_honest_page_without_its_url() {
    let (status, html, policy) = body(built_in(&view("heroku-postgresql", "essential-0"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("heroku-postgresql:essential-0 add-on on a server Slipway runs; it has no web dashboard"),
        "{html}"
    );
    assert!(html.contains("<li>DATABASE_URL on demo</li>"), "{html}");
    assert!(html.contains("pg:psql"), "{html}");
    assert!(!html.contains("secret-password"), "{html}");
    assert!(!policy.contains("script-src"), "{policy}");
    let (_, html, _) = body(built_in(&view("heroku-redis", "mini"))).await;
    assert!(html.contains("redis:cli"), "{html}");
}

#[tokio::test]
async fn the_login_page_posts_back_here_only() {
    let (status, html, policy) = body(login().await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<form method=\"post\" action=\"\">"),
        "{html}"
    );
    assert!(policy.contains("form-action 'self'"), "{policy}");
    assert!(!html.contains("<script"), "{html}");
}
