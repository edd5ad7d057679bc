//! Slug tarballs: packing a build dir as `./app/...` (like GNU `tar czf slug.tgz
//! --owner=root ./app`) into a content-addressed store, and unpacking one defensively.
//!
//! A slug may come from elsewhere (the Platform API accepts uploaded slugs), so unpacking
//! treats it as hostile: entries outside `./app` are ignored; absolute paths, `..`, device
//! nodes, FIFOs and writes through symlinks are refused; nothing is ever written outside the
//! destination.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{lchown, symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::fsutil::sorted_entries;
use crate::BuildError;

/// A packed slug in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedSlug {
    pub(crate) path: PathBuf,
    /// Lowercase hex SHA-256 of the compressed file.
    pub(crate) sha256: String,
    pub(crate) size: u64,
}

/// Packs `build_dir` as `./app/...` into `slug_dir/<sha256>.tgz`, as one gzip member.
/// Blocking. See [`pack_reusing`].
pub(crate) fn pack(
    build_dir: &Path,
    slug_dir: &Path,
    max_bytes: Option<u64>,
) -> Result<PackedSlug, BuildError> {
    pack_reusing(build_dir, slug_dir, max_bytes, None).map(|(packed, _)| packed)
}

/// Where [`pack_reusing`] keeps an app's compressed slug runs: beside its build cache
/// (`<cache_dir>.slug-layers`), never inside it. The cache is the build's to write; what the
/// platform copies into slugs as root must not be.
pub(crate) fn layers_dir(cache_dir: &Path) -> PathBuf {
    let mut name = cache_dir
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| OsString::from("cache"));
    name.push(".slug-layers");
    cache_dir.with_file_name(name)
}

/// How much of a slug [`pack_reusing`] compressed anew and how much it took from its layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PackStats {
    /// Parts (gzip members) whose compressed bytes came from the layers directory.
    pub(crate) reused_parts: usize,
    pub(crate) reused_bytes: u64,
    /// Parts compressed during this pack.
    pub(crate) compressed_parts: usize,
    pub(crate) compressed_bytes: u64,
    /// Of the reused parts, those taken on the word of [`stat_key`] alone: none of their
    /// files was read.
    pub(crate) unread_parts: usize,
}

