//! Runs container specs as plain host processes, without any isolation, for logic tests that
//! cannot be root (e.g. the build pipeline's and the dyno manager's tests).
//!
//! Mapping of a [`ContainerSpec`] onto the host:
//! - `args` are executed directly (`args[0]` is looked up on the host `PATH` if it has no `/`),
//!   with exactly `env` as the environment and stdin from `/dev/null`.
//! - `cwd`: a path at or below `/app` is rewritten onto the host directory that backs `/app`:
//!   `app_dir` if given, otherwise the source of a bind whose target is `/app`. Any other
//!   `cwd` is used as a host path as is. **Container paths in `args`, `env` and other binds
//!   are NOT rewritten**, and the process writes to `app_dir` directly (there is no
//!   ephemeral layer). `uid`/`gid`, `hostname` and `limits` are ignored.
//! - The process runs in its own process group. When the first process exits, the rest of
//!   its group is SIGKILLed (like a PID namespace dies with its init), then the output pipes
//!   are drained and `exited` resolves.
//! - [`Runtime::stop`] sends SIGTERM to the process group and SIGKILL after the grace period.
//! - [`Runtime::start_attached`]: with [`Attach::Tty`] the process gets a host pseudo-terminal
//!   in the usual cooked mode as its controlling terminal, in a session of its own (started
//!   through util-linux's `setsid --ctty`, as this crate has no unsafe code for a `pre_exec`), so
//!   the terminal itself echoes, turns `0x03` into SIGINT and sends SIGWINCH on resize. With
//!   [`Attach::Pipes`] stdin is a pipe and stdout and stderr share one. `hangup` sends SIGHUP
//!   to the process group.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{oneshot, watch};

use crate::attach::HostTerminal;
use crate::common::{exit_status_from_std, pump_lines, validate_spec, wait_exit, OutputGate};
use crate::{
    Attach, AttachedIo, ContainerInfo, ContainerSpec, ExitStatus, OutputSink, RunningContainer,
    Runtime, RuntimeError, StopOutcome, Stream,
};

struct Entry {
    pid: u32,
    labels: BTreeMap<String, String>,
    exit: watch::Receiver<Option<ExitStatus>>,
}

