//! Value checks of the recipe language: paths, modes, tags, names, platforms, ports.
//!
//! Pure functions over strings; each failure is a [`Problem`] (message and help) that the
//! parser turns into a spanned diagnostic.

use super::model::Platform;
use super::suggest;

/// Why a value is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) message: String,
    pub(crate) help: String,
}

fn problem(message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        help: help.into(),
    }
}

/// OCI architectures a recipe may target.
pub(crate) const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64",
];

/// An absolute, normalized path inside the image: starts with `/`, no empty, `.` or
/// `..` components, no trailing `/`, no NUL. `/` itself is accepted only when
/// `allow_root`.
pub(crate) fn image_path(path: &str, allow_root: bool) -> Result<(), Problem> {
    let example =
        "write absolute paths without `.`, `..` or doubled slashes, e.g. `/opt/app/run.sh`";
    if path.is_empty() {
        return Err(problem("path is empty", example));
    }
    if !path.starts_with('/') {
        return Err(problem(
            format!("`{path}` is not an absolute path"),
            format!("paths in the image are absolute: write `/{path}`"),
        ));
    }
    if path == "/" {
        return if allow_root {
            Ok(())
        } else {
            Err(problem(
                "`/` cannot be a destination",
                "name a path below `/`, e.g. `/opt/app`",
            ))
        };
    }
    if path.contains('\0') {
        return Err(problem(
            format!("`{}` contains a NUL byte", path.escape_debug()),
            example,
        ));
    }
    if path.ends_with('/') {
        return Err(problem(
            format!("`{path}` ends with `/`"),
            format!("drop the trailing slash: `{}`", path.trim_end_matches('/')),
        ));
    }
    for component in path[1..].split('/') {
        match component {
            "" => return Err(problem(format!("`{path}` contains `//`"), example)),
            "." | ".." => {
                return Err(problem(
                    format!("`{path}` contains a `{component}` component"),
                    example,
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A file mode written as 3 or 4 octal digits (`"644"`, `"0755"`, `"4755"`).
pub(crate) fn mode(text: &str) -> Result<u32, Problem> {
    let help = r#"write modes as quoted octal strings, e.g. mode="0755""#;
    if !(3..=4).contains(&text.len()) || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(problem(format!("`{text}` is not an octal file mode"), help));
    }
    u32::from_str_radix(text, 8).map_err(|e| problem(format!("`{text}`: {e}"), help))
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(crate) fn tag(tag: &str) -> Result<(), Problem> {
    let help = "a tag is 1-128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`";
    let first_ok = tag
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = tag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if tag.is_empty() {
        Err(problem("tag is empty", help))
    } else if tag.len() > 128 {
        Err(problem(
            format!("tag is {} characters long, more than 128", tag.len()),
            help,
        ))
    } else if !first_ok || !rest_ok {
        Err(problem(format!("`{tag}` is not a valid tag"), help))
    } else {
        Ok(())
    }
}

/// An image name: OCI repository path components, `[a-z0-9]+([._]|__|-+)[a-z0-9]+…`
/// separated by `/`.
pub(crate) fn image_name(name: &str) -> Result<(), Problem> {
    let help = "image names are lowercase letters and digits, separated by `.`, `_`, `__` or `-`, \
                with `/` between path components, e.g. `tf-gpu` or `team/tf-gpu`";
    if name.is_empty() || name.len() > 255 {
        return Err(problem("image name must be 1-255 characters", help));
    }
    if name.split('/').all(repository_component) {
        Ok(())
    } else {
        Err(problem(format!("`{name}` is not a valid image name"), help))
    }
}

fn repository_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Every run of separators must be `.`, `_`, `__` or one or more `-`.
    c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        .all(|sep| matches!(sep, "" | "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

/// A layer name: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 128 characters.
pub(crate) fn layer_name(name: &str) -> Result<(), Problem> {
    let help = "layer names are letters, digits, `.`, `_` and `-`, starting with a letter or digit";
    let ok = name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(problem(format!("`{name}` is not a valid layer name"), help))
    }
}

/// `os/arch[/variant]` with `os` = `linux` and a supported architecture.
pub(crate) fn platform(text: &str) -> Result<Platform, Problem> {
    let arch_help = format!("supported architectures: {}", suggest::list(ARCHITECTURES));
    let parts: Vec<&str> = text.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os, arch] => (*os, *arch, None),
        [os, arch, variant] => (*os, *arch, Some(*variant)),
        _ => {
            return Err(problem(
                format!("`{text}` is not `os/arch` or `os/arch/variant`"),
                "write the platform like `linux/amd64` or `linux/arm64/v8`",
            ));
        }
    };
    if os != "linux" {
        return Err(problem(
            format!("operating system `{os}` is not supported"),
            "only `linux` images can be built, e.g. `linux/amd64`",
        ));
    }
    if !ARCHITECTURES.contains(&arch) {
        let alias = match arch {
            "x86_64" | "x86-64" | "x64" => Some("amd64"),
            "aarch64" | "armv8" => Some("arm64"),
            "i386" | "i686" | "x86" => Some("386"),
            "armhf" | "armv7" | "armv7l" => Some("arm"),
            _ => suggest::closest(arch, ARCHITECTURES),
        };
        let help = match alias {
            Some(a) => format!("did you mean `{a}`? OCI names it `linux/{a}`; {arch_help}"),
            None => arch_help,
        };
        return Err(problem(
            format!("architecture `{arch}` is not supported"),
            help,
        ));
    }
    if let Some(v) = variant {
        let ok = !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return Err(problem(
                format!("variant `{v}` is not valid"),
                "a variant is lowercase letters and digits, e.g. `v8`",
            ));
        }
    }
    Ok(Platform {
        os: os.to_owned(),
        architecture: arch.to_owned(),
        variant: variant.map(str::to_owned),
    })
}

/// `PORT` or `PORT/PROTO` (tcp, udp, sctp; any case) → `PORT/proto`.
pub(crate) fn port(text: &str) -> Result<String, Problem> {
    let help = r#"write a port as "8080" or "8080/tcp" (tcp, udp or sctp), port 1-65535"#;
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(problem(
            format!("protocol `{proto}` is not tcp, udp or sctp"),
            help,
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(format!("{p}/{proto}")),
        _ => Err(problem(
            format!("`{port}` is not a port number 1-65535"),
            help,
        )),
    }
}

/// An environment variable name: non-empty, no `=` or NUL.
pub(crate) fn env_key(key: &str) -> Result<(), Problem> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        Err(problem(
            format!(
                "`{}` is not a valid environment variable name",
                key.escape_debug()
            ),
            r#"write the name and value as two arguments: env "PATH" "/usr/bin""#,
        ))
    } else {
        Ok(())
    }
}

/// A stop signal: `SIGNAME` (upper case, `SIGRTMIN+3` allowed) or a signal number.
pub(crate) fn signal(text: &str) -> Result<(), Problem> {
    let named = text.strip_prefix("SIG").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"+-".contains(&b))
    });
    let numbered = !text.is_empty() && text.len() <= 2 && text.bytes().all(|b| b.is_ascii_digit());
    if named || numbered {
        Ok(())
    } else {
        Err(problem(
            format!("`{text}` is not a signal"),
            r#"write a signal name such as "SIGTERM" or "SIGINT", or its number"#,
        ))
    }
}

