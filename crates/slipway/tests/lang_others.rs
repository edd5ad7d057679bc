//! End to end: apps in Go, Ruby, PHP and static sites, each detected by its built-in buildpack,
//! built with the stack's toolchain and served through the router, pushed with the real git
//! client; and for each a failing variant whose message says what to do.
//!
//! The toolchains are the stack's (Debian's `golang-go`, `ruby` with `ruby-bundler`, `php-cli`
//! with `php-fpm` and `composer`, `nginx`; `.ci/run` installs them). No module proxy or gem
//! server is reachable from this machine, so the Go app uses only the standard library and the
//! Ruby app vendors its gem in `vendor/cache`, as the buildpacks tell users to.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{commit_all, repo, text, Server};

/// The stack's tools these apps need; a machine without them cannot run this test.
fn missing_tools() -> Vec<&'static str> {
    ["go", "ruby", "bundle", "gem", "php", "composer", "nginx"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .collect()
}

macro_rules! require_tools {
    () => {
        require_runc!();
        let missing = missing_tools();
        if !missing.is_empty() {
            eprintln!(
                "SKIPPED: the stack lacks {missing:?}; install golang-go ruby ruby-bundler php-cli \
                 php-fpm composer nginx (as .ci/run does)"
            );
            return;
        }
    };
}

const GO_MAIN: &str = r#"package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "go says hi from %s on %s\n", os.Getenv("DYNO"), runtime.Version())
	})
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
"#;

const RUBY_WEB: &str = r##"require "socket"
require "greeting"
server = TCPServer.new("0.0.0.0", Integer(ENV.fetch("PORT")))
loop do
  client = server.accept
  while (line = client.gets) && line != "\r\n"; end
  body = "#{Greeting.hello} on ruby #{RUBY_VERSION} in #{ENV['RACK_ENV']}\n"
  client.write "HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}"
  client.close
end
"##;

const GEMFILE_LOCK: &str = "GEM
  remote: https://rubygems.org/
  specs:
    greeting (1.0.0)

PLATFORMS
  ruby

DEPENDENCIES
  greeting (= 1.0.0)
";

/// A gem of the test's own, built with the stack's `gem build`, as `greeting-1.0.0.gem`.
fn build_gem(dir: &Path) {
    std::fs::create_dir_all(dir.join("lib")).expect("mkdir");
    std::fs::write(
        dir.join("greeting.gemspec"),
        "Gem::Specification.new do |s|\n  s.name = \"greeting\"\n  s.version = \"1.0.0\"\n  \
         s.summary = \"a vendored gem\"\n  s.authors = [\"slipway\"]\n  s.license = \"MIT\"\n  \
         s.files = [\"lib/greeting.rb\"]\nend\n",
    )
    .expect("write gemspec");
    std::fs::write(
        dir.join("lib/greeting.rb"),
        "module Greeting\n  def self.hello = \"hello from a vendored gem\"\nend\n",
    )
    .expect("write gem source");
    let built = Command::new("gem")
        .args(["build", "greeting.gemspec"])
        .current_dir(dir)
        .output()
        .expect("run gem build");
    assert!(built.status.success(), "gem build: {}", text(&built));
}