/// Packs `build_dir` as `./app/...` into `slug_dir/<sha256>.tgz`. The tarball is written to a
/// temporary file in `slug_dir` and renamed into place, so a slug path never names a partial
/// file. Blocking.
///
/// With `layers`, the tarball is a series of gzip members (RFC 1952 allows any number; GNU
/// tar, Python's `tarfile`, Go and Node.js read them as one stream), one per run of entries
/// (see [`segments`]), and each member's compressed bytes are kept in `layers` named by the
/// SHA-256 of its uncompressed tar bytes. The next pack of the same app serializes each run
/// again (cheap), and when those bytes hash the same, copies the kept member instead of
/// compressing: a rebuild that changed one source file compresses only the run holding it.
/// Identical bytes in give identical bytes out, so a reused member is exactly what
/// compressing would have produced. `layers` is the platform's own directory, never one a
/// build can write; members this pack did not use are removed from it afterwards.
///
/// With `max_bytes`, a tarball growing past it stops being written to disk (the temporary file
/// is truncated and removed) while compression continues to a counter only, so the error can
/// say how big the slug would have been, as Heroku's does; the disk never holds more than
/// `max_bytes` of it.
pub(crate) fn pack_reusing(
    build_dir: &Path,
    slug_dir: &Path,
    max_bytes: Option<u64>,
    layers: Option<&Path>,
) -> Result<(PackedSlug, PackStats), BuildError> {
    fs::create_dir_all(slug_dir).map_err(|e| BuildError::io("create", slug_dir, e))?;
    let temp = tempfile::Builder::new()
        .prefix(".partial-")
        .suffix(".tgz")
        .tempfile_in(slug_dir)
        .map_err(|e| BuildError::io("create a temporary file in", slug_dir, e))?;
    let out = HashingWriter {
        // Its own handle, so that nothing borrows `temp` when it is renamed into place.
        inner: io::BufWriter::new(
            temp.as_file()
                .try_clone()
                .map_err(|e| BuildError::io("open", temp.path(), e))?,
        ),
        hasher: Sha256::new(),
        written: 0,
        max_bytes,
        over: false,
    };
    let mut items = Vec::new();
    collect_items(build_dir, "./app", &mut items)?;
    let mut builder = tar::Builder::new(MemberWriter {
        out,
        mode: Mode::Idle,
    });
    let write_error = |e| BuildError::io("write", temp.path(), e);
    let mut stats = PackStats::default();
    match layers {
        None => {
            builder.get_mut().start_member(None);
            append_root(&mut builder, build_dir)?;
            for item in &items {
                append_item(&mut builder, item)?;
            }
            // The end-of-archive blocks go into the same member.
        }
        Some(layers) => {
            fs::create_dir_all(layers).map_err(|e| BuildError::io("create", layers, e))?;
            let mut used = std::collections::HashSet::new();
            let known = read_stat_index(&stat_index_path(layers));
            let mut seen = BTreeMap::new();
            let segments = segments(&items);
            for (index, segment) in segments.iter().enumerate() {
                // The root directory entry opens the first run.
                let with_root = index == 0;
                // A run whose every entry is the very inode, in the very state (ctime), that
                // an earlier pack read is copied without reading its files again.
                let stat = stat_key(build_dir, with_root, segment);
                if let Some(known) = stat.as_ref().and_then(|key| known.get(key)) {
                    let member = layers.join(&known.member);
                    if member_trailer_is(&member, known.crc, known.amount) {
                        builder
                            .get_mut()
                            .copy_member(&member)
                            .map_err(|e| BuildError::io("reuse the slug layer", &member, e))?;
                        stats.reused_parts += 1;
                        stats.unread_parts += 1;
                        stats.reused_bytes += u64::from(known.amount);
                        used.insert(OsString::from(&known.member));
                        if let Some(key) = stat {
                            seen.insert(key, known.clone());
                        }
                        continue;
                    }
                }
                builder.get_mut().mode = Mode::Hash {
                    hasher: Sha256::new(),
                    crc: flate2::Crc::new(),
                };
                if with_root {
                    append_root(&mut builder, build_dir)?;
                }
                for item in *segment {
                    append_item(&mut builder, item)?;
                }
                let (key, crc) = builder.get_mut().take_hash();
                let name = format!("{key}.gz");
                let member = layers.join(&name);
                if member_matches(&member, &crc) {
                    let copied = builder
                        .get_mut()
                        .copy_member(&member)
                        .map_err(|e| BuildError::io("reuse the slug layer", &member, e))?;
                    stats.reused_parts += 1;
                    stats.reused_bytes += u64::from(crc.amount());
                    tracing::trace!(member = %member.display(), copied, "reused a slug layer");
                    if let Some(key) = stat {
                        seen.insert(key, KnownRun::new(&name, &crc));
                    }
                } else {
                    let partial = tempfile::Builder::new()
                        .prefix(".partial-")
                        .tempfile_in(layers)
                        .map_err(|e| BuildError::io("create a temporary file in", layers, e))?;
                    let file = partial
                        .reopen()
                        .map_err(|e| BuildError::io("open", partial.path(), e))?;
                    builder
                        .get_mut()
                        .start_member(Some(io::BufWriter::new(file)));
                    if with_root {
                        append_root(&mut builder, build_dir)?;
                    }
                    for item in *segment {
                        append_item(&mut builder, item)?;
                    }
                    let written = builder.get_mut().finish_member().map_err(write_error)?;
                    stats.compressed_parts += 1;
                    stats.compressed_bytes += u64::from(crc.amount());
                    // Kept only when this pass serialized the very bytes the key names (the
                    // build is over, but a file changing between the passes must not leave a
                    // member under another content's name).
                    if written == key {
                        partial
                            .persist(&member)
                            .map_err(|e| BuildError::io("keep the slug layer", &member, e.error))?;
                        if let Some(key) = stat {
                            seen.insert(key, KnownRun::new(&name, &crc));
                        }
                    }
                }
                used.insert(std::ffi::OsString::from(name));
            }
            remove_unused_layers(layers, &used);
            write_stat_index(&stat_index_path(layers), &seen);
            builder.get_mut().start_member(None);
        }
    }
    let mut writer = builder.into_inner().map_err(write_error)?;
    writer.finish_member().map_err(write_error)?;
    let mut hashing = writer.out;
    hashing.inner.flush().map_err(write_error)?;
    let sha256 = hex::encode(hashing.hasher.finalize_reset());
    let size = hashing.written;
    let over = hashing.over;
    drop(hashing);
    if let (true, Some(max)) = (over, max_bytes) {
        return Err(BuildError::SlugTooLarge { size, max });
    }
    temp.as_file().sync_all().map_err(write_error)?;
    // Read by the server (root) alone; it unpacks slugs for dynos.
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o600))
        .map_err(|e| BuildError::io("set permissions of", temp.path(), e))?;
    let path = slug_dir.join(format!("{sha256}.tgz"));
    temp.persist(&path)
        .map_err(|e| BuildError::io("move the slug into", &path, e.error))?;
    Ok((PackedSlug { path, sha256, size }, stats))
}

