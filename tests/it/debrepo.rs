//! The offline Debian repository generator (`composer_tests::debrepo`): its `.deb`s are real
//! (dpkg-deb accepts them), its InRelease verifies with composer and with gpgv, its Release
//! hashes match its indices, and its HTTP server serves the files byte for byte.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use composer::debian::pgp::{SignatureError, keyring_fingerprints, verify_inrelease};
use composer_tests::debrepo::*;
use composer_tests::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn sample_deb() -> DebSpec {
    DebSpec::new("hello", "1:2.10-3")
        .depends("libc6 (>= 2.36), base-files | base-files-alt")
        .pre_depends("dpkg (>= 1.17)")
        .provides("hello-world (= 2.10)")
        .conflicts("hello-legacy")
        .breaks("hello-old (<< 2)")
        .replaces("hello-old (<< 2)")
        .multi_arch("foreign")
        .exec("/usr/bin/hello", "#!/bin/sh\necho hello\n")
        .dir("/usr/share/hello")
        .file("usr/share/doc/hello/copyright", "public domain\n")
        .symlink("/usr/bin/hi", "hello")
        .hardlink("/usr/bin/hello2", "/usr/bin/hello")
        .file(
            &format!("/usr/share/hello/{}", "long-name-".repeat(12)),
            "long\n",
        )
        .control_member("postinst", "#!/bin/sh\nexit 0\n")
}

fn repo_spec() -> RepoSpec {
    RepoSpec {
        suites: vec![
            SuiteSpec::new("trixie")
                .component(
                    "main",
                    vec![
                        sample_deb(),
                        DebSpec::new("libfoo1", "1.0-1")
                            .source("foo")
                            .file("/usr/lib/x86_64-linux-gnu/libfoo.so.1", "ELF"),
                        DebSpec::new("libfoo1", "1.0-1")
                            .arch("arm64")
                            .source("foo")
                            .file("/usr/lib/aarch64-linux-gnu/libfoo.so.1", "ELF"),
                        DebSpec::new("tzdata", "2025a-1")
                            .arch("all")
                            .essential()
                            .priority("required")
                            .file("/usr/share/zoneinfo/UTC", "TZif")
                            .compression(DataCompression::Gz),
                    ],
                )
                .component(
                    "contrib",
                    vec![
                        DebSpec::new("libzz", "3")
                            .file("/opt/zz", "zz")
                            .compression(DataCompression::Zst),
                    ],
                ),
            SuiteSpec::new("trixie-updates")
                .codename("trixie-updates")
                .date(DEFAULT_DATE + 86_400)
                .valid_until(DEFAULT_DATE + 8 * 86_400)
                .architectures(&["amd64"])
                .acquire_by_hash()
                .component(
                    "main",
                    vec![
                        DebSpec::new("hello", "1:2.10-4")
                            .file("/usr/bin/hello", "new")
                            .compression(DataCompression::None),
                    ],
                ),
        ],
    }
}

/// `(hash, size, path)` lines of one checksum section of a Release file.
fn release_section(release: &str, section: &str) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in release.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if inside {
                let f: Vec<&str> = rest.split_whitespace().collect();
                out.push((f[0].to_string(), f[1].parse().unwrap(), f[2].to_string()));
            }
        } else {
            inside = line == format!("{section}:");
        }
    }
    out
}

fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// ar members of a `.deb`: (name, data).
fn ar_members(deb: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&deb[..8], b"!<arch>\n");
    let mut out = Vec::new();
    let mut i = 8;
    while i < deb.len() {
        let h = std::str::from_utf8(&deb[i..i + 60]).unwrap();
        assert_eq!(&h[58..60], "`\n");
        let name = h[..16].trim_end().to_string();
        let size: usize = h[48..58].trim_end().parse().unwrap();
        out.push((name, deb[i + 60..i + 60 + size].to_vec()));
        i += 60 + size + size % 2;
    }
    out
}

fn xz_decode(b: &[u8]) -> Vec<u8> {
    liblzma::decode_all(b).unwrap()
}

