//! Slug tarballs: packing a build dir as `./app/...` (like GNU `tar czf slug.tgz
//! --owner=root ./app`) into a content-addressed store, and unpacking one defensively.
//!
//! A slug may come from elsewhere (the Platform API accepts uploaded slugs), so unpacking
//! treats it as hostile: entries outside `./app` are ignored; absolute paths, `..`, device
//! nodes, FIFOs and writes through symlinks are refused; nothing is ever written outside the
//! destination.

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

/// Packs `build_dir` as `./app/...` into `slug_dir/<sha256>.tgz`. The tarball is written to a
/// temporary file in `slug_dir` and renamed into place, so a slug path never names a partial
/// file. Blocking.
///
/// With `max_bytes`, a tarball growing past it stops being written to disk (the temporary file
/// is truncated and removed) while compression continues to a counter only, so the error can
/// say how big the slug would have been, as Heroku's does; the disk never holds more than
/// `max_bytes` of it.
pub(crate) fn pack(
    build_dir: &Path,
    slug_dir: &Path,
    max_bytes: Option<u64>,
) -> Result<PackedSlug, BuildError> {
    fs::create_dir_all(slug_dir).map_err(|e| BuildError::io("create", slug_dir, e))?;
    let temp = tempfile::Builder::new()
        .prefix(".partial-")
        .suffix(".tgz")
        .tempfile_in(slug_dir)
        .map_err(|e| BuildError::io("create a temporary file in", slug_dir, e))?;
    let hashing = HashingWriter {
        inner: io::BufWriter::new(temp.as_file()),
        hasher: Sha256::new(),
        written: 0,
        max_bytes,
        over: false,
    };
    let encoder = flate2::write::GzEncoder::new(hashing, flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    append_dir_entry(&mut builder, build_dir, b"./app/")?;
    append_tree(&mut builder, build_dir, "./app")?;
    let write_error = |e| BuildError::io("write", temp.path(), e);
    let encoder = builder.into_inner().map_err(write_error)?;
    let mut hashing = encoder.finish().map_err(write_error)?;
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
    Ok(PackedSlug { path, sha256, size })
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

impl Write for HashingWriter<&fs::File> {
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

/// Appends the children of `dir`, sorted by name so identical trees give identical tarballs.
fn append_tree<W: Write>(
    builder: &mut SlugBuilder<W>,
    dir: &Path,
    archive_prefix: &str,
) -> Result<(), BuildError> {
    for entry in sorted_entries(dir)? {
        let path = entry.path();
        let name = entry.file_name();
        let archive_path = format!("{archive_prefix}/{}", name.to_string_lossy());
        let metadata =
            fs::symlink_metadata(&path).map_err(|e| BuildError::io("inspect", &path, e))?;
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            append_dir_entry(builder, &path, format!("{archive_path}/").as_bytes())?;
            append_tree(builder, &path, &archive_path)?;
        } else if file_type.is_symlink() {
            let target =
                fs::read_link(&path).map_err(|e| BuildError::io("read symlink", &path, e))?;
            let mut header = base_header(&metadata, EntryType::Symlink);
            header.set_size(0);
            append_raw(
                builder,
                header,
                archive_path.as_bytes(),
                Some(target.as_os_str().as_encoded_bytes()),
                io::empty(),
            )
            .map_err(|e| BuildError::io("add to the slug", &path, e))?;
        } else if file_type.is_file() {
            let file = fs::File::open(&path).map_err(|e| BuildError::io("open", &path, e))?;
            let mut header = base_header(&metadata, EntryType::Regular);
            header.set_size(metadata.len());
            // Reading exactly the declared size keeps the archive valid even if the file
            // changes while being read.
            let reader = file.take(metadata.len());
            append_raw(builder, header, archive_path.as_bytes(), None, reader)
                .map_err(|e| BuildError::io("add to the slug", &path, e))?;
        } else {
            tracing::warn!(path = %path.display(), "skipping special file (socket, FIFO or device) when packing the slug");
        }
    }
    Ok(())
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
        flate2::read::GzDecoder::new(io::BufReader::new(file)),
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
