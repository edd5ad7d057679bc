//! End to end: a Rack app and a Rails 6.1 app built by the built-in Ruby buildpack as Heroku's
//! Ruby buildpack builds them, pushed with the real git client and served through the router
//! by the default processes of `bin/release` (no Procfile): `bundle exec rackup` for Rack,
//! `bin/rails server` for Rails, whose `rake assets:precompile` ran at build time and whose
//! fingerprinted stylesheet the dyno serves; and the failures a user can act on (a syntax
//! error that stops `assets:precompile` or the Rakefile, a gem neither vendored nor on the
//! stack) fail with what to do and release nothing.
//!
//! No gem server is reachable from this machine: the samples' `Gemfile.lock`s
//! (`tests/fixtures/ruby/`) lock the exact versions Debian's `ruby-rack`, `puma`,
//! `ruby-railties` and `ruby-sprockets-rails` install as system gems, which the buildpack
//! uses when no gem server answers (`bundle install --local`). `.ci/run` installs them.

mod support;

use std::path::Path;
use std::process::Command;

use support::{commit_all, git, text, Server};

/// The Debian packages these apps need on the stack.
const PACKAGES: [&str; 6] = [
    "ruby",
    "ruby-bundler",
    "ruby-rack",
    "puma",
    "ruby-railties",
    "ruby-sprockets-rails",
];

const RACK_LOCK: &str = include_str!("fixtures/ruby/rack/Gemfile.lock");
const RAILS_LOCK: &str = include_str!("fixtures/ruby/rails/Gemfile.lock");

/// The packages of [`PACKAGES`] this machine lacks.
fn missing_packages() -> Vec<&'static str> {
    PACKAGES
        .into_iter()
        .filter(|package| {
            !Command::new("dpkg")
                .args(["-s", package])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect()
}

/// `name (version)` of every gem a `Gemfile.lock`'s GEM section locks.
fn locked_gems(lock: &str) -> Vec<(String, String)> {
    lock.lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|spec| !spec.starts_with(' '))
        .filter_map(|spec| {
            let (name, version) = spec.split_once(" (")?;
            Some((name.to_owned(), version.strip_suffix(')')?.to_owned()))
        })
        .collect()
}