fn gz_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn md5_matches_rfc1321() {
    for (input, want) in [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "d174ab98d277d9f5a5611c2c9f419d9f",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ] {
        assert_eq!(md5_hex(input.as_bytes()), want, "{input:?}");
    }
    // Every padding case (lengths around the 56- and 64-byte boundaries) against md5sum.
    if have("md5sum") {
        let data: Vec<u8> = (0..=255u8).cycle().take(200).collect();
        for len in 0..200 {
            let mut child = Command::new("md5sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&data[..len]).unwrap();
            let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
            assert_eq!(md5_hex(&data[..len]), out[..32], "length {len}");
        }
    }
}

#[test]
fn deb_has_the_dpkg_deb_layout() {
    let spec = sample_deb();
    let deb = build_deb(&spec);
    assert_eq!(build_deb(&spec), deb, "deterministic");
    assert_eq!(spec.file_name(), "hello_2.10-3_amd64.deb");
    assert_eq!(
        spec.pool_path("main"),
        "pool/main/h/hello/hello_2.10-3_amd64.deb"
    );
    assert_eq!(
        DebSpec::new("libfoo1", "1").source("foo").pool_path("main"),
        "pool/main/f/foo/libfoo1_1_amd64.deb"
    );
    assert_eq!(
        DebSpec::new("libbar1", "1").pool_path("main"),
        "pool/main/libb/libbar1/libbar1_1_amd64.deb"
    );

    let members = ar_members(&deb);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["debian-binary", "control.tar.xz", "data.tar.xz"]);
    assert_eq!(members[0].1, b"2.0\n");

    let control = tar_entries(&xz_decode(&members[1].1));
    let control_text = String::from_utf8(control["./control"].data.clone()).unwrap();
    assert!(control_text.starts_with("Package: hello\nVersion: 1:2.10-3\n"));
    assert!(control_text.contains("\nDepends: libc6 (>= 2.36), base-files | base-files-alt\n"));
    assert!(control_text.contains("\nMulti-Arch: foreign\n"));
    assert_eq!(control["./postinst"].mode, 0o755);

    let data = xz_decode(&members[2].1);
    let paths = tar_paths(&data);
    let long = format!("./usr/share/hello/{}", "long-name-".repeat(12));
    assert_eq!(
        paths,
        [
            "./",
            "./usr/",
            "./usr/bin/",
            "./usr/bin/hello",
            "./usr/share/",
            "./usr/share/hello/",
            "./usr/share/doc/",
            "./usr/share/doc/hello/",
            "./usr/share/doc/hello/copyright",
            "./usr/bin/hi",
            "./usr/bin/hello2",
            long.as_str(),
        ]
    );
    let entries = tar_entries(&data);
    let hello = &entries["./usr/bin/hello"];
    assert_eq!((hello.mode, hello.uid, hello.gid), (0o755, 0, 0));
    assert_eq!(hello.mtime, DEFAULT_MTIME);
    assert_eq!(entries["./usr/bin/hi"].link.as_deref(), Some("hello"));
    assert_eq!(entries["./usr/bin/hello2"].kind, b'1');
    assert_eq!(
        entries["./usr/bin/hello2"].link.as_deref(),
        Some("./usr/bin/hello")
    );

    // md5sums covers every regular file, without the leading "./".
    let md5sums = String::from_utf8(control["./md5sums"].data.clone()).unwrap();
    assert!(md5sums.contains(&format!(
        "{}  usr/bin/hello\n",
        md5_hex(b"#!/bin/sh\necho hello\n")
    )));
    assert_eq!(md5sums.lines().count(), 3);
}

#[test]
fn dpkg_deb_accepts_generated_debs() {
    if !have("dpkg-deb") {
        eprintln!("skipping: dpkg-deb not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for c in [
        DataCompression::Xz,
        DataCompression::Gz,
        DataCompression::Zst,
        DataCompression::None,
    ] {
        let spec = sample_deb().compression(c);
        let path = t.path().join(format!("{}.deb", c.member_name()));
        std::fs::write(&path, build_deb(&spec)).unwrap();
        let info = Command::new("dpkg-deb")
            .arg("--info")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&info.stderr);
        // Older dpkg-deb cannot read zstd members; everything else must pass.
        if c == DataCompression::Zst && !info.status.success() && stderr.contains("zst") {
            eprintln!("skipping zstd: {stderr}");
            continue;
        }
        assert!(info.status.success(), "{c:?}: {stderr}");
        let info = String::from_utf8(info.stdout).unwrap();
        assert!(info.contains(" Package: hello\n"), "{info}");
        assert!(info.contains(" postinst"), "{info}");

        let list = run_ok(Command::new("dpkg-deb").arg("-c").arg(&path));
        assert!(
            list.lines()
                .any(|l| l.starts_with("-rwxr-xr-x root/root") && l.ends_with(" ./usr/bin/hello")),
            "{list}"
        );
        assert!(list.contains("./usr/bin/hi -> hello"), "{list}");
        assert!(
            list.contains("./usr/bin/hello2 link to ./usr/bin/hello"),
            "{list}"
        );
        assert!(list.contains(&"long-name-".repeat(12)), "{list}");

        let version = run_ok(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&path)
                .arg("Version"),
        );
        assert_eq!(version.trim(), "1:2.10-3");

        // The data tar as dpkg-deb extracts it matches what we wrote.
        let fsys = Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(&path)
            .output()
            .unwrap();
        assert!(fsys.status.success());
        let entries = tar_entries(&fsys.stdout);
        assert_eq!(
            entries["./usr/share/doc/hello/copyright"].data,
            b"public domain\n"
        );
    }
}

