//! From spliced KDL nodes to a validated [`ImageSpec`].
//!
//! One pass over the top-level nodes (`image`, `debian`, `pypi`, `layer`, `config`)
//! collects every problem it can find instead of stopping at the first; layer references,
//! cycles, order and the Debian and Python cross-checks run at the end. Node shapes live in
//! [`super::shape`], value rules in [`super::validate`], the `debian` block in
//! [`super::debian`], the `pypi` block in [`super::pypi`].

use std::collections::HashMap;
use std::path::Path;

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::check;
use super::debian::{self, DebianDraft, LayerRequests};
use super::error::{ErrorKind, RecipeDiagnostic};
use super::include::Spliced;
use super::model::{CheckSpec, ImageSpec, LayerItem, LayerSpec, Platform, RuntimeConfig};
use super::order;
use super::pypi::{self, PypiDraft};
use super::shape::{Cx, Shape, shape};
use super::source::{SourceFile, normalize_lexically};
use super::suggest;
use super::validate;

const TOP_LEVEL: &[&str] = &[
    "include", "image", "debian", "pypi", "layer", "config", "check",
];
const IMAGE_NODES: &[&str] = &["tag", "platform", "epoch", "version", "source", "revision"];
const LAYER_NODES: &[&str] = &["write", "copy", "dir", "symlink", "debian", "pypi"];
const CONFIG_NODES: &[&str] = &[
    "env",
    "entrypoint",
    "cmd",
    "workdir",
    "user",
    "label",
    "annotation",
    "expose",
    "volume",
    "stop-signal",
];
const OWNER_PROPS: &[&str] = &["mode", "uid", "gid"];

const IMAGE: Shape = shape(
    "image",
    &["NAME"],
    false,
    &[],
    true,
    r#"image "hello" { tag "1.0" }"#,
);
const LAYER: Shape = shape(
    "layer",
    &["NAME"],
    false,
    &["after"],
    true,
    r#"layer "app" after="base" { … }"#,
);
const CONFIG: Shape = shape(
    "config",
    &[],
    false,
    &[],
    true,
    r#"config { cmd "/bin/sh" }"#,
);

