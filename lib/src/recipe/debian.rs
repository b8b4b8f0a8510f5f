//! The `debian { … }` block (where packages come from, image-wide package policy and
//! accounts) and the `debian "pkg" …` layer item.
//!
//! Checks that need the whole recipe (a `debian` item without a block, a requested
//! package that is also excluded) run in [`check`] once every node has been read.

use std::collections::HashMap;

use kdl::{KdlEntry, KdlNode};
use miette::SourceSpan;

use super::error::{ErrorKind, RecipeDiagnostic};
use super::model::{DebianArchive, DebianSource, LayerItem, UserSpec};
use super::parse::{Site, duplicate};
use super::request;
use super::shape::{Cx, Shape, shape};
use super::source::{SourceFile, normalize_lexically};
use super::validate::{self, Problem};

/// Nodes of the `debian` block.
const BLOCK_NODES: &[&str] = &[
    "archive", "keyring", "snapshot", "include", "exclude", "user",
];

/// The shortest useful block, shown in help.
const BLOCK_EXAMPLE: &str = r#"debian { archive "http://deb.debian.org/debian" suites="trixie"; }"#;

const BLOCK: Shape = shape("debian", &[], false, &[], true, BLOCK_EXAMPLE);
const ARCHIVE: Shape = shape(
    "archive",
    &["URL"],
    false,
    &["suites", "components"],
    false,
    r#"archive "http://deb.debian.org/debian" suites="trixie trixie-updates" components="main""#,
);
const KEYRING: Shape = shape(
    "keyring",
    &["PATH"],
    false,
    &[],
    false,
    r#"keyring "keys/debian-archive-keyring.pgp""#,
);
const SNAPSHOT: Shape = shape(
    "snapshot",
    &["TIME"],
    false,
    &[],
    false,
    r#"snapshot "20261101T000000Z""#,
);
const INCLUDE: Shape = shape(
    "include",
    &["PACKAGE"],
    true,
    &[],
    false,
    r#"include "base-files" "base-passwd" "dash""#,
);
const EXCLUDE: Shape = shape(
    "exclude",
    &["PACKAGE"],
    true,
    &[],
    false,
    r#"exclude "dpkg" "debconf""#,
);
const USER: Shape = shape(
    "user",
    &["NAME"],
    false,
    &["uid", "gid", "home", "shell"],
    false,
    r#"user "app" uid=1000 gid=1000 home="/home/app" shell="/bin/sh""#,
);
const ITEM: Shape = shape(
    "debian",
    &["PACKAGE"],
    true,
    &[],
    false,
    r#"debian "python3" "ca-certificates=20250419" "libc6 (>= 2.36)""#,
);

/// A `debian` block as read, with the sites that later checks point at.
pub(super) struct DebianDraft {
    /// The block's node name.
    site: Site,
    /// What the block says.
    pub(super) source: DebianSource,
    /// `include` names and where each was written.
    includes: Vec<(String, Site)>,
    /// `exclude` names and where each was written.
    excludes: Vec<(String, Site)>,
}

/// Where a layer requests Debian packages.
#[derive(Default)]
pub(super) struct LayerRequests {
    /// The first `debian` item of the layer.
    pub(super) first: Option<Site>,
    /// Requested package names, each with the argument that requests it.
    pub(super) names: Vec<(String, Site)>,
}

