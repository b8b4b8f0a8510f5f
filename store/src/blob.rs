//! [`BlobWriter`]: streams a blob into `v1/tmp/`, hashing as it goes, and on
//! [`commit`](BlobWriter::commit) publishes it under its digest.
//!
//! Protocol: write the temp file, chmod 0444, fsync, compare with the expected digest, rename
//! to `blobs/sha256/<hex>`, fsync the directory. Until the rename the blob is invisible; after
//! it the content is complete and durable. A writer dropped without commit, or a commit that
//! fails, removes its temp file and leaves the store as it was.
//!
//! Two writers of the same content may race: each renames its own complete copy into place
//! (rename replaces atomically, and the copies are identical), or finds the blob present and
//! drops its copy.

use std::fs::{self, File};
use std::io::{self, BufWriter, ErrorKind, Write};

use crate::atomic::{TempPath, fsync_dir, publish, seal};
use crate::digest::{Digest, Sha256Writer};
use crate::error::{StoreError, io_at};
use crate::layout::Layout;

/// Mode of every committed blob: read-only for everyone, whatever the umask.
pub const BLOB_MODE: u32 = 0o444;

const BUFFER: usize = 64 * 1024;

/// A blob being written. Implements [`Write`]; see the module docs for the protocol.
///
/// Errors from `write`/`flush` are `io::Error`s wrapping a [`StoreError::Io`] that names the
/// temp file; `io::Error::downcast::<StoreError>()` gets it back.
#[derive(Debug)]
pub struct BlobWriter {
    // Field order matters on drop: the buffered file is flushed and closed before the temp
    // guard removes it.
    out: Sha256Writer<BufWriter<File>>,
    temp: TempPath,
    layout: Layout,
    what: Option<String>,
}

impl BlobWriter {
    pub(crate) fn new(file: File, temp: TempPath, layout: Layout) -> BlobWriter {
        BlobWriter {
            out: Sha256Writer::new(BufWriter::with_capacity(BUFFER, file)),
            temp,
            layout,
            what: None,
        }
    }

    /// Describes the content for error messages (e.g. `download of https://…/libc6.deb`);
    /// by default a digest mismatch names the temp file.
    pub fn set_description(&mut self, what: impl Into<String>) {
        self.what = Some(what.into());
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.out.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Finishes the blob and publishes it; returns its digest and size.
    ///
    /// If `expected` is given and the content does not match, returns
    /// [`StoreError::DigestMismatch`], removes the temp file and leaves the store unchanged.
    /// If the blob is already in the store (same digest and size), the new copy is dropped.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let BlobWriter {
            out,
            temp,
            layout,
            what,
        } = self;
        let (buffered, digest, len) = out.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| StoreError::io(temp.path(), e.into_error()))?;
        seal(&file, temp.path(), BLOB_MODE)?;
        drop(file);

        if let Some(expected) = expected
            && *expected != digest
        {
            let what = what.unwrap_or_else(|| format!("blob written to {}", temp.path().display()));
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
                what,
            });
        }

        let dest = layout.blob(&digest);
        match fs::symlink_metadata(&dest) {
            // Already there (another writer won, or it was stored before): keep that one.
            // `temp` is dropped and removed. The dir fsync makes sure the winner's rename is
            // durable before we report success.
            Ok(m) if m.is_file() && m.len() == len => fsync_dir(&layout.blobs_dir())?,
            // Absent, or a wrong-size leftover (it cannot be right): replace it.
            Ok(_) => publish(temp, &dest)?,
            Err(e) if e.kind() == ErrorKind::NotFound => publish(temp, &dest)?,
            Err(e) => return Err(io_at(&dest)(e)),
        }
        Ok((digest, len))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let path = self.temp.path();
        self.out
            .write(buf)
            .map_err(|e| io::Error::new(e.kind(), StoreError::io(path, e)))
    }

    fn flush(&mut self) -> io::Result<()> {
        let path = self.temp.path();
        self.out
            .flush()
            .map_err(|e| io::Error::new(e.kind(), StoreError::io(path, e)))
    }
}