/// The gzip level of slugs. Measured with zlib-rs on a 146 MB tree of node and Python files:
/// level 2 packs it to 37.9% in half the time of level 6 (34.9%), as small as GNU gzip -1
/// makes it; level 1 (zlib-rs's quick strategy) is faster again but 45.9%, a slug a fifth
/// larger to store, fetch and unpack at every dyno start.
const SLUG_COMPRESSION: flate2::Compression = flate2::Compression::new(2);

/// A regular file at least this large is a run of its own, so that a change elsewhere never
/// recompresses it (a Node.js binary is ~100 MB).
const LARGE_FILE_BYTES: u64 = 1024 * 1024;

/// One in this many entries (by a hash of its path) ends a run: runs average this many
/// entries, and their boundaries depend on names only, so a changed file changes one run.
const RUN_ENTRIES: u64 = 64;

/// One entry of the slug below its root, in archive order.
struct Item {
    path: PathBuf,
    archive_path: String,
    kind: ItemKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Dir,
    Symlink,
    File { size: u64 },
}

/// Lists the entries below `dir`, sorted by name so identical trees give identical tarballs;
/// special files (sockets, FIFOs, devices) are left out with a warning.
fn collect_items(
    dir: &Path,
    archive_prefix: &str,
    items: &mut Vec<Item>,
) -> Result<(), BuildError> {
    for entry in sorted_entries(dir)? {
        let path = entry.path();
        let name = entry.file_name();
        let archive_path = format!("{archive_prefix}/{}", name.to_string_lossy());
        let metadata =
            fs::symlink_metadata(&path).map_err(|e| BuildError::io("inspect", &path, e))?;
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            items.push(Item {
                path: path.clone(),
                archive_path: archive_path.clone(),
                kind: ItemKind::Dir,
            });
            collect_items(&path, &archive_path, items)?;
        } else if file_type.is_symlink() {
            items.push(Item {
                path,
                archive_path,
                kind: ItemKind::Symlink,
            });
        } else if file_type.is_file() {
            items.push(Item {
                path,
                archive_path,
                kind: ItemKind::File {
                    size: metadata.len(),
                },
            });
        } else {
            tracing::warn!(path = %path.display(), "skipping special file (socket, FIFO or device) when packing the slug");
        }
    }
    Ok(())
}

/// Splits the entries into runs: a run ends after an entry whose path hashes to 0 modulo
/// [`RUN_ENTRIES`], and a large file is a run of its own.
fn segments(items: &[Item]) -> Vec<&[Item]> {
    let large =
        |item: &Item| matches!(item.kind, ItemKind::File { size } if size >= LARGE_FILE_BYTES);
    let mut runs = Vec::new();
    let mut start = 0;
    for (index, item) in items.iter().enumerate() {
        let next_large = items.get(index + 1).is_some_and(large);
        if large(item)
            || next_large
            || fnv1a(item.archive_path.as_bytes()).is_multiple_of(RUN_ENTRIES)
        {
            runs.push(&items[start..=index]);
            start = index + 1;
        }
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    if runs.is_empty() {
        // An empty build dir still has its root entry, which opens the first run.
        runs.push(&items[..0]);
    }
    runs
}

/// FNV-1a, 64 bits: a hash that is the same in every build of Slipway (std's is not promised
/// to be), so runs stay the same from one release to the next.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where [`pack_reusing`] notes which member each run's [`stat_key`] was packed into: beside
/// the layers directory (`<layers>.index`), the platform's too.
pub(crate) fn stat_index_path(layers: &Path) -> PathBuf {
    let mut name = layers
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| OsString::from("layers"));
    name.push(".index");
    layers.with_file_name(name)
}

/// A run an earlier pack read: its member and that member's gzip trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownRun {
    member: String,
    crc: u32,
    amount: u32,
}

impl KnownRun {
    fn new(member: &str, crc: &flate2::Crc) -> Self {
        Self {
            member: member.to_owned(),
            crc: crc.sum(),
            amount: crc.amount(),
        }
    }
}

/// The most of a stat index read: far more than the runs of a 500 MB slug.
const STAT_INDEX_CAP: u64 = 16 * 1024 * 1024;

