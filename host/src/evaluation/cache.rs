//! The on-disk cache of compiled packs. An entry is native code that
//! `Component::deserialize` runs as it is, so the cache is used only when no
//! one but the current user can have written it: the directory (created 0700)
//! and each entry (written 0600) must be owned by the current user and
//! writable by no group and no other user, checked on the open file. Whoever
//! can write them could already run code as this user. Entries beyond the cap
//! are evicted, least recently used first (a hit sets the entry's mtime).

use std::fs::{File, Metadata};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub(super) struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

impl Cache {
    /// The cache in `dir`, created 0700 if missing; none when the directory
    /// is not the current user's own or others may write it.
    pub(super) fn open(dir: PathBuf, max_bytes: u64) -> Option<Cache> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).ok()?;
        }
        private::create_dir(&dir).ok()?;
        let meta = std::fs::metadata(&dir).ok()?;
        (meta.is_dir() && private::is_own(&meta)).then_some(Cache { dir, max_bytes })
    }

    /// What `key` holds: the compiled bytes, when the entry is the current
    /// user's own, writable by no one else, and its leading SHA-256 matches
    /// the rest (a torn write is not used). Marks the entry used.
    pub(super) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut file = File::open(self.dir.join(key)).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || !private::is_own(&meta) || meta.len() > self.max_bytes {
            return None;
        }
        let mut entry = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut entry).ok()?;
        if entry.len() <= 32 || Sha256::digest(&entry[32..])[..] != entry[..32] {
            return None;
        }
        // the mtime orders eviction; failing to set it only makes eviction less exact
        let _ = file.set_modified(SystemTime::now());
        entry.drain(..32);
        Some(entry)
    }

    /// Stores `compiled` under `key` (best effort: a cache that cannot be
    /// written only costs time), then evicts entries beyond the cap.
    pub(super) fn put(&self, key: &str, compiled: &[u8]) {
        let path = self.dir.join(key);
        // unique per process and thread, so concurrent writers never share a file
        let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_digit(), "");
        let tmp = path.with_extension(format!("tmp{}-{thread}", std::process::id()));
        let written = private::create_file(&tmp).and_then(|mut f| {
            f.write_all(&Sha256::digest(compiled))?;
            f.write_all(compiled)
        });
        if written.and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        self.evict();
    }

    fn evict(&self) {
        evict_least_recently_used(&self.dir, self.max_bytes);
    }
}

/// Removes the least recently used files of `dir` (by mtime) until it holds
/// at most `max_bytes`. Also bounds the registry's pull cache (`oci`).
pub(crate) fn evict_least_recently_used(dir: &Path, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(unix)]
mod private {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};

    use super::*;

    /// Owned by the current user and writable by no group and no other
    /// user. The current user is the owner of `/proc/self` (Linux): without
    /// it, nothing is trusted.
    pub(super) fn is_own(meta: &Metadata) -> bool {
        let user = std::fs::metadata("/proc/self").map(|m| m.uid());
        user.is_ok_and(|uid| meta.uid() == uid) && meta.mode() & 0o022 == 0
    }

    pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    pub(super) fn create_file(path: &Path) -> std::io::Result<File> {
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
    }
}

/// Without file owners to check, nothing in the cache is trusted.
#[cfg(not(unix))]
mod private {
    use super::*;

    pub(super) fn is_own(_: &Metadata) -> bool {
        false
    }

    pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub(super) fn create_file(path: &Path) -> std::io::Result<File> {
        File::create_new(path)
    }
}
