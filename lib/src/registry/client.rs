//! The HTTP side of the distribution API: one [`Client`] per registry holding the ureq
//! agents (TLS verified with the system CA bundle, as [`crate::fetch`] does; verification
//! off and plain http only for a host named with `--insecure`), the authentication state
//! (anonymous, Basic, or Bearer tokens cached per scope set) and a retry loop with backoff
//! for connection failures and 5xx/408/429 answers.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use ureq::http;

use super::challenge::{self, Challenge};
use super::error::{RegistryError, error_detail};
use super::plan::{backoff, with_query};
use super::reference::{Reference, host_without_port};
use crate::auth::Login;

/// Largest response body read (error documents, tokens, manifests we echo).
const MAX_BODY: u64 = 4 << 20;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts (`host` or `host:port`) that may be reached over plain http or https without
    /// certificate verification. Nothing else is.
    pub insecure: Vec<String>,
    /// The login; `None` for anonymous.
    pub login: Option<Login>,
    /// Attempts per request (≥ 1) on connection failures and 5xx/408/429.
    pub attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            login: None,
            attempts: 5,
            backoff: Duration::from_millis(250),
        }
    }
}

/// A response, fully read (bodies here are small: errors, tokens, status replies).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// `: CODE: message` from the body, or empty.
    pub(crate) fn detail(&self) -> String {
        error_detail(&self.body)
    }
}

/// One failed try.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// May succeed when repeated (connection failure, 5xx, 408, 429).
    Transient(String),
    /// Will not.
    Fatal(RegistryError),
}

impl From<RegistryError> for Attempt {
    fn from(e: RegistryError) -> Self {
        Self::Fatal(e)
    }
}

/// Whether a status is worth retrying.
#[must_use]
pub(crate) fn transient_status(s: u16) -> bool {
    s == 408 || s == 429 || s >= 500
}

/// Turns an unexpected answer into a retry (5xx, 408, 429), an authentication error
/// (401, 403) or an error naming the registry, `what` and the status.
pub(crate) fn unexpected(c: &Client, r: &Reply, what: &str) -> Attempt {
    match r.status {
        401 | 403 => Attempt::Fatal(c.unauthorized(what, r)),
        s if transient_status(s) => Attempt::Transient(format!("{what}: HTTP {s}{}", r.detail())),
        s => Attempt::Fatal(RegistryError::Status {
            registry: c.base().into(),
            what: what.into(),
            status: s,
            detail: r.detail(),
        }),
    }
}

/// A request body, opened anew for each try: a reader and its exact length.
pub(crate) type Body<'a> = (Box<dyn Read + 'a>, u64);

/// A connection to one registry for one repository. A clone shares nothing: it is another
/// connection with the same authentication (and a copy of the tokens obtained so far).
#[derive(Clone)]
pub struct Client {
    /// `scheme://host[:port]`.
    base: String,
    host: String,
    secure: ureq::Agent,
    unverified: ureq::Agent,
    options: ClientOptions,
    /// Scopes requested for Bearer tokens (`repository:NAME:pull,push`, …).
    scopes: Vec<String>,
    challenge: Option<Challenge>,
    tokens: HashMap<String, String>,
    authorization: Option<String>,
}

fn agent(verify: bool) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(crate::fetch::root_certs())
        .disable_verification(!verify)
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .timeout_recv_body(Some(Duration::from_secs(300)))
        .user_agent(concat!("composer/", env!("CARGO_PKG_VERSION")))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

/// Whether `hostport` (`host` or `host:port`) is named in `insecure`.
#[must_use]
pub fn is_insecure(hostport: &str, insecure: &[String]) -> bool {
    insecure
        .iter()
        .any(|h| h == hostport || h == host_without_port(hostport))
}

