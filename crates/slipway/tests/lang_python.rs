//! End to end: Python apps built the way Heroku's Python buildpack builds them (issues 15 and
//! 16), pushed with the real git client and served through the router: pip, uv, Poetry and
//! Pipenv apps installing a real package from the package index (PyPI), a Django app whose
//! static file exists only because collectstatic ran, the cached rebuild that installs
//! nothing, the Python version an app asks for (from the stack, or downloaded from a runtime
//! source with checksums), `WEB_CONCURRENCY` by dyno size, and the failing variants a user
//! can act on (an out-of-date lockfile, a version that does not exist, a broken settings.py).
//!
//! The runtime source reachable here is the one the version test serves itself: a relocatable
//! CPython made from a pyenv install on this machine, in a network namespace of the test's
//! own. The upstream source (python-build-standalone's releases) is not reachable from here.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{commit_all, repo, text, Server};

/// The app every package manager sample serves: which `six` it imported, on which Python,
/// with which `WEB_CONCURRENCY`, and whether a development-only package was installed.
const APP_PY: &str = r#"import http.server, importlib.util, os, sys
import six
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        dev = importlib.util.find_spec("iniconfig") is not None
        body = f"six {six.__version__} python {sys.version.split()[0]} web_concurrency {os.environ.get('WEB_CONCURRENCY')} dev {dev}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

const PROCFILE: &str = "web: python app.py\n";

const UV_PYPROJECT: &str = include_str!("fixtures/python/uv/pyproject.toml");
const UV_LOCK: &str = include_str!("fixtures/python/uv/uv.lock");
const POETRY_PYPROJECT: &str = include_str!("fixtures/python/poetry/pyproject.toml");
const POETRY_LOCK: &str = include_str!("fixtures/python/poetry/poetry.lock");
const PIPFILE: &str = include_str!("fixtures/python/pipenv/Pipfile");
const PIPFILE_LOCK: &str = include_str!("fixtures/python/pipenv/Pipfile.lock");

const DJANGO_FILES: [(&str, &str); 8] = [
    (
        "manage.py",
        include_str!("fixtures/python/django/manage.py"),
    ),
    (
        "mysite/__init__.py",
        include_str!("fixtures/python/django/mysite/__init__.py"),
    ),
    (
        "mysite/settings.py",
        include_str!("fixtures/python/django/mysite/settings.py"),
    ),
    (
        "mysite/urls.py",
        include_str!("fixtures/python/django/mysite/urls.py"),
    ),
    (
        "mysite/wsgi.py",
        include_str!("fixtures/python/django/mysite/wsgi.py"),
    ),
    (
        "assets/hello.txt",
        include_str!("fixtures/python/django/assets/hello.txt"),
    ),
    (
        "requirements.txt",
        include_str!("fixtures/python/django/requirements.txt"),
    ),
    ("Procfile", include_str!("fixtures/python/django/Procfile")),
];

/// The body [`APP_PY`] answers with.
fn served(python: &str, web_concurrency: &str, dev: bool) -> String {
    let dev = if dev { "True" } else { "False" };
    format!("six 1.17.0 python {python} web_concurrency {web_concurrency} dev {dev}")
}