/// A Debian package name: `[a-z0-9][a-z0-9+.-]+` (Debian Policy 5.6.1).
pub(crate) fn package_name(name: &str) -> Result<(), Problem> {
    let help = "Debian package names are lowercase letters, digits, `+`, `-` and `.`, at least \
                2 characters, starting with a letter or digit (`python3`, `libstdc++6`)";
    if name.is_empty() {
        return Err(problem("package name is empty", help));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        let lower = name.to_ascii_lowercase();
        if package_name(&lower).is_ok() {
            return Err(problem(
                format!("`{name}` is not a Debian package name (upper case)"),
                format!("Debian package names are lowercase: `{lower}`"),
            ));
        }
    }
    let first_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b));
    if name.len() < 2 || !first_ok || !rest_ok {
        return Err(problem(
            format!("`{name}` is not a Debian package name"),
            help,
        ));
    }
    Ok(())
}

/// A Debian version, `[EPOCH:]UPSTREAM[-REVISION]` (deb-version(7)): the epoch is digits,
/// the upstream version starts with a digit and has letters, digits, `.`, `+`, `~` and `-`
/// (a `-` only when a revision follows), the revision has letters, digits, `.`, `+` and `~`.
pub(crate) fn debian_version(version: &str) -> Result<(), Problem> {
    let help = "Debian versions look like `3.13.5-2`, `20250419` or `1:2.41-12`: an optional \
                numeric epoch and `:`, an upstream version starting with a digit, an optional \
                `-REVISION`";
    let bad = |why: &str| {
        Err(problem(
            format!("`{version}` is not a Debian version: {why}"),
            help,
        ))
    };
    if version.is_empty() {
        return Err(problem("version is empty", help));
    }
    let (epoch, rest) = match version.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, version),
    };
    if let Some(e) = epoch
        && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the epoch before `:` must be a number");
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    if !upstream.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return bad("the upstream version must start with a digit");
    }
    let upstream_ok = upstream
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~-".contains(&b));
    if !upstream_ok {
        return bad("only letters, digits, `.`, `+`, `~` and `-` are allowed");
    }
    if let Some(r) = revision
        && (r.is_empty()
            || !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b)))
    {
        return bad("the revision after the last `-` is letters, digits, `.`, `+` and `~`");
    }
    Ok(())
}