/// Identifies a run by what `lstat` says of each entry (device, inode, size, mode, owner,
/// mtime and ctime, to the nanosecond) and its path in the archive. The kernel sets ctime to
/// the current time on every change to an inode (contents, mode, owner, links), and no call
/// sets it back, so an unchanged key means unchanged entries: the platform's kept
/// directories (`kept.rs`) come back as the same inodes and are not read again. An entry
/// that cannot be inspected gives no key.
fn stat_key(build_dir: &Path, with_root: bool, segment: &[Item]) -> Option<String> {
    let mut hasher = Sha256::new();
    hasher.update(b"slipway-slug-stat-key-1\0");
    let mut add = |archive_path: &str, path: &Path| -> Option<()> {
        let metadata = fs::symlink_metadata(path).ok()?;
        hasher.update(archive_path.as_bytes());
        hasher.update([0]);
        for value in [
            metadata.dev(),
            metadata.ino(),
            metadata.size(),
            u64::from(metadata.mode()),
            u64::from(metadata.uid()),
            u64::from(metadata.gid()),
            metadata.mtime() as u64,
            metadata.mtime_nsec() as u64,
            metadata.ctime() as u64,
            metadata.ctime_nsec() as u64,
        ] {
            hasher.update(value.to_le_bytes());
        }
        Some(())
    };
    if with_root {
        add("./app/", build_dir)?;
    }
    for item in segment {
        add(&item.archive_path, &item.path)?;
    }
    Some(hex::encode(hasher.finalize()))
}

/// Reads a stat index (`<stat key> <member> <crc> <length>` lines); anything unreadable or
/// malformed is no entry.
fn read_stat_index(path: &Path) -> BTreeMap<String, KnownRun> {
    let Ok(file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    else {
        return BTreeMap::new();
    };
    let mut text = String::new();
    if file.take(STAT_INDEX_CAP).read_to_string(&mut text).is_err() {
        return BTreeMap::new();
    }
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (key, member, crc, amount) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            let valid = hex64(key) && member.strip_suffix(".gz").is_some_and(hex64);
            valid.then_some(())?;
            Some((
                key.to_owned(),
                KnownRun {
                    member: member.to_owned(),
                    crc: crc.parse().ok()?,
                    amount: amount.parse().ok()?,
                },
            ))
        })
        .collect()
}

/// Replaces the stat index with the runs of the pack just made. An index that cannot be
/// written only costs the next pack a read of every file.
fn write_stat_index(path: &Path, runs: &BTreeMap<String, KnownRun>) {
    let text: String = runs
        .iter()
        .map(|(key, run)| format!("{key} {} {} {}\n", run.member, run.crc, run.amount))
        .collect();
    let dir = path.parent().unwrap_or(Path::new("."));
    let written = tempfile::Builder::new()
        .prefix(".index-")
        .tempfile_in(dir)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.persist(path).map_err(|e| e.error)?;
            Ok(())
        });
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "could not write the slug's stat index");
    }
}

/// Whether the kept member `path` ends with the gzip trailer (CRC-32 and length) of the bytes
/// just serialized: a member cut short or overwritten by a crash is compressed again.
fn member_matches(path: &Path, crc: &flate2::Crc) -> bool {
    member_trailer_is(path, crc.sum(), crc.amount())
}

/// Whether the member `path` is a gzip member whose trailer says `crc` and `amount`.
fn member_trailer_is(path: &Path, crc: u32, amount: u32) -> bool {
    let Ok(mut file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    else {
        return false;
    };
    let Ok(metadata) = file.metadata() else {
        return false;
    };
    if !metadata.is_file() || metadata.len() < 18 {
        return false;
    }
    let mut head = [0u8; 2];
    let mut tail = [0u8; 8];
    let read = file.read_exact(&mut head).and_then(|()| {
        io::Seek::seek(&mut file, io::SeekFrom::End(-8))?;
        file.read_exact(&mut tail)
    });
    read.is_ok()
        && head == [0x1f, 0x8b]
        && tail[..4] == crc.to_le_bytes()
        && tail[4..] == amount.to_le_bytes()
}

/// Removes the members (and partial files) of `layers` that the pack just made did not use.
fn remove_unused_layers(layers: &Path, used: &std::collections::HashSet<OsString>) {
    let Ok(entries) = fs::read_dir(layers) else {
        return;
    };
    for entry in entries.flatten() {
        if !used.contains(&entry.file_name()) {
            let path = entry.path();
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove an unused slug layer");
            }
        }
    }
}

/// Where the tar stream goes: hashed only (to look for a kept member), or compressed as one
/// gzip member into the slug and, optionally, a layer file.
struct MemberWriter {
    out: HashingWriter<fs::File>,
    mode: Mode,
}