/// The stack's own Python version (Debian's python3 on this host).
fn stack_python_version() -> String {
    let output = Command::new("/usr/bin/python3")
        .args(["-c", "import platform; print(platform.python_version())"])
        .output()
        .expect("the stack's /usr/bin/python3");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Polls until the app answers `path` with exactly `expected` (a new release replaces the
/// old one's dynos a moment after the push returns).
async fn wait_for_body(server: &Server, app: &str, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(response) = server.request(reqwest::Method::GET, app, path).send().await {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status == 200 && body == expected {
                return;
            }
            last = format!("{status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{app}{path} never answered {expected:?} (last: {last})\napp log:\n{}",
        server.logs(app)
    );
}

/// Pushes and returns the output, asserting it succeeded.
fn push_ok(server: &Server, app: &str, dir: &Path) -> String {
    let push = server.push(app, dir);
    let output = text(&push);
    assert!(push.status.success(), "push failed:\n{output}");
    output
}

/// Pushes and returns the output, asserting the push was rejected.
fn push_rejected(server: &Server, app: &str, dir: &Path) -> String {
    let push = server.push(app, dir);
    let output = text(&push);
    assert!(!push.status.success(), "push should fail:\n{output}");
    output
}

fn assert_has(output: &str, needle: &str) {
    assert!(output.contains(needle), "missing {needle:?} in:\n{output}");
}

fn assert_lacks(output: &str, needle: &str) {
    assert!(
        !output.contains(needle),
        "unexpected {needle:?} in:\n{output}"
    );
}

fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pip_app_installs_from_pypi_rebuilds_from_cache_and_sizes_web_concurrency() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "pipapp"]);
    let stack = stack_python_version();
    let app = repo(&[
        ("requirements.txt", "six==1.17.0\n"),
        ("Procfile", PROCFILE),
        ("app.py", APP_PY),
    ]);

    let first = push_ok(&server, "pipapp", app.path());
    assert_has(&first, "remote: -----> Python app detected");
    assert_has(
        &first,
        &format!(
            "remote: -----> No Python version was specified. Using the stack's Python {stack}"
        ),
    );
    assert_has(&first, &format!("remote: -----> Installing Python {stack}"));
    assert_has(&first, "remote: -----> Installing requirements with pip");
    assert_has(&first, "Successfully installed six-1.17.0");
    // A standard-1X dyno has 512 MB: Heroku's WEB_CONCURRENCY for it is 2.
    wait_for_body(&server, "pipapp", "/", &served(&stack, "2", false)).await;

    // A push that changes no dependency installs nothing and still serves the package.
    write(app.path(), "app.py", &APP_PY.replace("six ", "six! "));
    commit_all(app.path(), "change the app, not its dependencies");
    let second = push_ok(&server, "pipapp", app.path());
    assert_has(&second, "remote: -----> Restoring cache");
    assert_has(
        &second,
        &format!("remote: -----> Using cached install of Python {stack}"),
    );
    assert_has(
        &second,
        "remote: -----> Skipping installation, as requirements.txt hasn't changed since last deploy.",
    );
    assert_lacks(&second, "Installing requirements with pip");
    assert_lacks(&second, "Collecting");
    let expected = served(&stack, "2", false).replace("six ", "six! ");
    wait_for_body(&server, "pipapp", "/", &expected).await;

    // WEB_CONCURRENCY follows the dyno size (1 GB: 4), and an app's own value wins.
    server.cli_ok(&["ps:type", "web=standard-2x", "-a", "pipapp"]);
    wait_for_body(
        &server,
        "pipapp",
        "/",
        &served(&stack, "4", false).replace("six ", "six! "),
    )
    .await;
    server.cli_ok(&["config:set", "WEB_CONCURRENCY=7", "-a", "pipapp"]);
    wait_for_body(
        &server,
        "pipapp",
        "/",
        &served(&stack, "7", false).replace("six ", "six! "),
    )
    .await;

    // A version the index doesn't have fails the build with pip's error and a hint, and the
    // running release keeps serving.
    write(app.path(), "requirements.txt", "six==99.0.0\n");
    commit_all(app.path(), "ask for a six that does not exist");
    let failed = push_rejected(&server, "pipapp", app.path());
    assert_has(&failed, "No matching distribution found for six==99.0.0");
    assert_has(&failed, "Error: Unable to install dependencies using pip.");
    assert_has(
        &failed,
        "check its spelling and version in requirements.txt",
    );
    wait_for_body(
        &server,
        "pipapp",
        "/",
        &served(&stack, "7", false).replace("six ", "six! "),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uv_app_syncs_the_lockfile_without_dev_groups_and_refuses_a_stale_one() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "uvapp"]);
    let stack = stack_python_version();
    let major_minor = stack.rsplit_once('.').expect("N.N.N").0.to_string();
    let app = repo(&[
        ("pyproject.toml", UV_PYPROJECT),
        ("uv.lock", UV_LOCK),
        (".python-version", &format!("{major_minor}\n")),
        ("Procfile", PROCFILE),
        ("app.py", APP_PY),
    ]);
    let output = push_ok(&server, "uvapp", app.path());
    assert_has(
        &output,
        &format!("remote: -----> Using Python {major_minor} specified in .python-version"),
    );
    assert_has(
        &output,
        &format!("remote: -----> Installing Python {stack}"),
    );
    assert_has(&output, "remote: -----> Installing uv 0.13.9");
    assert_has(
        &output,
        "remote: -----> Installing dependencies using 'uv sync --locked --no-default-groups'",
    );
    assert_lacks(&output, "pip install .");
    // six from the lockfile; iniconfig (the dev group) not installed.
    wait_for_body(&server, "uvapp", "/", &served(&stack, "2", false)).await;

    // A dependency added to pyproject.toml without `uv lock`: refused, saying what to run.
    write(
        app.path(),
        "pyproject.toml",
        &UV_PYPROJECT.replace(
            "dependencies = [\"six==1.17.0\"]",
            "dependencies = [\"six==1.17.0\", \"iniconfig\"]",
        ),
    );
    commit_all(app.path(), "add a dependency, forget uv lock");
    let stale = push_rejected(&server, "uvapp", app.path());
    assert_has(&stale, "remote: -----> Using cached uv 0.13.9");
    assert_has(&stale, "Error: Unable to install dependencies using uv.");
    assert_has(&stale, "The uv.lock file is out of date");
    assert_has(&stale, "Run 'uv lock' locally, commit the updated uv.lock");
    wait_for_body(&server, "uvapp", "/", &served(&stack, "2", false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poetry_app_installs_the_main_group_from_poetry_lock() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "poetryapp"]);
    let stack = stack_python_version();
    let app = repo(&[
        ("pyproject.toml", POETRY_PYPROJECT),
        ("poetry.lock", POETRY_LOCK),
        ("Procfile", PROCFILE),
        ("app.py", APP_PY),
    ]);
    let output = push_ok(&server, "poetryapp", app.path());
    // No .python-version: requires-python (>=3.11) picks the newest available.
    assert_has(
        &output,
        &format!("remote: -----> Using Python {stack}, the newest available that satisfies requires-python >=3.11 in pyproject.toml"),
    );
    assert_has(&output, "remote: -----> Installing Poetry 2.5.1");
    assert_has(
        &output,
        "remote: -----> Installing dependencies using 'poetry sync --only main --no-root'",
    );
    assert_has(&output, "Installing six (1.17.0)");
    wait_for_body(&server, "poetryapp", "/", &served(&stack, "2", false)).await;

    // A changed dependency without `poetry lock`: refused, saying what to run.
    write(
        app.path(),
        "pyproject.toml",
        &POETRY_PYPROJECT.replace("six==1.17.0", "six==1.16.0"),
    );
    commit_all(app.path(), "change a dependency, forget poetry lock");
    let stale = push_rejected(&server, "poetryapp", app.path());
    assert_has(&stale, "remote: -----> Using cached Poetry 2.5.1");
    assert_has(&stale, "The poetry.lock file is out of date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipenv_app_deploys_pipfile_lock_and_refuses_a_stale_one() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "pipenvapp"]);
    let stack = stack_python_version();
    let app = repo(&[
        ("Pipfile", PIPFILE),
        ("Pipfile.lock", PIPFILE_LOCK),
        ("Procfile", PROCFILE),
        ("app.py", APP_PY),
    ]);
    let output = push_ok(&server, "pipenvapp", app.path());
    // The Pipfile.lock's python_version (3.11) chooses the version.
    assert_has(
        &output,
        "remote: -----> Using Python 3.11 specified in Pipfile.lock",
    );
    assert_has(&output, "remote: -----> Installing Pipenv 2026.10.3");
    assert_has(
        &output,
        "remote: -----> Installing dependencies using 'pipenv install --deploy --system'",
    );
    wait_for_body(&server, "pipenvapp", "/", &served(&stack, "2", false)).await;

    write(
        app.path(),
        "Pipfile",
        &PIPFILE.replace(
            "six = \"==1.17.0\"",
            "six = \"==1.17.0\"\niniconfig = \"*\"",
        ),
    );
    commit_all(app.path(), "add a package, forget pipenv lock");
    let stale = push_rejected(&server, "pipenvapp", app.path());
    assert_has(&stale, "remote: -----> Using cached Pipenv 2026.10.3");
    assert_has(&stale, "The Pipfile.lock file is out of date");
    assert_has(&stale, "Run 'pipenv lock' locally");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_app_collects_static_files_and_a_broken_one_fails_with_heroku_hint() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "djangoapp"]);
    let app = repo(&DJANGO_FILES);
    let output = push_ok(&server, "djangoapp", app.path());
    assert_has(
        &output,
        "remote: -----> $ python manage.py collectstatic --noinput",
    );
    assert_has(&output, "1 static file copied to '/app/staticfiles'.");
    // The file is served from STATIC_ROOT, where only collectstatic puts it.
    wait_for_body(
        &server,
        "djangoapp",
        "/static/hello.txt",
        "collected by collectstatic\n",
    )
    .await;

    // A syntax error in the settings: collectstatic fails, the build fails with Heroku's hint.
    let settings = DJANGO_FILES[2].1;
    write(
        app.path(),
        "mysite/settings.py",
        &format!("{settings}\nDEBUG = (\n"),
    );
    commit_all(app.path(), "break the settings");
    let broken = push_rejected(&server, "djangoapp", app.path());
    assert_has(&broken, "SyntaxError");
    assert_has(
        &broken,
        "Error while running '$ python manage.py collectstatic --noinput'.",
    );
    assert_has(&broken, "$ heroku config:set DISABLE_COLLECTSTATIC=1");
    // The running release is untouched.
    wait_for_body(
        &server,
        "djangoapp",
        "/static/hello.txt",
        "collected by collectstatic\n",
    )
    .await;

    // The hint works: with DISABLE_COLLECTSTATIC the build skips it.
    server.cli_ok(&["config:set", "DISABLE_COLLECTSTATIC=1", "-a", "djangoapp"]);
    let skipped = push_ok(&server, "djangoapp", app.path());
    assert_has(
        &skipped,
        "remote: -----> Skipping Django collectstatic since the env var DISABLE_COLLECTSTATIC is set.",
    );
    assert_lacks(&skipped, "$ python manage.py collectstatic");
}

