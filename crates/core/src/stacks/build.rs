//! Building a stack with debootstrap: the run image (`minbase` plus the manifest's run
//! packages), then, when the manifest lists build packages, the build image (a second
//! debootstrap with both lists, sharing the downloaded packages). Everything happens in
//! `<stacks>/.tmp/<id>` and is renamed to `<stacks>/<name>/<id>` only once complete; the
//! stack's `current.json` is then replaced atomically. A failure removes the temporary
//! directory (after unmounting what debootstrap left mounted in it) and changes nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use super::{BuiltStack, Manifest, StackOutput};
use crate::error::CoreError;

/// How long one debootstrap run may take before it is killed and the build fails (a cold
/// heroku-24 build on a slow mirror takes a few minutes; an hour means it hangs).
const DEBOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The longest progress line passed on; debootstrap's are short, a broken mirror's may not be.
const MAX_LINE: usize = 500;

/// The file every image carries naming its stack, variant and build id (dynos and builds can
/// read which stack they run on).
pub(crate) const MARKER_FILE: &str = "etc/slipway-stack";

pub(super) struct BuildRequest {
    pub(super) name: String,
    pub(super) manifest: Manifest,
    /// `<data>/stacks`.
    pub(super) stacks_dir: PathBuf,
    pub(super) package_cache: PathBuf,
}

fn failed(name: &str, what: impl std::fmt::Display) -> CoreError {
    CoreError::invalid(format!("Building the {name} stack failed: {what}"))
}

/// Builds the stack; see the module doc.
pub(super) async fn build(
    request: BuildRequest,
    output: StackOutput,
) -> Result<BuiltStack, CoreError> {
    let name = request.name.clone();
    let started = Instant::now();
    let id = Uuid::new_v4();
    let tmp_root = request.stacks_dir.join(".tmp");
    for dir in [&tmp_root, &request.package_cache] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| failed(&name, format!("cannot create {}: {e}", dir.display())))?;
    }
    // Leftovers of a server that died mid-build: nothing uses them (one build at a time).
    remove_tree(&tmp_root).await;
    tokio::fs::create_dir_all(&tmp_root)
        .await
        .map_err(|e| failed(&name, format!("cannot create {}: {e}", tmp_root.display())))?;
    let tmp = tmp_root.join(id.to_string());
    let result = build_into(&request, id, &tmp, &output).await;
    let built = match result {
        Ok(()) => finish(&request, id, &tmp, started).await,
        Err(error) => Err(error),
    };
    if built.is_err() {
        remove_tree(&tmp).await;
    }
    let built = built?;
    output(&format!(
        "-----> Built the {name} stack: id {id}, {:.0} s",
        built.build_seconds
    ));
    Ok(built)
}

async fn build_into(
    request: &BuildRequest,
    id: Uuid,
    tmp: &Path,
    output: &StackOutput,
) -> Result<(), CoreError> {
    let name = &request.name;
    let manifest = &request.manifest;
    tokio::fs::create_dir_all(tmp)
        .await
        .map_err(|e| failed(name, format!("cannot create {}: {e}", tmp.display())))?;
    output(&format!(
        "-----> Building the {name} stack (Debian {}, {} run packages{}) from {}",
        manifest.suite,
        manifest.run.len(),
        if manifest.build.is_empty() {
            String::new()
        } else {
            format!(", {} more for builds", manifest.build.len())
        },
        manifest.mirror
    ));
    output("-----> Run image");
    debootstrap(request, &manifest.run, &tmp.join("run"), output).await?;
    write_marker(name, "run", id, &tmp.join("run")).await?;
    if !manifest.build.is_empty() {
        output("-----> Build image");
        let mut all = manifest.run.clone();
        all.extend(manifest.build.iter().cloned());
        debootstrap(request, &all, &tmp.join("build"), output).await?;
        write_marker(name, "build", id, &tmp.join("build")).await?;
    }
    Ok(())
}

async fn write_marker(name: &str, variant: &str, id: Uuid, rootfs: &Path) -> Result<(), CoreError> {
    use std::os::unix::fs::PermissionsExt;
    let text = format!("STACK={name}\nVARIANT={variant}\nSTACK_ID={id}\n");
    let path = rootfs.join(MARKER_FILE);
    let error = |e: std::io::Error| failed(name, format!("cannot write {MARKER_FILE}: {e}"));
    tokio::fs::write(&path, text).await.map_err(error)?;
    // The server's umask is 077; the containers' users must read it, as the rest of /etc.
    tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(error)
}

