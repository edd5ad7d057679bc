# Seccomp probe, run inside a container by crates/runtime/tests/seccomp.rs (x86_64 numbers).
# Each line: "<name> <result> <errno>". The arguments are chosen so that, WITHOUT seccomp, an
# unprivileged process would get something other than EPERM where the kernel allows it
# (success, EFAULT, EBADF, EINVAL, ENOKEY): those lines prove the filter, not missing
# capabilities, refused the call. Calls the kernel gates on a capability before looking at
# any argument (pivot_root, kexec_*, *_module, reboot, swapon, acct, ...) return EPERM either
# way; the profile's unit tests cover that they are absent from the allowlist.
import ctypes, os, platform, sys

if platform.machine() != "x86_64":
    print("SKIP not x86_64")
    sys.exit(0)

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def arg(a):
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    if isinstance(a, ctypes.Array):
        return ctypes.cast(a, ctypes.c_void_p)
    return ctypes.c_long(a)


def sc(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[arg(a) for a in args])
    e = ctypes.get_errno() if r == -1 else 0
    print(name, r, e, flush=True)
    return r, e


BAD = 1  # an invalid user pointer: EFAULT wherever the kernel reads it first
uring_params = ctypes.create_string_buffer(120)
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17

sc("unshare_newuser", 272, CLONE_NEWUSER)
sc("unshare_fs", 272, 0x200)  # CLONE_FS: harmless, but unshare is denied as a whole
sc("setns", 308, -1, 0)  # EBADF without seccomp
sc("keyctl", 250, 0, -3, 1)  # KEYCTL_GET_KEYRING_ID of the session keyring: succeeds without
sc("add_key", 248, b"user", b"probe", b"secret", 6, -2)  # succeeds without
sc("request_key", 249, b"user", b"nosuchkey", 0, 0)  # ENOKEY without
sc("io_uring_setup", 425, 4, uring_params)  # a ring fd without
sc("io_uring_enter", 426, -1, 0, 0, 0, 0, 0)  # EBADF without
sc("io_uring_register", 427, -1, 0, 0, 0)  # EBADF without
sc("bpf", 321, 5, BAD, 0)
sc("perf_event_open", 298, BAD, 0, -1, -1, 0)  # EFAULT without
sc("mount", 165, BAD, BAD, BAD, 0, 0)  # EFAULT without
sc("umount2", 166, b"/tmp", 0xFFFF)  # EINVAL without
sc("pivot_root", 155, b"/", b"/")
sc("open_tree", 428, -100, b"/", 0)  # an O_PATH fd without
sc("move_mount", 429, -1, b"", -1, b"", 0)
sc("fsopen", 430, b"tmpfs", 0)
sc("fsmount", 432, -1, 0, 0)
sc("fspick", 433, -100, b"/", 0)
sc("chroot", 161, b"/")
sc("ptrace_attach", 101, 16, 1, 0, 0)  # PTRACE_ATTACH to pid 1
sc("process_vm_readv", 310, os.getpid(), 0, 0, 0, 0, 0)  # 0 without
sc("process_vm_writev", 311, os.getpid(), 0, 0, 0, 0, 0)  # 0 without
sc("kcmp", 312, os.getpid(), os.getpid(), 0, 0, 0)  # KCMP_FILE fd 0 vs 0: 0 without
sc("pidfd_getfd", 438, -1, 0, 0)  # EBADF without
sc("kexec_load", 246, 0, 0, 0, 0)
sc("kexec_file_load", 320, -1, -1, 0, 0, 0)
sc("init_module", 175, 0, 0, b"")
sc("finit_module", 313, -1, b"", 0)
sc("delete_module", 176, b"probe", 0)
sc("clock_settime", 227, 0, BAD)  # EFAULT without
sc("settimeofday", 164, BAD, 0)  # EFAULT without
sc("clock_adjtime", 305, 0, BAD)  # EFAULT without
sc("adjtimex", 159, BAD)  # EFAULT without
sc("reboot", 169, 0, 0, 0, 0)
sc("swapon", 167, b"/nonexistent", 0)
sc("swapoff", 168, b"/nonexistent")
sc("acct", 163, 0)
sc("userfaultfd", 323, 1)  # UFFD_USER_MODE_ONLY: an fd without
sc("open_by_handle_at", 304, -1, BAD, 0)
sc("personality_addr_no_randomize", 135, 0x0040000)  # succeeds without
sc("clone3", 435, BAD, 88)  # EFAULT without; ENOSYS with the profile
sc("personality_query", 135, 0xFFFFFFFF)  # allowed
r, e = sc("clone_newuser", 56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
r, e = sc("clone_plain", 56, SIGCHLD, 0, 0, 0, 0)  # allowed: fork
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
print("DONE", flush=True)
