//! Build scenarios shared by the process-runtime and runc-runtime integration tests. Each
//! scenario builds a small app end to end through `slipway_build::build` and checks the
//! output lines, the slug contents and the errors a user would see.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use slipway_build::{
    build, install_builtin_buildpacks, unpack_slug, BuildError, BuildOutput, BuildRequest,
    BuiltSlug, MountView,
};
use slipway_runtime::Runtime;

/// A runtime plus how it presents mounts and which user builds run as.
pub(crate) struct Harness {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) mount_view: MountView,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Keeps the scratch directories alive for the test's duration.
    pub(crate) root: tempfile::TempDir,
    /// Other directories to delete when the test ends (e.g. the runtime's state dir).
    pub(crate) keep_alive: Vec<tempfile::TempDir>,
    counter: Mutex<u32>,
}

/// One app's directories inside the harness root.
pub(crate) struct AppDirs {
    pub(crate) source: PathBuf,
    pub(crate) cache: PathBuf,
    pub(crate) slugs: PathBuf,
    pub(crate) work: PathBuf,
}

impl Harness {
    pub(crate) fn new(
        runtime: Arc<dyn Runtime>,
        mount_view: MountView,
        uid: u32,
        gid: u32,
    ) -> Self {
        let root = tempfile::Builder::new()
            .prefix("slipway-build-test-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        install_builtin_buildpacks(&root.path().join("buildpacks")).expect("install buildpacks");
        Harness {
            runtime,
            mount_view,
            uid,
            gid,
            root,
            keep_alive: Vec::new(),
            counter: Mutex::new(0),
        }
    }

    pub(crate) fn buildpacks_dir(&self) -> PathBuf {
        self.root.path().join("buildpacks")
    }

    /// Fresh directories for an app named `app` (the cache dir is shared per app name).
    pub(crate) fn dirs(&self, app: &str) -> AppDirs {
        let n = {
            let mut counter = self.counter.lock().expect("lock");
            *counter += 1;
            *counter
        };
        let base = self.root.path().join(app);
        let dirs = AppDirs {
            source: base.join(format!("src-{n}")),
            cache: base.join("cache"),
            slugs: base.join("slugs"),
            work: base.join(format!("work-{n}")),
        };
        fs::create_dir_all(&dirs.source).expect("mkdir source");
        dirs
    }

    /// How a build script sees `dirs.source`.
    pub(crate) fn app_path(&self, dirs: &AppDirs) -> String {
        match self.mount_view {
            MountView::Container => "/app".to_string(),
            MountView::Host => dirs.source.display().to_string(),
        }
    }

    pub(crate) fn request(&self, app: &str, dirs: &AppDirs) -> BuildRequest {
        let n = *self.counter.lock().expect("lock");
        BuildRequest {
            app: app.to_string(),
            source_dir: dirs.source.clone(),
            cache_dir: dirs.cache.clone(),
            config_vars: BTreeMap::new(),
            buildpacks_dir: self.buildpacks_dir(),
            buildpacks: Vec::new(),
            slug_dir: dirs.slugs.clone(),
            work_dir: dirs.work.clone(),
            uid: self.uid,
            gid: self.gid,
            stack: "host".to_string(),
            source_version: None,
            rootfs: slipway_runtime::Rootfs::Host,
            build_id: format!("b{n}-{}", std::process::id()),
            mount_view: self.mount_view,
            step_timeout: None,
            build_timeout: None,
            limits: Default::default(),
            max_slug_bytes: None,
            platform_env: BTreeMap::new(),
        }
    }

    /// Runs a build, returning its result and every output line.
    pub(crate) async fn run(
        &self,
        request: &BuildRequest,
    ) -> (Result<BuiltSlug, BuildError>, Vec<String>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let output: BuildOutput = {
            let lines = lines.clone();
            Arc::new(move |line: &str| lines.lock().expect("lock").push(line.to_string()))
        };
        let result = build(self.runtime.as_ref(), request, output).await;
        let lines = lines.lock().expect("lock").clone();
        // Shown by the test harness only when a test fails.
        eprintln!("build output of {}:\n{}", request.app, lines.join("\n"));
        (result, lines)
    }

    /// Unpacks a slug into a fresh directory.
    pub(crate) fn unpack(&self, slug: &BuiltSlug) -> PathBuf {
        let n = {
            let mut counter = self.counter.lock().expect("lock");
            *counter += 1;
            *counter
        };
        let dest = self.root.path().join(format!("unpacked-{n}"));
        unpack_slug(&slug.path, &dest, self.uid, self.gid).expect("unpack slug");
        dest
    }
}

pub(crate) fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, contents).expect("write");
}