/// Reads a top-level `debian` block into `slot`, or reports it as a second one.
pub(super) fn block(
    cx: &mut Cx<'_>,
    file_index: usize,
    node: &KdlNode,
    slot: &mut Option<DebianDraft>,
    seen: &mut HashMap<&'static str, Site>,
    files: &[SourceFile],
) {
    let here = (file_index, node.name().span());
    if let Some(first) = slot {
        let mut d = cx.file.diag(
            ErrorKind::DuplicateDebian,
            here.1,
            "second `debian` block",
            "a recipe has at most one `debian` block",
        );
        let mut help = "merge the two `debian` blocks into one (`archive`, `include`, `exclude` \
                        and `user` may repeat inside it)"
            .to_owned();
        if first.site.0 == file_index {
            d = d.secondary(first.site.1, "first `debian` block");
        } else if let Some(f) = files.get(first.site.0) {
            help = format!("{help}; the first is at {}", f.location(first.site.1));
        }
        cx.push(d.help(help));
        return;
    }

    let args: Vec<&KdlEntry> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect();
    if let (Some(first), Some(last)) = (args.first(), args.last()) {
        // `debian "python3"` at the top level: a layer item in the wrong place.
        let span =
            SourceSpan::from(first.span().offset()..last.span().offset() + last.span().len());
        let d = cx
            .file
            .diag(
                ErrorKind::TooManyArguments,
                span,
                "packages here",
                "the top-level `debian` block takes no arguments",
            )
            .help(format!(
                r#"packages are installed by layers: layer "system" {{ debian "python3"; }}; the top-level block says where they come from: {BLOCK_EXAMPLE}"#
            ));
        cx.push(d);
    } else {
        let _ = cx.check(node, &BLOCK);
    }

    let mut draft = DebianDraft {
        site: here,
        source: DebianSource::default(),
        includes: Vec::new(),
        excludes: Vec::new(),
    };
    let mut archive_nodes = 0;
    let mut users: Vec<(SourceSpan, SourceSpan)> = Vec::new();
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        let site = (file_index, child.name().span());
        match child.name().value() {
            "archive" => {
                archive_nodes += 1;
                if let Some(a) = archive(cx, child) {
                    draft.source.archives.push(a);
                }
            }
            "keyring" => {
                let Some(e) = cx.check(child, &KEYRING).and_then(|en| en.arg(0)) else {
                    continue;
                };
                if duplicate(
                    cx,
                    files,
                    seen,
                    "debian.keyring",
                    site,
                    ErrorKind::DuplicateSetting,
                    "`keyring`",
                ) {
                    continue;
                }
                let Some(path) = cx.string(e, "the keyring path") else {
                    continue;
                };
                if path.is_empty() {
                    let d = cx
                        .file
                        .diag(ErrorKind::InvalidPath, e.span(), "empty path", "keyring path is empty")
                        .help(format!(
                            "name an OpenPGP keyring file relative to this recipe, or leave `keyring` out to use Debian's archive keyring; usage: {}",
                            KEYRING.usage
                        ));
                    cx.push(d);
                    continue;
                }
                draft.source.keyring = Some(normalize_lexically(&cx.file.dir().join(path)));
            }
            "snapshot" => {
                let Some(e) = cx.check(child, &SNAPSHOT).and_then(|en| en.arg(0)) else {
                    continue;
                };
                if duplicate(
                    cx,
                    files,
                    seen,
                    "debian.snapshot",
                    site,
                    ErrorKind::DuplicateSetting,
                    "`snapshot`",
                ) {
                    continue;
                }
                let Some(text) = cx.string(e, "the snapshot time") else {
                    continue;
                };
                match validate::snapshot(&text) {
                    Ok(()) => draft.source.snapshot = Some(text),
                    Err(p) => cx.problem(
                        ErrorKind::InvalidSnapshot,
                        e.span(),
                        "not YYYYMMDDTHHMMSSZ",
                        p,
                    ),
                }
            }
            "include" | "exclude" => {
                let including = child.name().value() == "include";
                let shape = if including { &INCLUDE } else { &EXCLUDE };
                let Some(entries) = cx.check(child, shape) else {
                    continue;
                };
                for e in &entries.args {
                    let Some(name) = package_name(cx, e, shape.name) else {
                        continue;
                    };
                    let (list, sites) = if including {
                        (&mut draft.source.include, &mut draft.includes)
                    } else {
                        (&mut draft.source.exclude, &mut draft.excludes)
                    };
                    if !list.contains(&name) {
                        list.push(name.clone());
                        sites.push((name, (file_index, e.span())));
                    }
                }
            }
            "user" => {
                let Some((user, name_span, uid_span)) = user(cx, child) else {
                    continue;
                };
                let same_name = draft.source.users.iter().position(|u| u.name == user.name);
                let same_uid = draft.source.users.iter().position(|u| u.uid == user.uid);
                if let Some(i) = same_name {
                    let d = cx
                        .file
                        .diag(
                            ErrorKind::DuplicateUser,
                            name_span,
                            "declared again here",
                            format!("user `{}` is declared twice", user.name),
                        )
                        .secondary(users[i].0, "first declared here")
                        .help("each account is declared once; remove one `user` node");
                    cx.push(d);
                    continue;
                }
                if let Some(i) = same_uid {
                    let other = &draft.source.users[i].name;
                    let d = cx
                        .file
                        .diag(
                            ErrorKind::DuplicateUser,
                            uid_span,
                            "uid used again here",
                            format!(
                                "user `{}` has uid {}, which user `{other}` already has",
                                user.name, user.uid
                            ),
                        )
                        .secondary(users[i].1, format!("uid of `{other}`"))
                        .help("give each account its own uid");
                    cx.push(d);
                    continue;
                }
                users.push((name_span, uid_span));
                draft.source.users.push(user);
            }
            _ => cx.unknown_node(child, BLOCK_NODES, "`debian`"),
        }
    }
    if archive_nodes == 0 {
        let d = cx
            .file
            .diag(
                ErrorKind::MissingArchive,
                here.1,
                "no `archive` in this block",
                "the `debian` block names no archive",
            )
            .help(format!(
                "name at least one archive to take packages from: {}",
                ARCHIVE.usage
            ));
        cx.push(d);
    }
    *slot = Some(draft);
}

