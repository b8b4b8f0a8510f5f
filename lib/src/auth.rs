//! Credentials for package indexes and mirrors, from the environment or a netrc file —
//! never from the recipe, never written into a lock or an image.
//!
//! - `COMPOSE_AUTH_<HOST>=user:password`, where `<HOST>` is the URL's host upper-cased with
//!   every character that is not a letter or digit replaced by `_`
//!   (`pypi.example.com` → `COMPOSE_AUTH_PYPI_EXAMPLE_COM`);
//! - else the netrc file (`$NETRC`, else `~/.netrc`): `machine HOST login USER password PASS`,
//!   or its `default` entry.
//!
//! The parsing here is pure; [`Credentials::from_env`] is the only function that reads the
//! environment and the file system.

use std::collections::BTreeMap;

/// A login for one host.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// User name.
    pub user: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The `Authorization` header value (`Basic base64(user:password)`).
    #[must_use]
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            crate::base64::encode_standard(format!("{}:{}", self.user, self.password).as_bytes())
        )
    }
}

/// Logins by host, plus an optional netrc `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    env: BTreeMap<String, Login>,
    netrc: BTreeMap<String, Login>,
    default: Option<Login>,
}

impl Credentials {
    /// Reads `COMPOSE_AUTH_*` variables and the netrc file (missing file: no logins).
    #[must_use]
    pub fn from_env() -> Self {
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("COMPOSE_AUTH_"))
            .collect();
        let netrc_path = std::env::var_os("NETRC")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".netrc"))
            });
        let netrc = netrc_path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        Self::parse(&vars, &netrc)
    }

    /// Builds credentials from environment pairs and netrc text.
    #[must_use]
    pub fn parse(vars: &[(String, String)], netrc: &str) -> Self {
        let mut c = Self::default();
        for (k, v) in vars {
            if let (Some(host), Some((user, password))) =
                (k.strip_prefix("COMPOSE_AUTH_"), v.split_once(':'))
            {
                c.env.insert(
                    host.to_string(),
                    Login {
                        user: user.into(),
                        password: password.into(),
                    },
                );
            }
        }
        let (machines, default) = parse_netrc(netrc);
        c.netrc = machines;
        c.default = default;
        c
    }

    /// The login for `url`'s host, if any.
    #[must_use]
    pub fn for_url(&self, url: &str) -> Option<&Login> {
        let host = host_of(url)?;
        self.env
            .get(&env_key(host))
            .or_else(|| self.netrc.get(host))
            .or(self.default.as_ref())
    }
}

/// `https://user@Host.Example:8443/path` → `host.example`.
#[must_use]
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = if hostport.starts_with('[') {
        hostport
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))?
    } else {
        hostport.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

fn env_key(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Parses netrc tokens (`machine`, `login`, `password`, `default`; `account` and `macdef`
/// are skipped).
fn parse_netrc(text: &str) -> (BTreeMap<String, Login>, Option<Login>) {
    let mut machines = BTreeMap::new();
    let mut default = None;
    let mut tokens = text.split_whitespace();
    let mut current: Option<Option<String>> = None; // Some(Some(host)) machine, Some(None) default
    let (mut user, mut password) = (String::new(), String::new());
    let mut flush = |current: &Option<Option<String>>, user: &mut String, password: &mut String| {
        if let Some(target) = current
            && (!user.is_empty() || !password.is_empty())
        {
            let login = Login {
                user: std::mem::take(user),
                password: std::mem::take(password),
            };
            match target {
                Some(host) => {
                    machines.insert(host.clone(), login);
                }
                None => default = Some(login),
            }
        }
        user.clear();
        password.clear();
    };
    while let Some(tok) = tokens.next() {
        match tok {
            "machine" => {
                flush(&current, &mut user, &mut password);
                current = tokens.next().map(|h| Some(h.to_string()));
            }
            "default" => {
                flush(&current, &mut user, &mut password);
                current = Some(None);
            }
            "login" => user = tokens.next().unwrap_or_default().to_string(),
            "password" => password = tokens.next().unwrap_or_default().to_string(),
            "account" => {
                tokens.next();
            }
            "macdef" => {
                // A macro runs to the next blank line; tokens lose line structure, so skip
                // the rest of this entry conservatively.
                current = None;
            }
            _ => {}
        }
    }
    flush(&current, &mut user, &mut password);
    (machines, default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_rfc7617() {
        let l = Login {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(l.basic_header(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(
            !format!("{l:?}").contains("sesame"),
            "secrets never printed"
        );
    }

    #[test]
    fn hosts_are_extracted() {
        assert_eq!(
            host_of("https://pypi.example.com/simple/"),
            Some("pypi.example.com")
        );
        assert_eq!(host_of("http://u:p@h.example:8080/x"), Some("h.example"));
        assert_eq!(host_of("http://[::1]:5000/x"), Some("::1"));
        assert_eq!(host_of("not a url"), None);
    }

    #[test]
    fn environment_wins_over_netrc_which_wins_over_default() {
        let netrc = "machine pypi.example.com login alice password s3cret\n\
                     machine other.example login bob password pw\n\
                     default login anon password guest\n";
        let vars = vec![(
            "COMPOSE_AUTH_OTHER_EXAMPLE".to_string(),
            "carol:tok:en".to_string(),
        )];
        let c = Credentials::parse(&vars, netrc);
        assert_eq!(
            c.for_url("https://pypi.example.com/simple/x/")
                .map(|l| l.user.as_str()),
            Some("alice")
        );
        let other = c.for_url("https://other.example/simple/").cloned();
        assert_eq!(
            other,
            Some(Login {
                user: "carol".into(),
                password: "tok:en".into()
            })
        );
        assert_eq!(
            c.for_url("https://elsewhere.example/")
                .map(|l| l.user.as_str()),
            Some("anon")
        );
        assert_eq!(
            Credentials::parse(&[], "").for_url("https://x.example/"),
            None
        );
    }
}