/// Runs specs as unisolated host processes. Cheap to clone; clones share their containers.
#[derive(Clone, Default)]
pub struct ProcessRuntime {
    running: Arc<Mutex<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for ProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRuntime")
            .field("running", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProcessRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The host directory the process starts in (see the module docs).
fn host_cwd(spec: &ContainerSpec) -> PathBuf {
    let cwd = Path::new(&spec.cwd);
    let app_source = spec.app_dir.clone().or_else(|| {
        spec.binds
            .iter()
            .rev()
            .find(|b| b.target == "/app")
            .map(|b| b.source.clone())
    });
    match (cwd.strip_prefix("/app"), app_source) {
        (Ok(rest), Some(base)) => base.join(rest),
        _ => cwd.to_path_buf(),
    }
}

impl ProcessRuntime {
    /// Spawns the spec's first process with these stdin, stdout and stderr and registers it.
    /// `ctty`: in a session of its own (`setsid -c`) with its stdin, a terminal, as the
    /// controlling terminal; otherwise in a process group of its own.
    fn spawn(
        &self,
        spec: &ContainerSpec,
        stdio: [Stdio; 3],
        ctty: bool,
    ) -> Result<
        (
            tokio::process::Child,
            u32,
            watch::Sender<Option<ExitStatus>>,
        ),
        RuntimeError,
    > {
        validate_spec(spec)?;
        if spec.rootfs != crate::Rootfs::Host {
            return Err(RuntimeError::InvalidSpec {
                id: spec.id.clone(),
                reason: "the process runtime runs host processes: it cannot use a stack's root \
                         filesystem (use the runc runtime, or the host stack)"
                    .into(),
            });
        }
        let id = spec.id.clone();
        if self.lock().contains_key(&id) {
            return Err(RuntimeError::AlreadyExists { id });
        }
        let [stdin, stdout, stderr] = stdio;
        let mut cmd = if ctty {
            let setsid = crate::attach::setsid_binary().map_err(|source| RuntimeError::Io {
                id: id.clone(),
                action: "give a terminal to",
                source,
            })?;
            let mut cmd = tokio::process::Command::new(setsid);
            cmd.arg("--ctty")
                .args(crate::attach::DEFAULT_SIGNALS)
                .args(&spec.args);
            cmd
        } else {
            let [env, reset] = crate::attach::DEFAULT_SIGNALS;
            let mut cmd = tokio::process::Command::new(env);
            cmd.arg(reset).args(&spec.args).process_group(0);
            cmd
        };
        cmd.env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(host_cwd(spec))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(false);
        let child = cmd.spawn().map_err(|source| RuntimeError::Io {
            id: id.clone(),
            action: "spawn the process of",
            source,
        })?;
        let pid = child.id().ok_or_else(|| RuntimeError::Io {
            id: id.clone(),
            action: "get the pid of",
            source: std::io::Error::other("the process exited before its pid was known"),
        })?;

        let (watch_tx, watch_rx) = watch::channel(None);
        let mut running = self.lock();
        if running.contains_key(&id) {
            // Lost a race with a concurrent start of the same id.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return Err(RuntimeError::AlreadyExists { id });
        }
        running.insert(
            id,
            Entry {
                pid,
                labels: spec.labels.clone(),
                exit: watch_rx,
            },
        );
        Ok((child, pid, watch_tx))
    }

    /// Waits for the first process in the background: then kills the rest of its group, waits
    /// for `pumps`, forgets it and resolves the returned receiver. `keep` (a terminal's
    /// master) stays open until then.
    fn watch_exit(
        &self,
        id: String,
        pid: u32,
        mut child: tokio::process::Child,
        watch_tx: watch::Sender<Option<ExitStatus>>,
        pumps: Vec<tokio::task::JoinHandle<()>>,
        keep: Option<Arc<std::os::fd::OwnedFd>>,
    ) -> oneshot::Receiver<ExitStatus> {
        let (exit_tx, exit_rx) = oneshot::channel();
        let running = self.running.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => exit_status_from_std(status),
                Err(e) => {
                    tracing::warn!(id = %id, error = %e, "waiting for process failed");
                    ExitStatus {
                        code: None,
                        signal: None,
                    }
                }
            };
            // Like a PID namespace: everything else in the group dies with the first process.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            for pump in pumps {
                let _ = pump.await;
            }
            drop(keep);
            running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let _ = watch_tx.send(Some(status));
            let _ = exit_tx.send(status);
        });
        exit_rx
    }
}

#[async_trait::async_trait]
impl Runtime for ProcessRuntime {
    async fn start(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
    ) -> Result<RunningContainer, RuntimeError> {
        let stdio = [Stdio::null(), Stdio::piped(), Stdio::piped()];
        let (mut child, pid, watch_tx) = self.spawn(&spec, stdio, false)?;
        let gate = OutputGate::open_now(output);
        let stdout = child
            .stdout
            .take()
            .map(|r| tokio::spawn(pump_lines(r, Stream::Stdout, gate.clone())));
        let stderr = child
            .stderr
            .take()
            .map(|r| tokio::spawn(pump_lines(r, Stream::Stderr, gate.clone())));
        let pumps = [stdout, stderr].into_iter().flatten().collect();
        let exited = self.watch_exit(spec.id.clone(), pid, child, watch_tx, pumps, None);
        Ok(RunningContainer {
            id: spec.id,
            pid,
            address: None,
            exited,
        })
    }