#[test]
fn raw_entries_are_written_verbatim() {
    let spec = DebSpec::new("evil", "1")
        .compression(DataCompression::None)
        .entry(DebFile::raw("../escape", tar::EntryType::Regular, b"x", ""))
        .entry(DebFile::raw("/abs", tar::EntryType::Regular, b"y", ""))
        .entry(DebFile::raw("./link", tar::EntryType::Symlink, b"", "/etc"))
        .entry(DebFile::raw(
            "./link/passwd",
            tar::EntryType::Regular,
            b"z",
            "",
        ));
    let deb = build_deb(&spec);
    let data = &ar_members(&deb)[2];
    assert_eq!(data.0, "data.tar");
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(data.1.as_slice());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        names.push(String::from_utf8(e.header().path_bytes().into_owned()).unwrap());
    }
    assert_eq!(
        names,
        ["./", "../escape", "/abs", "./link", "./link/passwd"]
    );
}

#[test]
fn repo_release_is_signed_and_lists_every_index() {
    let t = tempfile::tempdir().unwrap();
    let key = TestKey::new(1);
    let repo = build_repo(t.path(), &repo_spec(), &key);
    let keyring = key.public_keyring();
    assert_eq!(keyring_fingerprints(&keyring).unwrap(), [key.fingerprint()]);
    assert_eq!(
        keyring_fingerprints(&key.public_keyring_armored()).unwrap(),
        [key.fingerprint()]
    );

    for suite in ["trixie", "trixie-updates"] {
        let dists = t.path().join("dists").join(suite);
        let release = std::fs::read(dists.join("Release")).unwrap();
        let inrelease = std::fs::read(dists.join("InRelease")).unwrap();
        assert_eq!(
            verify_inrelease(&inrelease, &keyring, now()).unwrap(),
            release
        );
        assert_eq!(
            verify_inrelease(&inrelease, &key.public_keyring_armored(), now()).unwrap(),
            release
        );
        let release = String::from_utf8(release).unwrap();

        // SHA256 and MD5Sum name exactly the index files, with the right sizes and hashes.
        let sha = release_section(&release, "SHA256");
        let md5 = release_section(&release, "MD5Sum");
        assert_eq!(sha.len(), md5.len());
        assert!(!sha.is_empty());
        for ((hash, size, rel), (md5sum, md5size, md5rel)) in sha.iter().zip(&md5) {
            assert_eq!((rel, size), (md5rel, md5size));
            let bytes = std::fs::read(dists.join(rel)).unwrap();
            assert_eq!(bytes.len() as u64, *size, "{rel}");
            assert_eq!(&sha256_hex(&bytes), hash, "{rel}");
            assert_eq!(&md5_hex(&bytes), md5sum, "{rel}");
        }
        let listed: Vec<&str> = sha.iter().map(|(_, _, p)| p.as_str()).collect();
        let on_disk: Vec<String> = repo
            .dists
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("dists/{suite}/")))
            .filter(|k| k.contains("/binary-") && !k.contains("/by-hash/"))
            .map(str::to_string)
            .collect();
        assert_eq!(listed, on_disk);

        // .xz and .gz decompress to Packages; every stanza's file and hashes are right.
        for plain in listed.iter().filter(|p| p.ends_with("/Packages")) {
            let text = std::fs::read(dists.join(plain)).unwrap();
            assert_eq!(
                xz_decode(&std::fs::read(dists.join(format!("{plain}.xz"))).unwrap()),
                text
            );
            assert_eq!(
                gz_decode(&std::fs::read(dists.join(format!("{plain}.gz"))).unwrap()),
                text
            );
            let text = String::from_utf8(text).unwrap();
            for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
                let filename = field(stanza, "Filename").unwrap();
                let deb = std::fs::read(t.path().join(filename)).unwrap();
                assert_eq!(field(stanza, "SHA256").unwrap(), sha256_hex(&deb));
                assert_eq!(field(stanza, "MD5sum").unwrap(), md5_hex(&deb));
                assert_eq!(
                    field(stanza, "Size").unwrap().parse::<usize>().unwrap(),
                    deb.len()
                );
                let stem = Path::new(filename).file_stem().unwrap().to_str().unwrap();
                assert_eq!(repo.debs[stem].1, sha256_hex(&deb));
            }
        }
    }

    // Layout and fields.
    let trixie = std::fs::read_to_string(t.path().join("dists/trixie/Release")).unwrap();
    assert!(
        trixie.contains("Date: Mon, 01 Jan 2024 00:00:00 UTC\n"),
        "{trixie}"
    );
    assert!(trixie.contains("Architectures: amd64 arm64\nComponents: main contrib\n"));
    assert!(!trixie.contains("Valid-Until"));
    let updates = std::fs::read_to_string(t.path().join("dists/trixie-updates/Release")).unwrap();
    assert!(
        updates.contains("Valid-Until: Tue, 09 Jan 2024 00:00:00 UTC\n"),
        "{updates}"
    );
    assert!(updates.contains("Acquire-By-Hash: yes\n"));
    let amd64 =
        std::fs::read_to_string(t.path().join("dists/trixie/main/binary-amd64/Packages")).unwrap();
    let arm64 =
        std::fs::read_to_string(t.path().join("dists/trixie/main/binary-arm64/Packages")).unwrap();
    assert!(amd64.contains("Package: tzdata\n") && arm64.contains("Package: tzdata\n"));
    assert!(amd64.contains("Package: hello\n") && !arm64.contains("Package: hello\n"));
    assert!(amd64.contains("\nEssential: yes\n"));
    assert!(amd64.contains("Filename: pool/main/h/hello/hello_2.10-3_amd64.deb\n"));
    assert!(amd64.contains("Filename: pool/main/f/foo/libfoo1_1.0-1_amd64.deb\n"));
    assert!(arm64.contains("Filename: pool/main/f/foo/libfoo1_1.0-1_arm64.deb\n"));
    // by-hash copies.
    for (rel, hash) in &repo.dists {
        if rel.starts_with("dists/trixie-updates/main/binary-amd64/Packages") {
            assert!(
                repo.dists.contains_key(&format!(
                    "dists/trixie-updates/main/binary-amd64/by-hash/SHA256/{hash}"
                )),
                "{rel}"
            );
        }
    }
    assert_eq!(repo.debs.len(), 6);
    assert!(repo.deb("tzdata").0.is_file());

    // Tampered, or verified with another key: refused.
    let inrelease = std::fs::read(t.path().join("dists/trixie/InRelease")).unwrap();
    let tampered = String::from_utf8(inrelease.clone())
        .unwrap()
        .replace("Codename: trixie", "Codename: trixif");
    assert!(matches!(
        verify_inrelease(tampered.as_bytes(), &keyring, now()),
        Err(SignatureError::BadSignature { .. })
    ));
    let other = TestKey::new(2);
    assert_ne!(other.fingerprint(), key.fingerprint());
    assert_eq!(
        verify_inrelease(&inrelease, &other.public_keyring(), now()),
        Err(SignatureError::NoKnownKey {
            key_ids: vec![key.signing_fingerprint()]
        })
    );
}