/// `archive "URL" suites="…" [components="…"]`.
fn archive(cx: &mut Cx<'_>, node: &KdlNode) -> Option<DebianArchive> {
    let entries = cx.check(node, &ARCHIVE)?;
    let url_e = entries.arg(0)?;
    let url = cx
        .string(url_e, "the archive URL")
        .and_then(|u| match validate::archive_url(&u) {
            Ok(url) => Some(url),
            Err(p) => {
                cx.problem(ErrorKind::InvalidUrl, url_e.span(), "not an archive URL", p);
                None
            }
        });
    let suites = match entries.prop("suites") {
        Some(e) => words(cx, e, "suites", validate::suite),
        None => {
            let d = cx
                .file
                .diag(
                    ErrorKind::MissingArgument,
                    url_e.span(),
                    "suites=\"…\" expected after this",
                    "`archive` is missing `suites`",
                )
                .help(format!(
                    "name the suites to read, separated by spaces; usage: {}",
                    ARCHIVE.usage
                ));
            cx.push(d);
            None
        }
    };
    let components = match entries.prop("components") {
        Some(e) => words(cx, e, "components", validate::component),
        None => Some(vec!["main".to_owned()]),
    };
    Some(DebianArchive {
        url: url?,
        suites: suites?,
        components: components?,
    })
}

/// A space-separated list property (`suites`, `components`): at least one word, each
/// valid; repeated words are kept once.
fn words(
    cx: &mut Cx<'_>,
    e: &KdlEntry,
    what: &str,
    check: fn(&str) -> Result<(), Problem>,
) -> Option<Vec<String>> {
    let text = cx.string(e, &format!("`{what}`"))?;
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for word in text.split_whitespace() {
        match check(word) {
            Ok(()) if !out.iter().any(|w| w == word) => out.push(word.to_owned()),
            Ok(()) => {}
            Err(p) => {
                cx.problem(ErrorKind::InvalidSuite, e.span(), "invalid name", p);
                ok = false;
            }
        }
    }
    if out.is_empty() && ok {
        let d = cx
            .file
            .diag(
                ErrorKind::InvalidSuite,
                e.span(),
                "empty list",
                format!("`{what}` is empty"),
            )
            .help(format!(
                "name at least one, separated by spaces; usage: {}",
                ARCHIVE.usage
            ));
        cx.push(d);
        return None;
    }
    ok.then_some(out)
}

/// A bare package name of `include` or `exclude`.
fn package_name(cx: &mut Cx<'_>, e: &KdlEntry, node: &str) -> Option<String> {
    let text = cx.string(e, "a package name")?;
    let name = text.trim();
    match validate::package_name(name) {
        Ok(()) => Some(name.to_owned()),
        Err(p) => {
            let p = match request::parse(name) {
                Ok(r) if r.version.is_some() => Problem {
                    message: format!("`{node}` takes package names, not versions: `{name}`"),
                    help: format!(
                        "write \"{}\" here; pin versions in a layer's `debian` item: debian \"{name}\"",
                        r.name
                    ),
                },
                _ => p,
            };
            cx.problem(ErrorKind::InvalidPackage, e.span(), "not a package name", p);
            None
        }
    }
}

/// `user "NAME" uid=… [gid=…] [home=…] [shell=…]`, with the spans of its name and uid.
fn user(cx: &mut Cx<'_>, node: &KdlNode) -> Option<(UserSpec, SourceSpan, SourceSpan)> {
    let entries = cx.check(node, &USER)?;
    let name_e = entries.arg(0)?;
    let name = cx
        .string(name_e, "the user name")
        .and_then(|n| match validate::user_name(&n) {
            Ok(()) => Some(n),
            Err(p) => {
                cx.problem(
                    ErrorKind::InvalidName,
                    name_e.span(),
                    "invalid user name",
                    p,
                );
                None
            }
        });
    let uid_e = entries.prop("uid");
    let uid = match uid_e {
        Some(e) => cx.id(e, "uid"),
        None => {
            let d = cx
                .file
                .diag(
                    ErrorKind::MissingArgument,
                    name_e.span(),
                    "uid=… expected after this",
                    "`user` is missing `uid`",
                )
                .help(format!(
                    "every account has a numeric uid (gid defaults to it); usage: {}",
                    USER.usage
                ));
            cx.push(d);
            None
        }
    };
    let gid = match entries.prop("gid") {
        Some(e) => cx.id(e, "gid"),
        None => uid,
    };
    let home = match entries.prop("home") {
        Some(e) => cx.image_path(e, "home", false),
        None => name.as_ref().map(|n| format!("/home/{n}")),
    };
    let shell = match entries.prop("shell") {
        Some(e) => cx.image_path(e, "shell", false),
        None => Some("/bin/sh".to_owned()),
    };
    let user = UserSpec {
        name: name?,
        uid: uid?,
        gid: gid?,
        home: home?,
        shell: shell?,
    };
    Some((
        user,
        name_e.span(),
        uid_e.map_or(name_e.span(), KdlEntry::span),
    ))
}

