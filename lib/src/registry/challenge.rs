//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1) as registries send them, parsed
//! without I/O: `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.

use std::collections::BTreeMap;

/// An authentication scheme a registry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic on every request.
    Basic,
    /// The token flow: GET `realm?service=…&scope=…` (with Basic credentials, if any) for
    /// a token sent as `Authorization: Bearer …`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter, if given.
        service: Option<String>,
        /// `scope` parameters, if given (space-separated in the header).
        scope: Vec<String>,
    },
}

/// Parses one `WWW-Authenticate` header value. Returns `None` for schemes we do not speak
/// or a Bearer challenge without a realm. With several challenges in one value, Bearer is
/// preferred over Basic.
#[must_use]
pub fn parse(header: &str) -> Option<Challenge> {
    let mut found = None;
    for (scheme, params) in split_challenges(header) {
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => {
                let realm = params.get("realm")?.clone();
                let scope = params
                    .get("scope")
                    .map(|s| {
                        s.split(' ')
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(Challenge::Bearer {
                    realm,
                    service: params.get("service").cloned(),
                    scope,
                });
            }
            "basic" => found = Some(Challenge::Basic),
            _ => {}
        }
    }
    found
}

/// Splits `Scheme a="b", c=d, Other x=y` into schemes with their lower-cased parameters.
fn split_challenges(h: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let b = h.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        // A token: either a scheme (followed by space or end) or a parameter name (followed by `=`).
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',' | b'=') {
            i += 1;
        }
        let token = &h[start..i];
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Copy one UTF-8 character.
                    let ch_len = h[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&h[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1; // closing quote
                v
            } else {
                let s = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                h[s..i].trim().to_string()
            };
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push((token.to_string(), BTreeMap::new()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_all_parameters() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: vec!["repository:samalba/my-app:pull,push".into()],
            })
        );
    }

    #[test]
    fn bearer_spacing_case_escapes_and_several_scopes() {
        let c = parse(r#"bearer  Realm = "http://127.0.0.1:1/t\"x" , scope="a:b:pull c:d:push""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t\"x".into(),
                service: None,
                scope: vec!["a:b:pull".into(), "c:d:push".into()],
            })
        );
    }

    #[test]
    fn basic_and_unknown() {
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse("Negotiate"), None);
        assert_eq!(parse(r#"Bearer service="x""#), None);
        assert_eq!(parse(""), None);
        // Bearer wins over Basic in a combined header.
        assert!(matches!(
            parse(r#"Basic realm="r", Bearer realm="http://t/""#),
            Some(Challenge::Bearer { .. })
        ));
    }

    #[test]
    fn unquoted_values() {
        assert_eq!(
            parse("Bearer realm=http://h/token,service=reg"),
            Some(Challenge::Bearer {
                realm: "http://h/token".into(),
                service: Some("reg".into()),
                scope: vec![],
            })
        );
    }
}
