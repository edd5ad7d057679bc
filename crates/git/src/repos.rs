//! The bare repositories, one per app, and the `git` processes that serve them.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdout, Command};

use crate::pkt_line;

/// The hook every repository gets. It only execs the binary the server names in the
/// environment of the `git receive-pack` it starts, so moving or upgrading the binary never
/// leaves stale hooks behind.
const PRE_RECEIVE_HOOK: &str = "#!/bin/sh\n\
# Installed by Slipway: builds and releases the pushed commit.\n\
if [ -z \"$SLIPWAY_HOOK_BIN\" ]; then echo 'Slipway: this repository only accepts pushes through the Slipway server.' >&2; exit 1; fi\n\
exec \"$SLIPWAY_HOOK_BIN\" git-hook pre-receive\n";

/// The two smart-HTTP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitService {
    ReceivePack,
    UploadPack,
}

impl GitService {
    /// Parses the `service=` query parameter or the last path segment.
    pub fn parse(name: &str) -> Option<GitService> {
        match name {
            "git-receive-pack" => Some(GitService::ReceivePack),
            "git-upload-pack" => Some(GitService::UploadPack),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GitService::ReceivePack => "git-receive-pack",
            GitService::UploadPack => "git-upload-pack",
        }
    }

    fn subcommand(self) -> &'static str {
        match self {
            GitService::ReceivePack => "receive-pack",
            GitService::UploadPack => "upload-pack",
        }
    }

    pub fn advertisement_content_type(self) -> String {
        format!("application/x-{}-advertisement", self.name())
    }

    pub fn result_content_type(self) -> String {
        format!("application/x-{}-result", self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not {action} the git repository at {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git {command} failed for {path}: {stderr}")]
    Git {
        command: String,
        path: PathBuf,
        stderr: String,
    },
}

/// Where the repositories live.
#[derive(Debug, Clone)]
pub struct GitRepos {
    root: PathBuf,
    git_binary: PathBuf,
}

/// A running `git <service> --stateless-rpc`: its output is the HTTP response body.
#[derive(Debug)]
pub struct RpcProcess {
    child: Child,
    stdout: ChildStdout,
}

impl RpcProcess {
    /// The response body: git's stdout as it is produced (live build output travels in it).
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let RpcProcess { mut child, stdout } = self;
        let output = tokio_util::io::ReaderStream::new(stdout);
        // Reap the process once its output has ended so no zombie is left behind.
        let reaper = futures::stream::once(async move {
            let _ = child.wait().await;
            None
        });
        output
            .map(Some)
            .chain(reaper)
            .filter_map(futures::future::ready)
    }
}

impl GitRepos {
    pub fn new(root: impl Into<PathBuf>) -> GitRepos {
        GitRepos {
            root: root.into(),
            git_binary: PathBuf::from("git"),
        }
    }

    pub fn path(&self, repo: &str) -> PathBuf {
        self.root.join(format!("{repo}.git"))
    }

    /// Creates the bare repository if it does not exist and (re)installs its hook.
    pub async fn ensure(&self, repo: &str) -> Result<PathBuf, GitError> {
        let path = self.path(repo);
        if !path.join("HEAD").exists() {
            tokio::fs::create_dir_all(&self.root)
                .await
                .map_err(|source| GitError::Io {
                    action: "create the directory for",
                    path: path.clone(),
                    source,
                })?;
            self.git(
                &path,
                &["init", "--bare", "--quiet", "--initial-branch=main"],
            )
            .await?;
            // Pushes from shallow clones and big repositories should just work.
            self.git(&path, &["config", "receive.shallowUpdate", "true"])
                .await?;
            self.git(&path, &["config", "http.receivepack", "true"])
                .await?;
        }
        let hook = path.join("hooks").join("pre-receive");
        write_executable(&hook, PRE_RECEIVE_HOOK)
            .await
            .map_err(|source| GitError::Io {
                action: "install the pre-receive hook in",
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// Moves repository `old` to `new` (the app was renamed). A missing `old` is no error:
    /// `ensure` creates the repository on the next push. `new` must not exist; a leftover of
    /// a destroyed app of that name is the caller's to `remove` first. Neither path is
    /// followed if it is a symbolic link: `rename(2)` moves the link itself.
    pub async fn rename(&self, old: &str, new: &str) -> Result<(), GitError> {
        let from = self.path(old);
        let to = self.path(new);
        if tokio::fs::symlink_metadata(&to).await.is_ok() {
            return Err(GitError::Io {
                action: "rename a repository onto",
                path: to,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a repository of that name exists",
                ),
            });
        }
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(GitError::Io {
                action: "rename",
                path: from,
                source,
            }),
        }
    }

    /// Deletes a repository (the app was destroyed).
    pub async fn remove(&self, repo: &str) -> Result<(), GitError> {
        let path = self.path(repo);
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(GitError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }

    /// The body of `GET /<repo>.git/info/refs?service=<service>`.
    pub async fn advertise_refs(
        &self,
        repo: &Path,
        service: GitService,
    ) -> Result<Vec<u8>, GitError> {
        let mut command = Command::new(&self.git_binary);
        command
            .args([service.subcommand(), "--stateless-rpc", "--advertise-refs"])
            .arg(repo)
            .kill_on_drop(true);
        let stdout = run_git(command, repo, "advertise the refs of", || {
            format!("{} --advertise-refs", service.subcommand())
        })
        .await?;
        let mut body = pkt_line::service_header(service.name());
        body.extend_from_slice(&stdout);
        Ok(body)
    }

    /// Starts `git <service> --stateless-rpc` on `repo`, feeding it `body` (already decoded from
    /// any Content-Encoding) and passing `env` to it and so to its hooks.
    pub async fn rpc<S>(
        &self,
        repo: &Path,
        service: GitService,
        body: S,
        env: &[(String, String)],
    ) -> Result<RpcProcess, GitError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    {
        let mut child = Command::new(&self.git_binary)
            .args([service.subcommand(), "--stateless-rpc"])
            .arg(repo)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(false)
            .spawn()
            .map_err(|source| GitError::Io {
                action: "start git for",
                path: repo.to_owned(),
                source,
            })?;
        let mut stdin = child.stdin.take().ok_or_else(|| GitError::Io {
            action: "open stdin of git for",
            path: repo.to_owned(),
            source: std::io::Error::other("no stdin pipe"),
        })?;
        let stdout = child.stdout.take().ok_or_else(|| GitError::Io {
            action: "open stdout of git for",
            path: repo.to_owned(),
            source: std::io::Error::other("no stdout pipe"),
        })?;
        tokio::spawn(async move {
            let mut body = body;
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = stdin.shutdown().await;
        });
        Ok(RpcProcess { child, stdout })
    }

    async fn git(&self, repo: &Path, args: &[&str]) -> Result<(), GitError> {
        let mut command = Command::new(&self.git_binary);
        command.arg("--git-dir").arg(repo).args(args);
        run_git(command, repo, "run git in", || args.join(" ")).await?;
        Ok(())
    }
}

/// Runs a git `command` on `repo` to its end, without input, and returns what it wrote. If it
/// cannot run, the error says it could not `action` the repository; if it fails, the error
/// names it as `name` says, with git's own words.
async fn run_git(
    mut command: Command,
    repo: &Path,
    action: &'static str,
    name: impl FnOnce() -> String,
) -> Result<Vec<u8>, GitError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| GitError::Io {
            action,
            path: repo.to_owned(),
            source,
        })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(GitError::Git {
            command: name(),
            path: repo.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

async fn write_executable(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let temporary = path.with_extension("tmp");
    tokio::fs::write(&temporary, contents).await?;
    tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o700)).await?;
    tokio::fs::rename(&temporary, path).await
}