/// A layer's `debian "pkg" …` item (`None` when an argument is not a valid request, which
/// is reported), and the name and span of each valid request.
pub(super) fn item(
    cx: &mut Cx<'_>,
    node: &KdlNode,
) -> (Option<LayerItem>, Vec<(String, SourceSpan)>) {
    let Some(entries) = cx.check(node, &ITEM) else {
        return (None, Vec::new());
    };
    let mut packages = Vec::with_capacity(entries.args.len());
    let mut names = Vec::with_capacity(entries.args.len());
    let mut ok = true;
    for e in &entries.args {
        let Some(text) = cx.string(e, "a package") else {
            ok = false;
            continue;
        };
        match request::parse(&text) {
            Ok(r) => {
                packages.push(r.to_string());
                names.push((r.name, e.span()));
            }
            Err(p) => {
                cx.problem(
                    ErrorKind::InvalidPackage,
                    e.span(),
                    "not a package request",
                    p,
                );
                ok = false;
            }
        }
    }
    (ok.then_some(LayerItem::Debian { packages }), names)
}

/// Reports a package requested twice in one layer; `seen` holds the layer's requests so far.
pub(super) fn duplicate_request(
    cx: &mut Cx<'_>,
    seen: &HashMap<String, SourceSpan>,
    name: &str,
    span: SourceSpan,
) -> bool {
    let Some(first) = seen.get(name) else {
        return false;
    };
    let d = cx
        .file
        .diag(
            ErrorKind::DuplicatePackage,
            span,
            "requested again here",
            format!("`{name}` is requested twice in this layer"),
        )
        .secondary(*first, "first requested here")
        .help(
            "request each package once per layer; put a version constraint on the one that stays",
        );
    cx.push(d);
    true
}

/// Whole-recipe checks: `debian` items need a `debian` block; nothing requested or included
/// may also be excluded.
pub(super) fn check(
    source: Option<&DebianDraft>,
    layers: &[(&str, &LayerRequests)],
    files: &[SourceFile],
    diags: &mut Vec<RecipeDiagnostic>,
) {
    let Some(source) = source else {
        let Some((layer, site)) = layers
            .iter()
            .find_map(|(name, r)| r.first.map(|site| (*name, site)))
        else {
            return;
        };
        let Some(file) = files.get(site.0) else {
            return;
        };
        let d = file
            .diag(
                ErrorKind::MissingDebian,
                site.1,
                "Debian packages requested here",
                format!(
                    "layer `{layer}` installs Debian packages, but the recipe has no `debian` block"
                ),
            )
            .help(format!(
                "say where packages come from with a top-level block (or include a fragment that has one): {BLOCK_EXAMPLE}"
            ));
        diags.push(d);
        return;
    };
    let excluded = |name: &str| source.excludes.iter().find(|(n, _)| n == name);
    let mut report = |what: String, label: &str, at: Site, exclude: Site| {
        let Some(file) = files.get(at.0) else {
            return;
        };
        let mut d = file.diag(ErrorKind::ExcludedPackage, at.1, label, what);
        let mut help =
            "a package cannot be both installed and excluded; remove one of the two".to_owned();
        if exclude.0 == at.0 {
            d = d.secondary(exclude.1, "excluded here");
        } else if let Some(f) = files.get(exclude.0) {
            help = format!("{help}; it is excluded at {}", f.location(exclude.1));
        }
        diags.push(d.help(help));
    };
    for (name, site) in &source.includes {
        if let Some((_, ex)) = excluded(name) {
            report(
                format!("`{name}` is both included and excluded"),
                "included here",
                *site,
                *ex,
            );
        }
    }
    for (layer, requests) in layers {
        for (name, site) in &requests.names {
            if let Some((_, ex)) = excluded(name) {
                report(
                    format!("`{name}` is requested in layer `{layer}` but excluded"),
                    "requested here",
                    *site,
                    *ex,
                );
            }
        }
    }
}