fn push_expecting(server: &Server, app: &str, dir: &Path, success: bool) -> String {
    let push: Output = server.push(app, dir);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_ruby_php_and_static_apps_build_with_their_buildpacks_and_serve() {
    require_tools!();
    let server = Server::start();
    for app in ["gosite", "rubysite", "phpsite", "staticsite"] {
        server.cli_ok(&["apps:create", app]);
    }

    let go = repo(&[
        ("go.mod", "module example.com/hello-web\n\ngo 1.19\n"),
        ("main.go", GO_MAIN),
        ("cmd/worker/main.go", "package main\n\nfunc main() {}\n"),
    ]);
    let ruby = repo(&[
        (
            "Gemfile",
            "source \"https://rubygems.org\"\ngem \"greeting\", \"1.0.0\"\n",
        ),
        ("Gemfile.lock", GEMFILE_LOCK),
        ("web.rb", RUBY_WEB),
        ("Procfile", "web: bundle exec ruby web.rb\n"),
    ]);
    let gem_dir = tempfile::tempdir().expect("temp dir");
    build_gem(gem_dir.path());
    std::fs::create_dir_all(ruby.path().join("vendor/cache")).expect("mkdir vendor/cache");
    std::fs::copy(
        gem_dir.path().join("greeting-1.0.0.gem"),
        ruby.path().join("vendor/cache/greeting-1.0.0.gem"),
    )
    .expect("vendor the gem");
    commit_all(ruby.path(), "vendor the gem");
    let php = repo(&[
        ("composer.json", "{\"require\": {\"php\": \">=8.0\"}}\n"),
        (
            "public/index.php",
            "<?php echo 'php computes ', 6 * 7, ' for ', $_SERVER['REQUEST_URI'], \"\\n\";\n",
        ),
        ("secret.txt", "outside the document root\n"),
        ("Procfile", "web: heroku-php-nginx public/\n"),
    ]);
    let site = repo(&[
        (
            "static.json",
            r#"{"root": "dist/", "clean_urls": true, "error_page": "404.html",
                "redirects": {"/old": {"url": "/about", "status": 302}},
                "headers": {"/about": {"X-Served-By": "slipway-static"}},
                "routes": {"/app/**": "index.html"}}"#,
        ),
        ("dist/index.html", "<h1>static home</h1>\n"),
        ("dist/about.html", "<h1>about us</h1>\n"),
        ("dist/404.html", "<h1>lost</h1>\n"),
    ]);

    // The four builds at once, as four users would push.
    let outputs: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = [
            ("gosite", go.path()),
            ("rubysite", ruby.path()),
            ("phpsite", php.path()),
            ("staticsite", site.path()),
        ]
        .into_iter()
        .map(|(app, dir)| {
            let server = &server;
            scope.spawn(move || push_expecting(server, app, dir, true))
        })
        .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("push thread"))
            .collect()
    });
    let [go_out, ruby_out, php_out, static_out] = &outputs[..] else {
        unreachable!("four pushes")
    };

    for expected in [
        "remote: -----> Go app detected",
        "remote: -----> Using go1.",
        "remote:        Installed: hello-web worker",
        "remote:        Default types for buildpack -> web",
    ] {
        assert!(go_out.contains(expected), "lacks {expected:?}:\n{go_out}");
    }
    let body = server.wait_for_200("gosite", "/").await;
    assert!(body.starts_with("go says hi from web.1 on go1."), "{body}");

    for expected in [
        "remote: -----> Ruby app detected",
        "remote: -----> Using Ruby version: ruby-",
        "(from vendor/cache)",
        "Installing greeting 1.0.0",
    ] {
        assert!(
            ruby_out.contains(expected),
            "lacks {expected:?}:\n{ruby_out}"
        );
    }
    let body = server.wait_for_200("rubysite", "/").await;
    assert!(
        body.starts_with("hello from a vendored gem on ruby ") && body.contains("in production"),
        "{body}"
    );

    for expected in [
        "remote: -----> PHP app detected",
        "remote:        - php (8.",
        "remote: -----> Installing dependencies...",
    ] {
        assert!(php_out.contains(expected), "lacks {expected:?}:\n{php_out}");
    }
    let body = server.wait_for_200("phpsite", "/some/path?x=1").await;
    assert_eq!(body, "php computes 42 for /some/path?x=1\n");
    // Outside the document root, a path reaches the front controller, never the file.
    let secret = server.get("phpsite", "/secret.txt").await;
    let secret = secret.text().await.expect("body");
    assert_eq!(secret, "php computes 42 for /secret.txt\n");
    let dotfile = server.get("phpsite", "/.htaccess").await;
    assert_eq!(dotfile.status(), 403, "dotfiles are refused");

    assert!(
        static_out.contains("remote: -----> Static HTML app detected"),
        "{static_out}"
    );
    assert_eq!(
        server.wait_for_200("staticsite", "/").await,
        "<h1>static home</h1>\n"
    );
    let about = server.get("staticsite", "/about").await;
    assert_eq!(about.status(), 200, "clean URLs serve about.html at /about");
    assert_eq!(
        about
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok()),
        Some("slipway-static")
    );
    assert_eq!(about.text().await.expect("body"), "<h1>about us</h1>\n");
    let old = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{}/old", server.router_port))
        .header("host", "staticsite.localhost")
        .send()
        .await
        .expect("request through the router");
    assert_eq!(old.status(), 302);
    assert_eq!(
        old.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/about")
    );
    let routed = server.get("staticsite", "/app/settings/profile").await;
    assert_eq!(routed.text().await.expect("body"), "<h1>static home</h1>\n");
    let missing = server.get("staticsite", "/nope").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.expect("body"), "<h1>lost</h1>\n");
}

/// An app that must fail to build: its name, its files and the lines its push must print.
type BrokenApp = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static [&'static str],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_go_ruby_php_and_static_apps_fail_with_what_to_do() {
    require_tools!();
    let server = Server::start();
    let cases: [BrokenApp; 5] = [
        (
            "go-too-new",
            vec![
                ("go.mod", "module example.com/x\n\ngo 1.99\n"),
                ("main.go", "package main\n\nfunc main() {}\n"),
            ],
            &[
                "go.mod asks for Go 1.99, which is not available.",
                "Available Go versions on the",
            ],
        ),
        (
            "go-syntax",
            vec![
                ("go.mod", "module example.com/x\n\ngo 1.19\n"),
                ("main.go", "package main\n\nfunc main() {\n"),
            ],
            &[
                "Failed to compile the Go app",
                "Push rejected, failed to compile Go app",
            ],
        ),
        (
            "ruby-unlocked",
            vec![("Gemfile", "source \"https://rubygems.org\"\ngem \"rack\"\n")],
            &["Gemfile.lock is required. Run bundle install locally, commit Gemfile.lock"],
        ),
        (
            "php-badjson",
            vec![("composer.json", "{\"require\": {\"php\": \">=8.0\",}}\n")],
            &["Your composer.json is not valid JSON. Run composer validate locally"],
        ),
        (
            "static-badroot",
            vec![("static.json", "{\"root\": \"build/\"}\n")],
            &["static.json: root build/ does not exist"],
        ),
    ];
    for (app, files, expected) in cases {
        server.cli_ok(&["apps:create", app]);
        let dir = repo(&files);
        let output = push_expecting(&server, app, dir.path(), false);
        for line in expected {
            assert!(output.contains(line), "{app}: lacks {line:?}:\n{output}");
        }
        let releases = server.cli_ok(&["releases", "-a", app]);
        assert!(
            !releases.contains("Deploy"),
            "{app}: a failed build writes no deploy release:\n{releases}"
        );
    }
}