#[test]
fn repos_and_keys_are_deterministic() {
    assert_eq!(
        TestKey::new(5).public_keyring(),
        TestKey::new(5).public_keyring()
    );
    assert_eq!(
        TestKey::new(5).clearsign(b"a\nb\n"),
        TestKey::new(5).clearsign(b"a\nb\n")
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = TestKey::new(3);
    let ra = build_repo(a.path(), &repo_spec(), &key);
    let rb = build_repo(b.path(), &repo_spec(), &key);
    assert_eq!(ra.dists, rb.dists);
    let hashes = |r: &Repo| -> BTreeMap<String, String> {
        r.debs
            .iter()
            .map(|(k, v)| (k.clone(), v.1.clone()))
            .collect()
    };
    assert_eq!(hashes(&ra), hashes(&rb));
}

#[test]
fn clearsign_matches_gnupg_conventions() {
    let key = TestKey::new(9);
    let text = b"Origin: x\n- dash\ntrailing  \n";
    let signed = String::from_utf8(key.clearsign(text)).unwrap();
    assert!(signed.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"));
    // Body is the text, dash-escaped, followed directly by the signature.
    assert!(
        signed.contains("\n\nOrigin: x\n- - dash\ntrailing  \n-----BEGIN PGP SIGNATURE-----"),
        "{signed}"
    );
    assert_eq!(
        verify_inrelease(signed.as_bytes(), &key.public_keyring(), now()).unwrap(),
        text
    );
}

#[test]
fn gpgv_accepts_inrelease_and_release_gpg() {
    if !have("gpgv") {
        eprintln!("skipping: gpgv not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let key = TestKey::new(1);
    let _repo = build_repo(&t.path().join("repo"), &repo_spec(), &key);
    let keyring = t.path().join("test.gpg");
    std::fs::write(&keyring, key.public_keyring()).unwrap();
    let home = t.path().join("gnupg");
    std::fs::create_dir(&home).unwrap();
    let dists = t.path().join("repo/dists/trixie");
    let gpgv = |args: &[&Path]| {
        let out = Command::new("gpgv")
            .env("GNUPGHOME", &home)
            .arg("--keyring")
            .arg(&keyring)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = gpgv(&[&dists.join("InRelease")]);
    assert!(ok, "gpgv InRelease: {err}");
    assert!(err.contains("Good signature"), "{err}");
    let (ok, err) = gpgv(&[&dists.join("Release.gpg"), &dists.join("Release")]);
    assert!(ok, "gpgv Release.gpg: {err}");

    // gpgv also refuses the tampered copy.
    let tampered = t.path().join("tampered");
    let text = std::fs::read_to_string(dists.join("InRelease")).unwrap();
    std::fs::write(
        &tampered,
        text.replace("Codename: trixie", "Codename: trixif"),
    )
    .unwrap();
    let (ok, _) = gpgv(&[&tampered]);
    assert!(!ok);
}

/// A minimal HTTP/1.1 client: (status, headers, body).
fn http(url: &str, method: &str, path: &str) -> (u16, String, Vec<u8>) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(resp[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

#[test]
fn server_serves_files_counts_hits_and_injects_faults() {
    let t = tempfile::tempdir().unwrap();
    let repo = build_repo(t.path(), &repo_spec(), &TestKey::new(1));
    let server = FixtureServer::start(t.path());
    let url = server.url();
    assert!(url.starts_with("http://127.0.0.1:"));

    let inrelease = std::fs::read(t.path().join("dists/trixie/InRelease")).unwrap();
    let (status, head, body) = http(&url, "GET", "/dists/trixie/InRelease");
    assert_eq!(status, 200);
    assert_eq!(body, inrelease);
    assert!(
        head.contains(&format!("Content-Length: {}", inrelease.len())),
        "{head}"
    );

    let (deb_path, deb_sha) = repo.deb("libzz");
    let rel = deb_path.strip_prefix(t.path()).unwrap().to_str().unwrap();
    let (status, _, body) = http(&url, "GET", &format!("/{rel}"));
    assert_eq!(status, 200);
    assert_eq!(&sha256_hex(&body), deb_sha);

    let (status, head, body) = http(&url, "HEAD", "/dists/trixie/InRelease");
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(head.contains(&format!("Content-Length: {}", inrelease.len())));

    assert_eq!(http(&url, "GET", "/dists/nope/InRelease").0, 404);
    assert_eq!(http(&url, "GET", "/dists/").0, 404);
    assert_eq!(http(&url, "GET", "/../../etc/passwd").0, 404);
    assert_eq!(http(&url, "GET", "/dists/%2e%2e/%2e%2e/etc/passwd").0, 404);
    assert_eq!(http(&url, "POST", "/dists/trixie/InRelease").0, 405);
    // Percent-encoded names are decoded.
    assert_eq!(http(&url, "GET", "/dists/trixie/%49nRelease").0, 200);

    server.fail_next("/InRelease", 503, 2);
    assert_eq!(http(&url, "GET", "/dists/trixie/InRelease").0, 503);
    assert_eq!(http(&url, "GET", "/dists/trixie-updates/InRelease").0, 503);
    assert_eq!(http(&url, "GET", "/dists/trixie/InRelease").0, 200);

    assert_eq!(server.hits("/dists/trixie/InRelease"), 6);
    assert_eq!(server.hits("dists/trixie-updates/InRelease"), 1);
    assert_eq!(server.hits(&format!("/{rel}")), 1);
    assert_eq!(server.total_hits(), 12);
    assert_eq!(server.requests()[0], "GET /dists/trixie/InRelease");
    server.reset_hits();
    assert_eq!(server.total_hits(), 0);

    drop(server);
    // Stopped: nothing answers any more.
    let addr = url.strip_prefix("http://").unwrap();
    let still = TcpStream::connect(addr).and_then(|mut s| {
        s.write_all(b"GET / HTTP/1.1\r\n\r\n")?;
        let mut b = Vec::new();
        s.read_to_end(&mut b)?;
        Ok(b)
    });
    assert!(still.map_or(true, |b| b.is_empty()));
}