enum Mode {
    Idle,
    Hash {
        hasher: Sha256,
        crc: flate2::Crc,
    },
    Member {
        // Boxed: a compressor's state is large, and the writer switches modes per run.
        encoder: Box<flate2::write::GzEncoder<Vec<u8>>>,
        layer: Option<io::BufWriter<fs::File>>,
        hasher: Sha256,
    },
}

impl MemberWriter {
    fn start_member(&mut self, layer: Option<io::BufWriter<fs::File>>) {
        self.mode = Mode::Member {
            encoder: Box::new(flate2::write::GzEncoder::new(Vec::new(), SLUG_COMPRESSION)),
            layer,
            hasher: Sha256::new(),
        };
    }

    /// The SHA-256 (hex) and CRC-32 of what was written since hashing began.
    fn take_hash(&mut self) -> (String, flate2::Crc) {
        match std::mem::replace(&mut self.mode, Mode::Idle) {
            Mode::Hash { hasher, crc } => (hex::encode(hasher.finalize()), crc),
            _ => (String::new(), flate2::Crc::new()),
        }
    }

    /// Ends the current member; returns the SHA-256 (hex) of its uncompressed bytes.
    fn finish_member(&mut self) -> io::Result<String> {
        match std::mem::replace(&mut self.mode, Mode::Idle) {
            Mode::Member {
                encoder,
                mut layer,
                hasher,
            } => {
                let rest = encoder.finish()?;
                self.out.write_all(&rest)?;
                if let Some(layer) = layer.as_mut() {
                    layer.write_all(&rest)?;
                    layer.flush()?;
                }
                Ok(hex::encode(hasher.finalize()))
            }
            _ => Ok(String::new()),
        }
    }

    /// Appends a kept member to the slug; returns how many bytes it copied.
    fn copy_member(&mut self, path: &Path) -> io::Result<u64> {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        io::copy(&mut file, &mut self.out)
    }
}

impl Write for MemberWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.mode {
            Mode::Idle => Err(io::Error::other("slug bytes written outside a member")),
            Mode::Hash { hasher, crc } => {
                hasher.update(buf);
                crc.update(buf);
                Ok(buf.len())
            }
            Mode::Member {
                encoder,
                layer,
                hasher,
            } => {
                encoder.write_all(buf)?;
                hasher.update(buf);
                let compressed = encoder.get_mut();
                if !compressed.is_empty() {
                    self.out.write_all(compressed)?;
                    if let Some(layer) = layer.as_mut() {
                        layer.write_all(compressed)?;
                    }
                    compressed.clear();
                }
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts and hashes what passes through, i.e. the compressed bytes. Past `max_bytes` it
/// only counts: `over` is set and nothing more reaches `inner`.
struct HashingWriter<W: Write> {
    inner: io::BufWriter<W>,
    hasher: Sha256,
    written: u64,
    max_bytes: Option<u64>,
    over: bool,
}

impl Write for HashingWriter<fs::File> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.over
            && self
                .max_bytes
                .is_some_and(|max| self.written + buf.len() as u64 > max)
        {
            self.over = true;
            // Give the disk space back now; the file is removed when `pack` returns.
            self.inner.flush()?;
            self.inner.get_ref().set_len(0)?;
        }
        if self.over {
            self.written += buf.len() as u64;
            return Ok(buf.len());
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.over {
            return Ok(());
        }
        self.inner.flush()
    }
}

type SlugBuilder<W> = tar::Builder<W>;

/// Appends the slug's root directory entry, `./app/`.
fn append_root<W: Write>(builder: &mut SlugBuilder<W>, build_dir: &Path) -> Result<(), BuildError> {
    append_dir_entry(builder, build_dir, b"./app/")
}

/// Appends one entry (a directory's own entry, not its children).
fn append_item<W: Write>(builder: &mut SlugBuilder<W>, item: &Item) -> Result<(), BuildError> {
    let path = &item.path;
    match item.kind {
        ItemKind::Dir => {
            append_dir_entry(builder, path, format!("{}/", item.archive_path).as_bytes())
        }
        ItemKind::Symlink => {
            let metadata =
                fs::symlink_metadata(path).map_err(|e| BuildError::io("inspect", path, e))?;
            let target =
                fs::read_link(path).map_err(|e| BuildError::io("read symlink", path, e))?;
            let mut header = base_header(&metadata, EntryType::Symlink);
            header.set_size(0);
            append_raw(
                builder,
                header,
                item.archive_path.as_bytes(),
                Some(target.as_os_str().as_encoded_bytes()),
                io::empty(),
            )
            .map_err(|e| BuildError::io("add to the slug", path, e))
        }
        ItemKind::File { .. } => {
            // Listed as a regular file: never follow what may have replaced it since.
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| BuildError::io("open", path, e))?;
            let metadata = file
                .metadata()
                .map_err(|e| BuildError::io("inspect", path, e))?;
            let mut header = base_header(&metadata, EntryType::Regular);
            header.set_size(metadata.len());
            // Reading exactly the declared size keeps the archive valid even if the file
            // changes while being read.
            let reader = file.take(metadata.len());
            append_raw(builder, header, item.archive_path.as_bytes(), None, reader)
                .map_err(|e| BuildError::io("add to the slug", path, e))
        }
    }
}

