//! Push failures. Each names the registry URL and, where there is one, the blob digest,
//! the HTTP status and the registry's own `errors[].code: message`; none holds a secret.

use std::path::PathBuf;

use composer_store::Digest;

use super::credentials::CredentialError;
use super::reference::ReferenceError;

/// A failed push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The registry refused our credentials (or we had none).
    #[error("registry {registry}: {what}: authentication failed (HTTP {status}){detail}; {hint}")]
    Unauthorized {
        /// Registry base URL.
        registry: String,
        /// What was attempted.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The registry's error text, `: …` or empty.
        detail: String,
        /// What to check.
        hint: String,
    },
    /// The registry answered with an unexpected status.
    #[error("registry {registry}: {what}: HTTP {status}{detail}")]
    Status {
        /// Registry base URL.
        registry: String,
        /// What was attempted (names the blob digest or the manifest).
        what: String,
        /// The status.
        status: u16,
        /// The registry's error text, `: …` or empty.
        detail: String,
    },
    /// Connection failures, or transient statuses, on every attempt.
    #[error("registry {registry}: {what}: failed after {attempts} attempts: {cause}")]
    Failed {
        /// Registry base URL.
        registry: String,
        /// What was attempted.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        cause: String,
    },
    /// The registry stored something other than our bytes.
    #[error(
        "registry {registry}: {what}: the registry reports digest {actual}, ours is {expected}"
    )]
    DigestMismatch {
        /// Registry base URL.
        registry: String,
        /// What was pushed.
        what: String,
        /// Our digest.
        expected: Digest,
        /// The registry's `Docker-Content-Digest`.
        actual: String,
    },
    /// A plain-http or unverified connection that `--insecure` does not allow.
    #[error("registry {registry}: {why}")]
    Insecure {
        /// The registry host.
        registry: String,
        /// What happened.
        why: String,
    },
    /// Reading the image to push failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The image to push is malformed or ambiguous.
    #[error("{}: {what}", path.display())]
    Image {
        /// The image path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Reading a built image from the store failed.
    #[error(transparent)]
    Store(#[from] composer_store::StoreError),
}

/// The text of a registry error body (`{"errors":[{"code","message","detail"}]}`) as
/// `: CODE: message; CODE: message`, or the first line of a non-JSON body, or empty.
#[must_use]
pub fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body)
        && !e.errors.is_empty()
    {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| match (x.code.is_empty(), x.message.is_empty()) {
                (false, false) => format!("{}: {}", x.code, x.message),
                (false, true) => x.code.clone(),
                _ => x.message.clone(),
            })
            .collect();
        return format!(": {}", parts.join("; "));
    }
    let text = String::from_utf8_lossy(body);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.is_empty() {
        String::new()
    } else {
        let short: String = line.chars().take(200).collect();
        format!(": {short}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_json() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]},{"code":"DENIED"}]}"#;
        assert_eq!(
            error_detail(body),
            ": UNAUTHORIZED: authentication required; DENIED"
        );
        assert_eq!(error_detail(b"\n  oops\nmore"), ": oops");
        assert_eq!(error_detail(b""), "");
    }
}