    async fn start_attached(
        &self,
        spec: ContainerSpec,
        attach: Attach,
    ) -> Result<(RunningContainer, AttachedIo), RuntimeError> {
        let (child, plumbing) =
            crate::attach::plumb(attach, HostTerminal::Cooked).map_err(|source| {
                RuntimeError::Io {
                    id: spec.id.clone(),
                    action: "open the terminal or pipes of",
                    source,
                }
            })?;
        let stdio = child.map(Stdio::from);
        let ctty = matches!(attach, Attach::Tty { .. });
        // The child's ends are closed here once spawned, so the output ends with the child.
        let (child, pid, watch_tx) = self.spawn(&spec, stdio, ctty)?;
        let exited = self.watch_exit(
            spec.id.clone(),
            pid,
            child,
            watch_tx,
            Vec::new(),
            plumbing.master.clone(),
        );
        let running = self.running.clone();
        let id = spec.id.clone();
        let hangup: crate::attach::Hangup = Box::new(move || {
            let live = running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .is_some_and(|entry| entry.pid == pid);
            if live {
                killpg(Pid::from_raw(pid as i32), Signal::SIGHUP)?;
            }
            Ok(())
        });
        let running = RunningContainer {
            id: spec.id,
            pid,
            address: None,
            exited,
        };
        Ok((running, plumbing.into_attached(hangup)))
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<StopOutcome, RuntimeError> {
        let (pid, mut exit) = match self.lock().get(id) {
            Some(entry) => (entry.pid, entry.exit.clone()),
            None => return Ok(StopOutcome::NotFound),
        };
        let group = Pid::from_raw(pid as i32);
        let first = if grace.is_zero() {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let _ = killpg(group, first);
        let wait = tokio::time::timeout(grace, wait_exit(&mut exit)).await;
        if wait.is_ok() {
            return Ok(StopOutcome::Terminated);
        }
        let _ = killpg(group, Signal::SIGKILL);
        wait_exit(&mut exit).await;
        Ok(StopOutcome::Killed)
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut list: Vec<ContainerInfo> = self
            .lock()
            .iter()
            .map(|(id, e)| ContainerInfo {
                id: id.clone(),
                pid: Some(e.pid),
                address: None,
                running: true,
                labels: e.labels.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{run_to_completion, BindMount, Limits, Network};

    type Lines = Arc<Mutex<Vec<(Stream, String)>>>;

    fn collector() -> (OutputSink, Lines) {
        let lines: Lines = Arc::default();
        let l = lines.clone();
        (
            Arc::new(move |s, line: &str| l.lock().unwrap().push((s, line.to_string()))),
            lines,
        )
    }

    fn spec(id: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            id: id.to_string(),
            labels: BTreeMap::from([("app".to_string(), "demo".to_string())]),
            app_dir: None,
            rootfs: crate::Rootfs::Host,
            binds: vec![],
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: "/".into(),
            uid: 1000,
            gid: 1000,
            hostname: "test".into(),
            limits: Limits::default(),
            network: Network::Host,
            allowed_host_ports: Vec::new(),
        }
    }

    #[tokio::test]
    async fn output_and_exit_codes() {
        let rt = ProcessRuntime::new();
        for (script, code) in [("exit 0", 0), ("echo out; echo err >&2; exit 3", 3)] {
            let (sink, lines) = collector();
            let status = run_to_completion(&rt, spec("p1", script), sink)
                .await
                .unwrap();
            assert_eq!(status.code, Some(code), "{script}");
            if code == 3 {
                let lines = lines.lock().unwrap();
                assert!(lines.contains(&(Stream::Stdout, "out".into())));
                assert!(lines.contains(&(Stream::Stderr, "err".into())));
            }
        }
        let status = run_to_completion(&rt, spec("p1", "kill -9 $$"), collector().0)
            .await
            .unwrap();
        assert_eq!(status.signal, Some(9));
        assert_eq!(status.to_string(), "137");
    }

    #[tokio::test]
    async fn env_is_exact_and_cwd_maps_to_app_dir() {
        let dir = tempfile::tempdir().unwrap();
        let rt = ProcessRuntime::new();
        let mut s = spec("p2", "echo $FOO:$HOME; pwd");
        s.env.push(("FOO".into(), "bar".into()));
        s.cwd = "/app".into();
        s.app_dir = Some(dir.path().to_path_buf());
        let (sink, lines) = collector();
        assert!(run_to_completion(&rt, s.clone(), sink)
            .await
            .unwrap()
            .success());
        let want_dir = dir.path().canonicalize().unwrap();
        assert_eq!(
            *lines.lock().unwrap(),
            vec![
                (Stream::Stdout, "bar:".to_string()),
                (Stream::Stdout, want_dir.display().to_string()),
            ]
        );

        // A bind targeting /app plays the same role when there is no app_dir.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        s.app_dir = None;
        s.cwd = "/app/sub".into();
        s.binds = vec![BindMount {
            source: dir.path().to_path_buf(),
            target: "/app".into(),
            readonly: false,
        }];
        let (sink, lines) = collector();
        assert!(run_to_completion(&rt, s, sink).await.unwrap().success());
        assert_eq!(
            lines.lock().unwrap()[1].1,
            want_dir.join("sub").display().to_string()
        );
    }

    /// A server started under `nohup` has SIGHUP ignored, and an ignored signal stays ignored
    /// across exec: the runtime must hand its processes default dispositions, or a hung-up
    /// one-off dyno would never see its SIGHUP.
    #[tokio::test]
    #[allow(unsafe_code)]
    async fn processes_start_with_no_signal_ignored_even_when_the_server_ignores_sighup() {
        // SAFETY: setting a disposition to SIG_IGN installs no handler; the test harness does
        // not rely on SIGHUP, and every process this binary starts gets defaults (the fix).
        unsafe {
            nix::sys::signal::signal(Signal::SIGHUP, nix::sys::signal::SigHandler::SigIgn).unwrap();
        }
        let rt = ProcessRuntime::new();
        let (sink, lines) = collector();
        let status = run_to_completion(&rt, spec("sigign", "grep SigIgn /proc/self/status"), sink)
            .await
            .unwrap();
        assert_eq!(status.code, Some(0));
        let lines: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect();
        let lines = lines.join("\n");
        let mask = lines
            .strip_prefix("SigIgn:")
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .expect("a SigIgn line");
        // Bits 0..2 are SIGHUP, SIGINT and SIGQUIT (signal n is bit n-1).
        assert_eq!(mask & 0b111, 0, "the process ignores HUP/INT/QUIT: {lines}");
    }

    #[tokio::test]
    async fn stop_list_and_already_exists() {
        let rt = ProcessRuntime::new();
        let (sink, lines) = collector();
        let term = rt
            .start(
                spec(
                    "term",
                    "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done",
                ),
                sink.clone(),
            )
            .await
            .unwrap();
        let stubborn = rt
            .start(
                spec(
                    "stubborn",
                    "trap '' TERM; echo ready; while :; do sleep 0.05; done",
                ),
                sink,
            )
            .await
            .unwrap();
        // Both traps must be installed before the signals are sent.
        for _ in 0..1000 {
            if lines.lock().unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lines.lock().unwrap().len(), 2, "both processes print ready");
        assert!(matches!(
            rt.start(spec("term", "true"), collector().0).await,
            Err(RuntimeError::AlreadyExists { .. })
        ));
        let list = rt.list().await.unwrap();
        assert_eq!(
            list.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["stubborn", "term"]
        );
        assert_eq!(list[0].pid, Some(stubborn.pid));
        assert_eq!(list[0].labels["app"], "demo");
        assert!(list.iter().all(|c| c.running));

        let grace = Duration::from_secs(1);
        assert_eq!(
            rt.stop("term", grace).await.unwrap(),
            StopOutcome::Terminated
        );
        assert_eq!(term.exited.await.unwrap().code, Some(0));
        assert_eq!(
            rt.stop("stubborn", grace).await.unwrap(),
            StopOutcome::Killed
        );
        assert_eq!(stubborn.exited.await.unwrap().signal, Some(9));
        assert_eq!(rt.stop("term", grace).await.unwrap(), StopOutcome::NotFound);
        assert!(rt.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn background_children_do_not_outlive_the_first_process() {
        let rt = ProcessRuntime::new();
        // Without the group kill the pipes would stay open for 30 s and this would hang.
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            run_to_completion(&rt, spec("bg", "sleep 30 & echo started"), collector().0),
        )
        .await
        .expect("exit must not wait for background children");
        assert!(status.unwrap().success());
    }

    /// Reads `output` into `seen` until `want` appears (panics after 20 s).
    async fn read_until(io: &mut AttachedIo, seen: &mut String, want: &str) {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        while !seen.contains(want) {
            match tokio::time::timeout(Duration::from_secs(20), io.output.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                other => panic!("{want:?} never came ({other:?}): {seen:?}"),
            }
        }
    }

    async fn read_to_end(io: &mut AttachedIo, seen: &mut String) {
        use tokio::io::AsyncReadExt;
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), io.output.read_to_end(&mut rest))
            .await
            .expect("the output must end with the process")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&rest));
    }

    #[tokio::test]
    async fn attached_terminal_size_resize_ctrl_c_and_exit_status() {
        use tokio::io::AsyncWriteExt;
        let rt = ProcessRuntime::new();
        let script = "trap 'echo got-int; exit 5' INT; stty size; read a; stty size; \
                      echo ready; sleep 100; echo after";
        let (running, mut io) = rt
            .start_attached(spec("tty", script), Attach::Tty { cols: 80, rows: 24 })
            .await
            .unwrap();
        let mut seen = String::new();
        read_until(&mut io, &mut seen, "24 80\r\n").await;
        io.control.resize(100, 30).unwrap();
        io.input.write_all(b"\n").await.unwrap();
        read_until(&mut io, &mut seen, "ready").await;
        assert!(seen.contains("30 100"), "{seen:?}");
        assert_eq!(rt.list().await.unwrap().len(), 1);
        // Ctrl-C may reach the shell before it has started `sleep` (the trap then waits for
        // the sleep): type it until the trap has run.
        for _ in 0..100 {
            io.input.write_all(b"\x03").await.unwrap();
            let more = tokio::time::timeout(
                Duration::from_millis(200),
                read_until(&mut io, &mut seen, "got-int"),
            );
            if more.await.is_ok() {
                break;
            }
        }
        read_to_end(&mut io, &mut seen).await;
        assert_eq!(running.exited.await.unwrap().code, Some(5), "{seen:?}");
        assert!(
            seen.contains("got-int") && !seen.contains("after"),
            "{seen:?}"
        );
        assert!(rt.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn attached_pipes_and_hangup() {
        use tokio::io::AsyncWriteExt;
        let rt = ProcessRuntime::new();
        let (running, mut io) = rt
            .start_attached(spec("pipes", "cat; echo err >&2; exit 3"), Attach::Pipes)
            .await
            .unwrap();
        io.input.write_all(b"a\nb\n").await.unwrap();
        io.input.shutdown().await.unwrap();
        let mut seen = String::new();
        read_to_end(&mut io, &mut seen).await;
        assert_eq!(seen, "a\nb\nerr\n");
        assert_eq!(running.exited.await.unwrap().code, Some(3));

        let script = "trap 'echo got-hup; exit 7' HUP; echo ready; while :; do sleep 0.05; done";
        for attach in [Attach::Pipes, Attach::Tty { cols: 80, rows: 24 }] {
            let (running, mut io) = rt
                .start_attached(spec("hup", script), attach)
                .await
                .unwrap();
            let mut seen = String::new();
            read_until(&mut io, &mut seen, "ready").await;
            io.control.hangup().unwrap();
            read_to_end(&mut io, &mut seen).await;
            assert_eq!(running.exited.await.unwrap().code, Some(7), "{seen:?}");
            assert!(seen.contains("got-hup"), "{seen:?}");
            io.control.hangup().unwrap();
        }
    }

    #[tokio::test]
    async fn invalid_specs_are_rejected() {
        let rt = ProcessRuntime::new();
        let mut bad_id = spec("a/b", "true");
        let mut no_args = spec("x", "true");
        no_args.args.clear();
        let mut rel_cwd = spec("x", "true");
        rel_cwd.cwd = "app".into();
        let mut rel_bind = spec("x", "true");
        rel_bind.binds.push(BindMount {
            source: "tmp".into(),
            target: "/x".into(),
            readonly: true,
        });
        bad_id.args.push("unused".into());
        for s in [bad_id, no_args, rel_cwd, rel_bind] {
            assert!(
                matches!(
                    rt.start(s.clone(), collector().0).await,
                    Err(RuntimeError::InvalidSpec { .. })
                ),
                "{s:?}"
            );
        }
    }
}
