//! Image references (`host[:port]/repo[:tag|@digest]`), parsed without any I/O.
//!
//! Follows the rules Docker and the distribution spec use: the first path component is a
//! registry host when it contains a `.` or a `:`, or is `localhost`; otherwise the
//! reference names Docker Hub (`docker.io`, with `library/` for single-component names).
//! Repository components are lower-case `[a-z0-9]` separated by `.`, `_`, `__` or `-`;
//! tags are `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.

use std::fmt;

use composer_store::Digest;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host` or `host:port` as written (`docker.io` when none was).
    pub registry: String,
    /// Repository path (`library/debian`, `team/app`).
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest, if any (`@sha256:…`).
    pub digest: Option<Digest>,
}

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{reference}`: {why}")]
pub struct ReferenceError {
    /// The input.
    pub reference: String,
    /// What is wrong.
    pub why: String,
}

impl Reference {
    /// Parses `host[:port]/repo[:tag][@sha256:…]`.
    ///
    /// # Errors
    /// [`ReferenceError`] saying which part is malformed.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let err = |why: &str| ReferenceError {
            reference: s.to_string(),
            why: why.to_string(),
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|_| err("the digest must be sha256: followed by 64 hex digits"))?;
                (r, Some(digest))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(i) if last_slash.is_none_or(|j| i > j) => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(err(
                "a tag is 1 to 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => {
                let repo = if name.contains('/') {
                    name.to_string()
                } else {
                    format!("library/{name}")
                };
                (DOCKER_HUB.to_string(), repo)
            }
        };
        if !valid_host(&registry) {
            return Err(err("the registry host is not a valid host[:port]"));
        }
        if !valid_repository(&repository) {
            return Err(err(
                "repository components are lower-case letters and digits separated by `.`, `_`, `__` or `-`, joined by `/`",
            ));
        }
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The host (and port) to send API requests to.
    #[must_use]
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The host without its port.
    #[must_use]
    pub fn hostname(&self) -> &str {
        host_without_port(&self.registry)
    }

    /// What a manifest is pushed under: the digest when given, else the tag, else `latest`.
    #[must_use]
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host:5000` → `host`; `[::1]:5000` → `[::1]`.
#[must_use]
pub fn host_without_port(hostport: &str) -> &str {
    if hostport.starts_with('[') {
        return hostport.split_inclusive(']').next().unwrap_or(hostport);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

fn valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    t.len() <= 128
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_host(h: &str) -> bool {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        ("x", after.strip_prefix(':'))
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (h, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|component| {
            let b = component.as_bytes();
            let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
                return false;
            }
            // Separators: `.`, `_`, `__`, or one or more `-`, always between alphanumerics.
            let mut i = 0;
            while i < b.len() {
                if alnum(b[i]) {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < b.len() && !alnum(b[i]) {
                    i += 1;
                }
                let sep = &component[start..i];
                let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
                if !ok {
                    return false;
                }
            }
            true
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_host_port_repo_tag() {
        let r = p("127.0.0.1:5000/team/app:1.0");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest, None);
        assert_eq!(r.hostname(), "127.0.0.1");
        assert_eq!(r.manifest_ref(), "1.0");
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:1.0");
    }

    #[test]
    fn docker_hub_defaults() {
        let r = p("debian:trixie");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/debian");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = p("me/app");
        assert_eq!(r.repository, "me/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), "latest");
    }

    #[test]
    fn localhost_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("localhost/app@{d}"));
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.repository, "app");
        assert_eq!(r.digest.as_ref().map(ToString::to_string), Some(d.clone()));
        assert_eq!(r.manifest_ref(), d);
        let r = p(&format!("reg.example:443/a/b:v1@{d}"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_ref(), d);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "Upper/Case",
            "host:99999/app",
            "host.example/app:",
            "host.example/app:-x",
            "host.example/a..b",
            "host.example/app@sha256:zz",
            "host.example/",
            "host.example//app",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} parsed");
        }
        let e = Reference::parse("x/Y").unwrap_err();
        assert!(e.to_string().contains("x/Y"), "{e}");
    }

    #[test]
    fn ipv6_host() {
        let r = p("[::1]:5000/app:t");
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(r.hostname(), "[::1]");
    }
}
