//! The `check { … }` block: what `compose check` (and the check that ends `compose build`)
//! accepts for this image.
//!
//! ```kdl
//! check {
//!     host-provided "libfoo-driver.so.1"          // added to the NVIDIA driver's libraries
//!     allow "elf-closure" "/opt/vendor/*.so"        // these findings are shown, not failed
//!     skip "cuda"                                   // not run at all
//! }
//! ```
//! Check names are those of [`crate::check::CHECKS`]; a misspelt one is an error with a
//! suggestion.

use std::collections::HashMap;

use kdl::{KdlEntry, KdlNode};

use super::error::ErrorKind;
use super::model::CheckSpec;
use super::parse::{Site, duplicate};
use super::shape::{Cx, Shape, shape};
use super::source::SourceFile;
use super::suggest;

/// Nodes of the block.
const BLOCK_NODES: &[&str] = &["host-provided", "allow", "skip"];

/// A leaf node of the block: no properties, no children.
const fn leaf(
    name: &'static str,
    args: &'static [&'static str],
    variadic: bool,
    usage: &'static str,
) -> Shape {
    shape(name, args, variadic, &[], false, usage)
}

const BLOCK: Shape = Shape {
    name: "check",
    args: &[],
    variadic: false,
    props: &[],
    children: true,
    usage: r#"check { host-provided "libfoo.so.1"; allow "elf-closure" "/opt/x/*.so"; skip "cuda"; }"#,
};
const HOST: Shape = leaf(
    "host-provided",
    &["LIBRARY"],
    true,
    r#"host-provided "libcuda.so.1" "libnvidia-*.so.*""#,
);
const ALLOW: Shape = leaf(
    "allow",
    &["CHECK", "PATTERN"],
    true,
    r#"allow "elf-closure" "/usr/lib/foo/*.so""#,
);
const SKIP: Shape = leaf("skip", &["CHECK"], true, r#"skip "cuda" "wheel-tag""#);

/// A check name, reported with a suggestion when it is not one.
fn check_name(cx: &mut Cx<'_>, e: &KdlEntry) -> Option<String> {
    let name = cx.string(e, "a check name")?;
    if crate::check::CHECKS.contains(&name.as_str()) {
        return Some(name);
    }
    let d = cx
        .file
        .diag(
            ErrorKind::UnknownCheck,
            e.span(),
            "no such check",
            format!("unknown check `{name}`"),
        )
        .help(suggest::help(&name, crate::check::CHECKS, "`check`"));
    cx.push(d);
    None
}

/// Reads a top-level `check` block into `slot`.
pub(super) fn block(
    cx: &mut Cx<'_>,
    file_index: usize,
    node: &KdlNode,
    slot: &mut CheckSpec,
    seen: &mut HashMap<&'static str, Site>,
    files: &[SourceFile],
) {
    let here = (file_index, node.name().span());
    if duplicate(
        cx,
        files,
        seen,
        "check",
        here,
        ErrorKind::DuplicateSetting,
        "the `check` block",
    ) {
        return;
    }
    if cx.check(node, &BLOCK).is_none() {
        return;
    }
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        match child.name().value() {
            "host-provided" => {
                let Some(entries) = cx.check(child, &HOST) else {
                    continue;
                };
                for e in &entries.args {
                    if let Some(lib) = cx.string(e, "a library name")
                        && !slot.host_provided.contains(&lib)
                    {
                        slot.host_provided.push(lib);
                    }
                }
            }
            "allow" => {
                let Some(entries) = cx.check(child, &ALLOW) else {
                    continue;
                };
                let Some(check) = entries.arg(0).and_then(|e| check_name(cx, e)) else {
                    continue;
                };
                for e in entries.args.iter().skip(1) {
                    if let Some(p) = cx.string(e, "a path pattern") {
                        slot.allow.push((check.clone(), p));
                    }
                }
            }
            "skip" => {
                let Some(entries) = cx.check(child, &SKIP) else {
                    continue;
                };
                for e in &entries.args {
                    if let Some(c) = check_name(cx, e)
                        && !slot.skip.contains(&c)
                    {
                        slot.skip.push(c);
                    }
                }
            }
            _ => cx.unknown_node(child, BLOCK_NODES, "`check`"),
        }
    }
}