/// Records the build and moves it into place.
async fn finish(
    request: &BuildRequest,
    id: Uuid,
    tmp: &Path,
    started: Instant,
) -> Result<BuiltStack, CoreError> {
    let name = &request.name;
    let built = BuiltStack {
        id,
        name: name.clone(),
        suite: request.manifest.suite.clone(),
        manifest_digest: request.manifest.digest.clone(),
        packages: request.manifest.run.clone(),
        build_packages: request.manifest.build.clone(),
        created_at: Utc::now(),
        build_seconds: started.elapsed().as_secs_f64(),
    };
    let record = serde_json::to_vec_pretty(&built)
        .map_err(|e| failed(name, format!("cannot record the build: {e}")))?;
    let io =
        |what: &'static str| move |e: std::io::Error| failed(name, format!("cannot {what}: {e}"));
    tokio::fs::write(tmp.join("stack.json"), &record)
        .await
        .map_err(io("record the build"))?;
    let stack_dir = request.stacks_dir.join(name);
    tokio::fs::create_dir_all(&stack_dir)
        .await
        .map_err(io("create the stack's directory"))?;
    tokio::fs::rename(tmp, stack_dir.join(id.to_string()))
        .await
        .map_err(io("move the build into place"))?;
    let current_tmp = stack_dir.join(format!(".current-{id}.json"));
    tokio::fs::write(&current_tmp, &record)
        .await
        .map_err(io("record the current build"))?;
    tokio::fs::rename(&current_tmp, stack_dir.join("current.json"))
        .await
        .map_err(io("record the current build"))?;
    Ok(built)
}

/// Unmounts whatever debootstrap left mounted below `dir` (`proc`, `sys` of a killed run)
/// before removing it: a recursive delete through a mounted `/proc` or `/sys` must not happen.
async fn remove_tree(dir: &Path) {
    let dir = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        slipway_runtime::unmount_leftovers(&dir);
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), %error, "could not remove a stack build's leftovers");
            }
        }
    })
    .await;
}

/// The debootstrap command line for `packages` into `target`.
pub(crate) fn debootstrap_args(
    manifest: &Manifest,
    packages: &[String],
    target: &Path,
    cache: &Path,
) -> Vec<String> {
    let mut args = vec!["--variant=minbase".to_string()];
    if !packages.is_empty() {
        args.push(format!("--include={}", packages.join(",")));
    }
    args.push(format!("--cache-dir={}", cache.display()));
    args.push(manifest.suite.clone());
    args.push(target.display().to_string());
    args.push(manifest.mirror.clone());
    args
}

async fn debootstrap(
    request: &BuildRequest,
    packages: &[String],
    target: &Path,
    output: &StackOutput,
) -> Result<(), CoreError> {
    let name = &request.name;
    let args = debootstrap_args(&request.manifest, packages, target, &request.package_cache);
    // The server runs with umask 077; the image's directories must be readable by the
    // containers' unprivileged users, as a distribution's are.
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022; exec debootstrap \"$@\"")
        .arg("debootstrap")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        failed(
            name,
            format!("cannot run debootstrap ({e}); install it on the server (apt-get install debootstrap)"),
        )
    })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let pump = |stream: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        let output = output.clone();
        let tail = tail.clone();
        async move {
            let Some(stream) = stream else { return };
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line: String = line.chars().take(MAX_LINE).collect();
                output(&format!("       {line}"));
                let mut tail = tail.lock().expect("the tail lock is never poisoned");
                tail.push(line);
                if tail.len() > 5 {
                    tail.remove(0);
                }
            }
        }
    };
    let out = pump(stdout.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>));
    let err = pump(stderr.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>));
    let run = async {
        tokio::join!(out, err);
        child.wait().await
    };
    let status = match tokio::time::timeout(DEBOOTSTRAP_TIMEOUT, run).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(failed(name, format!("waiting for debootstrap: {e}"))),
        Err(_) => {
            return Err(failed(
                name,
                format!(
                    "debootstrap ran longer than {} minutes",
                    DEBOOTSTRAP_TIMEOUT.as_secs() / 60
                ),
            ))
        }
    };
    if !status.success() {
        let tail = tail
            .lock()
            .expect("the tail lock is never poisoned")
            .join(" / ");
        return Err(failed(
            name,
            format!("debootstrap exited with {status}: {tail}"),
        ));
    }
    Ok(())
}
