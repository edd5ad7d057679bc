//! A disk quota per container: its writable layers live on a filesystem of their own.
//!
//! The host kernel has no usable quota support (no `CONFIG_QFMT_V2`, no XFS project or tmpfs
//! quotas; ext4 `-O quota` does not mount), so a container with [`Limits::disk_bytes`] gets a
//! filesystem of exactly that size: a sparse file formatted ext4 (no journal, no reserved
//! blocks) attached to a loop device (`LOOP_CONFIGURE` with `LO_FLAGS_AUTOCLEAR`) and mounted
//! `nosuid,nodev,noatime`. The backing file is unlinked as soon as the filesystem is mounted:
//! the loop device holds it, and the last unmount frees the device and the space, so nothing
//! outlives the mount, whatever happens to the server.
//!
//! # Layout
//! The filesystem is mounted at `<bundle>/disk` and holds the overlay's `upper/` and `work/`
//! (the ephemeral `/app`) and `tmp/` (mode 1777, bind-mounted at the container's `/tmp`
//! instead of a tmpfs): writes to `/app` and `/tmp` share the quota, and a full disk gives
//! ENOSPC inside that container only. Without `disk_bytes` nothing changes: the layers are in
//! the bundle and `/tmp` is a tmpfs.
//!
//! # The pool
//! Formatting and mounting take ~50–70 ms, so they are kept off the start path: for every size
//! asked for (or pre-warmed with [`RuncConfig::disk_pool_sizes`]) up to
//! [`RuncConfig::disk_pool`] filesystems wait ready-mounted under `<state_dir>/disks/`. A start
//! takes one (a bind mount to `<bundle>/disk` and a lazy unmount of the pool's mount point,
//! well under a millisecond) and a background thread makes a replacement; with the pool empty
//! (cold), the start makes its own.
//!
//! # Cleanup and restarts
//! A container's disk is only a mount under its bundle, so the runtime's cleanup (unmount
//! everything under the bundle, remove it) frees it, for adopted containers as well. The pool's
//! filesystems belong to one runtime instance: dropping the runtime unmounts them, and a new
//! instance unmounts and removes whatever a dead one left in `<state_dir>/disks/`.
//!
//! [`Limits::disk_bytes`]: crate::Limits::disk_bytes
//! [`RuncConfig::disk_pool`]: crate::RuncConfig::disk_pool
//! [`RuncConfig::disk_pool_sizes`]: crate::RuncConfig::disk_pool_sizes

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The smallest filesystem made (ext4 needs a few MiB of metadata); smaller quotas are raised.
pub const MIN_DISK_BYTES: u64 = 16 * 1024 * 1024;
/// How long a pool refill waits before making a disk.
const REFILL_DELAY: Duration = Duration::from_millis(100);
/// Where a container's disk is mounted, relative to its bundle.
const BUNDLE_DISK: &str = "disk";

/// The directory holding a container's writable layers (`upper/`, `work/`): its disk when it
/// has one, else the bundle itself.
pub(crate) fn layers_dir(bundle: &Path) -> PathBuf {
    let disk = bundle.join(BUNDLE_DISK);
    if disk.join("tmp").is_dir() {
        disk
    } else {
        bundle.to_path_buf()
    }
}

/// The host directory bind-mounted at the container's `/tmp`, when it has a disk.
pub(crate) fn tmp_source(bundle: &Path) -> Option<PathBuf> {
    let tmp = bundle.join(BUNDLE_DISK).join("tmp");
    tmp.is_dir().then_some(tmp)
}

/// The size actually made for a requested quota: whole MiB, at least [`MIN_DISK_BYTES`].
pub(crate) fn disk_size(requested: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    requested
        .div_ceil(MIB)
        .saturating_mul(MIB)
        .max(MIN_DISK_BYTES)
}

/// The pools of ready filesystems, per size.
pub(crate) struct Disks {
    /// `<state_dir>/disks`: one directory per pooled filesystem, its mount point.
    dir: PathBuf,
    /// Filesystems kept ready per size.
    target: usize,
    pools: Mutex<HashMap<u64, Pool>>,
    seq: AtomicU64,
}