/// The locked gems the stack does not have at the locked version, each with the versions it
/// has: Debian's security updates can move a patch version, and the samples must follow.
fn gems_the_stack_lacks() -> Vec<String> {
    let mut gems = locked_gems(RACK_LOCK);
    gems.extend(locked_gems(RAILS_LOCK));
    gems.sort();
    gems.dedup();
    let args: Vec<String> = gems.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let check = Command::new("ruby")
        .arg("-e")
        .arg(
            "ARGV.each { |a| n, v = a.split('='); \
             next if Gem::Specification.find_all_by_name(n, v).any?; \
             puts \"#{n} #{v} (the stack has: #{Gem::Specification.find_all_by_name(n).map(&:version).join(', ')})\" }",
        )
        .args(&args)
        .output()
        .expect("run ruby");
    assert!(check.status.success(), "{}", text(&check));
    String::from_utf8_lossy(&check.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

macro_rules! require_stack_gems {
    () => {
        require_runc!();
        let missing = missing_packages();
        if !missing.is_empty() {
            eprintln!(
                "SKIPPED: the stack lacks the Debian packages {missing:?}; install {} (as .ci/run does)",
                PACKAGES.join(" ")
            );
            return;
        }
        let lacking = gems_the_stack_lacks();
        assert!(
            lacking.is_empty(),
            "the samples lock gems the stack does not have: {lacking:?}; run `bundle lock --local` in \
             crates/slipway/tests/fixtures/ruby/{{rack,rails}} (against the stack's gems) and commit \
             the Gemfile.lock"
        );
    };
}

/// Copies `from` into `to` (regular files and directories; modes kept, so `bin/rails` stays
/// executable).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// A git repository of the sample `fixtures/ruby/<sample>`, with `replace` writing files over
/// it.
fn sample(sample: &str, replace: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("slipway-app-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ruby")
        .join(sample);
    copy_tree(&fixture, dir.path());
    for (path, contents) in replace {
        std::fs::write(dir.path().join(path), contents).expect("write file");
    }
    assert!(git(dir.path(), &["init", "-q", "-b", "main"])
        .status
        .success());
    commit_all(dir.path(), "initial");
    dir
}

fn push_expecting(server: &Server, app: &str, dir: &Path, success: bool) -> String {
    let push = server.push(app, dir);
    let output = text(&push);
    assert_eq!(
        push.status.success(),
        success,
        "push of {app} should {}:\n{output}\n{}",
        if success { "succeed" } else { "fail" },
        server.log()
    );
    output
}

fn assert_contains(output: &str, expected: &str) {
    assert!(
        output.contains(expected),
        "expected {expected:?} in:\n{output}"
    );
}

/// True when `output` holds a run of 128 hex digits, the shape of a generated
/// `SECRET_KEY_BASE`.
fn shows_a_secret(output: &str) -> bool {
    output
        .split(|c: char| !c.is_ascii_hexdigit())
        .any(|run| run.len() >= 128)
}

/// Polls `path` of `app` until its body contains `expected`; returns the body.
async fn wait_for_body_containing(
    server: &Server,
    app: &str,
    path: &str,
    expected: &str,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(response) = server.request(reqwest::Method::GET, app, path).send().await {
            last = response.text().await.unwrap_or_default();
            if last.contains(expected) {
                return last;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!(
        "{app}{path} never answered {expected:?} (last: {last})\n{}",
        server.logs(app)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rack_and_rails_apps_build_from_the_stacks_gems_and_serve_their_default_processes() {
    require_stack_gems!();
    let server = Server::start();
    for app in ["rackapp", "railsapp"] {
        server.cli_ok(&["apps:create", app]);
    }
    // Developers' locks are often BUNDLED WITH a newer Bundler than the stack's: the Rack
    // sample's is, and the stack's Bundler installs it without trying to fetch that version.
    let (head, _) = RACK_LOCK
        .split_once("BUNDLED WITH\n")
        .expect("the lock says which Bundler wrote it");
    let newer_lock = format!("{head}BUNDLED WITH\n   2.5.9\n");
    let rack = sample("rack", &[("Gemfile.lock", &newer_lock)]);
    let rails = sample("rails", &[]);

    // Both builds at once, as two users would push.
    let (rack_out, rails_out) = std::thread::scope(|scope| {
        let server = &server;
        let rack_push = scope.spawn(|| push_expecting(server, "rackapp", rack.path(), true));
        let rails_push = scope.spawn(|| push_expecting(server, "railsapp", rails.path(), true));
        (
            rack_push.join().expect("rack push"),
            rails_push.join().expect("rails push"),
        )
    });

    for output in [&rack_out, &rails_out] {
        for expected in [
            "remote: -----> Using Ruby version: ruby-",
            "remote: -----> Installing dependencies using bundler 2.",
            "remote:        No gem server is reachable from this platform (https://rubygems.org/):",
            "remote:        Running: BUNDLE_WITHOUT='development:test' bundle install -j4 --local",
            "remote:        Using puma 5.6.5",
            "remote:        Gems came from the host stack: no gem server is reachable from this platform",
        ] {
            assert_contains(output, expected);
        }
    }
    for expected in [
        "remote: -----> Ruby/Rack app detected",
        "remote:        Gemfile.lock is BUNDLED WITH 2.5.9; installing it with the host stack's bundler 2.",
        "remote:        Using rack 2.2.22",
        "Gems in the groups 'development' and 'test' were not installed.",
        "remote:        Default types for buildpack -> console, rake, web",
    ] {
        assert_contains(&rack_out, expected);
    }
    assert!(
        !rack_out.contains("Installing Bundler 2.5.9"),
        "no fetch of the locked Bundler:\n{rack_out}"
    );
    for expected in [
        "remote: -----> Ruby/Rails app detected",
        "remote:        Using railties 6.1.7.10",
        "remote:        Using sprockets-rails 3.4.1",
        "remote: -----> Setting SECRET_KEY_BASE to a random value kept for this app",
        "remote: -----> Detecting rake tasks",
        "remote: -----> Preparing app for Rails asset pipeline",
        "remote:        Running: rake assets:precompile",
        "Writing /app/public/assets/application-",
        "remote:        Asset precompilation completed (",
        "remote:        Default types for buildpack -> console, rake, web",
    ] {
        assert_contains(&rails_out, expected);
    }
    assert!(
        !shows_a_secret(&rails_out),
        "the build printed a secret:\n{rails_out}"
    );

    // No Procfile: each web process is bin/release's default, served through the router.
    let body = server.wait_for_200("rackapp", "/").await;
    assert!(
        body.starts_with("rack says hi from web.1 on Rack 2.2.22 with puma 5.6.5")
            && body.ends_with(" in production\n"),
        "{body}"
    );
    let body = server.wait_for_200("railsapp", "/").await;
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("rails says hi from web.1 on Rails 6.1.7.10 in production"),
        "{body}"
    );
    // The page names the stylesheet assets:precompile fingerprinted, and the dyno serves it
    // from public/assets (RAILS_SERVE_STATIC_FILES).
    let stylesheet = lines
        .next()
        .and_then(|line| line.strip_prefix("stylesheet: "))
        .unwrap_or_else(|| panic!("no stylesheet line in {body:?}"));
    assert!(
        stylesheet.starts_with("/assets/application-") && stylesheet.ends_with(".css"),
        "not a fingerprinted path: {stylesheet}"
    );
    assert_contains(&rails_out, &format!("Writing /app/public{stylesheet}"));
    let secret = lines.next().unwrap_or_default();
    assert!(
        secret.starts_with("secret_key_base: 128 characters, sha256 "),
        "the generated SECRET_KEY_BASE reaches the dyno: {body}"
    );
    let logs = server.logs("railsapp");
    assert_contains(&logs, "Processing by HelloController#index as");
    let css = server.get("railsapp", stylesheet).await;
    assert_eq!(css.status(), 200, "{stylesheet}");
    assert_eq!(
        css.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/css")
    );
    // Sprockets' output of the app's stylesheet (it keeps the rule, spacing aside).
    let css = css.text().await.expect("body");
    assert!(css.contains("body { color: rebeccapurple; }"), "{css}");

    // The real heroku CLI shows the default processes bin/release declared.
    let home = tempfile::tempdir().expect("temp dir");
    for (app, dir, command) in [
        (
            "railsapp",
            rails.path(),
            "bin/rails server -p ${PORT:-5000} -e $RAILS_ENV",
        ),
        (
            "rackapp",
            rack.path(),
            "bundle exec rackup config.ru -p ${PORT:-5000}",
        ),
    ] {
        let ps = server.heroku(home.path(), dir, &["ps", "-a", app]);
        assert!(ps.status.success(), "{}", text(&ps));
        let ps = String::from_utf8_lossy(&ps.stdout);
        assert_contains(&ps, "=== web (");
        assert_contains(&ps, command);
        assert_contains(&ps, "web.1: up");
    }

    // A rebuild with a changed stylesheet precompiles it anew, and the app keeps its
    // generated SECRET_KEY_BASE (kept per app, not per build).
    std::fs::write(
        rails.path().join("app/assets/stylesheets/application.css"),
        "body { color: teal; }\n",
    )
    .expect("write stylesheet");
    commit_all(rails.path(), "teal");
    let again = push_expecting(&server, "railsapp", rails.path(), true);
    assert_contains(&again, "remote:        Asset precompilation completed (");
    assert!(!again.contains(stylesheet), "a new fingerprint:\n{again}");
    let body = wait_for_body_containing(&server, "railsapp", "/", "stylesheet: /assets/").await;
    let body = if body.contains(stylesheet) {
        let new_sheet = again
            .split("Writing /app/public")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the rebuild wrote a stylesheet");
        wait_for_body_containing(&server, "railsapp", "/", new_sheet).await
    } else {
        body
    };
    assert_contains(&body, secret);

    // The app's own SECRET_KEY_BASE wins over the generated default.
    let own = "ab".repeat(32);
    server.cli_ok(&[
        "config:set",
        &format!("SECRET_KEY_BASE={own}"),
        "-a",
        "railsapp",
    ]);
    let digest = Command::new("ruby")
        .args([
            "-rdigest",
            "-e",
            "print Digest::SHA256.hexdigest(ARGV[0])[0, 12]",
            &own,
        ])
        .output()
        .expect("run ruby");
    let expected = format!(
        "secret_key_base: 64 characters, sha256 {}",
        String::from_utf8_lossy(&digest.stdout)
    );
    wait_for_body_containing(&server, "railsapp", "/", &expected).await;
}

/// An app that must fail to build: its name, the sample it starts from, the files written over
/// the sample, and the lines its push must print.
type BrokenApp<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_ruby_apps_fail_with_what_to_do_and_release_nothing() {
    require_stack_gems!();
    let server = Server::start();
    let stack_rack = locked_gems(RACK_LOCK)
        .into_iter()
        .find(|(name, _)| name == "rack")
        .map(|(_, version)| version)
        .expect("the Rack sample locks rack");
    let old_rack_gemfile = include_str!("fixtures/ruby/rack/Gemfile").replace(&stack_rack, "2.2.3");
    let old_rack_lock = RACK_LOCK.replace(&stack_rack, "2.2.3");
    let sinatra_gemfile = format!(
        "{}gem \"sinatra\", \"3.0.5\"\n",
        include_str!("fixtures/ruby/rack/Gemfile")
    );
    let sinatra_lock = RACK_LOCK
        .replace(
            "    rack-test (",
            "    sinatra (3.0.5)\n      rack (~> 2.2, >= 2.2.4)\n    rack-test (",
        )
        .replace("  rack-test\n", "  rack-test\n  sinatra (= 3.0.5)\n");
    let broken_routes = "Rails.application.routes.draw do\n  root \"hello#index\"\n";
    // The application's module loses its last `end`.
    let application = include_str!("fixtures/ruby/rails/config/application.rb");
    let broken_application = application
        .strip_suffix("end\n")
        .expect("application.rb ends with end");
    let cases: [BrokenApp; 4] = [
        (
            "rails-routes",
            "rails",
            vec![("config/routes.rb", broken_routes)],
            vec![
                "remote: -----> Ruby/Rails app detected".into(),
                "remote:        Running: rake assets:precompile".into(),
                "remote:        rake aborted!".into(),
                "SyntaxError: /app/config/routes.rb:2: syntax error".into(),
                "remote:  !     Precompiling assets failed.".into(),
            ],
        ),
        (
            "rails-app",
            "rails",
            vec![("config/application.rb", broken_application)],
            vec![
                "remote: -----> Detecting rake tasks".into(),
                "remote:  !     Could not detect rake tasks: ensure you can run `bundle exec rake -P` against your app".into(),
                "SyntaxError: /app/config/application.rb:13: syntax error, unexpected end-of-input".into(),
            ],
        ),
        (
            "rack-old",
            "rack",
            vec![("Gemfile", &old_rack_gemfile), ("Gemfile.lock", &old_rack_lock)],
            vec![
                "remote: -----> Ruby/Rack app detected".into(),
                "remote:        Could not find rack-2.2.3 in any of the sources".into(),
                "remote:  !     Failed to install gems via Bundler.".into(),
                "remote:  !     Gemfile.lock needs rack 2.2.3, which is not installed on the host stack,".into(),
                "remote:  !     and no gem server is reachable from this platform to fetch it.".into(),
                format!("remote:  !     The host stack has rack {stack_rack}."),
                "remote:  !     Run bundle cache (bundle package) locally, commit vendor/cache and push again,".into(),
                "remote:  !     or lock a version the stack has.".into(),
            ],
        ),
        (
            "rack-sinatra",
            "rack",
            vec![("Gemfile", &sinatra_gemfile), ("Gemfile.lock", &sinatra_lock)],
            vec![
                "remote:        Could not find sinatra-3.0.5 in any of the sources".into(),
                "remote:  !     Gemfile.lock needs sinatra 3.0.5, which is not installed on the host stack,".into(),
                "remote:  !     The host stack has no sinatra gem.".into(),
                "remote:  !     Run bundle cache (bundle package) locally, commit vendor/cache and push again.".into(),
            ],
        ),
    ];
    for (app, base, replace, expected) in cases {
        server.cli_ok(&["apps:create", app]);
        let dir = sample(base, &replace);
        let output = push_expecting(&server, app, dir.path(), false);
        for line in &expected {
            assert_contains(&output, line);
        }
        let releases = server.cli_ok(&["releases", "-a", app]);
        assert!(
            !releases.contains("Deploy"),
            "{app}: a failed build writes no deploy release:\n{releases}"
        );
    }
}