const TAG: Shape = shape("tag", &["TAG"], true, &[], false, r#"tag "1.0" "latest""#);
const PLATFORM: Shape = shape(
    "platform",
    &["PLATFORM"],
    true,
    &[],
    false,
    r#"platform "linux/amd64" "linux/arm64""#,
);
const EPOCH: Shape = shape(
    "epoch",
    &["EPOCH"],
    false,
    &[],
    false,
    r#"epoch "2026-11-01T00:00:00Z""#,
);
const VERSION: Shape = shape(
    "version",
    &["VERSION"],
    false,
    &[],
    false,
    r#"version "1.0.0""#,
);
const SOURCE: Shape = shape(
    "source",
    &["URL"],
    false,
    &[],
    false,
    r#"source "https://example.org/repo""#,
);
const REVISION: Shape = shape(
    "revision",
    &["REVISION"],
    false,
    &[],
    false,
    r#"revision "abc123""#,
);

const WRITE: Shape = shape(
    "write",
    &["DEST", "CONTENT"],
    false,
    OWNER_PROPS,
    false,
    r#"write "/etc/motd" "hello\n" mode="0644" uid=0 gid=0"#,
);
const COPY: Shape = shape(
    "copy",
    &["SRC", "DEST"],
    false,
    &["mode", "dir-mode", "uid", "gid"],
    false,
    r#"copy "files/app" "/opt/app" mode="0755" dir-mode="0755" uid=0 gid=0"#,
);
const DIR: Shape = shape(
    "dir",
    &["DEST"],
    false,
    OWNER_PROPS,
    false,
    r#"dir "/data" mode="0755" uid=0 gid=0"#,
);
const SYMLINK: Shape = shape(
    "symlink",
    &["DEST", "TARGET"],
    false,
    &[],
    false,
    r#"symlink "/usr/local/bin/app" "/opt/app/run.sh""#,
);

const ENV: Shape = shape(
    "env",
    &["KEY", "VALUE"],
    false,
    &[],
    false,
    r#"env "PATH" "/usr/local/bin:/usr/bin""#,
);
const ENTRYPOINT: Shape = shape(
    "entrypoint",
    &["ARG"],
    true,
    &[],
    false,
    r#"entrypoint "/bin/sh" "-c""#,
);
const CMD: Shape = shape("cmd", &["ARG"], true, &[], false, r#"cmd "python3""#);
const WORKDIR: Shape = shape(
    "workdir",
    &["PATH"],
    false,
    &[],
    false,
    r#"workdir "/workspace""#,
);
const USER: Shape = shape("user", &["USER"], false, &[], false, r#"user "1000:1000""#);
const LABEL: Shape = shape(
    "label",
    &["KEY", "VALUE"],
    false,
    &[],
    false,
    r#"label "org.example.team" "ml""#,
);
const ANNOTATION: Shape = shape(
    "annotation",
    &["KEY", "VALUE"],
    false,
    &[],
    false,
    r#"annotation "org.example.team" "ml""#,
);
const EXPOSE: Shape = shape(
    "expose",
    &["PORT"],
    true,
    &[],
    false,
    r#"expose "8080/tcp""#,
);
const VOLUME: Shape = shape("volume", &["PATH"], true, &[], false, r#"volume "/data""#);
const STOP_SIGNAL: Shape = shape(
    "stop-signal",
    &["SIGNAL"],
    false,
    &[],
    false,
    r#"stop-signal "SIGTERM""#,
);

/// Where something was first set: (file index, span).
pub(super) type Site = (usize, SourceSpan);

#[derive(Default)]
struct ImageDraft {
    name: String,
    tags: Vec<String>,
    /// Every platform with the span that named it, in recipe order.
    platforms: Vec<(Platform, SourceSpan)>,
    epoch: Option<i64>,
    version: Option<String>,
    source: Option<String>,
    revision: Option<String>,
}

struct LayerDraft {
    site: Site,
    name: String,
    after: Option<(String, Site)>,
    items: Vec<LayerItem>,
    requests: LayerRequests,
    /// The first `pypi` item.
    pypi: Option<Site>,
}

#[derive(Default)]
struct Builder {
    diags: Vec<RecipeDiagnostic>,
    image: Option<(Site, ImageDraft)>,
    debian: Option<DebianDraft>,
    pypi: Option<PypiDraft>,
    layers: Vec<LayerDraft>,
    config: RuntimeConfig,
    check: CheckSpec,
    /// Single-valued settings already given (`image.platform`, `config.workdir`, …).
    seen: HashMap<&'static str, Site>,
}

/// Checks the spliced recipe and builds the image spec.
///
/// # Errors
/// Every problem found.
pub(crate) fn build(spliced: &Spliced) -> Result<ImageSpec, Vec<RecipeDiagnostic>> {
    let mut b = Builder::default();
    let mut image_typo = false;
    for node_ref in &spliced.nodes {
        let Some(file) = spliced.files.get(node_ref.file) else {
            continue;
        };
        let Some(node) = file.doc.nodes().get(node_ref.index) else {
            continue;
        };
        let mut cx = Cx {
            file,
            out: &mut b.diags,
        };
        match node.name().value() {
            "image" => image(
                &mut cx,
                node_ref.file,
                node,
                &mut b.image,
                &mut b.seen,
                &spliced.files,
            ),
            "debian" => debian::block(
                &mut cx,
                node_ref.file,
                node,
                &mut b.debian,
                &mut b.seen,
                &spliced.files,
            ),
            "pypi" => pypi::block(
                &mut cx,
                node_ref.file,
                node,
                &mut b.pypi,
                &mut b.seen,
                &spliced.files,
            ),
            "layer" => {
                if let Some(layer) = layer(&mut cx, node_ref.file, node) {
                    add_layer(&mut cx, layer, &mut b.layers, &spliced.files);
                }
            }
            "check" => check::block(
                &mut cx,
                node_ref.file,
                node,
                &mut b.check,
                &mut b.seen,
                &spliced.files,
            ),
            "config" => config(
                &mut cx,
                node_ref.file,
                node,
                &mut b.config,
                &mut b.seen,
                &spliced.files,
            ),
            name => {
                // A misspelt `image` already says what is wrong; no "missing image" too.
                image_typo |= suggest::closest(name, TOP_LEVEL) == Some("image");
                cx.unknown_node(node, TOP_LEVEL, "the recipe");
            }
        }
    }

    let image = match b.image.take() {
        Some((_, image)) => Some(image),
        None => {
            if !image_typo && let Some(root) = spliced.files.first() {
                let d = root
                    .diag(
                        ErrorKind::MissingImage,
                        SourceSpan::from(0..0),
                        "no `image` node in this recipe",
                        "recipe has no `image` node",
                    )
                    .help(r#"every recipe names its image: image "hello" { tag "1.0" }"#);
                b.diags.push(d);
            }
            None
        }
    };
    let requests: Vec<(&str, &LayerRequests)> = b
        .layers
        .iter()
        .map(|l| (l.name.as_str(), &l.requests))
        .collect();
    debian::check(b.debian.as_ref(), &requests, &spliced.files, &mut b.diags);
    let uses: Vec<pypi::LayerUse> = b
        .layers
        .iter()
        .map(|l| pypi::LayerUse {
            name: l.name.clone(),
            debian: l.requests.first.is_some(),
            pypi: l.pypi,
        })
        .collect();
    let uses_pypi = uses.iter().any(|u| u.pypi.is_some());
    let layers = order_layers(std::mem::take(&mut b.layers), &spliced.files, &mut b.diags);
    if let Some(layers) = &layers {
        let order: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        pypi::check(&uses, &order, &spliced.files, &mut b.diags);
    }

    match (image, layers) {
        (Some(image), Some(layers)) if b.diags.is_empty() => Ok(ImageSpec {
            name: image.name,
            tags: if image.tags.is_empty() {
                vec!["latest".to_owned()]
            } else {
                image.tags
            },
            platform: image
                .platforms
                .first()
                .map_or_else(Platform::linux_amd64, |(p, _)| p.clone()),
            other_platforms: image
                .platforms
                .iter()
                .skip(1)
                .map(|(p, _)| p.clone())
                .collect(),
            epoch: image.epoch,
            version: image.version,
            source: image.source,
            revision: image.revision,
            layers,
            config: b.config,
            debian: b.debian.map(|d| d.source),
            pypi: pypi::source(b.pypi, uses_pypi),
            recipe_digest: None,
            check: b.check,
        }),
        _ => Err(b.diags),
    }
}

/// Reports a second value for a single-valued setting, pointing at the first when it
/// is in the same file. Returns whether the setting was already seen.
pub(super) fn duplicate(
    cx: &mut Cx<'_>,
    files: &[SourceFile],
    seen: &mut HashMap<&'static str, Site>,
    key: &'static str,
    here: Site,
    kind: ErrorKind,
    what: &str,
) -> bool {
    let Some(&first) = seen.get(key) else {
        seen.insert(key, here);
        return false;
    };
    let mut d = cx.file.diag(
        kind,
        here.1,
        "set again here",
        format!("{what} is set more than once"),
    );
    let mut help = format!("keep one {what}");
    if first.0 == here.0 {
        d = d.secondary(first.1, "first set here");
    } else if let Some(f) = files.get(first.0) {
        help = format!("{help}; the first is at {}", f.location(first.1));
    }
    cx.push(d.help(help));
    true
}

fn image(
    cx: &mut Cx<'_>,
    file_index: usize,
    node: &KdlNode,
    slot: &mut Option<(Site, ImageDraft)>,
    seen: &mut HashMap<&'static str, Site>,
    files: &[SourceFile],
) {
    let here = (file_index, node.name().span());
    if let Some((first, _)) = slot {
        let mut d = cx.file.diag(
            ErrorKind::DuplicateImage,
            here.1,
            "second `image` node",
            "a recipe has exactly one `image` node",
        );
        let mut help = "merge the two `image` nodes into one".to_owned();
        if first.0 == file_index {
            d = d.secondary(first.1, "first `image` node");
        } else if let Some(f) = files.get(first.0) {
            help = format!("{help}; the first is at {}", f.location(first.1));
        }
        cx.push(d.help(help));
        return;
    }
    let mut draft = ImageDraft::default();
    if let Some(entries) = cx.check(node, &IMAGE)
        && let Some(e) = entries.arg(0)
        && let Some(name) = cx.string(e, "the image name")
    {
        if let Err(p) = validate::image_name(&name) {
            cx.problem(ErrorKind::InvalidName, e.span(), "invalid image name", p);
        }
        draft.name = name;
    }
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        let site = (file_index, child.name().span());
        let mut dup = |cx: &mut Cx<'_>, key: &'static str, what: &str| {
            duplicate(
                cx,
                files,
                seen,
                key,
                site,
                ErrorKind::DuplicateSetting,
                what,
            )
        };
        match child.name().value() {
            "tag" => {
                let Some(entries) = cx.check(child, &TAG) else {
                    continue;
                };
                for e in &entries.args {
                    let Some(tag) = cx.string(e, "a tag") else {
                        continue;
                    };
                    match validate::tag(&tag) {
                        Err(p) => cx.problem(ErrorKind::InvalidTag, e.span(), "invalid tag", p),
                        Ok(()) if !draft.tags.contains(&tag) => draft.tags.push(tag),
                        Ok(()) => {}
                    }
                }
            }
            "platform" => {
                let Some(entries) = cx.check(child, &PLATFORM) else {
                    continue;
                };
                if dup(cx, "image.platform", "`platform`") {
                    continue;
                }
                for e in &entries.args {
                    let Some(text) = cx.string(e, "the platform") else {
                        continue;
                    };
                    match validate::platform(&text) {
                        Ok(p) => {
                            if let Some((_, first)) = draft.platforms.iter().find(|(q, _)| *q == p)
                            {
                                let d = cx
                                    .file
                                    .diag(
                                        ErrorKind::DuplicatePlatform,
                                        e.span(),
                                        "named again here",
                                        format!("platform `{p}` is named twice"),
                                    )
                                    .secondary(*first, "first named here")
                                    .help("name each platform once");
                                cx.push(d);
                            } else {
                                draft.platforms.push((p, e.span()));
                            }
                        }
                        Err(p) => cx.problem(
                            ErrorKind::InvalidPlatform,
                            e.span(),
                            "unsupported platform",
                            p,
                        ),
                    }
                }
            }
            "epoch" => {
                let Some(e) = single_arg(cx, child, &EPOCH) else {
                    continue;
                };
                if dup(cx, "image.epoch", "`epoch`") {
                    continue;
                }
                draft.epoch = epoch(cx, e);
            }
            "version" => {
                let Some(e) = single_arg(cx, child, &VERSION) else {
                    continue;
                };
                if !dup(cx, "image.version", "`version`") {
                    draft.version = cx.string(e, "the version");
                }
            }
            "source" => {
                let Some(e) = single_arg(cx, child, &SOURCE) else {
                    continue;
                };
                if !dup(cx, "image.source", "`source`") {
                    draft.source = cx.string(e, "the source");
                }
            }
            "revision" => {
                let Some(e) = single_arg(cx, child, &REVISION) else {
                    continue;
                };
                if !dup(cx, "image.revision", "`revision`") {
                    draft.revision = cx.string(e, "the revision");
                }
            }
            _ => cx.unknown_node(child, IMAGE_NODES, "`image`"),
        }
    }
    *slot = Some((here, draft));
}

/// The only argument of a one-argument node.
fn single_arg<'d>(cx: &mut Cx<'_>, node: &'d KdlNode, shape: &Shape) -> Option<&'d KdlEntry> {
    cx.check(node, shape)?.arg(0)
}

fn epoch(cx: &mut Cx<'_>, e: &KdlEntry) -> Option<i64> {
    let help = r#"write the epoch as a quoted RFC 3339 time, e.g. epoch "2026-11-01T00:00:00Z", or as whole seconds since 1970"#;
    let invalid = |cx: &mut Cx<'_>, message: String| {
        let d = cx
            .file
            .diag(ErrorKind::InvalidEpoch, e.span(), "invalid epoch", message)
            .help(help);
        cx.push(d);
    };
    match e.value() {
        KdlValue::String(s) => match crate::time::parse_rfc3339(s) {
            Ok(t) if t >= 0 => Some(t),
            Ok(_) => {
                invalid(cx, format!("epoch `{s}` is before 1970"));
                None
            }
            Err(msg) => {
                invalid(cx, msg);
                None
            }
        },
        KdlValue::Integer(i) => match i64::try_from(*i) {
            Ok(t) if t >= 0 => Some(t),
            _ => {
                invalid(cx, format!("epoch {i} is out of range (0 to {})", i64::MAX));
                None
            }
        },
        _ => {
            let raw = cx.file.value_text(e);
            let d = cx
                .file
                .diag(
                    ErrorKind::WrongType,
                    e.span(),
                    "expected a quoted time or an integer",
                    format!("epoch must be an RFC 3339 string or integer seconds, found `{raw}`"),
                )
                .help(if matches!(e.value(), KdlValue::Float(_)) {
                    format!(
                        "KDL reads unquoted {raw} as a number: quote a timestamp, \
                         e.g. \"2026-11-01T00:00:00Z\""
                    )
                } else {
                    r#"write a quoted timestamp, e.g. epoch "2026-11-01T00:00:00Z", or whole seconds"#
                        .to_owned()
                });
            cx.push(d);
            None
        }
    }
}

fn layer(cx: &mut Cx<'_>, file_index: usize, node: &KdlNode) -> Option<LayerDraft> {
    let entries = cx.check(node, &LAYER);
    let name_entry = entries.as_ref().and_then(|e| e.arg(0));
    let name = name_entry.and_then(|e| cx.string(e, "the layer name"));
    if let (Some(name), Some(e)) = (&name, name_entry)
        && let Err(p) = validate::layer_name(name)
    {
        cx.problem(ErrorKind::InvalidName, e.span(), "invalid layer name", p);
    }
    let after = entries
        .as_ref()
        .and_then(|e| e.prop("after"))
        .and_then(|e| {
            let target = cx.string(e, "`after`")?;
            Some((target, (file_index, e.span())))
        });

    let mut items = Vec::new();
    let mut dests: HashMap<String, SourceSpan> = HashMap::new();
    let mut requests = LayerRequests::default();
    let mut requested: HashMap<String, SourceSpan> = HashMap::new();
    let mut pypi_first: Option<Site> = None;
    let mut projects: HashMap<String, SourceSpan> = HashMap::new();
    let children = node.children().map(|c| c.nodes()).unwrap_or_default();
    for child in children {
        if child.name().value() == "debian" {
            requests
                .first
                .get_or_insert((file_index, child.name().span()));
            let (item, names) = debian::item(cx, child);
            for (name, span) in names {
                if !debian::duplicate_request(cx, &requested, &name, span) {
                    requested.insert(name.clone(), span);
                    requests.names.push((name, (file_index, span)));
                }
            }
            items.extend(item);
            continue;
        }
        if child.name().value() == "pypi" {
            pypi_first.get_or_insert((file_index, child.name().span()));
            let (item, names) = pypi::item(cx, child);
            for (name, span) in names {
                if !pypi::duplicate_request(cx, &projects, &name, span) {
                    projects.insert(name, span);
                }
            }
            items.extend(item);
            continue;
        }
        let Some((item, dest_span)) = item(cx, child) else {
            continue;
        };
        let dest = match &item {
            LayerItem::Copy { dest, .. }
            | LayerItem::Write { dest, .. }
            | LayerItem::Dir { dest, .. }
            | LayerItem::Symlink { dest, .. } => dest.clone(),
            LayerItem::Debian { .. } | LayerItem::Pypi { .. } => {
                items.push(item);
                continue;
            }
        };
        if let Some(first) = dests.get(&dest) {
            let d = cx
                .file
                .diag(
                    ErrorKind::DuplicateDestination,
                    dest_span,
                    "placed again here",
                    format!("`{dest}` is placed twice in this layer"),
                )
                .secondary(*first, "first placed here")
                .help(
                    "each path appears once per layer; remove one item or put it in another layer",
                );
            cx.push(d);
            continue;
        }
        dests.insert(dest, dest_span);
        items.push(item);
    }
    if children.is_empty() {
        let d = cx
            .file
            .diag(ErrorKind::EmptyLayer, node.name().span(), "empty layer", "layer has no items")
            .help("add `debian`, `pypi`, `write`, `copy`, `dir` or `symlink` items in a `{ … }` block, or remove the layer");
        cx.push(d);
    }
    Some(LayerDraft {
        site: (file_index, node.name().span()),
        name: name?,
        after,
        items,
        requests,
        pypi: pypi_first,
    })
}

/// One item of a layer, and the span of its destination.
fn item(cx: &mut Cx<'_>, node: &KdlNode) -> Option<(LayerItem, SourceSpan)> {
    match node.name().value() {
        "write" => {
            let entries = cx.check(node, &WRITE)?;
            let (dest_e, content_e) = (entries.arg(0)?, entries.arg(1)?);
            let dest = cx.image_path(dest_e, "the destination", false);
            let content = cx.string(content_e, "the content");
            let mode = match entries.prop("mode") {
                Some(e) => cx.mode(e, "mode"),
                None => Some(0o644),
            };
            let owner = cx.ownership(&entries);
            Some((
                LayerItem::Write {
                    dest: dest?,
                    content: content?,
                    mode: mode?,
                    owner,
                },
                dest_e.span(),
            ))
        }
        "dir" => {
            let entries = cx.check(node, &DIR)?;
            let dest_e = entries.arg(0)?;
            let dest = cx.image_path(dest_e, "the destination", false);
            let mode = match entries.prop("mode") {
                Some(e) => cx.mode(e, "mode"),
                None => Some(0o755),
            };
            let owner = cx.ownership(&entries);
            Some((
                LayerItem::Dir {
                    dest: dest?,
                    mode: mode?,
                    owner,
                },
                dest_e.span(),
            ))
        }
        "copy" => {
            let entries = cx.check(node, &COPY)?;
            let (src_e, dest_e) = (entries.arg(0)?, entries.arg(1)?);
            let src = cx.string(src_e, "the source path").and_then(|s| {
                if s.is_empty() {
                    let d = cx
                        .file
                        .diag(ErrorKind::InvalidPath, src_e.span(), "empty path", "copy source is empty")
                        .help(r#"name a file or directory relative to this recipe, e.g. copy "files/app" "/opt/app""#);
                    cx.push(d);
                    return None;
                }
                Some(resolve_src(cx.file.dir(), &s))
            });
            let dest = cx.image_path(dest_e, "the destination", false);
            let mode = entries.prop("mode").map(|e| cx.mode(e, "mode"));
            let dir_mode = entries.prop("dir-mode").map(|e| cx.mode(e, "dir-mode"));
            let owner = cx.ownership(&entries);
            let item = LayerItem::Copy {
                src: src?,
                dest: dest?,
                mode: mode.map_or(Some(None), |m| m.map(Some))?,
                dir_mode: dir_mode.map_or(Some(None), |m| m.map(Some))?,
                owner,
            };
            Some((item, dest_e.span()))
        }
        "symlink" => {
            let entries = cx.check(node, &SYMLINK)?;
            let (dest_e, target_e) = (entries.arg(0)?, entries.arg(1)?);
            let dest = cx.image_path(dest_e, "the link path", false);
            let target = cx.string(target_e, "the link target").and_then(|t| {
                if t.is_empty() || t.contains('\0') {
                    let d = cx
                        .file
                        .diag(
                            ErrorKind::EmptySymlinkTarget,
                            target_e.span(),
                            "empty target",
                            "symlink target is empty",
                        )
                        .help(r#"a symlink points somewhere: symlink "/usr/local/bin/app" "/opt/app/run.sh""#);
                    cx.push(d);
                    return None;
                }
                Some(t)
            });
            Some((
                LayerItem::Symlink {
                    dest: dest?,
                    target: target?,
                },
                dest_e.span(),
            ))
        }
        _ => {
            cx.unknown_node(node, LAYER_NODES, "`layer`");
            None
        }
    }
}

/// A `copy` source: absolute as written, else relative to the declaring file's
/// directory (absolute when the recipe was loaded by an absolute path).
fn resolve_src(dir: &Path, src: &str) -> std::path::PathBuf {
    normalize_lexically(&dir.join(src))
}

fn add_layer(
    cx: &mut Cx<'_>,
    layer: LayerDraft,
    layers: &mut Vec<LayerDraft>,
    files: &[SourceFile],
) {
    if let Some(first) = layers.iter().find(|l| l.name == layer.name) {
        let mut d = cx.file.diag(
            ErrorKind::DuplicateLayer,
            layer.site.1,
            "defined again here",
            format!("layer `{}` is defined twice", layer.name),
        );
        let mut help = "layer names are unique; rename one of the layers".to_owned();
        if first.site.0 == layer.site.0 {
            d = d.secondary(first.site.1, "first defined here");
        } else if let Some(f) = files.get(first.site.0) {
            help = format!("{help}; the first is at {}", f.location(first.site.1));
        }
        cx.push(d.help(help));
        return;
    }
    layers.push(layer);
}

/// Checks `after` references and cycles, then orders the layers. `None` when any
/// reference is broken.
fn order_layers(
    drafts: Vec<LayerDraft>,
    files: &[SourceFile],
    diags: &mut Vec<RecipeDiagnostic>,
) -> Option<Vec<LayerSpec>> {
    let names: Vec<&str> = drafts.iter().map(|l| l.name.as_str()).collect();
    let mut after = Vec::with_capacity(drafts.len());
    let mut broken = false;
    for layer in &drafts {
        let Some((target, site)) = &layer.after else {
            after.push(None);
            continue;
        };
        if let Some(i) = names.iter().position(|n| n == target) {
            after.push(Some(i));
            continue;
        }
        broken = true;
        after.push(None);
        let Some(file) = files.get(site.0) else {
            continue;
        };
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != layer.name).collect();
        let help = match suggest::closest(target, &others) {
            Some(c) => format!("did you mean `{c}`?"),
            None if others.is_empty() => "this is the only layer; remove `after`".to_owned(),
            None => format!("layers in this recipe: {}", suggest::list(&others)),
        };
        diags.push(
            file.diag(
                ErrorKind::UnknownLayer,
                site.1,
                "no layer has this name",
                format!(
                    "layer `{}` is after `{target}`, which is not defined",
                    layer.name
                ),
            )
            .help(help),
        );
    }
    if broken {
        return None;
    }
    match order::order(&after) {
        Ok(order) => {
            let mut slots: Vec<Option<LayerDraft>> = drafts.into_iter().map(Some).collect();
            let layers = order
                .into_iter()
                .filter_map(|i| slots.get_mut(i).and_then(Option::take))
                .map(|l| LayerSpec {
                    name: l.name,
                    after: l.after.map(|(a, _)| a),
                    items: l.items,
                })
                .collect();
            Some(layers)
        }
        Err(cycles) => {
            for cycle in cycles {
                report_cycle(&cycle, &drafts, files, diags);
            }
            None
        }
    }
}

fn report_cycle(
    cycle: &[usize],
    drafts: &[LayerDraft],
    files: &[SourceFile],
    diags: &mut Vec<RecipeDiagnostic>,
) {
    let members: Vec<&LayerDraft> = cycle.iter().filter_map(|&i| drafts.get(i)).collect();
    let Some(first) = members.first() else { return };
    let Some((first_target, first_site)) = &first.after else {
        return;
    };
    let Some(file) = files.get(first_site.0) else {
        return;
    };
    let mut chain: Vec<&str> = members.iter().map(|l| l.name.as_str()).collect();
    chain.push(first.name.as_str());
    let mut d = file.diag(
        ErrorKind::LayerCycle,
        first_site.1,
        format!("`{}` is after `{first_target}`", first.name),
        format!("layers form an `after` cycle: {}", chain.join(" → ")),
    );
    for member in members.iter().skip(1) {
        if let Some((target, site)) = &member.after
            && site.0 == first_site.0
        {
            d = d.secondary(site.1, format!("`{}` is after `{target}`", member.name));
        }
    }
    diags.push(d.help("remove one `after` so that the layers can be stacked"));
}

fn config(
    cx: &mut Cx<'_>,
    file_index: usize,
    node: &KdlNode,
    config: &mut RuntimeConfig,
    seen: &mut HashMap<&'static str, Site>,
    files: &[SourceFile],
) {
    let _ = cx.check(node, &CONFIG);
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        let site = (file_index, child.name().span());
        let mut dup = |cx: &mut Cx<'_>, key: &'static str, what: &str| {
            duplicate(
                cx,
                files,
                seen,
                key,
                site,
                ErrorKind::DuplicateSetting,
                what,
            )
        };
        match child.name().value() {
            "env" => {
                let Some((key, value)) = pair(cx, child, &ENV) else {
                    continue;
                };
                if let Err(p) = validate::env_key(&key) {
                    let span = child.entries().first().map_or(site.1, |e| e.span());
                    cx.problem(ErrorKind::InvalidValue, span, "invalid variable name", p);
                    continue;
                }
                match config.env.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = value,
                    None => config.env.push((key, value)),
                }
            }
            "label" | "annotation" => {
                let (shape, map) = if child.name().value() == "label" {
                    (&LABEL, &mut config.labels)
                } else {
                    (&ANNOTATION, &mut config.annotations)
                };
                let Some((key, value)) = pair(cx, child, shape) else {
                    continue;
                };
                if key.is_empty() {
                    let span = child.entries().first().map_or(site.1, |e| e.span());
                    let d = cx
                        .file
                        .diag(
                            ErrorKind::InvalidValue,
                            span,
                            "empty key",
                            format!("{} key is empty", shape.name),
                        )
                        .help(format!("usage: {}", shape.usage));
                    cx.push(d);
                    continue;
                }
                map.insert(key, value);
            }
            "entrypoint" | "cmd" => {
                let (shape, key) = if child.name().value() == "cmd" {
                    (&CMD, "config.cmd")
                } else {
                    (&ENTRYPOINT, "config.entrypoint")
                };
                let Some(entries) = cx.check(child, shape) else {
                    continue;
                };
                if dup(cx, key, &format!("`{}`", shape.name)) {
                    continue;
                }
                let args: Vec<Option<String>> = entries
                    .args
                    .iter()
                    .map(|e| cx.string(e, "an argument"))
                    .collect();
                let Some(args) = args.into_iter().collect::<Option<Vec<String>>>() else {
                    continue;
                };
                if shape.name == "cmd" {
                    config.cmd = Some(args);
                } else {
                    config.entrypoint = Some(args);
                }
            }
            "workdir" => {
                let Some(e) = single_arg(cx, child, &WORKDIR) else {
                    continue;
                };
                if !dup(cx, "config.workdir", "`workdir`") {
                    config.workdir = cx.image_path(e, "the working directory", true);
                }
            }
            "user" => {
                let Some(e) = single_arg(cx, child, &USER) else {
                    continue;
                };
                if dup(cx, "config.user", "`user`") {
                    continue;
                }
                match cx.string(e, "the user") {
                    Some(u) if u.is_empty() || u.contains(char::is_whitespace) => {
                        let d = cx
                            .file
                            .diag(ErrorKind::InvalidValue, e.span(), "invalid user", format!("`{u}` is not a user"))
                            .help(r#"write a user name or id, optionally with a group: user "1000:1000""#);
                        cx.push(d);
                    }
                    u => config.user = u,
                }
            }
            "expose" => {
                let Some(entries) = cx.check(child, &EXPOSE) else {
                    continue;
                };
                for e in &entries.args {
                    let text = match e.value() {
                        KdlValue::Integer(i) => i.to_string(),
                        _ => {
                            let Some(s) = cx.string(e, "a port") else {
                                continue;
                            };
                            s
                        }
                    };
                    match validate::port(&text) {
                        Ok(p) if !config.exposed_ports.contains(&p) => config.exposed_ports.push(p),
                        Ok(_) => {}
                        Err(p) => cx.problem(ErrorKind::InvalidPort, e.span(), "invalid port", p),
                    }
                }
            }
            "volume" => {
                let Some(entries) = cx.check(child, &VOLUME) else {
                    continue;
                };
                for e in &entries.args {
                    if let Some(v) = cx.image_path(e, "a volume", false)
                        && !config.volumes.contains(&v)
                    {
                        config.volumes.push(v);
                    }
                }
            }
            "stop-signal" => {
                let Some(e) = single_arg(cx, child, &STOP_SIGNAL) else {
                    continue;
                };
                if dup(cx, "config.stop-signal", "`stop-signal`") {
                    continue;
                }
                let Some(s) = cx.string(e, "the stop signal") else {
                    continue;
                };
                match validate::signal(&s) {
                    Ok(()) => config.stop_signal = Some(s),
                    Err(p) => cx.problem(ErrorKind::InvalidValue, e.span(), "invalid signal", p),
                }
            }
            _ => cx.unknown_node(child, CONFIG_NODES, "`config`"),
        }
    }
}

/// The two string arguments of `env`, `label` and `annotation`.
fn pair(cx: &mut Cx<'_>, node: &KdlNode, shape: &Shape) -> Option<(String, String)> {
    let entries = cx.check(node, shape)?;
    let (k, v) = (entries.arg(0)?, entries.arg(1)?);
    let key = cx.string(k, "the key");
    let value = cx.string(v, "the value");
    Some((key?, value?))
}
