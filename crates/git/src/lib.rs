//! Git over smart HTTP: the bare repositories behind `git push`, and the pre-receive hook that
//! turns a push into a build.
//!
//! The protocol work is done by the real `git` binary (`git receive-pack --stateless-rpc`,
//! `git upload-pack --stateless-rpc`); this crate spawns it, feeds it the request body and hands
//! its output back as a stream. Each repository's `pre-receive` hook execs the Slipway binary
//! named by `SLIPWAY_HOOK_BIN`, which runs [`hook::run_pre_receive`]: it archives the pushed
//! commit with `git archive` (the objects are still in git's quarantine, visible only to the hook)
//! and streams the tarball to the server, printing the build output the server streams back so
//! that git shows it as `remote:` lines. The hook's exit status accepts or rejects the push.
//!
//! Architecture Invariant: this crate knows nothing of apps, builds or the store; it moves bytes
//! between HTTP and git.

pub mod hook;
pub mod pkt_line;
mod repos;

pub use repos::{GitError, GitRepos, GitService, RpcProcess};