#[derive(Default)]
struct Pool {
    /// Mounted and ready, oldest first.
    ready: Vec<PathBuf>,
    /// Being made by background threads.
    in_flight: usize,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    #[error("create the disk image: {0}")]
    Image(#[source] std::io::Error),
    #[error("format the disk (mkfs.ext4): {0}")]
    Mkfs(String),
    #[error("attach a loop device: {0}")]
    Loop(#[source] std::io::Error),
    #[error("mount the disk: {0}")]
    Mount(#[source] std::io::Error),
    #[error("move the disk into the bundle: {0}")]
    Attach(#[source] std::io::Error),
}

impl From<DiskError> for std::io::Error {
    fn from(e: DiskError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

impl Disks {
    /// Prepares `dir`, unmounting and removing whatever a previous instance left there, and
    /// starts filling the pools of `prewarm` sizes.
    pub(crate) fn new(dir: PathBuf, target: usize, prewarm: &[u64]) -> std::io::Result<Arc<Disks>> {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        crate::mounts::unmount_under(&dir);
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "removing a leftover disk failed");
            }
        }
        let disks = Arc::new(Disks {
            dir,
            target,
            pools: Mutex::default(),
            seq: AtomicU64::new(0),
        });
        for &bytes in prewarm {
            disks.refill(disk_size(bytes));
        }
        Ok(disks)
    }

    /// Gives the container whose bundle is `bundle` a filesystem of (at least) `bytes`, mounted
    /// at `<bundle>/disk` with an empty `tmp/` (mode 1777). Blocking: call off the async
    /// threads. Cleanup is the bundle's: unmounting `<bundle>/disk` frees everything.
    pub(crate) fn attach(self: &Arc<Self>, bundle: &Path, bytes: u64) -> Result<(), DiskError> {
        let bytes = disk_size(bytes);
        let pooled = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            let pool = pools.entry(bytes).or_default();
            if pool.ready.is_empty() {
                None
            } else {
                Some(pool.ready.remove(0))
            }
        };
        let source = match pooled {
            Some(dir) => dir,
            None => self.make(bytes)?,
        };
        self.refill(bytes);
        let target = bundle.join(BUNDLE_DISK);
        let result = (|| {
            std::fs::create_dir(&target)?;
            nix::mount::mount(
                Some(&source),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })();
        // The pool's mount point goes either way: on success the filesystem lives on at
        // `target`; on failure unmounting it frees it.
        let _ = nix::mount::umount2(&source, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&source);
        result.map_err(DiskError::Attach)
    }

    /// Starts background threads until the pool of `bytes` has its target (ready + in flight).
    fn refill(self: &Arc<Self>, bytes: u64) {
        let missing = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            let pool = pools.entry(bytes).or_default();
            let missing = self
                .target
                .saturating_sub(pool.ready.len() + pool.in_flight);
            pool.in_flight += missing;
            missing
        };
        for _ in 0..missing {
            let disks = self.clone();
            let spawned = std::thread::Builder::new()
                .name("slipway-disk-pool".into())
                .spawn(move || {
                    // Out of the way of the start that took a disk just now: a little later,
                    // and at a lower priority (inherited by mkfs).
                    std::thread::sleep(REFILL_DELAY);
                    lower_priority();
                    let made = disks.make(bytes);
                    let mut pools = disks.pools.lock().unwrap_or_else(|e| e.into_inner());
                    let pool = pools.entry(bytes).or_default();
                    pool.in_flight -= 1;
                    match made {
                        Ok(dir) => pool.ready.push(dir),
                        Err(e) => tracing::warn!(error = %e, bytes, "making a pooled disk failed"),
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a disk pool thread");
                let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                pools.entry(bytes).or_default().in_flight -= 1;
            }
        }
    }

    /// Makes one filesystem of `bytes` and mounts it at a new directory under `self.dir`.
    fn make(&self, bytes: u64) -> Result<PathBuf, DiskError> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let mount_point = self.dir.join(format!("{bytes}.{n}"));
        let image_path = self.dir.join(format!("{bytes}.{n}.img"));
        let result = make_at(&image_path, &mount_point, bytes);
        // Mounted or not, the image's name is no longer needed: the loop device holds it.
        let _ = std::fs::remove_file(&image_path);
        if result.is_err() {
            let _ = nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&mount_point);
        }
        result.map(|()| mount_point)
    }
}

impl Drop for Disks {
    /// Unmounts the pooled filesystems (in-flight ones are gone: their threads hold an `Arc`).
    fn drop(&mut self) {
        crate::mounts::unmount_under(&self.dir);
        let pools = self.pools.get_mut().unwrap_or_else(|e| e.into_inner());
        for dir in pools.values().flat_map(|p| p.ready.iter()) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn make_at(image_path: &Path, mount_point: &Path, bytes: u64) -> Result<(), DiskError> {
    let image = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(image_path)
        .and_then(|f| f.set_len(bytes).map(|()| f))
        .map_err(DiskError::Image)?;
    let out = std::process::Command::new(mkfs_ext4())
        .args(["-q", "-F", "-O", "^has_journal,^resize_inode"])
        .args(["-E", "lazy_itable_init=1,nodiscard", "-m", "0"])
        .arg(image_path)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| DiskError::Mkfs(e.to_string()))?;
    if !out.status.success() {
        return Err(DiskError::Mkfs(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let (device, device_path) = attach_loop(&image).map_err(DiskError::Loop)?;
    drop(image);
    std::fs::create_dir(mount_point).map_err(DiskError::Mount)?;
    let flags = nix::mount::MsFlags::MS_NOSUID
        | nix::mount::MsFlags::MS_NODEV
        | nix::mount::MsFlags::MS_NOATIME;
    nix::mount::mount(
        Some(&device_path),
        mount_point,
        Some("ext4"),
        flags,
        // The image is a new sparse file, so its inode tables read as zeros already: the
        // kernel need not write them (32 MiB for 2 GiB) in the background.
        Some("noinit_itable"),
    )
    .map_err(|e| DiskError::Mount(e.into()))?;
    // The mount holds the device now; closing ours arms the autoclear.
    drop(device);
    // mkfs makes the root 0755; the container reaches its layers and /tmp through mounts, so
    // nobody else needs to enter it.
    std::fs::set_permissions(mount_point, std::fs::Permissions::from_mode(0o700))
        .map_err(DiskError::Mount)?;
    let tmp = mount_point.join("tmp");
    std::fs::create_dir(&tmp)
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)))
        .map_err(DiskError::Mount)?;
    Ok(())
}

/// Lowers the calling thread's CPU priority (nice 10; per thread on Linux).
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: setpriority has no memory-safety preconditions; who = 0 is the calling thread.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        tracing::debug!(error = %e, "cannot lower the disk pool thread's priority");
    }
}

/// `mkfs.ext4`, found in the usual sbin directories (the server's `PATH` may lack them).
fn mkfs_ext4() -> PathBuf {
    ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mkfs.ext4"))
}

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>` (Linux 5.8+).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// Attaches `image` to a free loop device in one `LOOP_CONFIGURE` (autoclear: the device is
/// released when its last user, i.e. the mount, goes). Returns the open device and its path.
#[allow(unsafe_code)]
fn attach_loop(image: &File) -> std::io::Result<(File, PathBuf)> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let mut last = std::io::Error::other("no free loop device");
    for _ in 0..32 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let device = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(device) => device,
            // devtmpfs has not created the node of a brand-new device yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(2));
                last = e;
                continue;
            }
            Err(e) => return Err(e),
        };
        // SAFETY: all-zero is a valid `loop_config` (plain integers and byte arrays).
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = image.as_raw_fd() as u32;
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: LOOP_CONFIGURE reads a `struct loop_config`, which `config` is, for the
        // duration of the call.
        let r = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config) };
        if r == 0 {
            return Ok((device, path));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(e);
        }
        // Another process took that device between GET_FREE and CONFIGURE.
        last = e;
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_mib_and_at_least_the_minimum() {
        assert_eq!(disk_size(1), MIN_DISK_BYTES);
        assert_eq!(disk_size(MIN_DISK_BYTES + 1), MIN_DISK_BYTES + 1024 * 1024);
        assert_eq!(disk_size(2 << 30), 2 << 30);
        assert_eq!(disk_size(u64::MAX), u64::MAX);
    }

    #[test]
    fn loop_config_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}
