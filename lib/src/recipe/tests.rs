//! Tests of the whole recipe pipeline: text in, [`ImageSpec`] or diagnostics out.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use miette::Diagnostic;

use super::*;

/// Recipe files in memory, keyed by path.
struct Mem(HashMap<PathBuf, String>);

impl SourceLoader for Mem {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.0.get(path).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )
        })
    }
}

fn mem(files: &[(&str, &str)]) -> Mem {
    Mem(files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect())
}

const MAIN: &str = "/r/main.kdl";

fn load_files(files: &[(&str, &str)]) -> Result<ImageSpec, RecipeError> {
    load_with(Path::new(MAIN), &mem(files))
}

fn ok(text: &str) -> ImageSpec {
    match load_files(&[(MAIN, text)]) {
        Ok(spec) => spec,
        Err(e) => panic!("{}", render(&e)),
    }
}

fn render(e: &RecipeError) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    match handler.render_report(&mut out, e) {
        Ok(()) => out,
        Err(_) => format!("{e:?}"),
    }
}

/// One diagnostic: kind, file, the text under the primary span, message, help.
#[derive(Debug)]
struct Found {
    kind: ErrorKind,
    file: String,
    at: String,
    message: String,
    help: String,
}

fn errors_in(files: &[(&str, &str)]) -> Vec<Found> {
    let texts: HashMap<String, String> = files
        .iter()
        .map(|(p, t)| {
            let shown = p.strip_prefix("/r/").map_or(*p, |s| s);
            (shown.to_owned(), (*t).to_owned())
        })
        .collect();
    let loader = mem(files);
    // Show files relative to /r so that `file` is short.
    let root = Path::new(MAIN);
    match load_with(root, &loader) {
        Ok(spec) => panic!("expected errors, got {spec:#?}"),
        Err(e) => e
            .diagnostics()
            .iter()
            .map(|d| {
                let file = d.file().strip_prefix("/r/").unwrap_or(d.file()).to_owned();
                let span = d.span();
                let at = texts
                    .get(&file)
                    .and_then(|t| t.get(span.offset()..span.offset() + span.len()))
                    .unwrap_or("")
                    .to_owned();
                Found {
                    kind: d.kind(),
                    file,
                    at,
                    message: d.to_string(),
                    help: d.help_text().to_owned(),
                }
            })
            .collect(),
    }
}

fn errors(text: &str) -> Vec<Found> {
    errors_in(&[(MAIN, text)])
}