pub(crate) fn write_executable(path: &Path, contents: &str) {
    write(path, contents);
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A buildpack directory with the given scripts (mode 0755).
pub(crate) fn custom_buildpack(root: &Path, name: &str, scripts: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    for (script, body) in scripts {
        write_executable(&dir.join("bin").join(script), body);
    }
    for d in [root.to_path_buf(), dir.clone(), dir.join("bin")] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

fn has_line(lines: &[String], expected: &str) -> bool {
    lines.iter().any(|l| l == expected)
}

fn assert_line(lines: &[String], expected: &str) {
    assert!(
        has_line(lines, expected),
        "expected the line {expected:?} in the build output:\n{}",
        lines.join("\n")
    );
}

fn slug_files(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn types(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// A Procfile-only app: shell-script web process, `.slugignore` and `.git` pruned, output in
/// Heroku's format, slug content-addressed and unpackable.
pub(crate) async fn procfile_only_app(h: &Harness) {
    let dirs = h.dirs("procapp");
    write(
        &dirs.source.join("Procfile"),
        "web: ./web.sh\nworker: sleep 1000\n",
    );
    write_executable(
        &dirs.source.join("web.sh"),
        "#!/bin/bash\nexec python3 -m http.server \"$PORT\"\n",
    );
    write(&dirs.source.join(".slugignore"), "*.psd\n/docs\n");
    write(&dirs.source.join("art/logo.psd"), "big");
    write(&dirs.source.join("docs/manual.md"), "docs");
    write(
        &dirs.source.join("lib/docs/keep.txt"),
        "not at the root, kept",
    );
    write(&dirs.source.join(".git/HEAD"), "ref: refs/heads/main\n");

    let request = h.request("procapp", &dirs);
    let (result, lines) = h.run(&request).await;
    let slug = result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", lines.join("\n")));

    assert_eq!(
        lines[0],
        "-----> Building on the host stack (this server's own system directories)"
    );
    assert_line(&lines, "-----> Procfile app detected");
    assert_line(&lines, "-----> Discovering process types");
    assert_line(&lines, "       Procfile declares types -> web, worker");
    assert_line(&lines, "-----> Compressing...");
    assert!(
        lines.last().expect("lines").starts_with("       Done: "),
        "{lines:?}"
    );
    assert_eq!(
        slug.process_types,
        types(&[("web", "./web.sh"), ("worker", "sleep 1000")])
    );
    assert_eq!(slug.buildpack_description, "Procfile");

    // Content-addressed, checksum over the compressed file.
    let hex = slug
        .checksum
        .strip_prefix("SHA256:")
        .expect("SHA256: prefix");
    assert_eq!(slug.path, dirs.slugs.join(format!("{hex}.tgz")));
    assert_eq!(slug.size, fs::metadata(&slug.path).expect("slug").len());
    assert_eq!(slug_files(&dirs.slugs), vec![slug.path.clone()]);

    let app = h.unpack(&slug);
    assert!(app.join("Procfile").is_file());
    let mode = fs::metadata(app.join("web.sh"))
        .expect("web.sh")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "executable bit kept");
    assert!(!app.join("art/logo.psd").exists(), ".slugignore'd");
    assert!(!app.join("docs").exists(), ".slugignore'd");
    assert!(
        app.join("lib/docs/keep.txt").exists(),
        "anchored pattern only at root"
    );
    assert!(!app.join(".git").exists(), ".git removed");
}

/// Builds a wheel by hand (a zip with the package and its dist-info), so pip can install it
/// with no index and no build backend.
fn make_wheel(vendor: &Path) {
    fs::create_dir_all(vendor).expect("mkdir vendor");
    let script = r#"
import sys, zipfile
path = sys.argv[1] + "/slipwaydemo-1.0-py3-none-any.whl"
files = {
    "slipwaydemo/__init__.py": "VALUE = 'hello from slipwaydemo'\n",
    "slipwaydemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: slipwaydemo\nVersion: 1.0\n",
    "slipwaydemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
records = [name + ",," for name in files] + ["slipwaydemo-1.0.dist-info/RECORD,,"]
files["slipwaydemo-1.0.dist-info/RECORD"] = "\n".join(records) + "\n"
with zipfile.ZipFile(path, "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
"#;
    let status = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(vendor)
        .status()
        .expect("run python3");
    assert!(status.success(), "making the wheel failed");
}

/// A Python app whose requirements.txt installs a vendored wheel offline, configured through
/// PIP_FIND_LINKS / PIP_NO_INDEX config vars. Returns the unpacked slug.
pub(crate) async fn python_app_offline(h: &Harness) -> PathBuf {
    let dirs = h.dirs("pyapp");
    write(
        &dirs.source.join("requirements.txt"),
        "# pinned\nslipwaydemo==1.0\n",
    );
    write(
        &dirs.source.join("app.py"),
        "import slipwaydemo\nprint(slipwaydemo.VALUE)\n",
    );
    make_wheel(&dirs.source.join("vendor"));

    let mut request = h.request("pyapp", &dirs);
    request.config_vars = BTreeMap::from([
        ("PIP_NO_INDEX".to_string(), "1".to_string()),
        (
            "PIP_FIND_LINKS".to_string(),
            format!("{}/vendor", h.app_path(&dirs)),
        ),
        // Not exported by the buildpack: must not break the build.
        ("PATH".to_string(), "/nonexistent".to_string()),
    ]);
    let (result, lines) = h.run(&request).await;
    let slug = result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", lines.join("\n")));

    assert_line(&lines, "-----> Python app detected");
    assert_line(&lines, "-----> Installing requirements with pip");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("       ")
                && l.contains("Successfully installed slipwaydemo-1.0")),
        "pip output indented:\n{}",
        lines.join("\n")
    );
    // No Procfile and an app.py: the buildpack's default web process.
    assert_line(&lines, "       Procfile declares types     -> (none)");
    assert_line(&lines, "       Default types for buildpack -> web");
    assert_eq!(slug.process_types, types(&[("web", "python3 app.py")]));
    assert_eq!(slug.buildpack_description, "Python");
    assert!(
        dirs.cache.join("pip").is_dir(),
        "pip cache kept in the cache dir"
    );

    let app = h.unpack(&slug);
    let profile = fs::read_to_string(app.join(".profile.d/python.sh")).expect("python.sh");
    assert!(profile.contains("$HOME/.heroku/python/bin"), "{profile}");
    let output = Command::new(app.join(".heroku/python/bin/python"))
        .args(["-c", "import slipwaydemo; print(slipwaydemo.VALUE)"])
        .output()
        .expect("run the venv's python");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "hello from slipwaydemo"
    );
    app
}

/// Nothing to detect: the error lists what each built-in looked for; no slug is written.
pub(crate) async fn no_matching_buildpack(h: &Harness) {
    let dirs = h.dirs("emptyapp");
    write(&dirs.source.join("README.md"), "nothing to see\n");
    let request = h.request("emptyapp", &dirs);
    let (result, _lines) = h.run(&request).await;
    let error = result.expect_err("nothing should be detected");
    assert!(matches!(error, BuildError::NoBuildpack { .. }), "{error}");
    let message = error.to_string();
    for needle in [
        "No default language could be detected for this app",
        "requirements.txt, setup.py or pyproject.toml (Python)",
        "package.json (Node.js)",
        "a Procfile (Procfile-only apps)",
    ] {
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    assert!(slug_files(&dirs.slugs).is_empty());
}

/// An explicit buildpack whose detect rejects the app.
pub(crate) async fn explicit_buildpack_not_compatible(h: &Harness) {
    let dirs = h.dirs("wrongbp");
    write(&dirs.source.join("requirements.txt"), "\n");
    let mut request = h.request("wrongbp", &dirs);
    request.buildpacks = vec!["heroku/nodejs".to_string()];
    let (result, _lines) = h.run(&request).await;
    let error = result.expect_err("nodejs must not accept a Python app");
    assert!(matches!(error, BuildError::NotCompatible { .. }), "{error}");
    assert!(error.to_string().contains("no package.json"), "{error}");
}

/// A custom buildpack whose compile exits 1: Heroku's "failed to compile" error, compile
/// output streamed, no slug written.
pub(crate) async fn compile_failure(h: &Harness) {
    let dirs = h.dirs("failapp");
    write(&dirs.source.join("index.txt"), "x");
    let buildpack = custom_buildpack(
        &h.root.path().join("custom-failing"),
        "failing",
        &[
            ("detect", "#!/bin/sh\necho Failing\n"),
            (
                "compile",
                "#!/bin/sh\necho '-----> About to fail'\necho 'oops on stderr' >&2\nexit 1\n",
            ),
        ],
    );
    let mut request = h.request("failapp", &dirs);
    request.buildpacks = vec![buildpack.display().to_string()];
    let (result, lines) = h.run(&request).await;
    let error = result.expect_err("compile fails");
    assert!(matches!(error, BuildError::CompileFailed { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("Push rejected, failed to compile Failing app"),
        "{error}"
    );
    assert_line(&lines, "-----> Failing app detected");
    assert_line(&lines, "-----> About to fail");
    assert_line(&lines, "oops on stderr");
    assert!(slug_files(&dirs.slugs).is_empty(), "no slug written");
}

/// A Procfile that cannot be parsed fails the build with its line number.
pub(crate) async fn bad_procfile(h: &Harness) {
    let dirs = h.dirs("badproc");
    write(
        &dirs.source.join("Procfile"),
        "web: ./serve\nworker python w.py\n",
    );
    let request = h.request("badproc", &dirs);
    let (result, _lines) = h.run(&request).await;
    let error = result.expect_err("bad Procfile");
    assert!(matches!(error, BuildError::Procfile { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("Procfile line 2"), "{message}");
    assert!(message.contains("worker python w.py"), "{message}");
    assert!(slug_files(&dirs.slugs).is_empty());
}

/// The cache dir persists between two builds of the same app; config vars arrive in ENV_DIR;
/// the build environment holds nothing of the host's.
pub(crate) async fn cache_env_and_isolation(h: &Harness) {
    let buildpack = custom_buildpack(
        &h.root.path().join("custom-counting"),
        "counting",
        &[
            ("detect", "#!/bin/sh\necho Counting\n"),
            (
                "compile",
                r#"#!/bin/bash
set -euo pipefail
build="$1"; cache="$2"; env_dir="$3"
count=$(cat "$cache/count" 2>/dev/null || echo 0)
count=$((count + 1))
echo "$count" > "$cache/count"
echo "-----> Build number $count"
cp "$env_dir/GREETING" "$build/greeting.txt"
env | sort > "$build/build-env.txt"
id -u > "$build/build-uid.txt"
"#,
            ),
            (
                "release",
                "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: ./serve --port $PORT\\n'\n",
            ),
        ],
    );
    let mut last_slug = None;
    for expected in 1..=2 {
        let dirs = h.dirs("cacheapp");
        write(&dirs.source.join("Procfile"), "worker: ./work\n");
        let mut request = h.request("cacheapp", &dirs);
        request.buildpacks = vec![buildpack.display().to_string()];
        request.config_vars = BTreeMap::from([("GREETING".to_string(), "hi there".to_string())]);
        let (result, lines) = h.run(&request).await;
        let slug = result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", lines.join("\n")));
        assert_line(&lines, &format!("-----> Build number {expected}"));
        // The Procfile adds to (and would override) the buildpack's defaults.
        assert_eq!(
            slug.process_types,
            types(&[("web", "./serve --port $PORT"), ("worker", "./work")])
        );
        last_slug = Some(slug);
    }
    let app = h.unpack(&last_slug.expect("slug"));
    assert_eq!(
        fs::read_to_string(app.join("greeting.txt")).expect("greeting"),
        "hi there"
    );
    let env = fs::read_to_string(app.join("build-env.txt")).expect("env");
    assert!(env.contains("STACK=host\n"), "{env}");
    assert!(env.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"), "{env}");
    assert!(
        !env.contains("GREETING"),
        "config vars are not exported: {env}"
    );
    assert!(
        !env.contains("CARGO"),
        "no host environment leaks in: {env}"
    );
}

/// A compile step that hangs is stopped after the step timeout; no slug, no env dir left.
pub(crate) async fn step_timeout(h: &Harness) {
    let dirs = h.dirs("slowapp");
    write(&dirs.source.join("index.txt"), "x");
    let buildpack = custom_buildpack(
        &h.root.path().join("custom-slow"),
        "slow",
        &[
            ("detect", "#!/bin/sh\necho Slow\n"),
            (
                "compile",
                "#!/bin/sh\necho '-----> Sleeping'\nexec sleep 600\n",
            ),
        ],
    );
    let mut request = h.request("slowapp", &dirs);
    request.buildpacks = vec![buildpack.display().to_string()];
    request.step_timeout = Some(std::time::Duration::from_secs(2));
    request.config_vars = BTreeMap::from([("SECRET".to_string(), "s3cr3t".to_string())]);
    let (result, lines) = h.run(&request).await;
    let error = result.expect_err("the step times out");
    assert!(matches!(error, BuildError::TimedOut { .. }), "{error}");
    assert!(
        error.to_string().contains("did not finish within 2s"),
        "{error}"
    );
    assert_line(&lines, "-----> Sleeping");
    assert!(slug_files(&dirs.slugs).is_empty());
    assert!(
        !dirs.work.join("env").exists(),
        "config var values are not left behind"
    );
    let running = h.runtime.list().await.expect("list containers");
    assert!(
        running.iter().all(|c| !c.id.contains("slowapp")),
        "the timed-out container is gone: {running:?}"
    );
}

/// A build whose steps each fit their own limit but together outlast the build's timeout is
/// stopped with "Build timed out"; no slug, no container left.
pub(crate) async fn build_timeout(h: &Harness) {
    let dirs = h.dirs("slowbuild");
    write(&dirs.source.join("index.txt"), "x");
    let buildpack = custom_buildpack(
        &h.root.path().join("custom-slowbuild"),
        "slowbuild",
        &[
            ("detect", "#!/bin/sh\nsleep 1\necho Slow\n"),
            (
                "compile",
                "#!/bin/sh\necho '-----> Sleeping'\nexec sleep 600\n",
            ),
        ],
    );
    let mut request = h.request("slowbuild", &dirs);
    request.buildpacks = vec![buildpack.display().to_string()];
    request.step_timeout = Some(std::time::Duration::from_secs(60));
    request.build_timeout = Some(std::time::Duration::from_secs(3));
    let started = std::time::Instant::now();
    let (result, lines) = h.run(&request).await;
    let error = result.expect_err("the build times out");
    assert!(matches!(error, BuildError::BuildTimedOut { .. }), "{error}");
    assert!(
        error.to_string().contains("Build timed out") && error.to_string().contains("3 seconds"),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_line(&lines, "-----> Sleeping");
    assert!(slug_files(&dirs.slugs).is_empty());
    let running = h.runtime.list().await.expect("list containers");
    assert!(
        running.iter().all(|c| !c.id.contains("slowbuild")),
        "the timed-out container is gone: {running:?}"
    );
}

/// A buildpack whose bin/release prints more than 1 MB fails the build: its output is tenant
/// input, read up to the cap only.
pub(crate) async fn release_output_cap(h: &Harness) {
    let dirs = h.dirs("chattyrelease");
    write(&dirs.source.join("index.txt"), "x");
    let buildpack = custom_buildpack(
        &h.root.path().join("custom-chattyrelease"),
        "chattyrelease",
        &[
            ("detect", "#!/bin/sh\necho Chatty\n"),
            ("compile", "#!/bin/sh\nexit 0\n"),
            (
                "release",
                "#!/bin/sh\necho 'default_process_types:'\nyes '  # padding padding padding' | head -c 3000000\n",
            ),
        ],
    );
    let mut request = h.request("chattyrelease", &dirs);
    request.buildpacks = vec![buildpack.display().to_string()];
    let (result, _lines) = h.run(&request).await;
    let error = result.expect_err("the release output is over the cap");
    assert!(
        matches!(error, BuildError::ReleaseOutputTooLarge { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("more than 1024 KB"), "{error}");
    assert!(slug_files(&dirs.slugs).is_empty());
}

/// Three buildpacks in order, written the way public classic buildpacks are: the first
/// writes `$BUILDPACK_DIR/export` and has `bin/report`; the second (a null buildpack: no
/// `bin/release`) sees the exported variable in its compile; the last's `bin/release`
/// supplies the default process types (with `config_vars` kept as `.profile.d` defaults and
/// `addons` reported). `STACK`, `SOURCE_VERSION` and `REQUEST_ID` reach every compile.
pub(crate) async fn multi_buildpack_export_and_report(h: &Harness) {
    let root = h.root.path().join("custom-multi");
    let exporter = custom_buildpack(
        &root,
        "exporter",
        &[
            ("detect", "#!/bin/sh\necho Exporter\n"),
            (
                "compile",
                r#"#!/usr/bin/env bash
set -euo pipefail
BUILDPACK_DIR=$(cd "$(dirname "$0")"; cd ..; pwd)
echo "-----> Installing the exporter tool"
mkdir -p "$1/.exporter/bin"
printf '#!/bin/sh\necho tool ran\n' > "$1/.exporter/bin/exporter-tool"
chmod +x "$1/.exporter/bin/exporter-tool"
echo "export EXPORTED_GREETING=\"hello from exporter\"" > "$BUILDPACK_DIR/export"
echo "export PATH=\"$1/.exporter/bin:\$PATH\"" >> "$BUILDPACK_DIR/export"
echo "$SOURCE_VERSION $STACK" > "$1/exporter-saw.txt"
"#,
            ),
            (
                "report",
                "#!/bin/sh\necho 'exporter_version: 1.2.3'\necho \"stack: $STACK\"\n",
            ),
            (
                "release",
                "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: exporter-web\\n'\n",
            ),
        ],
    );
    let null = custom_buildpack(
        &root,
        "null",
        &[
            ("detect", "#!/bin/sh\necho Null\n"),
            (
                "compile",
                r#"#!/usr/bin/env bash
set -euo pipefail
echo "-----> Null buildpack sees: ${EXPORTED_GREETING:-nothing}"
exporter-tool
echo "${EXPORTED_GREETING:-nothing}" > "$1/null-saw.txt"
echo "${REQUEST_ID:-none}" > "$1/request-id.txt"
"#,
            ),
        ],
    );
    let last = custom_buildpack(
        &root,
        "last",
        &[
            ("detect", "#!/bin/sh\necho Last\n"),
            (
                "compile",
                "#!/bin/sh\necho \"-----> Last sees: ${EXPORTED_GREETING:-nothing}\"\n",
            ),
            (
                "release",
                "#!/bin/sh\nprintf -- '---\\naddons:\\n  - heroku-postgresql\\nconfig_vars:\\n  LANG: en_US.UTF-8\\ndefault_process_types:\\n  web: ./last-web\\n  clock: ./tick\\n'\n",
            ),
        ],
    );
    let dirs = h.dirs("multiapp");
    write(&dirs.source.join("index.txt"), "x");
    let mut request = h.request("multiapp", &dirs);
    request.source_version = Some("0123456789abcdef0123456789abcdef01234567".to_string());
    request.buildpacks = [exporter, null, last]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let (result, lines) = h.run(&request).await;
    let slug = result.unwrap_or_else(|e| panic!("build failed: {e}\n{}", lines.join("\n")));
    assert_line(&lines, "-----> Exporter app detected");
    assert_line(&lines, "-----> Null app detected");
    assert_line(&lines, "-----> Null buildpack sees: hello from exporter");
    assert_line(&lines, "tool ran");
    assert_line(&lines, "-----> Last sees: hello from exporter");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Warning: buildpack last asks for the add-ons heroku-postgresql")),
        "{lines:?}"
    );
    // The last buildpack's defaults, not the first's.
    assert_eq!(
        slug.process_types,
        types(&[("clock", "./tick"), ("web", "./last-web")])
    );
    assert_eq!(slug.buildpack_description, "Last");
    assert_eq!(
        slug.reports,
        vec![slipway_build::BuildpackReport {
            buildpack: "exporter".to_string(),
            entries: types(&[("exporter_version", "1.2.3"), ("stack", "host")]),
        }]
    );
    let app = h.unpack(&slug);
    assert_eq!(
        fs::read_to_string(app.join("exporter-saw.txt")).expect("exporter-saw"),
        "0123456789abcdef0123456789abcdef01234567 host\n"
    );
    assert_eq!(
        fs::read_to_string(app.join("null-saw.txt")).expect("null-saw"),
        "hello from exporter\n"
    );
    assert_eq!(
        fs::read_to_string(app.join("request-id.txt")).expect("request-id"),
        format!("{}\n", request.build_id)
    );
    let defaults = fs::read_to_string(app.join(".profile.d/000-buildpack-config-vars.sh"))
        .expect("config var defaults kept in .profile.d");
    assert!(defaults.contains("export LANG='en_US.UTF-8'"), "{defaults}");
    // The installed buildpack is untouched: the export went to the build's own copy.
    assert!(!root.join("exporter/export").exists());
}

/// An app with a build.sbt and a Procfile: only the generic Procfile buildpack detects it, and
/// no buildpack here builds Scala, so the build fails naming the file and what to do.
pub(crate) async fn language_without_buildpack(h: &Harness) {
    let dirs = h.dirs("rubyapp");
    write(
        &dirs.source.join("build.sbt"),
        "scalaVersion := \"3.3.1\"\n",
    );
    write(
        &dirs.source.join("Procfile"),
        "web: java -jar target/app.jar\n",
    );
    let request = h.request("rubyapp", &dirs);
    let (result, _lines) = h.run(&request).await;
    let error = result.expect_err("a Scala app cannot be built here");
    assert!(
        matches!(error, BuildError::LanguageWithoutBuildpack { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(
            "Found build.sbt (Scala) but no buildpack for Scala is available. Set one with `slipway buildpacks:set URL`"
        ),
        "{message}"
    );
    assert!(slug_files(&dirs.slugs).is_empty());
}
