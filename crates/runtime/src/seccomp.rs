//! The default seccomp profile every container gets (`linux.seccomp` of its OCI config).
//!
//! The profile is data, `crates/runtime/seccomp/default.json`, in the OCI runtime spec's
//! `linux.seccomp` format, compiled in with `include_str!`. It is an allowlist in the spirit of
//! Docker's and Podman's default profile, without the entries those gate on capabilities (a
//! dyno has none):
//! - default action `SCMP_ACT_ERRNO` with `EPERM`: every syscall not listed fails with EPERM;
//! - one big allow entry with what ordinary programs (bash, coreutils, Python, Node.js, the
//!   JVM, Go) use;
//! - `clone` only when none of the namespace flags (`CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
//!   NEWUSER|NEWPID|NEWNET`, mask `0x7E020000`) is set (`SCMP_CMP_MASKED_EQ` against 0);
//! - `clone3` fails with `ENOSYS` (its flags live in a struct seccomp cannot inspect), so libc
//!   and language runtimes fall back to `clone`;
//! - `personality` only for the harmless values (`PER_LINUX`, `PER_LINUX32`,
//!   `UNAME26`-combined, and the `0xffffffff` query).
//!
//! Deliberately absent (so EPERM): `unshare`, `setns`, `mount`/`umount2`/`pivot_root`/
//! `open_tree`/`move_mount`/`fsopen`/`fsconfig`/`fsmount`/`fspick`/`mount_setattr`, `chroot`,
//! `keyctl`/`add_key`/`request_key`, `io_uring_setup`/`enter`/`register`, `bpf`,
//! `perf_event_open`, `ptrace`, `process_vm_readv`/`writev`, `kcmp`, `pidfd_getfd`,
//! `kexec_load`/`kexec_file_load`, `init_module`/`finit_module`/`delete_module`,
//! `clock_settime`/`settimeofday`/`clock_adjtime`/`adjtimex`, `reboot`, `swapon`/`swapoff`,
//! `acct`, `userfaultfd`, `open_by_handle_at`, `fanotify_init`, `quotactl`, `syslog`,
//! `sethostname`/`setdomainname`, `vhangup`, `modify_ldt`, `lookup_dcookie`, NUMA policy calls.
//!
//! Architectures: only the host's native one is kept from the profile's list (x86_64 or
//! aarch64). Unlike Docker's profile, the 32-bit ABIs (x86 through `int 0x80`, x32, arm) are
//! not listed: a syscall through them hits the filter's bad-architecture action and the
//! process is killed with SIGSYS, so they are no way around the rules. Listing them costs
//! runc ~45 ms more per container start to compile the filter (measured: +58 ms for
//! x86_64+x86+x32 against +12 ms for x86_64 alone), and the stack runs no 32-bit programs.
//!
//! Names the host's libseccomp does not know are skipped by runc (with a debug message), so the
//! list may name syscalls newer than the host.

use oci_spec::runtime::{Arch, LinuxSeccomp};

/// The profile as shipped (JSON, OCI `linux.seccomp`).
pub(crate) const DEFAULT_PROFILE_JSON: &str = include_str!("../seccomp/default.json");

/// The default profile, with the architectures narrowed to the host's family.
///
/// The profile is part of the binary and checked by a unit test, so parsing cannot fail at
/// run time; should it (a broken edit), this panics on the first container start of any test.
pub(crate) fn default_profile() -> LinuxSeccomp {
    let mut profile: LinuxSeccomp = serde_json::from_str(DEFAULT_PROFILE_JSON)
        .expect("crates/runtime/seccomp/default.json is a valid OCI linux.seccomp object");
    let host: &[Arch] = if cfg!(target_arch = "x86_64") {
        &[Arch::ScmpArchX86_64]
    } else if cfg!(target_arch = "aarch64") {
        &[Arch::ScmpArchAarch64]
    } else {
        &[]
    };
    let arches: Vec<Arch> = profile
        .architectures()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| host.contains(a))
        .collect();
    profile.set_architectures(if arches.is_empty() {
        None
    } else {
        Some(arches)
    });
    profile
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};

    fn names_with(profile: &LinuxSeccomp, action: LinuxSeccompAction) -> Vec<String> {
        profile
            .syscalls()
            .clone()
            .unwrap_or_default()
            .iter()
            .filter(|s| s.action() == action)
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn profile_parses_and_denies_by_default_with_eperm() {
        let profile = default_profile();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(libc::EPERM as u32));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                profile.architectures().clone().unwrap(),
                vec![Arch::ScmpArchX86_64]
            );
        }
    }

    #[test]
    fn dangerous_syscalls_are_not_allowed() {
        let profile = default_profile();
        let allowed = names_with(&profile, LinuxSeccompAction::ScmpActAllow);
        for name in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsmount",
            "fsconfig",
            "fspick",
            "mount_setattr",
            "chroot",
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "bpf",
            "perf_event_open",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "clock_adjtime",
            "clock_adjtime64",
            "adjtimex",
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "userfaultfd",
            "open_by_handle_at",
            "clone3",
        ] {
            assert!(!allowed.contains(&name.to_string()), "{name} is allowed");
        }
        let errno = profile.syscalls().clone().unwrap();
        let clone3 = errno
            .iter()
            .find(|s| s.names().contains(&"clone3".to_string()))
            .unwrap();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(libc::ENOSYS as u32));
    }

    #[test]
    fn clone_is_allowed_only_without_namespace_flags() {
        let profile = default_profile();
        let entries = profile.syscalls().clone().unwrap();
        let clones: Vec<_> = entries
            .iter()
            .filter(|s| s.names().contains(&"clone".to_string()))
            .collect();
        assert_eq!(clones.len(), 1);
        let args = clones[0].args().clone().unwrap();
        assert_eq!(args.len(), 1);
        let ns_flags = (libc::CLONE_NEWNS
            | libc::CLONE_NEWCGROUP
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET) as u64;
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].value(), ns_flags);
        assert_eq!(args[0].value_two(), Some(0));
    }
}