/// The single error of `text`, which must be of `kind`.
fn one(text: &str, kind: ErrorKind) -> Found {
    let mut found = errors(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found.remove(0);
    assert_eq!(f.kind, kind, "{f:#?}");
    assert!(!f.help.is_empty(), "{f:#?}");
    f
}

// ---------------------------------------------------------------- happy paths

#[test]
fn minimal_recipe_gets_defaults() {
    let spec = ok(r#"image "hello""#);
    assert_eq!(spec.name, "hello");
    assert_eq!(spec.tags, ["latest"]);
    assert_eq!(spec.platform, Platform::linux_amd64());
    assert_eq!(spec.epoch, None);
    assert!(spec.layers.is_empty());
    assert_eq!(spec.config, RuntimeConfig::default());
}

#[test]
fn full_recipe() {
    let spec = ok(r#"
        image "hello" {
            tag "1.0" "latest"
            tag "stable" "1.0"
            platform "linux/arm64/v8"
            epoch "2026-11-01T00:00:00Z"
            version "1.0.0"
            source "https://example.org/hello"
            revision "abc123"
        }
        layer "base" {
            dir "/data" mode="0775" uid=1000 gid=1000
            write "/etc/motd" "hello\n" mode="0600"
            write "/etc/issue" "x"
            copy "hello" "/opt/hello" mode="0755" dir-mode="0750" uid=0 gid=10
            copy "/abs/src" "/opt/abs"
            symlink "/usr/local/bin/hello" "/opt/hello/hello.sh"
        }
        layer "app" after="base" { dir "/app"; }
        config {
            env "A" "1"
            env "B" "2"
            env "A" "3"
            entrypoint "/bin/sh" "-c"
            cmd "python3"
            workdir "/workspace"
            user "1000:1000"
            label "k" "v"
            annotation "a" "b"
            expose "8080/tcp" "53/udp"
            expose 9000
            expose "8080"
            volume "/data"
            stop-signal "SIGTERM"
        }
    "#);
    assert_eq!(spec.tags, ["1.0", "latest", "stable"]);
    assert_eq!(spec.platform.to_string(), "linux/arm64/v8");
    assert_eq!(spec.epoch, Some(1_793_491_200));
    assert_eq!(spec.version.as_deref(), Some("1.0.0"));
    assert_eq!(spec.source.as_deref(), Some("https://example.org/hello"));
    assert_eq!(spec.revision.as_deref(), Some("abc123"));
    let names: Vec<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["base", "app"]);
    assert_eq!(spec.layers[1].after.as_deref(), Some("base"));
    let owner = |uid, gid| Ownership { uid, gid };
    assert_eq!(
        spec.layers[0].items,
        [
            LayerItem::Dir {
                dest: "/data".into(),
                mode: 0o775,
                owner: owner(1000, 1000)
            },
            LayerItem::Write {
                dest: "/etc/motd".into(),
                content: "hello\n".into(),
                mode: 0o600,
                owner: owner(0, 0)
            },
            LayerItem::Write {
                dest: "/etc/issue".into(),
                content: "x".into(),
                mode: 0o644,
                owner: owner(0, 0)
            },
            LayerItem::Copy {
                src: "/r/hello".into(),
                dest: "/opt/hello".into(),
                mode: Some(0o755),
                dir_mode: Some(0o750),
                owner: owner(0, 10)
            },
            LayerItem::Copy {
                src: "/abs/src".into(),
                dest: "/opt/abs".into(),
                mode: None,
                dir_mode: None,
                owner: owner(0, 0)
            },
            LayerItem::Symlink {
                dest: "/usr/local/bin/hello".into(),
                target: "/opt/hello/hello.sh".into()
            },
        ]
    );
    let c = &spec.config;
    assert_eq!(c.env, [("A".into(), "3".into()), ("B".into(), "2".into())]);
    assert_eq!(c.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
    assert_eq!(c.cmd, Some(vec!["python3".into()]));
    assert_eq!(c.workdir.as_deref(), Some("/workspace"));
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert_eq!(c.labels, BTreeMap::from([("k".into(), "v".into())]));
    assert_eq!(c.annotations, BTreeMap::from([("a".into(), "b".into())]));
    assert_eq!(c.exposed_ports, ["8080/tcp", "53/udp", "9000/tcp"]);
    assert_eq!(c.volumes, ["/data"]);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
}

#[test]
fn integer_epoch_and_offset_epoch() {
    assert_eq!(
        ok(r#"image "x" { epoch 1700000000; }"#).epoch,
        Some(1_700_000_000)
    );
    assert_eq!(
        ok(r#"image "x" { epoch "1970-01-01T01:00:00+01:00"; }"#).epoch,
        Some(0)
    );
}

#[test]
fn config_blocks_merge() {
    let spec = ok(r#"
        image "x"
        config { env "A" "1"; label "l" "1"; }
        config { env "A" "2"; cmd "sh"; label "l" "2"; }
    "#);
    assert_eq!(spec.config.env, [("A".into(), "2".into())]);
    assert_eq!(spec.config.cmd, Some(vec!["sh".into()]));
    assert_eq!(spec.config.labels.get("l").map(String::as_str), Some("2"));
}

#[test]
fn workdir_may_be_root() {
    assert_eq!(
        ok(r#"image "x"; config { workdir "/"; }"#)
            .config
            .workdir
            .as_deref(),
        Some("/")
    );
}

// ---------------------------------------------------------------- layer order

fn layer_order(text: &str) -> Vec<String> {
    ok(text).layers.into_iter().map(|l| l.name).collect()
}

#[test]
fn layers_follow_after_then_declaration_order() {
    let order = layer_order(
        r#"
        image "x"
        layer "app" after="python" { dir "/app"; }
        layer "system" { dir "/sys2"; }
        layer "python" after="system" { dir "/py"; }
        layer "extra" { dir "/extra"; }
    "#,
    );
    assert_eq!(order, ["system", "python", "app", "extra"]);

    let order = layer_order(
        r#"
        image "x"
        layer "a" { dir "/a"; }
        layer "b" after="a" { dir "/b"; }
        layer "c" { dir "/c"; }
        layer "d" after="a" { dir "/d"; }
    "#,
    );
    assert_eq!(order, ["a", "b", "c", "d"]);
}

// ---------------------------------------------------------------- includes

#[test]
fn includes_are_spliced_in_place_and_nest() {
    let spec = load_files(&[
        (
            MAIN,
            r#"
            layer "a" { dir "/a"; }
            include "inc/b.kdl"
            layer "d" { dir "/d"; }
            image "x"
        "#,
        ),
        (
            "/r/inc/b.kdl",
            "layer \"b\" { copy \"files\" \"/b\"; }\ninclude \"c.kdl\"\nconfig { env \"FROM\" \"b\"; }",
        ),
        ("/r/inc/c.kdl", r#"layer "c" { copy "../top" "/c"; }"#),
    ]);
    let spec = match spec {
        Ok(s) => s,
        Err(e) => panic!("{}", render(&e)),
    };
    let names: Vec<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    let srcs: Vec<PathBuf> = spec
        .layers
        .iter()
        .flat_map(|l| &l.items)
        .filter_map(|i| match i {
            LayerItem::Copy { src, .. } => Some(src.clone()),
            _ => None,
        })
        .collect();
    // Relative copy sources resolve against the file that declares them.
    assert_eq!(
        srcs,
        [PathBuf::from("/r/inc/files"), PathBuf::from("/r/top")]
    );
    assert_eq!(spec.config.env, [("FROM".into(), "b".into())]);
}

#[test]
fn include_loop_shows_the_chain() {
    let found = errors_in(&[
        (MAIN, r#"include "inc/a.kdl"; image "x""#),
        ("/r/inc/a.kdl", r#"include "b.kdl""#),
        ("/r/inc/b.kdl", r#"include "../main.kdl""#),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::IncludeLoop);
    assert_eq!(found[0].file, "inc/b.kdl");
    assert_eq!(found[0].at, r#""../main.kdl""#);
    assert_eq!(
        found[0].message,
        "include loop: /r/main.kdl → /r/inc/a.kdl → /r/inc/b.kdl → /r/main.kdl"
    );
}

#[test]
fn self_include_is_a_loop() {
    let f = one(r#"include "main.kdl"; image "x""#, ErrorKind::IncludeLoop);
    assert_eq!(f.message, "include loop: /r/main.kdl → /r/main.kdl");
}

#[test]
fn missing_include_names_the_path() {
    let f = one(
        r#"include "common/nope.kdl"; image "x""#,
        ErrorKind::IncludeRead,
    );
    assert_eq!(f.message, "cannot read included file `/r/common/nope.kdl`");
    assert_eq!(f.at, r#""common/nope.kdl""#);
}

/// Every file includes a file one directory deeper: never a loop, but unbounded.
struct Endless;

impl SourceLoader for Endless {
    fn read(&self, _path: &Path) -> io::Result<String> {
        Ok(r#"include "d/deeper.kdl"; image "x""#.to_owned())
    }
}

#[test]
fn include_depth_is_bounded() {
    let err = load_with(Path::new("/r/main.kdl"), &Endless).err();
    let kinds: Vec<ErrorKind> = err
        .iter()
        .flat_map(|e| e.diagnostics())
        .map(|d| d.kind())
        .collect();
    assert_eq!(kinds, [ErrorKind::IncludeDepth]);
}

#[test]
fn errors_can_become_miette_reports() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<RecipeError>();
    let err = load_files(&[(MAIN, "image")]).err();
    let report = err.map(miette::Report::new);
    assert!(report.is_some_and(|r| r.to_string() == "`image` is missing NAME"));
}

#[test]
fn every_kind_has_a_distinct_code() {
    let codes: std::collections::BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
    assert!(codes.iter().all(|c| c.starts_with("recipe::")));
}

#[test]
fn include_node_shape_is_checked() {
    let found = errors(r#"include; include 1; include "a" "b"; include ""; image "x""#);
    let kinds: Vec<ErrorKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::MissingArgument,
            ErrorKind::WrongType,
            ErrorKind::TooManyArguments,
            // the first argument of `include "a" "b"` is still followed
            ErrorKind::IncludeRead,
            ErrorKind::IncludeRead,
        ]
    );
}

#[test]
fn errors_point_into_the_included_file() {
    let found = errors_in(&[
        (MAIN, r#"include "common/base.kdl"; image "x""#),
        (
            "/r/common/base.kdl",
            "layer \"base\" {\n    wirte \"/etc/motd\" \"hi\"\n}",
        ),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::UnknownNode);
    assert_eq!(found[0].file, "common/base.kdl");
    assert_eq!(found[0].at, "wirte");
    assert_eq!(found[0].help, "did you mean `write`?");
}

#[test]
fn syntax_errors_in_includes_keep_their_file() {
    let found = errors_in(&[
        (MAIN, r#"include "bad.kdl"; image "x""#),
        ("/r/bad.kdl", "layer \"x\" { dir 1.2.3 }"),
    ]);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|f| f.kind == ErrorKind::Syntax && f.file == "bad.kdl"),
        "{found:#?}"
    );
}

#[test]
fn include_in_a_block_is_unknown_with_a_hint() {
    let f = one(
        r#"image "x"; layer "l" { include "x.kdl"; dir "/a"; }"#,
        ErrorKind::UnknownNode,
    );
    assert!(f.help.contains("top level"), "{f:#?}");
}

#[test]
fn duplicates_across_files_name_the_first_location() {
    let found = errors_in(&[
        (
            MAIN,
            "include \"base.kdl\"\nimage \"x\"\nlayer \"base\" { dir \"/b\"; }",
        ),
        ("/r/base.kdl", "\n\nlayer \"base\" { dir \"/a\"; }"),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::DuplicateLayer);
    assert!(found[0].help.contains("base.kdl:3:1"), "{found:#?}");
}

#[test]
fn display_names_follow_the_given_path() {
    let loader = mem(&[
        ("recipes/x.kdl", r#"include "common/base.kdl"; image "x""#),
        ("recipes/common/base.kdl", r#"layer "l" { dri "/a"; }"#),
    ]);
    let err = load_with(Path::new("recipes/x.kdl"), &loader).err();
    let files: Vec<&str> = err
        .iter()
        .flat_map(|e| e.diagnostics())
        .map(RecipeDiagnostic::file)
        .collect();
    assert_eq!(files, ["recipes/common/base.kdl"]);
}

// ---------------------------------------------------------------- errors, one per kind

#[test]
fn syntax_error_is_forwarded() {
    let found = errors(r#"image "x" { epoch 3.10.1 }"#);
    assert!(!found.is_empty());
    assert_eq!(found[0].kind, ErrorKind::Syntax);
    assert_eq!(found[0].file, "main.kdl");
}

#[test]
fn syntax_help_for_unquoted_versions_and_v1_booleans() {
    let help = |text: &str| {
        errors(text)
            .first()
            .map(|f| f.help.clone())
            .unwrap_or_default()
    };
    assert!(help("image \"x\" { version 2.21.0; }").ends_with("\"2.21.0\""));
    assert!(help("image \"x\" { version 2.3.1+cu121; }").ends_with("\"2.3.1+cu121\""));
    assert!(help("image \"x\" { version libc6=2.36-9; }").ends_with("\"2.36-9\""));
    assert!(help("image \"x\" { version true; }").contains("#true"));
    assert!(help("image \"x\" { version 1.\n}").ends_with("\"1.\""));
    // Not a value problem: kdl's own help.
    assert!(help("image \"x\n").contains("multi-line"));
}

#[test]
fn unknown_nodes_suggest() {
    let f = one(r#"imgae "x""#, ErrorKind::UnknownNode);
    assert_eq!(f.at, "imgae");
    // No image node either, but an unknown node must not hide behind that: both found.
    let found =
        errors(r#"image "x" { tga "1"; }; layer "l" { wirte "/a" "b"; }; config { wrkdir "/"; }"#);
    let helps: Vec<&str> = found.iter().map(|f| f.help.as_str()).collect();
    assert_eq!(
        helps,
        [
            "did you mean `tag`?",
            "did you mean `write`?",
            "did you mean `workdir`?"
        ]
    );
    let f = one(r#"image "x"; frobnicate"#, ErrorKind::UnknownNode);
    assert!(
        f.help
            .contains("`image`, `debian`, `pypi`, `layer`, `config` and `check`"),
        "{f:#?}"
    );
}

#[test]
fn missing_image() {
    let f = one(r#"layer "l" { dir "/a"; }"#, ErrorKind::MissingImage);
    assert_eq!(f.at, "");
}

#[test]
fn duplicate_image() {
    let f = one("image \"x\"\nimage \"y\"", ErrorKind::DuplicateImage);
    assert_eq!(f.at, "image");
}

#[test]
fn unknown_property_suggests() {
    let f = one(
        r#"image "x"; layer "l" { dir "/a" mdoe="0755"; }"#,
        ErrorKind::UnknownProperty,
    );
    assert_eq!(f.at, r#"mdoe="0755""#);
    assert_eq!(f.help, "did you mean `mode`?");
    let f = one(
        r#"image "x"; layer "k" { dir "/k"; }; layer "l" after="k" aftr="y" { dir "/a"; }"#,
        ErrorKind::UnknownProperty,
    );
    assert_eq!(f.help, "did you mean `after`?");
    // An unknown property does not stop the `after` check.
    let found = errors(r#"image "x"; layer "l" after="nope" { symlink "/a" "b" mode="0755"; }"#);
    let kinds: Vec<ErrorKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [ErrorKind::UnknownProperty, ErrorKind::UnknownLayer]);
}

#[test]
fn duplicate_property() {
    let f = one(
        r#"image "x"; layer "l" { dir "/a" mode="0755" mode="0700"; }"#,
        ErrorKind::DuplicateProperty,
    );
    assert_eq!(f.at, r#"mode="0700""#);
}

#[test]
fn missing_argument() {
    let f = one(
        r#"image "x"; layer "l" { write "/etc/motd"; }"#,
        ErrorKind::MissingArgument,
    );
    assert_eq!(f.message, "`write` is missing CONTENT");
    assert_eq!(f.at, r#""/etc/motd""#);
    let f = one(r#"image"#, ErrorKind::MissingArgument);
    assert_eq!(f.at, "image");
}

#[test]
fn too_many_arguments() {
    let f = one(
        r#"image "x"; config { workdir "/a" "/b" "/c"; }"#,
        ErrorKind::TooManyArguments,
    );
    assert_eq!(f.at, r#""/b" "/c""#);
    assert_eq!(f.message, "`workdir` takes 1 argument (PATH), found 3");
}

#[test]
fn wrong_types() {
    let f = one(
        r#"image "x"; layer "l" { dir "/a" mode=755; }"#,
        ErrorKind::WrongType,
    );
    assert_eq!(
        f.help,
        r#"write modes as quoted octal strings, e.g. mode="0755""#
    );
    let f = one(
        r#"image "x"; layer "l" { dir "/a" mode=0.755; }"#,
        ErrorKind::WrongType,
    );
    assert_eq!(
        f.help,
        r#"write modes as quoted octal strings, e.g. mode="0755""#
    );
    let f = one(r#"image "x" { epoch 3.10; }"#, ErrorKind::WrongType);
    assert!(f.help.contains("quote"), "{f:#?}");
    assert!(f.message.contains("3.10"), "{f:#?}");
    let f = one(r#"image "x" { version 3.10; }"#, ErrorKind::WrongType);
    assert!(f.help.contains(r#""3.10""#), "{f:#?}");
    let f = one(
        r#"image "x"; layer "l" { dir "/a" uid="0"; }"#,
        ErrorKind::WrongType,
    );
    assert!(f.help.contains("uid=1000"), "{f:#?}");
    let f = one(r#"image #true"#, ErrorKind::WrongType);
    assert!(f.help.contains(r#""true""#), "{f:#?}");
}

#[test]
fn unexpected_children_and_annotations() {
    let f = one(
        r#"image "x" { tag "1" { latest; }; }"#,
        ErrorKind::UnexpectedChildren,
    );
    assert_eq!(f.at, "{ latest; }");
    let f = one(r#"(t)image "x""#, ErrorKind::TypeAnnotation);
    assert_eq!(f.at, "t");
    one(r#"image (t)"x""#, ErrorKind::TypeAnnotation);
}

#[test]
fn several_platforms() {
    let spec = ok(r#"image "x" { platform "linux/arm64" "linux/amd64" "linux/arm/v7"; }"#);
    let names: Vec<String> = spec.platforms().iter().map(ToString::to_string).collect();
    assert_eq!(names, ["linux/arm64", "linux/amd64", "linux/arm/v7"]);
    assert!(spec.is_multi_platform());
    let one_platform = spec.for_platform(&Platform::linux_amd64());
    assert_eq!(one_platform.platforms(), [Platform::linux_amd64()]);
    assert!(!ok(r#"image "x" { platform "linux/arm64"; }"#).is_multi_platform());

    let f = one(
        r#"image "x" { platform "linux/amd64" "linux/arm64" "linux/amd64"; }"#,
        ErrorKind::DuplicatePlatform,
    );
    assert_eq!(f.at, r#""linux/amd64""#);
    let e = load_files(&[(
        MAIN,
        "image \"x\" {\n    platform \"linux/amd64\" \"linux/arm64\" \"linux/arm64\"\n}\n",
    )])
    .err()
    .map(|e| render(&e))
    .unwrap_or_default();
    let expected = r#"recipe::duplicate_platform

  × platform `linux/arm64` is named twice
   ╭─[/r/main.kdl:2:42]
 1 │ image "x" {
 2 │     platform "linux/amd64" "linux/arm64" "linux/arm64"
   ·                            ──────┬────── ──────┬──────
   ·                                  │             ╰── named again here
   ·                                  ╰── first named here
 3 │ }
   ╰────
  help: name each platform once
"#;
    assert_eq!(e, expected, "{e}");
}

#[test]
fn duplicate_settings() {
    let f = one(
        "image \"x\"\nconfig {\n  workdir \"/a\"\n  workdir \"/b\"\n}",
        ErrorKind::DuplicateSetting,
    );
    assert_eq!(f.at, "workdir");
    let found = errors(
        r#"image "x" { platform "linux/amd64"; platform "linux/arm64"; epoch 1; epoch 2; }"#,
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    // Across config blocks too.
    one(
        r#"image "x"; config { cmd "a"; }; config { cmd "b"; }"#,
        ErrorKind::DuplicateSetting,
    );
}

#[test]
fn duplicate_layer() {
    let f = one(
        r#"image "x"; layer "l" { dir "/a"; }; layer "l" { dir "/b"; }"#,
        ErrorKind::DuplicateLayer,
    );
    assert_eq!(f.at, "layer");
}

#[test]
fn unknown_layer_suggests() {
    let f = one(
        r#"image "x"; layer "python" { dir "/a"; }; layer "app" after="pyhton" { dir "/b"; }"#,
        ErrorKind::UnknownLayer,
    );
    assert_eq!(f.at, r#"after="pyhton""#);
    assert_eq!(f.help, "did you mean `python`?");
}

#[test]
fn layer_cycles_are_named() {
    let f = one(
        r#"image "x"; layer "a" after="b" { dir "/a"; }; layer "b" after="a" { dir "/b"; }; layer "c" { dir "/c"; }"#,
        ErrorKind::LayerCycle,
    );
    assert_eq!(f.message, "layers form an `after` cycle: a → b → a");
    let f = one(
        r#"image "x"; layer "a" after="a" { dir "/a"; }"#,
        ErrorKind::LayerCycle,
    );
    assert_eq!(f.message, "layers form an `after` cycle: a → a");
}

#[test]
fn empty_layer() {
    one(r#"image "x"; layer "l""#, ErrorKind::EmptyLayer);
    one(r#"image "x"; layer "l" {}"#, ErrorKind::EmptyLayer);
}

#[test]
fn duplicate_destination() {
    let f = one(
        r#"image "x"; layer "l" { dir "/a"; write "/a" "x"; }"#,
        ErrorKind::DuplicateDestination,
    );
    assert_eq!(f.at, r#""/a""#);
}

#[test]
fn invalid_paths() {
    for bad in ["etc/motd", "/", "/a/../b", "/a//b", "/a/"] {
        let f = one(
            &format!(r#"image "x"; layer "l" {{ dir "{bad}"; }}"#),
            ErrorKind::InvalidPath,
        );
        assert_eq!(f.at, format!("\"{bad}\""));
    }
    one(
        r#"image "x"; config { volume "data"; }"#,
        ErrorKind::InvalidPath,
    );
    one(
        r#"image "x"; config { workdir "work"; }"#,
        ErrorKind::InvalidPath,
    );
    one(
        r#"image "x"; layer "l" { copy "" "/a"; }"#,
        ErrorKind::InvalidPath,
    );
}

#[test]
fn empty_symlink_target() {
    let f = one(
        r#"image "x"; layer "l" { symlink "/a" ""; }"#,
        ErrorKind::EmptySymlinkTarget,
    );
    assert_eq!(f.at, r#""""#);
}

#[test]
fn invalid_values() {
    one(
        r#"image "x"; layer "l" { dir "/a" mode="0999"; }"#,
        ErrorKind::InvalidMode,
    );
    one(
        r#"image "x"; layer "l" { copy "a" "/a" dir-mode="rwx"; }"#,
        ErrorKind::InvalidMode,
    );
    one(r#"image "x" { tag ".bad"; }"#, ErrorKind::InvalidTag);
    let f = one(
        r#"image "x" { platform "linux/x86_64"; }"#,
        ErrorKind::InvalidPlatform,
    );
    assert!(f.help.contains("amd64"), "{f:#?}");
    one(
        r#"image "x" { platform "darwin/arm64"; }"#,
        ErrorKind::InvalidPlatform,
    );
    one(
        r#"image "x" { epoch "2026-02-30T00:00:00Z"; }"#,
        ErrorKind::InvalidEpoch,
    );
    one(
        r#"image "x" { epoch "1969-12-31T23:59:59Z"; }"#,
        ErrorKind::InvalidEpoch,
    );
    one(r#"image "x" { epoch -1; }"#, ErrorKind::InvalidEpoch);
    one(
        r#"image "x"; config { expose "70000"; }"#,
        ErrorKind::InvalidPort,
    );
    one(
        r#"image "x"; config { expose "80/icmp"; }"#,
        ErrorKind::InvalidPort,
    );
    one(r#"image "x"; config { expose 0; }"#, ErrorKind::InvalidPort);
    one(r#"image "Hello World""#, ErrorKind::InvalidName);
    one(
        r#"image "x"; layer "a b" { dir "/a"; }"#,
        ErrorKind::InvalidName,
    );
    one(
        r#"image "x"; layer "l" { dir "/a" uid=-1; }"#,
        ErrorKind::InvalidValue,
    );
    one(
        r#"image "x"; layer "l" { dir "/a" gid=4294967296; }"#,
        ErrorKind::InvalidValue,
    );
    one(
        r#"image "x"; config { env "A=B" "c"; }"#,
        ErrorKind::InvalidValue,
    );
    one(
        r#"image "x"; config { stop-signal "TERM"; }"#,
        ErrorKind::InvalidValue,
    );
    one(r#"image "x"; config { user ""; }"#, ErrorKind::InvalidValue);
    one(
        r#"image "x"; config { label "" "v"; }"#,
        ErrorKind::InvalidValue,
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let found = errors(
        r#"
        image "x" { tag "a b"; platform "linux/amd65"; }
        layer "base" { dir "rel"; write "/x" 1; }
        layer "app" after="bsae" { symlink "/l" ""; }
        config { workdir "/a"; workdir "/b"; expose "0"; }
    "#,
    );
    let kinds: Vec<ErrorKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::InvalidTag,
            ErrorKind::InvalidPlatform,
            ErrorKind::InvalidPath,
            ErrorKind::WrongType,
            ErrorKind::EmptySymlinkTarget,
            ErrorKind::DuplicateSetting,
            ErrorKind::InvalidPort,
            ErrorKind::UnknownLayer,
        ]
    );
}

// ---------------------------------------------------------------- debian

const ARCHIVE: &str = r#"debian { archive "http://deb.debian.org/debian" suites="trixie"; }"#;

/// `image "x"`, a minimal `debian` block and `rest`.
fn with_debian(rest: &str) -> String {
    format!("image \"x\"\n{ARCHIVE}\n{rest}")
}

#[test]
fn debian_block_and_items() {
    let spec = load_files(&[
        (
            MAIN,
            r#"
            include "common/trixie.kdl"
            image "x"
            layer "system" {
                debian "python3" "ca-certificates=20250419"
                debian "libc6 (>= 2.36)"
                write "/etc/motd" "hi"
            }
            layer "app" after="system" { debian "python3-numpy"; }
        "#,
        ),
        (
            "/r/common/trixie.kdl",
            r#"
            debian {
                archive "http://deb.debian.org/debian/" suites="trixie trixie-updates trixie" components="main contrib"
                archive "https://deb.debian.org/debian-security" suites="trixie-security"
                keyring "../keys/archive.pgp"
                snapshot "20261101T000000Z"
                include "base-files" "dash"
                include "base-passwd" "dash"
                exclude "debconf"
                user "app" uid=1000 gid=1001 home="/srv/app" shell="/bin/bash"
                user "_svc" uid=999
            }
        "#,
        ),
    ]);
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => panic!("{}", render(&e)),
    };
    let debian = spec.debian.clone().unwrap_or_default();
    assert_eq!(
        debian.archives,
        [
            DebianArchive {
                url: "http://deb.debian.org/debian".into(),
                suites: vec!["trixie".into(), "trixie-updates".into()],
                components: vec!["main".into(), "contrib".into()],
            },
            DebianArchive {
                url: "https://deb.debian.org/debian-security".into(),
                suites: vec!["trixie-security".into()],
                components: vec!["main".into()],
            },
        ]
    );
    assert_eq!(debian.keyring, Some(PathBuf::from("/r/keys/archive.pgp")));
    assert_eq!(debian.snapshot.as_deref(), Some("20261101T000000Z"));
    assert_eq!(debian.include, ["base-files", "dash", "base-passwd"]);
    assert_eq!(debian.exclude, ["debconf"]);
    assert_eq!(
        debian.users,
        [
            UserSpec {
                name: "app".into(),
                uid: 1000,
                gid: 1001,
                home: "/srv/app".into(),
                shell: "/bin/bash".into(),
            },
            UserSpec {
                name: "_svc".into(),
                uid: 999,
                gid: 999,
                home: "/home/_svc".into(),
                shell: "/bin/sh".into(),
            },
        ]
    );
    // Requests are stored as Debian relations; files items mix with them.
    let items = &spec.layers[0].items;
    assert_eq!(
        items[..2],
        [
            LayerItem::Debian {
                packages: vec!["python3".into(), "ca-certificates (= 20250419)".into()]
            },
            LayerItem::Debian {
                packages: vec!["libc6 (>= 2.36)".into()]
            },
        ]
    );
    assert!(matches!(items[2], LayerItem::Write { .. }));
    assert_eq!(
        spec.layers[1].items,
        [LayerItem::Debian {
            packages: vec!["python3-numpy".into()]
        }]
    );
}

#[test]
fn no_debian_block_means_none() {
    assert_eq!(ok(r#"image "x""#).debian, None);
    let spec = ok(&with_debian(""));
    assert_eq!(
        spec.debian.map(|d| d.archives.len()),
        Some(1),
        "a block without debian items is fine"
    );
}

#[test]
fn duplicate_debian_block() {
    let f = one(
        &format!("image \"x\"\n{ARCHIVE}\n{ARCHIVE}"),
        ErrorKind::DuplicateDebian,
    );
    assert_eq!(f.at, "debian");
    assert!(f.help.contains("merge"), "{f:#?}");
    // In another file: the help names where the first one is.
    let found = errors_in(&[
        (
            MAIN,
            &format!("include \"inc.kdl\"\nimage \"x\"\n{ARCHIVE}"),
        ),
        ("/r/inc.kdl", ARCHIVE),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].help.contains("inc.kdl:1:1"), "{found:#?}");
}

#[test]
fn debian_block_needs_an_archive() {
    let f = one(
        r#"image "x"; debian { include "dash"; }"#,
        ErrorKind::MissingArchive,
    );
    assert_eq!(f.at, "debian");
    assert!(
        f.help.contains("archive \"http://deb.debian.org/debian\""),
        "{f:#?}"
    );
    // An invalid archive is reported as such, not as a missing one too.
    one(
        r#"image "x"; debian { archive "ftp://x/debian" suites="trixie"; }"#,
        ErrorKind::InvalidUrl,
    );
}

#[test]
fn debian_items_need_a_debian_block() {
    let f = one(
        r#"image "x"; layer "system" { debian "python3"; }; layer "more" { debian "dash"; }"#,
        ErrorKind::MissingDebian,
    );
    assert_eq!(f.at, "debian");
    assert!(f.message.contains("layer `system`"), "{f:#?}");
    assert!(f.help.contains(ARCHIVE.trim_end_matches(" }")), "{f:#?}");
    // The block may come after the layer, or from an include.
    ok(&format!(
        "image \"x\"\nlayer \"l\" {{ debian \"dash\"; }}\n{ARCHIVE}"
    ));
}

#[test]
fn top_level_debian_with_packages_points_to_layers() {
    let found = errors(r#"image "x"; debian "python3""#);
    let kinds: Vec<ErrorKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [ErrorKind::TooManyArguments, ErrorKind::MissingArchive],
        "{found:#?}"
    );
    assert_eq!(found[0].at, r#""python3""#);
    assert!(found[0].help.contains("layer \"system\""), "{found:#?}");
}

#[test]
fn archive_values() {
    let archive = |text: &str| errors(&format!(r#"image "x"; debian {{ {text}; }}"#));
    let cases = [
        (
            r#"archive "deb.debian.org/debian" suites="trixie""#,
            ErrorKind::InvalidUrl,
            r#""http://deb.debian.org/debian""#,
        ),
        (
            r#"archive "HTTP://deb.debian.org/debian" suites="trixie""#,
            ErrorKind::InvalidUrl,
            "lower case",
        ),
        (
            r#"archive "file:///srv/mirror" suites="trixie""#,
            ErrorKind::InvalidUrl,
            "https",
        ),
        (
            r#"archive "http://user:pw@example.org/debian" suites="trixie""#,
            ErrorKind::InvalidUrl,
            "passwords",
        ),
        (
            r#"archive "http:///debian" suites="trixie""#,
            ErrorKind::InvalidUrl,
            "host",
        ),
        (
            r#"archive "http://x/debian?a=b" suites="trixie""#,
            ErrorKind::InvalidUrl,
            "dists/",
        ),
        (
            r#"archive "deb http://deb.debian.org/debian trixie main" suites="trixie""#,
            ErrorKind::InvalidUrl,
            "sources.list",
        ),
        (
            r#"archive "http://deb.debian.org/debian""#,
            ErrorKind::MissingArgument,
            "suites",
        ),
        (
            r#"archive "http://x/debian" suites="""#,
            ErrorKind::InvalidSuite,
            "at least one",
        ),
        (
            r#"archive "http://x/debian" suites="Trixie""#,
            ErrorKind::InvalidSuite,
            "`trixie`",
        ),
        (
            r#"archive "http://x/debian" suites="trixie,trixie-updates""#,
            ErrorKind::InvalidSuite,
            "spaces",
        ),
        (
            r#"archive "http://x/debian" suites="trixie" components="main,contrib""#,
            ErrorKind::InvalidSuite,
            "spaces",
        ),
        (
            r#"archive "http://x/debian" suites="trixie" components="/main""#,
            ErrorKind::InvalidSuite,
            "component",
        ),
        (
            r#"archive "http://x/debian" suites="trixie" component="main""#,
            ErrorKind::UnknownProperty,
            "did you mean `components`?",
        ),
        (
            r#"archive "http://x/debian" suites=13"#,
            ErrorKind::WrongType,
            "quote",
        ),
    ];
    for (text, kind, help) in cases {
        let found = archive(text);
        assert_eq!(found.len(), 1, "{text}: {found:#?}");
        assert_eq!(found[0].kind, kind, "{text}: {found:#?}");
        assert!(
            found[0].help.contains(help),
            "{text}: {help} not in {found:#?}"
        );
    }
    // `updates/main`-style components are accepted.
    let spec = ok(
        r#"image "x"; debian { archive "http://x/debian" suites="s" components="updates/main"; }"#,
    );
    assert_eq!(
        spec.debian.map(|d| d.archives[0].components.clone()),
        Some(vec!["updates/main".to_owned()])
    );
}

#[test]
fn snapshot_keyring_and_settings() {
    let block = |text: &str| with_debian("").replace("; }", &format!("; {text}; }}"));
    let f = one(
        &block(r#"snapshot "2026-11-01T00:00:00Z""#),
        ErrorKind::InvalidSnapshot,
    );
    assert!(f.help.contains(r#"snapshot "20261101T000000Z""#), "{f:#?}");
    let f = one(
        &block(r#"snapshot "20261301T000000Z""#),
        ErrorKind::InvalidSnapshot,
    );
    assert!(f.message.contains("not a valid date"), "{f:#?}");
    one(&block(r#"snapshot "20261101""#), ErrorKind::InvalidSnapshot);
    one(&block(r#"snapshot 20261101"#), ErrorKind::WrongType);
    one(
        &block(r#"snapshot "20261101T000000Z"; snapshot "20261102T000000Z""#),
        ErrorKind::DuplicateSetting,
    );
    one(
        &block(r#"keyring "a.pgp"; keyring "b.pgp""#),
        ErrorKind::DuplicateSetting,
    );
    one(&block(r#"keyring """#), ErrorKind::InvalidPath);
    let spec = ok(&block(r#"keyring "/etc/keys/k.gpg""#));
    assert_eq!(
        spec.debian.and_then(|d| d.keyring),
        Some(PathBuf::from("/etc/keys/k.gpg"))
    );
    let f = one(&block(r#"mirror "x""#), ErrorKind::UnknownNode);
    assert!(f.help.contains("`archive`, `keyring`"), "{f:#?}");
    let f = one(&block(r#"exlude "dpkg""#), ErrorKind::UnknownNode);
    assert_eq!(f.help, "did you mean `exclude`?");
}

#[test]
fn include_and_exclude_take_names() {
    let block = |text: &str| with_debian("").replace("; }", &format!("; {text}; }}"));
    let f = one(
        &block(r#"include "libc6=2.41-12""#),
        ErrorKind::InvalidPackage,
    );
    assert!(f.message.contains("not versions"), "{f:#?}");
    assert!(f.help.contains(r#"write "libc6" here"#), "{f:#?}");
    let f = one(&block(r#"exclude "Debconf""#), ErrorKind::InvalidPackage);
    assert!(f.help.contains("`debconf`"), "{f:#?}");
    one(&block("include"), ErrorKind::MissingArgument);
}

#[test]
fn package_requests_are_checked() {
    let cases = [
        ("python3>=3.13", r#""python3 (>= 3.13)""#),
        ("python3==3.13", r#""python3=3.13""#),
        ("python3 (> 3.13)", "`>>`"),
        ("python3:arm64", "platform"),
        ("python3, dash", r#"debian "python3" "dash""#),
        ("py_thon", "lowercase letters"),
        ("python3=latest", "starting with a digit"),
    ];
    for (request, help) in cases {
        let f = one(
            &with_debian(&format!(r#"layer "l" {{ debian "{request}"; }}"#)),
            ErrorKind::InvalidPackage,
        );
        assert_eq!(f.at, format!("\"{request}\""));
        assert!(f.help.contains(help), "{request}: {f:#?}");
    }
    one(
        &with_debian(r#"layer "l" { debian; }"#),
        ErrorKind::MissingArgument,
    );
    one(
        &with_debian(r#"layer "l" { debian 3; }"#),
        ErrorKind::WrongType,
    );
    one(
        &with_debian(r#"layer "l" { debian "dash" { x; }; }"#),
        ErrorKind::UnexpectedChildren,
    );
    let f = one(
        &with_debian(r#"layer "l" { debain "dash"; }"#),
        ErrorKind::UnknownNode,
    );
    assert_eq!(f.help, "did you mean `debian`?");
}

#[test]
fn same_package_twice_in_one_layer() {
    let f = one(
        &with_debian(r#"layer "l" { debian "python3" "dash"; debian "python3 (>= 3.13)"; }"#),
        ErrorKind::DuplicatePackage,
    );
    assert_eq!(f.at, r#""python3 (>= 3.13)""#);
    one(
        &with_debian(r#"layer "l" { debian "dash" "dash"; }"#),
        ErrorKind::DuplicatePackage,
    );
    // In two layers: the resolver places it in the lower one.
    ok(&with_debian(
        r#"layer "a" { debian "dash"; }; layer "b" { debian "dash"; }"#,
    ));
}

#[test]
fn excluded_packages_cannot_be_requested() {
    let text = format!(
        "image \"x\"\n{}\nlayer \"system\" {{ debian \"python3\" \"debconf\"; }}",
        ARCHIVE.replace("; }", r#"; include "dpkg"; exclude "dpkg" "debconf"; }"#)
    );
    let found = errors(&text);
    let summary: Vec<(ErrorKind, &str)> = found.iter().map(|f| (f.kind, f.at.as_str())).collect();
    assert_eq!(
        summary,
        [
            (ErrorKind::ExcludedPackage, r#""dpkg""#),
            (ErrorKind::ExcludedPackage, r#""debconf""#),
        ]
    );
    assert!(found[1].message.contains("layer `system`"), "{found:#?}");
    // Excluded in an included file: the help says where.
    let found = errors_in(&[
        (
            MAIN,
            "include \"inc.kdl\"\nimage \"x\"\nlayer \"l\" { debian \"debconf\"; }",
        ),
        (
            "/r/inc.kdl",
            &ARCHIVE.replace("; }", r#"; exclude "debconf"; }"#),
        ),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].help.contains("inc.kdl:1:"), "{found:#?}");
}

#[test]
fn users_are_checked() {
    let block = |text: &str| with_debian("").replace("; }", &format!("; {text}; }}"));
    let f = one(
        &block(r#"user "app" uid=1000; user "app" uid=1001"#),
        ErrorKind::DuplicateUser,
    );
    assert!(f.message.contains("declared twice"), "{f:#?}");
    let f = one(
        &block(r#"user "app" uid=1000; user "web" uid=1000"#),
        ErrorKind::DuplicateUser,
    );
    assert_eq!(f.at, "uid=1000");
    assert!(f.message.contains("`app`"), "{f:#?}");
    one(&block(r#"user "App" uid=1"#), ErrorKind::InvalidName);
    one(&block(r#"user "1app" uid=1"#), ErrorKind::InvalidName);
    one(&block(r#"user "app""#), ErrorKind::MissingArgument);
    one(&block(r#"user "app" uid=-1"#), ErrorKind::InvalidValue);
    one(&block(r#"user "app" uid="1000""#), ErrorKind::WrongType);
    one(
        &block(r#"user "app" uid=1 home="home/app""#),
        ErrorKind::InvalidPath,
    );
    one(
        &block(r#"user "app" uid=1 shell="/bin/""#),
        ErrorKind::InvalidPath,
    );
    let f = one(
        &block(r#"user "app" uid=1 group="app""#),
        ErrorKind::UnknownProperty,
    );
    assert!(
        f.help.contains("`uid`, `gid`, `home` and `shell`"),
        "{f:#?}"
    );
}

#[test]
fn debian_mistakes_are_reported_in_one_pass() {
    let found = errors(
        r#"
        image "x"
        debian {
            archive "http://x/debian" suites="trixie"
            snapshot "yesterday"
            user "Bad" uid=1
        }
        layer "l" { debian "python3>3" "dash" "dash"; }
    "#,
    );
    let kinds: Vec<ErrorKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::InvalidSnapshot,
            ErrorKind::InvalidName,
            ErrorKind::InvalidPackage,
            ErrorKind::DuplicatePackage,
        ]
    );
}

// ---------------------------------------------------------------- pypi

/// `image "x"`, a `debian` block, a `system` layer with Python from Debian, and `rest`.
fn with_python(rest: &str) -> String {
    with_debian(&format!(
        "layer \"system\" {{ debian \"python3\"; }}\n{rest}"
    ))
}

fn default_source() -> PypiSource {
    PypiSource {
        indexes: vec![PypiIndex {
            url: DEFAULT_PYPI_INDEX.into(),
            only: Vec::new(),
        }],
        prefix: None,
    }
}

#[test]
fn pypi_block_and_items() {
    let spec = ok(&with_python(
        r#"
        pypi {
            index "https://pypi.org/simple/"
            index "https://download.pytorch.org/whl/cu126" only="torch Torch torchvision"
            index "https://pypi.example.org/simple" only="Internal_Tools"
            prefix "/opt/venv"
        }
        layer "python" after="system" {
            pypi "numpy" "requests [socks] >= 2.31" "tensorflow[and-cuda]==2.21.0"
            pypi "pywin32; sys_platform == 'win32'" "PyYAML"
            write "/etc/motd" "hi"
        }
        "#,
    ));
    let pypi = spec.pypi.clone().unwrap_or_default();
    assert_eq!(
        pypi.indexes,
        [
            PypiIndex {
                url: "https://pypi.org/simple".into(),
                only: vec![],
            },
            PypiIndex {
                url: "https://download.pytorch.org/whl/cu126".into(),
                only: vec!["torch".into(), "torchvision".into()],
            },
            PypiIndex {
                url: "https://pypi.example.org/simple".into(),
                only: vec!["internal-tools".into()],
            },
        ]
    );
    assert_eq!(pypi.prefix.as_deref(), Some("/opt/venv"));
    assert_eq!(
        pypi.index_for("torch").map(|i| i.url.as_str()),
        Some("https://download.pytorch.org/whl/cu126")
    );
    assert_eq!(
        pypi.index_for("internal.tools").map(|i| i.url.as_str()),
        Some("https://pypi.example.org/simple")
    );
    assert_eq!(
        pypi.index_for("numpy").map(|i| i.url.as_str()),
        Some(DEFAULT_PYPI_INDEX)
    );
    // Requirements are kept in PEP 508's canonical form; files items mix with them.
    let python = &spec.layers[1];
    assert_eq!(python.name, "python");
    assert_eq!(
        python.items[..2],
        [
            LayerItem::Pypi {
                requirements: vec![
                    "numpy".into(),
                    "requests[socks]>=2.31".into(),
                    "tensorflow[and-cuda]==2.21.0".into(),
                ]
            },
            LayerItem::Pypi {
                requirements: vec!["pywin32 ; sys_platform == 'win32'".into(), "pyyaml".into()]
            },
        ]
    );
    assert!(matches!(python.items[2], LayerItem::Write { .. }));
}

#[test]
fn pypi_items_without_a_block_use_the_default_index() {
    let spec = ok(&with_python(
        r#"layer "python" after="system" { pypi "numpy"; }"#,
    ));
    assert_eq!(spec.pypi, Some(default_source()));
    // No pypi items and no block: nothing.
    assert_eq!(ok(&with_python("")).pypi, None);
    // A block without a default index gets the default one after its own.
    let spec = ok(&with_python(
        r#"pypi { index "https://download.pytorch.org/whl/cu126" only="torch"; }"#,
    ));
    let urls: Vec<String> = spec
        .pypi
        .map(|p| p.indexes.into_iter().map(|i| i.url).collect())
        .unwrap_or_default();
    assert_eq!(
        urls,
        ["https://download.pytorch.org/whl/cu126", DEFAULT_PYPI_INDEX]
    );
    // An empty block is the default too; the block may come after the layer.
    let spec = ok(&with_python(
        r#"layer "python" after="system" { pypi "numpy"; }; pypi { prefix "/opt/venv"; }"#,
    ));
    assert_eq!(
        spec.pypi,
        Some(PypiSource {
            prefix: Some("/opt/venv".into()),
            ..default_source()
        })
    );
    // A private mirror as the default replaces PyPI.
    let spec = ok(&with_python(
        r#"pypi { index "https://mirror.example.org/simple"; }"#,
    ));
    assert_eq!(
        spec.pypi.map(|p| p.indexes.len()),
        Some(1),
        "no PyPI next to a default mirror"
    );
}

#[test]
fn duplicate_pypi_block() {
    let f = one(
        &with_python("pypi { prefix \"/a\"; }\npypi { }"),
        ErrorKind::DuplicatePypi,
    );
    assert_eq!(f.at, "pypi");
    assert!(f.help.contains("merge"), "{f:#?}");
    let found = errors_in(&[
        (
            MAIN,
            &format!("include \"inc.kdl\"\n{}\npypi {{ }}", with_python("")),
        ),
        ("/r/inc.kdl", "pypi { }"),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].help.contains("inc.kdl:1:1"), "{found:#?}");
    // The prefix is a once-only setting.
    one(
        &with_python(r#"pypi { prefix "/a"; prefix "/b"; }"#),
        ErrorKind::DuplicateSetting,
    );
}

#[test]
fn top_level_pypi_with_requirements_points_to_layers() {
    let f = one(&with_python(r#"pypi "numpy""#), ErrorKind::TooManyArguments);
    assert_eq!(f.at, r#""numpy""#);
    assert!(f.help.contains(r#"layer "python""#), "{f:#?}");
}

#[test]
fn index_values() {
    let block = |text: &str| errors(&with_python(&format!("pypi {{ {text}; }}")));
    let cases = [
        (
            r#"index "pypi.org/simple""#,
            ErrorKind::InvalidUrl,
            "https://pypi.org/simple",
        ),
        (
            r#"index "https://user:pass@pypi.example.org/simple""#,
            ErrorKind::InvalidUrl,
            "~/.netrc",
        ),
        (
            r#"index "https://token@pypi.example.org/simple""#,
            ErrorKind::InvalidUrl,
            "never the recipe",
        ),
        (
            r#"index "s3://bucket/simple""#,
            ErrorKind::InvalidUrl,
            "https://",
        ),
        (
            r#"index "https://x/simple" only="""#,
            ErrorKind::InvalidValue,
            "default index",
        ),
        (
            r#"index "https://x/simple" only="torch,torchvision""#,
            ErrorKind::InvalidName,
            "spaces",
        ),
        (
            r#"index "https://x/simple" only="torch>=2""#,
            ErrorKind::InvalidName,
            "not requirements",
        ),
        (
            r#"index "https://x/simple" only=1"#,
            ErrorKind::WrongType,
            "",
        ),
        (
            r#"index "https://x/simple" for="torch""#,
            ErrorKind::UnknownProperty,
            "`only`",
        ),
        (r#"index"#, ErrorKind::MissingArgument, ""),
        (
            r#"extra-index-url "https://x/simple""#,
            ErrorKind::UnknownNode,
            "`index`",
        ),
        (r#"prefix "opt/venv""#, ErrorKind::InvalidPath, "/opt/venv"),
        (r#"prefix "/""#, ErrorKind::InvalidPath, ""),
    ];
    for (text, kind, hint) in cases {
        let found = block(text);
        assert_eq!(found.len(), 1, "{text}: {found:#?}");
        assert_eq!(found[0].kind, kind, "{text}: {found:#?}");
        assert!(
            found[0].help.contains(hint) || found[0].message.contains(hint),
            "{text}: {found:#?}"
        );
        assert!(!found[0].message.contains("pass"), "{text}: {found:#?}");
    }
}

#[test]
fn indexes_must_not_conflict() {
    let block = |text: &str| errors(&with_python(&format!("pypi {{\n{text}\n}}")));
    let found =
        block("index \"https://pypi.org/simple\"\nindex \"https://mirror.example.org/simple\"");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::DuplicateIndex);
    assert_eq!(found[0].at, r#""https://mirror.example.org/simple""#);
    assert!(found[0].message.contains("default index"), "{found:#?}");

    let found = block(
        "index \"https://a.example.org/simple\" only=\"torch\"\n\
         index \"https://b.example.org/simple\" only=\"numpy Torch\"",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::DuplicateIndex);
    assert_eq!(found[0].at, r#"only="numpy Torch""#);
    assert!(
        found[0].message.contains("`torch` is pinned to two"),
        "{found:#?}"
    );

    let found =
        block("index \"https://pypi.org/simple\"\nindex \"https://pypi.org/simple/\" only=\"x\"");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::DuplicateIndex);
    assert!(found[0].message.contains("named twice"), "{found:#?}");
}

#[test]
fn requirements_are_checked() {
    let layer = |text: &str| {
        errors(&with_python(&format!(
            "layer \"python\" after=\"system\" {{ pypi {text}; }}"
        )))
    };
    let cases = [
        (r#""numpy=2.3.1""#, "\"numpy==2.3.1\""),
        (r#""numpy >=> 2""#, "PEP 508"),
        (r#""""#, "empty"),
        (r#""numpy, scipy""#, r#"pypi "numpy" "scipy""#),
        (
            r#""numpy @ https://example.org/numpy-2.3.1-py3-none-any.whl""#,
            "pin it through an index",
        ),
        (
            r#""numpy @ file:///wheels/numpy-2.3.1-py3-none-any.whl""#,
            "direct URL",
        ),
    ];
    for (text, hint) in cases {
        let found = layer(text);
        assert_eq!(found.len(), 1, "{text}: {found:#?}");
        assert_eq!(
            found[0].kind,
            ErrorKind::InvalidRequirement,
            "{text}: {found:#?}"
        );
        assert_eq!(found[0].at, text);
        assert!(
            found[0].help.contains(hint) || found[0].message.contains(hint),
            "{text}: {found:#?}"
        );
    }
    let found = layer("2");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, ErrorKind::WrongType);
    one(
        &with_python(r#"layer "python" after="system" { pypi; }"#),
        ErrorKind::MissingArgument,
    );
    one(
        &with_python(r#"layer "python" after="system" { pypi "numpy" index="x"; }"#),
        ErrorKind::UnknownProperty,
    );
    let f = one(
        &with_python(r#"layer "python" after="system" { pypy "numpy"; }"#),
        ErrorKind::UnknownNode,
    );
    assert_eq!(f.help, "did you mean `pypi`?");
}

#[test]
fn same_project_twice_in_one_layer() {
    let f = one(
        &with_python(
            r#"layer "python" after="system" { pypi "numpy" "requests"; pypi "NumPy>=2"; }"#,
        ),
        ErrorKind::DuplicateRequirement,
    );
    assert_eq!(f.at, r#""NumPy>=2""#);
    assert!(f.message.contains("`numpy`"), "{f:#?}");
    one(
        &with_python(r#"layer "python" after="system" { pypi "a.b" "A_B[x]"; }"#),
        ErrorKind::DuplicateRequirement,
    );
    // In two layers, or once with markers each way: separate requests.
    ok(&with_python(
        r#"layer "a" after="system" { pypi "numpy"; }; layer "b" after="a" { pypi "numpy>=2"; }"#,
    ));
}

#[test]
fn pypi_items_need_python_from_debian() {
    // No Debian anywhere.
    let f = one(
        r#"image "x"; layer "python" { pypi "numpy"; }"#,
        ErrorKind::MissingPython,
    );
    assert_eq!(f.at, "pypi");
    assert!(f.message.contains("layer `python`"), "{f:#?}");
    assert!(f.help.contains("python3"), "{f:#?}");
    // Debian only above: the lowest Python layer has no interpreter below it.
    let f = one(
        &with_debian(
            r#"layer "python" { pypi "numpy"; }; layer "system" after="python" { debian "python3"; }"#,
        ),
        ErrorKind::MissingPython,
    );
    assert!(f.message.contains("layer `python`"), "{f:#?}");
    // Declared first, but ordered above the Debian layer by `after`: fine.
    ok(&with_debian(
        r#"layer "python" after="system" { pypi "numpy"; }; layer "system" { debian "python3"; }"#,
    ));
    // Debian and Python in one layer: fine.
    ok(&with_debian(
        r#"layer "all" { debian "python3"; pypi "numpy"; }"#,
    ));
    // A Debian item that does not parse still counts: only its own error is reported.
    one(
        &with_debian(r#"layer "all" { debian "python3>3"; pypi "numpy"; }"#),
        ErrorKind::InvalidPackage,
    );
    // Broken layer order: only that is reported.
    one(
        r#"image "x"; layer "python" after="nope" { pypi "numpy"; }"#,
        ErrorKind::UnknownLayer,
    );
}

#[test]
fn pypi_mistakes_are_reported_in_one_pass() {
    let found = errors(
        r#"
        image "x"
        pypi {
            index "https://u:p@x/simple"
            index "https://y/simple" only="a,b"
            prefix "venv"
        }
        layer "python" { pypi "numpy=2" "ok" "ok"; }
    "#,
    );
    let kinds: Vec<ErrorKind> = found.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::InvalidUrl,
            ErrorKind::InvalidName,
            ErrorKind::InvalidPath,
            ErrorKind::InvalidRequirement,
            ErrorKind::DuplicateRequirement,
            ErrorKind::MissingPython,
        ]
    );
}

// ---------------------------------------------------------------- check

#[test]
fn check_block_reads_host_provided_allow_and_skip() {
    let spec = ok(r#"image "x"
        check {
            host-provided "libvendor.so.1" "libgpu-*.so.*" "libvendor.so.1"
            allow "elf-closure" "/opt/vendor/*.so" "/opt/other/*.so"
            allow "cuda" "libcudnn*"
            skip "wheel-tag" "cuda" "cuda"
        }"#);
    assert_eq!(
        spec.check.host_provided,
        ["libvendor.so.1", "libgpu-*.so.*"]
    );
    assert_eq!(
        spec.check.allow,
        [
            ("elf-closure".to_string(), "/opt/vendor/*.so".to_string()),
            ("elf-closure".to_string(), "/opt/other/*.so".to_string()),
            ("cuda".to_string(), "libcudnn*".to_string())
        ]
    );
    assert_eq!(spec.check.skip, ["wheel-tag", "cuda"]);
    assert_eq!(ok(r#"image "x""#).check, CheckSpec::default());
}

#[test]
fn check_block_errors() {
    let f = one(
        r#"image "x"; check { skip "cuda-coherence"; }"#,
        ErrorKind::UnknownCheck,
    );
    assert!(f.help.contains("did you mean `cuda`?"), "{f:#?}");
    let f = one(
        r#"image "x"; check { allow "elf"; }"#,
        ErrorKind::MissingArgument,
    );
    assert!(f.help.contains("allow \"elf-closure\""), "{f:#?}");
    one(r#"image "x"; check { skip 1; }"#, ErrorKind::WrongType);
    one(
        r#"image "x"; check { hostprovided "a"; }"#,
        ErrorKind::UnknownNode,
    );
    one(
        r#"image "x"; check { skip "cuda"; }; check { skip "abi"; }"#,
        ErrorKind::DuplicateSetting,
    );
}

// ---------------------------------------------------------------- API surface

#[test]
fn rendering_one_and_many() {
    let one_err = load_files(&[(MAIN, r#"image "x"; config { wrkdir "/"; }"#)]).err();
    let text = one_err.as_ref().map(render).unwrap_or_default();
    assert!(text.contains("recipe::unknown_node"), "{text}");
    assert!(text.contains("main.kdl:1:21"), "{text}");
    assert!(text.contains("did you mean `workdir`?"), "{text}");
    assert_eq!(
        one_err
            .as_ref()
            .and_then(|e| e.code())
            .map(|c| c.to_string())
            .as_deref(),
        Some("recipe::unknown_node")
    );

    let many = load_files(&[(MAIN, r#"image "x"; config { wrkdir "/"; usr "a"; }"#)]).err();
    let text = many.as_ref().map(render).unwrap_or_default();
    assert!(text.contains("recipe `/r/main.kdl` has 2 errors"), "{text}");
    assert!(text.contains("did you mean `user`?"), "{text}");
}

#[test]
fn load_reports_unreadable_recipe_with_its_path() {
    let err = load(Path::new("/nonexistent/dir/recipe.kdl")).err();
    assert!(matches!(err, Some(RecipeError::Read { .. })), "{err:?}");
    let text = err.as_ref().map(render).unwrap_or_default();
    assert!(
        text.contains("cannot read recipe `/nonexistent/dir/recipe.kdl`"),
        "{text}"
    );
    assert!(text.contains("recipe::read"), "{text}");
}

#[test]
fn parse_str_resolves_against_base_dir() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let write = std::fs::write(
        dir.path().join("inc.kdl"),
        r#"layer "inc" { copy "data" "/data"; }"#,
    );
    assert!(write.is_ok());
    let spec = match parse_str("virtual.kdl", r#"include "inc.kdl"; image "x""#, dir.path()) {
        Ok(s) => s,
        Err(e) => panic!("{}", render(&e)),
    };
    assert_eq!(
        spec.layers[0].items[0],
        LayerItem::Copy {
            src: dir.path().join("data"),
            dest: "/data".into(),
            mode: None,
            dir_mode: None,
            owner: Ownership::default()
        }
    );
    let err = parse_str("virtual.kdl", r#"image "x" { tga "1"; }"#, dir.path()).err();
    let files: Vec<&str> = err
        .iter()
        .flat_map(|e| e.diagnostics())
        .map(RecipeDiagnostic::file)
        .collect();
    assert_eq!(files, ["virtual.kdl"]);
}

#[test]
fn load_makes_copy_sources_absolute() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    let path = dir.path().join("r.kdl");
    assert!(
        std::fs::write(
            &path,
            r#"image "x"; layer "l" { copy "./files/../f" "/f"; }"#
        )
        .is_ok()
    );
    let spec = match load(&path) {
        Ok(s) => s,
        Err(e) => panic!("{}", render(&e)),
    };
    match &spec.layers[0].items[0] {
        LayerItem::Copy { src, .. } => assert_eq!(src, &dir.path().join("f")),
        other => panic!("{other:?}"),
    }
}