/// A Debian archive URL: `http://` or `https://`, a host, no credentials, query, fragment
/// or white space. Returns it without trailing `/`.
pub(crate) fn archive_url(url: &str) -> Result<String, Problem> {
    let example = r#"e.g. archive "http://deb.debian.org/debian" suites="trixie""#;
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(problem(
            "archive URL is empty",
            format!("name the archive's base URL, {example}"),
        ));
    }
    if trimmed.contains(char::is_whitespace) {
        let help = if trimmed.starts_with("deb ") || trimmed.contains(" main") {
            r#"this looks like a sources.list line; write the URL alone and the rest as properties: archive "http://deb.debian.org/debian" suites="trixie" components="main""#.to_owned()
        } else {
            format!("a URL has no spaces; {example}")
        };
        return Err(problem(format!("`{url}` is not a URL (white space)"), help));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(problem(
            format!("`{url}` has no `http://` or `https://`"),
            format!(r#"did you mean "http://{trimmed}"?"#),
        ));
    };
    if !matches!(scheme, "http" | "https") {
        let help = if matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            format!(
                "write the scheme in lower case: \"{}://{rest}\"",
                scheme.to_ascii_lowercase()
            )
        } else {
            "archives are fetched over `http://` or `https://` (packages are verified by \
             signature and hash either way)"
                .to_owned()
        };
        return Err(problem(
            format!("`{scheme}://` archives are not supported"),
            help,
        ));
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(problem(
            format!("`{url}` has no host"),
            format!("name a host, {example}"),
        ));
    }
    if host.contains('@') {
        return Err(problem(
            format!("`{url}` contains credentials"),
            "recipes are shared and locked; keep user names and passwords out of archive URLs",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(problem(
            format!("`{url}` has a query or fragment"),
            format!("an archive URL is the directory above `dists/` and `pool/`, {example}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A suite (`trixie`, `trixie-security`): `[a-z0-9.+-]+`.
pub(crate) fn suite(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".+-".contains(&b));
    if ok {
        return Ok(());
    }
    let help = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        format!("suites are lowercase: `{}`", name.to_ascii_lowercase())
    } else if name.contains(',') {
        r#"separate suites with spaces: suites="trixie trixie-updates""#.to_owned()
    } else {
        "a suite is lowercase letters, digits, `.`, `+` and `-`, e.g. `trixie` or `trixie-updates`"
            .to_owned()
    };
    Err(problem(format!("`{name}` is not a suite name"), help))
}

/// A component (`main`, `non-free-firmware`): like a suite, and `/` between parts
/// (`updates/main`).
pub(crate) fn component(name: &str) -> Result<(), Problem> {
    if !name.is_empty() && name.split('/').all(|part| suite(part).is_ok()) {
        return Ok(());
    }
    let help = if name.contains(',') {
        r#"separate components with spaces: components="main contrib""#.to_owned()
    } else {
        "a component is lowercase letters, digits, `.`, `+` and `-`, e.g. `main` or \
         `non-free-firmware`"
            .to_owned()
    };
    Err(problem(format!("`{name}` is not a component name"), help))
}

/// A snapshot.debian.org time stamp: `YYYYMMDDTHHMMSSZ`, a real UTC time.
pub(crate) fn snapshot(text: &str) -> Result<(), Problem> {
    let help = r#"write the snapshot.debian.org time as YYYYMMDDTHHMMSSZ (UTC), e.g. snapshot "20261101T000000Z""#;
    let b = text.as_bytes();
    let shape_ok = b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    if !shape_ok {
        // An RFC 3339 time is the likely mistake: show it in snapshot form.
        let help = match crate::time::parse_rfc3339(text) {
            Ok(secs) if secs >= 0 => {
                let utc = crate::time::format_rfc3339(secs).replace(['-', ':'], "");
                format!(r#"snapshot times are compact UTC: snapshot "{utc}""#)
            }
            _ => help.to_owned(),
        };
        return Err(problem(
            format!("`{text}` is not a snapshot time (YYYYMMDDTHHMMSSZ)"),
            help,
        ));
    }
    let t = text;
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11],
        &t[11..13],
        &t[13..15]
    );
    match crate::time::parse_rfc3339(&rfc) {
        Ok(_) => Ok(()),
        Err(_) => Err(problem(
            format!("`{text}` is not a valid date and time"),
            help,
        )),
    }
}

/// An account name for `/etc/passwd`: `[a-z_][a-z0-9_-]*`, at most 32 characters.
pub(crate) fn user_name(name: &str) -> Result<(), Problem> {
    let help = "user names are lowercase letters, digits, `_` and `-`, starting with a letter \
                or `_`, at most 32 characters (`app`, `_svc`)";
    let ok = name.len() <= 32
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(problem(format!("`{name}` is not a valid user name"), help))
    }
}

/// A package index URL (PEP 503/691 "simple" API base): `http://` or `https://`, a host,
/// no credentials, query, fragment or white space. Returns it without trailing `/`.
pub(crate) fn index_url(url: &str) -> Result<String, Problem> {
    let example = r#"e.g. index "https://pypi.org/simple""#;
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(problem(
            "index URL is empty",
            format!("name the index's simple API URL, {example}"),
        ));
    }
    if trimmed.contains(char::is_whitespace) {
        let help = if trimmed.starts_with("--") || trimmed.contains(" --") {
            format!("this looks like a pip option; write the URL alone, {example}")
        } else {
            format!("a URL has no spaces; {example}")
        };
        return Err(problem(format!("`{url}` is not a URL (white space)"), help));
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(problem(
            format!("`{url}` has no `http://` or `https://`"),
            format!(r#"did you mean "https://{trimmed}"?"#),
        ));
    };
    if !matches!(scheme, "http" | "https") {
        let help = if matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
            format!(
                "write the scheme in lower case: \"{}://{rest}\"",
                scheme.to_ascii_lowercase()
            )
        } else {
            "package indexes are read over `https://` (or `http://`); every wheel is checked \
             against the sha256 in the lock"
                .to_owned()
        };
        return Err(problem(
            format!("`{scheme}://` indexes are not supported"),
            help,
        ));
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.contains('@') {
        let bare = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
        return Err(problem(
            format!("the index URL `{scheme}://…@{bare}` contains credentials"),
            format!(
                "credentials come from the environment or ~/.netrc, never the recipe; write \"{scheme}://{bare}\""
            ),
        ));
    }
    if host.is_empty() {
        return Err(problem(
            format!("`{url}` has no host"),
            format!("name a host, {example}"),
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(problem(
            format!("`{url}` has a query or fragment"),
            format!("an index URL is the base of its project pages (`URL/numpy/`), {example}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A Python project name (PEP 508: letters, digits, `-`, `_` and `.`, starting and ending
/// with a letter or digit), normalized per PEP 503 (`Typing_Extensions` →
/// `typing-extensions`).
pub(crate) fn project_name(name: &str) -> Result<String, Problem> {
    match pep508_rs::PackageName::new(name.to_owned()) {
        Ok(n) if !name.is_empty() => Ok(n.to_string()),
        _ => {
            let help = if name.contains(',') {
                r#"separate project names with spaces: only="torch torchvision""#.to_owned()
            } else if name.contains(['=', '<', '>', '[', ';', '@']) {
                "`only` takes project names, not requirements; put versions and extras on a \
                 layer's `pypi` item"
                    .to_owned()
            } else {
                "a project name is letters, digits, `-`, `_` and `.`, starting and ending with a \
                 letter or digit (`torch`, `typing-extensions`)"
                    .to_owned()
            };
            Err(problem(
                format!("`{name}` is not a Python project name"),
                help,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(image_path("/etc/motd", false).is_ok());
        assert!(image_path("/a.b/..c/x..", false).is_ok());
        assert!(image_path("/", true).is_ok());
        for bad in [
            "", "/", "etc", "/etc/", "/a//b", "/a/../b", "/a/./b", "/..", "/a\0b",
        ] {
            assert!(image_path(bad, false).is_err(), "{bad:?}");
        }
        let p = image_path("etc/motd", false)
            .err()
            .map(|p| p.help)
            .unwrap_or_default();
        assert!(p.contains("`/etc/motd`"), "{p}");
    }

    #[test]
    fn modes() {
        assert_eq!(mode("0755"), Ok(0o755));
        assert_eq!(mode("644"), Ok(0o644));
        assert_eq!(mode("4755"), Ok(0o4755));
        for bad in ["", "7", "75", "0o755", "0888", "07555", "+755", "rwx"] {
            assert!(mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        for good in ["latest", "1.0", "_x", "2.21.0-gpu-py313", &"a".repeat(128)] {
            assert!(tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a b", "a/b", "é", &"a".repeat(129)] {
            assert!(tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        for good in ["hello", "tf-gpu", "a.b_c__d---e", "team/tf-gpu", "x9"] {
            assert!(image_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Hello", "-x", "x-", "a..b", "a___b", "a/", "/a", "a b", "a._b",
        ] {
            assert!(image_name(bad).is_err(), "{bad}");
        }
        assert!(layer_name("Base_1.x-y").is_ok());
        for bad in ["", "-x", "a b", "a/b"] {
            assert!(layer_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms() {
        assert_eq!(platform("linux/amd64"), Ok(Platform::linux_amd64()));
        let arm = platform("linux/arm64/v8").ok();
        assert_eq!(arm.and_then(|p| p.variant), Some("v8".to_owned()));
        assert!(platform("windows/amd64").is_err());
        assert!(platform("linux").is_err());
        assert!(platform("linux/arm64/").is_err());
        assert!(platform("linux/a/b/c").is_err());
        let help = platform("linux/x86_64")
            .err()
            .map(|p| p.help)
            .unwrap_or_default();
        assert!(help.contains("`amd64`"), "{help}");
        let help = platform("linux/arm65")
            .err()
            .map(|p| p.help)
            .unwrap_or_default();
        assert!(help.contains("did you mean `arm64`"), "{help}");
    }

    #[test]
    fn ports() {
        assert_eq!(port("8080"), Ok("8080/tcp".to_owned()));
        assert_eq!(port("53/UDP"), Ok("53/udp".to_owned()));
        assert_eq!(port("9/sctp"), Ok("9/sctp".to_owned()));
        for bad in ["0", "65536", "http", "80/icmp", "", "/tcp", "+80", "80/"] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn misc() {
        assert!(env_key("PATH").is_ok());
        assert!(env_key("A=B").is_err());
        assert!(env_key("").is_err());
        assert!(signal("SIGTERM").is_ok());
        assert!(signal("SIGRTMIN+3").is_ok());
        assert!(signal("15").is_ok());
        assert!(signal("TERM").is_err());
        assert!(signal("sigterm").is_err());
    }

    #[test]
    fn index_urls() {
        assert_eq!(
            index_url("https://pypi.org/simple/"),
            Ok("https://pypi.org/simple".to_owned())
        );
        assert_eq!(
            index_url("http://mirror.local:8080/pypi/simple"),
            Ok("http://mirror.local:8080/pypi/simple".to_owned())
        );
        let cases = [
            ("", "empty"),
            ("pypi.org/simple", "https://pypi.org/simple"),
            ("ftp://pypi.org/simple", "not supported"),
            ("HTTPS://pypi.org/simple", "lower case"),
            ("https:///simple", "no host"),
            ("https://pypi.org/simple?x=1", "query"),
            ("https://pypi.org/simple#x", "query"),
            ("--extra-index-url https://x/simple", "pip option"),
            ("https://pypi.org/ simple", "white space"),
        ];
        for (url, expected) in cases {
            let Err(p) = index_url(url) else {
                panic!("{url} accepted")
            };
            assert!(
                p.message.contains(expected) || p.help.contains(expected),
                "{url}: {p:?}"
            );
        }
        let Err(p) = index_url("https://user:s3cret@pypi.example.org/simple") else {
            panic!("credentials accepted")
        };
        assert!(p.message.contains("credentials"), "{p:?}");
        assert!(
            !p.message.contains("s3cret") && !p.help.contains("s3cret"),
            "{p:?}"
        );
        assert!(p.help.contains("~/.netrc"), "{p:?}");
        assert!(
            p.help.contains("\"https://pypi.example.org/simple\""),
            "{p:?}"
        );
    }

    #[test]
    fn project_names() {
        assert_eq!(project_name("torch"), Ok("torch".to_owned()));
        assert_eq!(
            project_name("Typing__Extensions"),
            Ok("typing-extensions".to_owned())
        );
        assert_eq!(
            project_name("zope.interface"),
            Ok("zope-interface".to_owned())
        );
        for (bad, help) in [
            ("", "letters"),
            ("-torch", "letters"),
            ("torch,torchvision", "spaces"),
            ("torch==2.7", "not requirements"),
            ("é", "letters"),
        ] {
            let Err(p) = project_name(bad) else {
                panic!("{bad} accepted")
            };
            assert!(p.help.contains(help), "{bad}: {p:?}");
        }
    }
}
