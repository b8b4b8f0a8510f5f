//! Registry credentials, looked up per registry host; never printed, never written.
//!
//! In order:
//! 1. `COMPOSE_REGISTRY_USER` and `COMPOSE_REGISTRY_PASSWORD` (both set): used for every
//!    registry this process talks to;
//! 2. the Docker client's config (`$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`): `credHelpers.<host>`, else `auths.<host>.auth`
//!    (base64 `user:password`, or `username`/`password` fields), else `credsStore`;
//!    a helper is run as `docker-credential-<name> get` with the server on stdin;
//! 3. none: anonymous.
//!
//! [`DockerConfig::parse`] and [`DockerConfig::lookup`] are pure; [`from_environment`] is
//! the only function here that reads the environment, the file system or runs a helper.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::auth::Login;

/// Environment variable naming the registry user.
pub const USER_ENV: &str = "COMPOSE_REGISTRY_USER";
/// Environment variable holding the registry password or token.
pub const PASSWORD_ENV: &str = "COMPOSE_REGISTRY_PASSWORD";

/// Where a registry's login comes from, before any helper is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A login known now.
    Login(Login),
    /// Ask `docker-credential-<helper> get`.
    Helper(String),
    /// Anonymous.
    None,
}

/// The parts of Docker's `config.json` that hold credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DockerConfig {
    /// Inline logins by server.
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Helper for every server without a `credHelpers` entry.
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    /// Helper by server.
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry { .. }")
    }
}

impl DockerConfig {
    /// Parses `config.json` text.
    ///
    /// # Errors
    /// The JSON error (it names no secret: serde reports positions, not values).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Where the login for `registry` (`host[:port]` as in the reference) comes from.
    /// `auths` keys may be written with a scheme and a path (`https://host/v1/`).
    #[must_use]
    pub fn lookup(&self, registry: &str) -> Source {
        let keys = server_keys(registry);
        for k in &keys {
            if let Some(h) = find(&self.cred_helpers, k) {
                return Source::Helper(h.clone());
            }
        }
        for k in &keys {
            if let Some(e) = find(&self.auths, k)
                && let Some(login) = e.login()
            {
                return Source::Login(login);
            }
        }
        match &self.creds_store {
            Some(s) if !s.is_empty() => Source::Helper(s.clone()),
            _ => Source::None,
        }
    }
}

impl AuthEntry {
    fn login(&self) -> Option<Login> {
        if let Some(a) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = crate::base64::decode(a.trim())?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, password) = text.split_once(':')?;
            return Some(Login {
                user: user.into(),
                password: password.into(),
            });
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some(Login {
                user: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        }
    }
}

/// The names a server may have in a Docker config.
fn server_keys(registry: &str) -> Vec<String> {
    if registry == super::reference::DOCKER_HUB || registry == super::reference::DOCKER_HUB_API {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

/// A map entry whose key, stripped of scheme and path, is `server`.
fn find<'a, T>(map: &'a BTreeMap<String, T>, server: &str) -> Option<&'a T> {
    map.get(server).or_else(|| {
        map.iter()
            .find(|(k, _)| normalize_key(k) == normalize_key(server))
            .map(|(_, v)| v)
    })
}

fn normalize_key(k: &str) -> &str {
    let k = k.split_once("://").map_or(k, |(_, rest)| rest);
    k.split('/').next().unwrap_or(k)
}

/// A failure to obtain credentials. Never includes a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The config file is unreadable or malformed.
    #[error("cannot read Docker credentials from {}: {why}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// The helper failed.
    #[error("docker-credential-{helper} get for {server} failed: {why}")]
    Helper {
        /// Helper name.
        helper: String,
        /// Server asked about.
        server: String,
        /// What failed (its stderr, never its stdout).
        why: String,
    },
}

/// The login for `registry` from the environment, the Docker config or a helper; `None`
/// for anonymous access.
///
/// # Errors
/// [`CredentialError`] when the config exists but is malformed, or a helper fails.
pub fn from_environment(registry: &str) -> Result<Option<Login>, CredentialError> {
    if let (Ok(user), Ok(password)) = (std::env::var(USER_ENV), std::env::var(PASSWORD_ENV)) {
        return Ok(Some(Login { user, password }));
    }
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialError::Config {
                path,
                why: e.to_string(),
            });
        }
    };
    let config = DockerConfig::parse(&text).map_err(|e| CredentialError::Config {
        path: path.clone(),
        why: e.to_string(),
    })?;
    match config.lookup(registry) {
        Source::Login(l) => Ok(Some(l)),
        Source::None => Ok(None),
        Source::Helper(h) => run_helper(&h, server_keys(registry).swap_remove(0).as_str()),
    }
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Runs `docker-credential-<helper> get`; "credentials not found" means anonymous.
fn run_helper(helper: &str, server: &str) -> Result<Option<Login>, CredentialError> {
    let fail = |why: String| CredentialError::Helper {
        helper: helper.into(),
        server: server.into(),
        why,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_helper_output(&out.stdout)
        .map(Some)
        .ok_or_else(|| fail("its output is not {\"Username\":…,\"Secret\":…}".into()))
}

/// Parses a credential helper's `{"ServerURL":…,"Username":…,"Secret":…}`.
#[must_use]
pub fn parse_helper_output(out: &[u8]) -> Option<Login> {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let r: Reply = serde_json::from_slice(out).ok()?;
    Some(Login {
        user: r.username,
        password: r.secret,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn login(u: &str, p: &str) -> Source {
        Source::Login(Login {
            user: u.into(),
            password: p.into(),
        })
    }

    #[test]
    fn auths_base64_and_fields() {
        // "alice:s3cr:et" — the password may contain ':'.
        let c = DockerConfig::parse(
            r#"{"auths":{
                "reg.example:5000":{"auth":"YWxpY2U6czNjcjpldA=="},
                "https://other.example/v2/":{"username":"bob","password":"pw"},
                "empty.example":{}
            }}"#,
        )
        .unwrap();
        assert_eq!(c.lookup("reg.example:5000"), login("alice", "s3cr:et"));
        assert_eq!(c.lookup("other.example"), login("bob", "pw"));
        assert_eq!(c.lookup("empty.example"), Source::None);
        assert_eq!(c.lookup("unknown.example"), Source::None);
    }

    #[test]
    fn docker_hub_key() {
        let c = DockerConfig::parse(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#)
            .unwrap();
        assert_eq!(c.lookup("docker.io"), login("u", "p"));
    }

    #[test]
    fn helpers_take_precedence() {
        let c = DockerConfig::parse(
            r#"{"auths":{"a.example":{"auth":"dTpw"},"b.example":{"auth":"dTpw"}},
                "credHelpers":{"a.example":"gcloud"},"credsStore":"pass"}"#,
        )
        .unwrap();
        assert_eq!(c.lookup("a.example"), Source::Helper("gcloud".into()));
        assert_eq!(c.lookup("b.example"), login("u", "p"));
        assert_eq!(c.lookup("c.example"), Source::Helper("pass".into()));
    }

    #[test]
    fn helper_output_and_debug_hides_secrets() {
        let l = parse_helper_output(br#"{"ServerURL":"x","Username":"u","Secret":"topsecret"}"#)
            .unwrap();
        assert_eq!(l.user, "u");
        assert!(!format!("{l:?}").contains("topsecret"));
        let c = DockerConfig::parse(r#"{"auths":{"a":{"auth":"dTp0b3BzZWNyZXQ="}}}"#).unwrap();
        assert!(!format!("{c:?}").contains("dTp0"));
        assert!(parse_helper_output(b"nope").is_none());
    }
}
