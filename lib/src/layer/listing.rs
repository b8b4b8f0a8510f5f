//! The stored form of an archive's installed entries (a `.deb`'s or a wheel's "listing"):
//! path, mode, owner, kind, size, link target and the blake3 of file contents, and the text
//! of files the installer generated (a wheel's `RECORD`, launchers), which no archive holds.
//! Cached in the store so a warm build plans its fragments without opening the archive.

use serde::{Deserialize, Serialize};

use super::tar::{EntryKind, Header};

/// One entry as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEntry {
    path: String,
    mode: u32,
    uid: u32,
    gid: u32,
    kind: char,
    #[serde(default, skip_serializing_if = "is_zero")]
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blake3: Option<String>,
    /// The content of a generated file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StoredEntry {
    /// Encodes a header and its content hash.
    #[must_use]
    pub fn new(h: &Header, content_hash: &[u8; 32]) -> Self {
        let (kind, size, target) = match &h.kind {
            EntryKind::Dir => ('d', 0, None),
            EntryKind::File { size } => ('f', *size, None),
            EntryKind::Symlink { target } => ('l', 0, Some(target.clone())),
            EntryKind::HardLink { target } => ('h', 0, Some(target.clone())),
        };
        Self {
            path: h.path.clone(),
            mode: h.mode,
            uid: h.uid,
            gid: h.gid,
            kind,
            size,
            target,
            blake3: (kind == 'f').then(|| hex::encode(content_hash)),
            text: None,
        }
    }

    /// With the content of a generated file.
    #[must_use]
    pub fn with_text(mut self, text: String) -> Self {
        self.text = Some(text);
        self
    }

    /// The content of a generated file, if this is one.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// Decodes into a header and its content hash.
    ///
    /// # Errors
    /// An unknown kind, a link without a target, or a malformed hash (naming the path).
    pub fn decode(self) -> Result<(Header, [u8; 32]), String> {
        let kind = match (self.kind, self.target) {
            ('d', _) => EntryKind::Dir,
            ('f', _) => EntryKind::File { size: self.size },
            ('l', Some(target)) => EntryKind::Symlink { target },
            ('h', Some(target)) => EntryKind::HardLink { target },
            (k, _) => return Err(format!("unknown entry kind {k:?} for {}", self.path)),
        };
        let mut content_hash = [0u8; 32];
        if let Some(h) = self.blake3 {
            let bytes = hex::decode(&h).map_err(|err| format!("{}: {err}", self.path))?;
            if bytes.len() != 32 {
                return Err(format!("bad hash for {}", self.path));
            }
            content_hash.copy_from_slice(&bytes);
        }
        Ok((
            Header {
                path: self.path,
                mode: self.mode,
                uid: self.uid,
                gid: self.gid,
                kind,
            },
            content_hash,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for kind in [
            EntryKind::Dir,
            EntryKind::File { size: 7 },
            EntryKind::Symlink {
                target: "../x".into(),
            },
            EntryKind::HardLink {
                target: "usr/bin/a".into(),
            },
        ] {
            let h = Header {
                path: "usr/bin/b".into(),
                mode: 0o4755,
                uid: 3,
                gid: 4,
                kind,
            };
            let hash = if matches!(h.kind, EntryKind::File { .. }) {
                [7u8; 32]
            } else {
                [0u8; 32]
            };
            let json = serde_json::to_string(&StoredEntry::new(&h, &hash)).unwrap();
            assert!(!json.contains("text"), "{json}");
            let back: StoredEntry = serde_json::from_str(&json).unwrap();
            assert_eq!(back.text(), None);
            assert_eq!(back.decode().unwrap(), (h.clone(), hash));
            let with = StoredEntry::new(&h, &hash).with_text("a,b\n".into());
            let back: StoredEntry =
                serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
            assert_eq!(back.text(), Some("a,b\n"));
        }
    }
}