fn append_dir_entry<W: Write>(
    builder: &mut SlugBuilder<W>,
    path: &Path,
    archive_path: &[u8],
) -> Result<(), BuildError> {
    let metadata = fs::symlink_metadata(path).map_err(|e| BuildError::io("inspect", path, e))?;
    let mut header = base_header(&metadata, EntryType::Directory);
    header.set_size(0);
    append_raw(builder, header, archive_path, None, io::empty())
        .map_err(|e| BuildError::io("add to the slug", path, e))
}

/// A GNU header owned by root with the file's mode and mtime.
fn base_header(metadata: &fs::Metadata, entry_type: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(metadata.mode() & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(u64::try_from(metadata.mtime()).unwrap_or(0));
    // Both are short ASCII names that always fit the fields.
    let _ = header.set_username("root");
    let _ = header.set_groupname("root");
    header
}

/// Appends an entry whose name is written verbatim (the tar crate would drop the leading
/// `./` that GNU tar writes), using GNU long-name records for names over 100 bytes.
fn append_raw<W: Write, R: Read>(
    builder: &mut SlugBuilder<W>,
    mut header: Header,
    name: &[u8],
    link_name: Option<&[u8]>,
    data: R,
) -> io::Result<()> {
    if name.len() > 100 {
        append_long_name(builder, EntryType::GNULongName, name)?;
    }
    if let Some(link_name) = link_name.filter(|l| l.len() > 100) {
        append_long_name(builder, EntryType::GNULongLink, link_name)?;
    }
    let old = header.as_old_mut();
    let name_len = name.len().min(old.name.len());
    old.name = [0; 100];
    old.name[..name_len].copy_from_slice(&name[..name_len]);
    if let Some(link_name) = link_name {
        let link_len = link_name.len().min(old.linkname.len());
        old.linkname = [0; 100];
        old.linkname[..link_len].copy_from_slice(&link_name[..link_len]);
    }
    header.set_cksum();
    builder.append(&header, data)
}

fn append_long_name<W: Write>(
    builder: &mut SlugBuilder<W>,
    kind: EntryType,
    name: &[u8],
) -> io::Result<()> {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    let mut data = name.to_vec();
    data.push(0);
    header.set_size(data.len() as u64);
    let marker = b"././@LongLink";
    header.as_old_mut().name[..marker.len()].copy_from_slice(marker);
    header.set_cksum();
    builder.append(&header, data.as_slice())
}

/// The most a slug may expand to when unpacked (content bytes plus 512 per entry): 2 GiB. A
/// slug is at most 500 MB compressed (`--max-slug-size-mb`), but gzip of zeros shrinks a
/// thousandfold; this keeps a hostile slug from filling the disk.
pub const MAX_UNPACKED_SLUG_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What an archive being unpacked is, for its path layout and its error messages.
#[derive(Debug, Clone, Copy)]
enum ArchiveKind<'a> {
    /// A slug: only `./app/...` entries are extracted.
    Slug(&'a Path),
    /// An app's source (`git archive`, a source blob): every entry, relative to the root.
    Source,
}

/// Extracts the `./app/...` entries of the gzip tarball `slug` into `dest` (created if
/// missing) and chowns everything it creates to `uid:gid`. Entries outside `./app` are
/// ignored, as on Heroku.
///
/// Refused (the whole unpack fails): absolute paths, `..` components, device nodes and
/// FIFOs, hard links to anything but an already-extracted regular file, and any entry whose
/// parent inside `dest` is a symlink (the "symlink, then write through it" trick). Symlinks
/// themselves are recreated as they are, whatever they point at: they are only dangerous when
/// followed, and nothing here follows them. Setuid, setgid and sticky bits are dropped. A slug
/// expanding to more than [`MAX_UNPACKED_SLUG_BYTES`] is refused.
pub fn unpack_slug(slug: &Path, dest: &Path, uid: u32, gid: u32) -> Result<(), BuildError> {
    let file = fs::File::open(slug).map_err(|e| BuildError::io("open slug", slug, e))?;
    unpack(
        ArchiveKind::Slug(slug),
        // A slug may hold several gzip members (`pack_reusing` writes one per run).
        flate2::read::MultiGzDecoder::new(io::BufReader::new(file)),
        dest,
        uid,
        gid,
        MAX_UNPACKED_SLUG_BYTES,
    )
}

/// Extracts an app's source tarball (a plain tar stream: `git archive`, or a decompressed
/// source blob) into `dest` with the same defences as [`unpack_slug`] (no entry outside
/// `dest`, no write through a symlink, hard links copied from extracted files only, no device
/// nodes or FIFOs, symlinks kept as symlinks), owned by `uid:gid`. The stream is read once and
/// never held in memory; an archive expanding to more than `max_bytes` (content bytes plus 512
/// per entry) is refused with [`BuildError::ArchiveTooLarge`] as soon as it passes the cap.
/// `git archive`'s global pax header is skipped. Blocking.
pub fn unpack_source(
    reader: impl Read,
    dest: &Path,
    uid: u32,
    gid: u32,
    max_bytes: u64,
) -> Result<(), BuildError> {
    unpack(ArchiveKind::Source, reader, dest, uid, gid, max_bytes)
}

fn unpack(
    kind: ArchiveKind<'_>,
    reader: impl Read,
    dest: &Path,
    uid: u32,
    gid: u32,
    max_bytes: u64,
) -> Result<(), BuildError> {
    let mut archive = tar::Archive::new(reader);
    fs::create_dir_all(dest).map_err(|e| BuildError::io("create", dest, e))?;
    lchown(dest, Some(uid), Some(gid)).map_err(|e| BuildError::io("change owner of", dest, e))?;
    let (label, what) = match kind {
        ArchiveKind::Slug(slug) => (slug.to_path_buf(), "slug"),
        ArchiveKind::Source => (PathBuf::from("the app's source"), "source"),
    };
    let read_error = |e| BuildError::io("read", &label, e);
    let unsafe_entry = |entry: &str, reason| match kind {
        ArchiveKind::Slug(slug) => BuildError::UnsafeSlugEntry {
            slug: slug.to_path_buf(),
            entry: entry.to_string(),
            reason,
        },
        ArchiveKind::Source => BuildError::UnsafeSourceEntry {
            entry: entry.to_string(),
            reason,
        },
    };
    let mut expanded: u64 = 0;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw_path = entry.path_bytes().into_owned();
        let display = String::from_utf8_lossy(&raw_path).into_owned();
        expanded = expanded
            .saturating_add(512)
            .saturating_add(entry.header().entry_size().map_err(read_error)?);
        if expanded > max_bytes {
            return Err(BuildError::ArchiveTooLarge {
                what,
                max: max_bytes,
            });
        }
        if matches!(
            entry.header().entry_type(),
            EntryType::XGlobalHeader | EntryType::XHeader
        ) {
            continue;
        }
        let relative = match kind {
            ArchiveKind::Slug(_) => app_relative_path(&raw_path),
            ArchiveKind::Source => source_relative_path(&raw_path).map(Some),
        };
        let Some(relative) = relative.map_err(|r| unsafe_entry(&display, r))? else {
            continue;
        };
        let entry_type = entry.header().entry_type();
        let mode = entry.header().mode().map_err(read_error)? & 0o777;
        if relative.as_os_str().is_empty() {
            // `./app/` itself.
            if entry_type.is_dir() {
                fs::set_permissions(dest, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(|e| BuildError::io("set permissions of", dest, e))?;
            }
            continue;
        }
        let target = dest.join(&relative);
        ensure_parents(dest, &relative, uid, gid)
            .map_err(|reason| unsafe_entry(&display, reason))?;
        match entry_type {
            EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_non_dir(&target)?;
                        create_dir(&target)?;
                    }
                    Err(_) => create_dir(&target)?,
                }
                // Owner always keeps rwx so later entries can be written into it.
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(|e| BuildError::io("set permissions of", &target, e))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_non_dir_or_refuse(&target).map_err(|r| unsafe_entry(&display, r))?;
                let mut out = create_file(&target, mode)?;
                io::copy(&mut entry, &mut out).map_err(|e| BuildError::io("write", &target, e))?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&display, "is a symlink without a target"))?
                    .into_owned();
                remove_non_dir_or_refuse(&target).map_err(|r| unsafe_entry(&display, r))?;
                let link = PathBuf::from(OsString::from_vec(link));
                symlink(&link, &target)
                    .map_err(|e| BuildError::io("create symlink", &target, e))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&display, "is a hard link without a target"))?
                    .into_owned();
                let link_relative = match kind {
                    ArchiveKind::Slug(_) => app_relative_path(&link),
                    ArchiveKind::Source => source_relative_path(&link).map(Some),
                }
                .map_err(|r| unsafe_entry(&display, r))?
                .filter(|p| !p.as_os_str().is_empty())
                .ok_or_else(|| unsafe_entry(&display, "is a hard link to outside the tree"))?;
                ensure_parents(dest, &link_relative, uid, gid)
                    .map_err(|reason| unsafe_entry(&display, reason))?;
                let source = dest.join(&link_relative);
                // Copy instead of linking: the source must be a regular file this unpack
                // created, and a copy cannot alias anything outside `dest`.
                match fs::symlink_metadata(&source) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(unsafe_entry(
                            &display,
                            "is a hard link to something that is not an extracted regular file",
                        ))
                    }
                }
                remove_non_dir_or_refuse(&target).map_err(|r| unsafe_entry(&display, r))?;
                let source_metadata = fs::symlink_metadata(&source)
                    .map_err(|e| BuildError::io("inspect", &source, e))?;
                let source_mode = source_metadata.mode();
                // The copy takes as much disk as the file it copies.
                expanded = expanded.saturating_add(source_metadata.len());
                if expanded > max_bytes {
                    return Err(BuildError::ArchiveTooLarge {
                        what,
                        max: max_bytes,
                    });
                }
                let mut input = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&source)
                    .map_err(|e| BuildError::io("open", &source, e))?;
                let mut out = create_file(&target, source_mode & 0o777)?;
                io::copy(&mut input, &mut out).map_err(|e| BuildError::io("write", &target, e))?;
            }
            EntryType::Char | EntryType::Block => {
                return Err(unsafe_entry(&display, "is a device node"));
            }
            EntryType::Fifo => return Err(unsafe_entry(&display, "is a FIFO")),
            _ => return Err(unsafe_entry(&display, "has an unsupported entry type")),
        }
        lchown(&target, Some(uid), Some(gid))
            .map_err(|e| BuildError::io("change owner of", &target, e))?;
    }
    Ok(())
}

