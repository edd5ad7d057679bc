//! The platform's own TLS end to end: the real heroku CLI and git over the HTTPS API and git
//! listener, trusting only the platform CA (`slipway ca`), and the real CLI's own git remote
//! and credential helper.

mod support;

use std::ffi::OsStr;
use std::process::Output;

use support::text;

fn succeeded(what: &str, output: &Output, server: &support::Server) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n--- server log ---\n{}",
        text(output),
        server.log()
    );
}

#[test]
fn slipway_ca_prints_the_platform_ca_from_the_api_or_the_data_dir() {
    let server = support::Server::start();
    let from_api = server.cli_ok(&["ca"]);
    let data_dir = server.data_dir.to_string_lossy().into_owned();
    let from_disk = server.cli_ok(&["ca", "--data-dir", &data_dir]);
    let file = std::fs::read_to_string(server.ca_path()).unwrap();
    assert_eq!(from_api, file);
    assert_eq!(from_disk, file);
    // It parses as a CA certificate, name-constrained to the domain and the API's names.
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, &from_api).unwrap();
    let parsed = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(parsed.status.success(), "{}", text(&parsed));
    let description = String::from_utf8_lossy(&parsed.stdout);
    for expected in [
        "CA:TRUE",
        "Name Constraints",
        "DNS:localhost",
        "IP:127.0.0.1/255.255.255.255",
    ] {
        assert!(description.contains(expected), "{expected}:\n{description}");
    }
    // A data directory without a CA is a clear error, not an empty line.
    let output = server.cli(&["ca", "--data-dir", "/nonexistent"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("/nonexistent/tls/router-ca.pem"),
        "{}",
        text(&output)
    );
}

#[test]
fn curl_verifies_the_https_api_with_the_platform_ca_and_not_without_it() {
    let server = support::Server::start();
    let url = format!("{}/apps", server.api_tls_url());
    let curl = |ca: Option<&std::path::Path>| {
        let mut command = std::process::Command::new("curl");
        command.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"]);
        command.args(["-H", "Accept: application/vnd.heroku+json; version=3"]);
        command.args(["-H", &format!("Authorization: Bearer {}", server.key)]);
        if let Some(ca) = ca {
            command.arg("--cacert").arg(ca);
        }
        command.arg(&url).output().unwrap()
    };
    let trusted = curl(Some(&server.ca_path()));
    assert!(trusted.status.success(), "{}", text(&trusted));
    assert_eq!(String::from_utf8_lossy(&trusted.stdout), "200");
    let untrusted = curl(None);
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    assert!(
        text(&untrusted).contains("certificate"),
        "{}",
        text(&untrusted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_heroku_cli_pushes_configures_and_lists_over_https() {
    require_runc!();
    let server = support::Server::start();
    let home = tempfile::tempdir().unwrap();
    let repo = support::echo_app_repo();
    // CI installs the CLI: its absence fails here, before anything else.
    support::heroku_cli();
    server.cli_ok(&["apps:create", "tls-cli"]);

    // The CLI's own remote (always https://<host>/<app>.git) and credential helper.
    let remote = server.heroku(home.path(), repo.path(), &["git:remote", "-a", "tls-cli"]);
    succeeded("heroku git:remote", &remote, &server);
    let url = server
        .heroku_command(OsStr::new("git"), home.path(), repo.path())
        .args(["remote", "get-url", "heroku"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&url.stdout).trim(),
        format!("{}/tls-cli.git", server.api_tls_url())
    );
    let gitconfig = std::fs::read_to_string(home.path().join(".gitconfig")).unwrap();
    assert!(gitconfig.contains("heroku git:credentials"), "{gitconfig}");

    let push = server
        .heroku_command(OsStr::new("git"), home.path(), repo.path())
        .args(["push", "heroku", "main"])
        .output()
        .unwrap();
    succeeded("git push heroku main", &push, &server);
    assert!(text(&push).contains("remote:"), "{}", text(&push));
    server.wait_for_200("tls-cli", "/").await;

    let set = server.heroku(
        home.path(),
        repo.path(),
        &["config:set", "GREETING=over-tls", "-a", "tls-cli"],
    );
    succeeded("heroku config:set", &set, &server);
    let config = server.heroku(home.path(), repo.path(), &["config:get", "GREETING"]);
    succeeded("heroku config:get", &config, &server);
    assert_eq!(String::from_utf8_lossy(&config.stdout).trim(), "over-tls");
    let ps = server.heroku(home.path(), repo.path(), &["ps", "-a", "tls-cli"]);
    succeeded("heroku ps", &ps, &server);
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains("web.1"),
        "{}",
        text(&ps)
    );

    // Without the platform CA, git refuses the server's certificate.
    let untrusted = server
        .heroku_command(OsStr::new("git"), home.path(), repo.path())
        .env_remove("GIT_SSL_CAINFO")
        .args(["ls-remote", "heroku"])
        .output()
        .unwrap();
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    assert!(
        text(&untrusted).contains("certificate"),
        "{}",
        text(&untrusted)
    );
    // And the credential helper is what authenticates: without it, git gets the 401
    // challenge and, unable to prompt, gives up.
    let anonymous = server
        .heroku_command(OsStr::new("git"), home.path(), repo.path())
        .args(["-c", "credential.helper=", "ls-remote", "heroku"])
        .env("HOME", repo.path())
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "{}", text(&anonymous));
}
