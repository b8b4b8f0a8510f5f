//! Layer compression: one zstd frame or one gzip member per fragment, with every parameter
//! that can change the bytes fixed here (and folded into node ids via [`Compression::key`]).
//!
//! zstd always runs in libzstd's multi-threaded mode with at least one worker: its output is
//! then the same for any worker count, while the single-threaded mode (workers = 0) produces
//! different bytes (measured, `shared/reference/crates.md` §3b). The libzstd version is pinned
//! through `zstd-sys = "=2.1.3"` (libzstd 1.5.7). gzip uses flate2's zlib-rs backend, pinned
//! by the workspace features, with MTIME 0, no file name and OS byte 255.

use std::io::{self, Read, Write};

/// The compression of layer blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// zstd at a fixed level (default 3).
    Zstd {
        /// libzstd compression level.
        level: i32,
    },
    /// gzip (deflate) at a fixed level (default 6).
    Gzip {
        /// zlib level 0–9.
        level: u32,
    },
}

impl Default for Compression {
    fn default() -> Self {
        Self::Zstd { level: 3 }
    }
}

impl Compression {
    /// The default gzip setting.
    #[must_use]
    pub fn gzip() -> Self {
        Self::Gzip { level: 6 }
    }

    /// OCI media type of a layer compressed this way.
    #[must_use]
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
            Self::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }

    /// A stable string naming everything that determines the compressed bytes; part of every
    /// fragment's node id.
    #[must_use]
    pub fn key(self) -> String {
        match self {
            Self::Zstd { level } => {
                format!("zstd/libzstd-1.5.7/level={level}/mt/no-checksum/content-size")
            }
            Self::Gzip { level } => format!("gzip/zlib-rs/level={level}/mtime=0/os=255"),
        }
    }

    /// Short name (`zstd`, `gzip`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Zstd { .. } => "zstd",
            Self::Gzip { .. } => "gzip",
        }
    }

    /// Starts one frame/member that will receive exactly `content_len` bytes.
    ///
    /// # Errors
    /// libzstd parameter errors.
    pub fn encoder<W: Write>(
        self,
        out: W,
        content_len: u64,
        workers: u32,
    ) -> io::Result<Encoder<W>> {
        match self {
            Self::Zstd { level } => {
                let mut enc = zstd::stream::write::Encoder::new(out, level)?;
                enc.multithread(workers.max(1))?;
                enc.include_checksum(false)?;
                enc.include_contentsize(true)?;
                enc.set_pledged_src_size(Some(content_len))?;
                Ok(Encoder::Zstd(enc))
            }
            Self::Gzip { level } => {
                let enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(level));
                Ok(Encoder::Gzip(enc))
            }
        }
    }

    /// A reader that decompresses a whole (possibly multi-frame / multi-member) stream.
    ///
    /// # Errors
    /// Decoder set-up errors.
    pub fn decoder<'a, R: Read + 'a>(self, input: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Self::Zstd { .. } => Box::new(zstd::stream::read::Decoder::new(input)?),
            Self::Gzip { .. } => Box::new(flate2::read::MultiGzDecoder::new(input)),
        })
    }
}

/// One frame/member being written.
pub enum Encoder<W: Write> {
    /// zstd frame.
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// gzip member.
    Gzip(flate2::write::GzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Ends the frame/member and returns the inner writer.
    ///
    /// # Errors
    /// I/O errors, or a content length that differs from the pledged one.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Self::Zstd(e) => e.finish(),
            Self::Gzip(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Zstd(e) => e.write(buf),
            Self::Gzip(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Zstd(e) => e.flush(),
            Self::Gzip(e) => e.flush(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Deterministic, partly compressible data larger than one zstd MT job.
        let mut v = Vec::with_capacity(3 << 20);
        let mut x: u32 = 1;
        while v.len() < (3 << 20) {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            if (x >> 28) < 9 {
                v.extend_from_slice(b"the quick brown fox ");
            } else {
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v
    }

    fn compress(c: Compression, data: &[u8], workers: u32) -> Vec<u8> {
        let mut e = c.encoder(Vec::new(), data.len() as u64, workers).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_worker_count() {
        let data = sample();
        let c = Compression::default();
        let one = compress(c, &data, 1);
        assert_eq!(one, compress(c, &data, 2));
        assert_eq!(one, compress(c, &data, 8));
    }

    #[test]
    fn concatenated_frames_and_members_decode_as_one_stream() {
        for c in [Compression::default(), Compression::gzip()] {
            let mut blob = compress(c, b"hello ", 2);
            blob.extend(compress(c, b"world", 2));
            let mut out = String::new();
            c.decoder(&blob[..])
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, "hello world", "{}", c.name());
        }
    }

    #[test]
    fn gzip_header_has_no_time_or_name() {
        let g = compress(Compression::gzip(), b"x", 1);
        assert_eq!(&g[..4], &[0x1f, 0x8b, 8, 0], "no FNAME flag");
        assert_eq!(&g[4..8], &[0, 0, 0, 0], "MTIME 0");
        assert_eq!(g[9], 255, "OS unknown");
    }

    #[test]
    fn zstd_pledged_size_mismatch_is_an_error() {
        let mut e = Compression::default().encoder(Vec::new(), 10, 1).unwrap();
        e.write_all(b"abc").unwrap();
        assert!(e.finish().is_err());
    }
}