/// Maps an archive path to a path relative to `./app`. `Ok(None)`: outside `./app`, ignored.
fn app_relative_path(raw: &[u8]) -> Result<Option<PathBuf>, &'static str> {
    if raw.starts_with(b"/") {
        return Err("has an absolute path");
    }
    let path = Path::new(OsStr::from_bytes(raw));
    let mut components = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => components.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    match components.split_first() {
        Some((first, rest)) if *first == "app" => Ok(Some(rest.iter().collect())),
        _ => Ok(None),
    }
}

/// Maps a source archive path to a path relative to the root (`./` and `.` dropped).
fn source_relative_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
    if raw.starts_with(b"/") {
        return Err("has an absolute path");
    }
    let mut relative = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    Ok(relative)
}

/// Makes sure every ancestor of `dest/relative` inside `dest` is a real directory (creating
/// missing ones), so no write can be redirected through a symlink.
fn ensure_parents(dest: &Path, relative: &Path, uid: u32, gid: u32) -> Result<(), &'static str> {
    let mut current = dest.to_path_buf();
    let parents: Vec<_> = relative.components().collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err("would be written through a symlink");
            }
            Ok(_) => return Err("would be written below something that is not a directory"),
            Err(_) => {
                fs::create_dir(&current)
                    .map_err(|_| "needs a parent directory that could not be created")?;
                let _ = lchown(&current, Some(uid), Some(gid));
            }
        }
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), BuildError> {
    fs::create_dir(path).map_err(|e| BuildError::io("create directory", path, e))
}

/// Creates a new file, never following a symlink at `path`.
fn create_file(path: &Path, mode: u32) -> Result<fs::File, BuildError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| BuildError::io("create", path, e))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::io("set permissions of", path, e))?;
    Ok(file)
}

/// Removes a file or symlink at `path` so an entry can replace it.
fn remove_non_dir(path: &Path) -> Result<(), BuildError> {
    fs::remove_file(path).map_err(|e| BuildError::io("replace", path, e))
}

/// Like [`remove_non_dir`], but a directory in the way is an error (a tarball must not
/// replace a directory with a file).
fn remove_non_dir_or_refuse(path: &Path) -> Result<(), &'static str> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err("would replace a directory"),
        Ok(_) => fs::remove_file(path).map_err(|_| "could not replace an earlier entry"),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