fn is_loopback(hostport: &str) -> bool {
    matches!(
        host_without_port(hostport),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

/// `scheme://host[:port]/…` → `host[:port]`.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority)
}

impl Client {
    /// Connects to `reference`'s registry: finds the scheme (https; for an `--insecure`
    /// host also plain http), learns how it authenticates (`GET /v2/`) and, with a login,
    /// checks it there. `extra_pull` are other repositories of the same registry that
    /// blobs may be mounted from.
    ///
    /// # Errors
    /// [`RegistryError`] naming the registry.
    pub fn connect(
        reference: &Reference,
        options: ClientOptions,
        extra_pull: &[String],
    ) -> Result<Self, RegistryError> {
        let host = reference.api_host().to_string();
        let insecure = is_insecure(&host, &options.insecure);
        let mut scopes = vec![format!("repository:{}:pull,push", reference.repository)];
        scopes.extend(
            extra_pull
                .iter()
                .filter(|r| **r != reference.repository)
                .map(|r| format!("repository:{r}:pull")),
        );
        let mut client = Self {
            base: format!("https://{host}"),
            host: host.clone(),
            secure: agent(true),
            unverified: agent(false),
            options,
            scopes,
            challenge: None,
            tokens: HashMap::new(),
            authorization: None,
        };
        if insecure && is_loopback(&host) {
            client.base = format!("http://{host}");
        } else if insecure {
            // https without verification first, then plain http.
            let url = format!("{}/v2/", client.base);
            if let Err(Attempt::Transient(_)) = client.request("GET", &url, &[], None) {
                client.base = format!("http://{host}");
            }
        }
        match client.ping() {
            Err(RegistryError::Failed {
                registry,
                what,
                attempts,
                cause,
            }) if !insecure => Err(RegistryError::Failed {
                registry,
                what,
                attempts,
                cause: format!(
                    "{cause} (if {host} serves plain http or a self-signed certificate, pass `--insecure {host}`)"
                ),
            }),
            Err(e) => Err(e),
            Ok(()) => Ok(client),
        }
    }

    /// The options it was made with.
    #[must_use]
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `scheme://host[:port]` of the registry (for messages).
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `BASE/v2/REPO/…`.
    pub(crate) fn url(&self, repo: &str, tail: &str) -> String {
        format!("{}/v2/{repo}/{tail}", self.base)
    }

    /// `GET /v2/`: learns the challenge, gets a token or sets Basic, and checks the login.
    fn ping(&mut self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let reply = self.retry("connect (GET /v2/)", |c| c.request("GET", &url, &[], None))?;
        match reply.status {
            200..=299 => Ok(()),
            401 | 403 => Err(self.unauthorized("log in (GET /v2/)", &reply)),
            s => Err(RegistryError::Status {
                registry: self.base.clone(),
                what: "GET /v2/ (is this an OCI registry?)".into(),
                status: s,
                detail: reply.detail(),
            }),
        }
    }

    /// An authentication error for `what`.
    pub(crate) fn unauthorized(&self, what: &str, reply: &Reply) -> RegistryError {
        let hint = if self.options.login.is_some() {
            format!(
                "check the user name and password for {} ({}/{} or the Docker config)",
                self.host,
                super::credentials::USER_ENV,
                super::credentials::PASSWORD_ENV
            )
        } else {
            format!(
                "no credentials for {}: set {} and {}, or log in with `docker login {}`",
                self.host,
                super::credentials::USER_ENV,
                super::credentials::PASSWORD_ENV,
                self.host
            )
        };
        RegistryError::Unauthorized {
            registry: self.base.clone(),
            what: what.into(),
            status: reply.status,
            detail: reply.detail(),
            hint,
        }
    }

    /// Runs `f` until it succeeds, fails fatally, or `attempts` transient failures.
    pub(crate) fn retry<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Self) -> Result<T, Attempt>,
    ) -> Result<T, RegistryError> {
        let attempts = self.options.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match f(self) {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Transient(cause)) => {
                    last = cause;
                    if attempt < attempts {
                        std::thread::sleep(backoff(self.options.backoff, attempt));
                    }
                }
            }
        }
        Err(RegistryError::Failed {
            registry: self.base.clone(),
            what: what.into(),
            attempts,
            cause: last,
        })
    }

    /// Sends one request (answering one 401 by authenticating and sending it again).
    /// Statuses come back as a [`Reply`]; connection failures as [`Attempt::Transient`].
    pub(crate) fn request<'b>(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        mut body: Option<&mut dyn FnMut() -> Result<Body<'b>, RegistryError>>,
    ) -> Result<Reply, Attempt> {
        for round in 0..2 {
            let auth = if url_host(url) == self.host {
                self.authorization.clone()
            } else {
                None
            };
            let opened = match body.as_mut() {
                Some(open) => Some(open()?),
                None => None,
            };
            let reply = self.send(method, url, headers, auth.as_deref(), opened)?;
            if reply.status == 401 && round == 0 && self.authenticate(&reply)? {
                continue;
            }
            return Ok(reply);
        }
        Err(Attempt::Fatal(RegistryError::Status {
            registry: self.base.clone(),
            what: format!("{method} {url}"),
            status: 401,
            detail: String::new(),
        }))
    }

    /// `GET url` whose 2xx body is handed to `read` as a stream (a blob) instead of being
    /// read into memory; a 401 is answered once by authenticating, as [`Self::request`]
    /// does. Any other answer comes back as `Err(reply)`, its body read (bounded).
    pub(crate) fn get_streamed<T>(
        &mut self,
        url: &str,
        headers: &[(&str, String)],
        read: &mut dyn FnMut(&mut dyn Read) -> Result<T, Attempt>,
    ) -> Result<Result<T, Reply>, Attempt> {
        for round in 0..2 {
            let auth = if url_host(url) == self.host {
                self.authorization.clone()
            } else {
                None
            };
            let agent = self.agent_for(url)?;
            let mut b = http::Request::builder().method("GET").uri(url);
            for (k, v) in headers {
                b = b.header(*k, v.as_str());
            }
            if let Some(a) = &auth {
                b = b.header("Authorization", a.as_str());
            }
            let req = b.body(()).map_err(|e| {
                Attempt::Fatal(RegistryError::Status {
                    registry: self.base.clone(),
                    what: format!("GET {url}: cannot build the request: {e}"),
                    status: 0,
                    detail: String::new(),
                })
            })?;
            let resp = agent
                .run(req)
                .map_err(|e| Attempt::Transient(format!("GET {url}: {e}")))?;
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                let mut body = resp.into_body().into_reader();
                return read(&mut body).map(Ok);
            }
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            resp.into_body()
                .into_reader()
                .take(MAX_BODY)
                .read_to_end(&mut body)
                .map_err(|e| Attempt::Transient(format!("GET {url}: reading the answer: {e}")))?;
            let reply = Reply {
                status,
                headers,
                body,
            };
            if status == 401 && round == 0 && self.authenticate(&reply)? {
                continue;
            }
            return Ok(Err(reply));
        }
        Err(Attempt::Fatal(RegistryError::Status {
            registry: self.base.clone(),
            what: format!("GET {url}"),
            status: 401,
            detail: String::new(),
        }))
    }

    fn agent_for(&self, url: &str) -> Result<&ureq::Agent, Attempt> {
        let host = url_host(url);
        let insecure = is_insecure(host, &self.options.insecure);
        if url.starts_with("http://") && !insecure {
            return Err(Attempt::Fatal(RegistryError::Insecure {
                registry: host.into(),
                why: format!(
                    "refusing plain http to {host} ({url}); pass `--insecure {host}` if this registry has no TLS"
                ),
            }));
        }
        Ok(if insecure {
            &self.unverified
        } else {
            &self.secure
        })
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        body: Option<Body<'_>>,
    ) -> Result<Reply, Attempt> {
        let agent = self.agent_for(url)?;
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            b = b.header("Authorization", a);
        }
        let bad = |e: http::Error| {
            Attempt::Fatal(RegistryError::Status {
                registry: self.base.clone(),
                what: format!("{method} {url}: cannot build the request: {e}"),
                status: 0,
                detail: String::new(),
            })
        };
        let result = match body {
            Some((mut reader, len)) => {
                let req = b
                    .header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map_err(bad)?;
                agent.run(req)
            }
            None => {
                let req = if matches!(method, "POST" | "PUT" | "PATCH") {
                    b.header("Content-Length", "0")
                } else {
                    b
                };
                agent.run(req.body(()).map_err(bad)?)
            }
        };
        let resp = result.map_err(|e| match e {
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) if url.starts_with("https://") => {
                Attempt::Transient(format!("{method} {url}: TLS: {e}"))
            }
            e => Attempt::Transient(format!("{method} {url}: {e}")),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        if method != "HEAD" {
            resp.into_body()
                .into_reader()
                .take(MAX_BODY)
                .read_to_end(&mut body)
                .map_err(|e| {
                    Attempt::Transient(format!("{method} {url}: reading the answer: {e}"))
                })?;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Answers a 401: returns whether a new `Authorization` is worth a retry.
    fn authenticate(&mut self, reply: &Reply) -> Result<bool, Attempt> {
        let Some(ch) = reply.header("www-authenticate").and_then(challenge::parse) else {
            return Ok(false);
        };
        self.challenge = Some(ch.clone());
        match ch {
            Challenge::Basic => {
                let Some(login) = &self.options.login else {
                    return Ok(false);
                };
                let header = login.basic_header();
                if self.authorization.as_deref() == Some(header.as_str()) {
                    return Ok(false);
                }
                self.authorization = Some(header);
                Ok(true)
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = self.scopes.clone();
                for s in scope {
                    if !scopes.contains(&s) {
                        scopes.push(s);
                    }
                }
                let key = scopes.join(" ");
                let token = match self.tokens.get(&key) {
                    // A cached token that was just refused: get a fresh one.
                    Some(t) if self.authorization.as_deref() != Some(&format!("Bearer {t}")) => {
                        t.clone()
                    }
                    _ => self.fetch_token(&realm, service.as_deref(), &scopes)?,
                };
                let header = format!("Bearer {token}");
                if self.authorization.as_deref() == Some(header.as_str()) {
                    return Ok(false);
                }
                self.tokens.insert(key, token);
                self.authorization = Some(header);
                Ok(true)
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, Attempt> {
        let mut url = realm.to_string();
        if let Some(s) = service {
            url = with_query(&url, "service", s);
        }
        for s in scopes {
            url = with_query(&url, "scope", s);
        }
        let auth = self.options.login.as_ref().map(Login::basic_header);
        let reply = self.send("GET", &url, &[], auth.as_deref(), None)?;
        match reply.status {
            200..=299 => {}
            401 | 403 => {
                return Err(Attempt::Fatal(
                    self.unauthorized(&format!("token from {realm}"), &reply),
                ));
            }
            s if transient_status(s) => {
                return Err(Attempt::Transient(format!("token from {realm}: HTTP {s}")));
            }
            s => {
                return Err(Attempt::Fatal(RegistryError::Status {
                    registry: self.base.clone(),
                    what: format!("token from {realm}"),
                    status: s,
                    detail: reply.detail(),
                }));
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&reply.body).map_err(|e| {
            Attempt::Fatal(RegistryError::Status {
                registry: self.base.clone(),
                what: format!("token from {realm}: the answer is not a token document: {e}"),
                status: reply.status,
                detail: String::new(),
            })
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Attempt::Fatal(RegistryError::Status {
                    registry: self.base.clone(),
                    what: format!("token from {realm}: the answer holds no token"),
                    status: reply.status,
                    detail: String::new(),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_matching() {
        let list = vec!["127.0.0.1".to_string(), "reg.example:5000".to_string()];
        assert!(is_insecure("127.0.0.1:5000", &list));
        assert!(is_insecure("reg.example:5000", &list));
        assert!(!is_insecure("reg.example:5001", &list));
        assert!(!is_insecure("other.example", &list));
        assert!(is_loopback("localhost:1"));
        assert!(!is_loopback("example.org"));
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://127.0.0.1:5/v2/x?y"), "127.0.0.1:5");
        assert_eq!(url_host("https://u@h/x"), "h");
    }
}
