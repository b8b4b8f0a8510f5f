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
}