/// A runtime source the build containers can reach: an HTTP server in a network namespace
/// of the test's own, on a /30 routed from the host (build containers reach it through
/// their NAT like any outside address). Removed on drop.
struct RuntimeSource {
    namespace: String,
    server: Child,
    url: String,
}

impl Drop for RuntimeSource {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        text(&output)
    );
}

impl RuntimeSource {
    /// Serves `dir` at `http://10.215.N.2:8000/`.
    fn serve(dir: &Path) -> RuntimeSource {
        let n = std::process::id() % 250;
        let namespace = format!("slipway-pyrt-{}", std::process::id());
        let host_if = format!("spyrt{n}h");
        let ns_if = format!("spyrt{n}n");
        let _ = Command::new("ip")
            .args(["netns", "del", &namespace])
            .status();
        run("ip", &["netns", "add", &namespace]);
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ],
        );
        run("ip", &["link", "set", &ns_if, "netns", &namespace]);
        run(
            "ip",
            &["addr", "add", &format!("10.215.{n}.1/30"), "dev", &host_if],
        );
        run("ip", &["link", "set", &host_if, "up"]);
        let exec = ["netns", "exec", &namespace, "ip"];
        let address = format!("10.215.{n}.2/30");
        run(
            "ip",
            &[&exec[..], &["addr", "add", &address, "dev", &ns_if]].concat(),
        );
        run("ip", &[&exec[..], &["link", "set", &ns_if, "up"]].concat());
        run("ip", &[&exec[..], &["link", "set", "lo", "up"]].concat());
        let host = format!("10.215.{n}.2");
        let server = Command::new("ip")
            .args(["netns", "exec", &namespace, "/usr/bin/python3", "-m"])
            .args(["http.server", "8000", "--bind", &host, "--directory"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the runtime source's HTTP server");
        let source = RuntimeSource {
            namespace,
            server,
            url: format!("http://{host}:8000/SHA256SUMS"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((host.as_str(), 8000)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the runtime source never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        source
    }
}

/// A pyenv-built CPython 3.12 on this machine, if there is one.
fn pyenv_python_312() -> Option<(PathBuf, String)> {
    let versions = std::fs::read_dir("/root/.pyenv/versions").ok()?;
    let mut found: Vec<(PathBuf, String)> = versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy().to_string();
            let parts: Vec<&str> = name.split('.').collect();
            let plain = parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok());
            (plain && name.starts_with("3.12.") && entry.path().join("bin/python3.12").is_file())
                .then(|| (entry.path(), name))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Packs the pyenv install as python-build-standalone packs an `install_only` build (one
/// top-level `python/` directory) and writes a SHA256SUMS index for it into `www`. pyenv
/// links the interpreter to its libpython by absolute path; the path is rewritten in place
/// to `$ORIGIN/../lib` (shorter, padded with NULs), which makes the install relocatable.
fn pack_runtime(prefix: &Path, version: &str, www: &Path) {
    let stage = www.join("stage");
    std::fs::create_dir_all(stage.join("python")).expect("stage");
    let copy = format!(
        "tar -C '{}' --exclude=./lib/python3.12/test --exclude=__pycache__ --exclude='*.a' -cf - . | tar -C '{}' -xf -",
        prefix.display(),
        stage.join("python").display()
    );
    run("bash", &["-c", &copy]);
    let binary = stage.join("python/bin/python3.12");
    let mut bytes = std::fs::read(&binary).expect("read the interpreter");
    let old = format!("{}/lib", prefix.display()).into_bytes();
    let new = b"$ORIGIN/../lib";
    if let Some(at) = bytes.windows(old.len()).position(|w| w == old.as_slice()) {
        assert!(new.len() <= old.len());
        let mut patched = new.to_vec();
        patched.resize(old.len(), 0);
        bytes[at..at + old.len()].copy_from_slice(&patched);
        std::fs::write(&binary, bytes).expect("write the interpreter");
    }
    let name = format!("cpython-{version}+20990101-x86_64-unknown-linux-gnu-install_only.tar.gz");
    let pack = format!(
        "tar -C '{}' -cf - python | gzip -1 > '{}/{name}' && cd '{}' && sha256sum '{name}' > SHA256SUMS && rm -rf '{}'",
        stage.display(),
        www.display(),
        www.display(),
        stage.display()
    );
    run("bash", &["-c", &pack]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_version_comes_from_the_app_and_an_unavailable_one_is_refused() {
    require_runc!();
    let stack = stack_python_version();

    // With the default runtime source (unreachable from here): the stack's Python is the
    // only one available, a runtime.txt still works (with Heroku's deprecation warning),
    // and 3.14 is refused with the list.
    let server = Server::start();
    server.cli_ok(&["apps:create", "pyversion"]);
    let app = repo(&[
        ("requirements.txt", "six==1.17.0\n"),
        ("runtime.txt", &format!("python-{stack}\n")),
        ("Procfile", PROCFILE),
        ("app.py", APP_PY),
    ]);
    let output = push_ok(&server, "pyversion", app.path());
    assert_has(&output, "Warning: The runtime.txt file is deprecated.");
    assert_has(
        &output,
        &format!("remote: -----> Using Python {stack} specified in runtime.txt"),
    );
    wait_for_body(&server, "pyversion", "/", &served(&stack, "2", false)).await;

    std::fs::remove_file(app.path().join("runtime.txt")).expect("rm runtime.txt");
    write(app.path(), ".python-version", "# the newest Python\n3.14\n");
    commit_all(app.path(), "ask for 3.14");
    let refused = push_rejected(&server, "pyversion", app.path());
    assert_has(
        &refused,
        "Error: The requested Python version isn't available.",
    );
    assert_has(
        &refused,
        "Python 3.14 (specified in .python-version) is not available on the",
    );
    assert_has(
        &refused,
        "python-build-standalone/releases/download/20241016/SHA256SUMS",
    );
    assert_has(&refused, &format!("  {stack} (the stack's own Python)"));
    assert_lacks(&refused, "Installing Python");
    drop(server);

    // A runtime source this test serves itself, from a pyenv build if this machine has one.
    let Some((prefix, version)) = pyenv_python_312() else {
        eprintln!(
            "SKIPPED (partly): no pyenv CPython 3.12 under /root/.pyenv/versions to serve as a \
             runtime source; only the stack's Python was tested"
        );
        return;
    };
    let www = tempfile::tempdir().expect("www");
    pack_runtime(&prefix, &version, www.path());
    let source = RuntimeSource::serve(www.path());
    let server = Server::start_with(&["--runtime-source", &format!("python={}", source.url)]);
    server.cli_ok(&["apps:create", "pyversion"]);
    let app = repo(&[
        ("requirements.txt", "six==1.17.0\n"),
        (".python-version", "3.12\n"),
        ("Procfile", PROCFILE),
        ("app.py", APP_PY),
    ]);
    let output = push_ok(&server, "pyversion", app.path());
    assert_has(
        &output,
        "remote: -----> Using Python 3.12 specified in .python-version",
    );
    assert_has(
        &output,
        &format!("remote: -----> Installing Python {version}"),
    );
    assert_has(&output, "Successfully installed six-1.17.0");
    wait_for_body(&server, "pyversion", "/", &served(&version, "2", false)).await;

    // The list of available versions now names both.
    write(app.path(), ".python-version", "3.14\n");
    commit_all(app.path(), "ask for 3.14");
    let refused = push_rejected(&server, "pyversion", app.path());
    assert_has(&refused, &format!("Python runtime source: {}", source.url));
    assert_has(&refused, &format!("  {version}"));
    assert_has(&refused, &format!("  {stack} (the stack's own Python)"));
    wait_for_body(&server, "pyversion", "/", &served(&version, "2", false)).await;
}
