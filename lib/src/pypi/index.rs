//! Project pages of a Python package index, parsed without doing any IO: the JSON form
//! (PEP 691, `application/vnd.pypi.simple.v1+json`) and the HTML form (PEP 503, with the
//! PEP 592 `data-yanked`, PEP 503 `data-requires-python` and PEP 658/714 core-metadata
//! attributes).
//!
//! Every file's URL is made absolute against the page URL (RFC 3986 §5.2, as PEP 691
//! asks for relative `url`s and browsers do for `href`s; an HTML `<base href>` is
//! honoured, as pip does) and its `#fragment` removed; a `#sha256=` fragment becomes the
//! file's hash in the HTML form. Hashes are checked to be 64 hex digits and lower-cased.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::filename::normalize_name;

/// The `Accept` header for project pages: JSON preferred, HTML accepted (PEP 691).
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Why a project page cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The JSON does not have the PEP 691 shape.
    #[error("project page {url} is not valid PEP 691 JSON: {reason}")]
    Json {
        /// The page URL.
        url: String,
        /// serde_json's message.
        reason: String,
    },
    /// The page declares an API version whose major this parser does not know (PEP 629:
    /// clients MUST fail then).
    #[error("project page {url} has repository API version `{version}`; only 1.x is supported")]
    ApiVersion {
        /// The page URL.
        url: String,
        /// The declared version.
        version: String,
    },
    /// A hash that is not 64 hex digits.
    #[error("project page {url} gives `{filename}` an invalid sha256 `{value}`")]
    Hash {
        /// The page URL.
        url: String,
        /// The file it is for.
        filename: String,
        /// The value as given.
        value: String,
    },
    /// A link that cannot be made into an absolute URL.
    #[error("project page {url} links to `{href}`, which cannot be resolved: {reason}")]
    Url {
        /// The page URL.
        url: String,
        /// The link as given (entities decoded).
        href: String,
        /// What is wrong.
        reason: String,
    },
    /// A content type that is neither PEP 691 JSON nor HTML.
    #[error("project page {url} has content type `{content_type}`, neither PEP 691 JSON nor HTML")]
    ContentType {
        /// The page URL.
        url: String,
        /// The `Content-Type` as received.
        content_type: String,
    },
}

/// That a file's core metadata is served on its own at `<file url>.metadata` (PEP 658,
/// PEP 714), and its hash when the index gives one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoreMetadataFile {
    /// The metadata file's sha256, lower-case hex, when given.
    pub sha256: Option<String>,
}

/// One file listed on a project page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectFile {
    /// The file name (for HTML: the last path segment of the URL, percent-decoded).
    pub filename: String,
    /// Absolute URL, without fragment.
    pub url: String,
    /// sha256, lower-case hex, when the index gives one.
    pub sha256: Option<String>,
    /// `Requires-Python` as the index gives it (unparsed; `None` when absent or empty).
    pub requires_python: Option<String>,
    /// `Some(reason)` when the file is yanked (PEP 592); the reason may be empty.
    pub yanked: Option<String>,
    /// Present when the index serves the file's core metadata on its own.
    pub core_metadata: Option<CoreMetadataFile>,
    /// Size in bytes, when given (JSON only).
    pub size: Option<u64>,
}

/// The project page URL under an index: `<index>/<normalized name>/`
/// (`https://pypi.org/simple` + `Zope.Interface` → `https://pypi.org/simple/zope-interface/`).
pub fn project_url(index_url: &str, name: &str) -> String {
    format!(
        "{}/{}/",
        index_url.trim_end_matches('/'),
        normalize_name(name)
    )
}

/// Parses a project page by its `Content-Type` (parameters ignored): PEP 691 JSON for
/// `application/vnd.pypi.simple.v1+json` (or `.latest+json`), HTML for
/// `application/vnd.pypi.simple.v1+html`, `.latest+html` or `text/html`.
///
/// # Errors
/// [`IndexError::ContentType`] for any other type; otherwise as [`parse_json`] and
/// [`parse_html`] (a body that is not UTF-8 is a [`IndexError::Json`]-like error for JSON,
/// and decoded lossily for HTML).
pub fn parse_page(
    page_url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<ProjectFile>, IndexError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => {
            parse_json(page_url, body)
        }
        "application/vnd.pypi.simple.v1+html"
        | "application/vnd.pypi.simple.latest+html"
        | "text/html" => parse_html(page_url, &String::from_utf8_lossy(body)),
        _ => Err(IndexError::ContentType {
            url: page_url.to_string(),
            content_type: content_type.to_string(),
        }),
    }
}

#[derive(Deserialize)]
struct JsonPage {
    meta: JsonMeta,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: String,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<JsonYanked>,
    #[serde(rename = "core-metadata", default)]
    core_metadata: Option<JsonMetadata>,
    #[serde(rename = "dist-info-metadata", default)]
    dist_info_metadata: Option<JsonMetadata>,
    #[serde(default)]
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonYanked {
    Flag(bool),
    Reason(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonMetadata {
    Flag(bool),
    Hashes(BTreeMap<String, String>),
}

/// Parses a PEP 691 JSON project page.
///
/// `core-metadata` is preferred over its older name `dist-info-metadata` (PEP 714);
/// `yanked: true` gives an empty reason.
///
/// # Errors
/// [`IndexError::Json`] when the body is not JSON of the PEP 691 shape (`meta.api-version`
/// and `files` are required), [`IndexError::ApiVersion`] when the major version is not 1,
/// [`IndexError::Hash`] for a malformed sha256, [`IndexError::Url`] for a file URL that
/// cannot be made absolute.
pub fn parse_json(page_url: &str, body: &[u8]) -> Result<Vec<ProjectFile>, IndexError> {
    let page: JsonPage = serde_json::from_slice(body).map_err(|e| IndexError::Json {
        url: page_url.to_string(),
        reason: e.to_string(),
    })?;
    check_api_version(page_url, &page.meta.api_version)?;
    page.files
        .into_iter()
        .map(|file| {
            let (url, fragment) = resolve(page_url, page_url, &file.url)?;
            let sha256 = match file.hashes.get("sha256") {
                Some(value) => Some(value.as_str()),
                None => fragment.as_deref().and_then(fragment_sha256),
            };
            let sha256 = check_sha256(page_url, &file.filename, sha256)?;
            let metadata = match (file.core_metadata, file.dist_info_metadata) {
                (Some(m), _) | (None, Some(m)) => match m {
                    JsonMetadata::Flag(false) => None,
                    JsonMetadata::Flag(true) => Some(None),
                    JsonMetadata::Hashes(hashes) => Some(hashes.get("sha256").cloned()),
                },
                (None, None) => None,
            };
            let core_metadata = match metadata {
                None => None,
                Some(sha) => Some(CoreMetadataFile {
                    sha256: check_sha256(page_url, &file.filename, sha.as_deref())?,
                }),
            };
            Ok(ProjectFile {
                url,
                sha256,
                requires_python: file.requires_python.filter(|r| !r.trim().is_empty()),
                yanked: match file.yanked {
                    None | Some(JsonYanked::Flag(false)) => None,
                    Some(JsonYanked::Flag(true)) => Some(String::new()),
                    Some(JsonYanked::Reason(reason)) => Some(reason),
                },
                core_metadata,
                size: file.size,
                filename: file.filename,
            })
        })
        .collect()
}

/// Parses a PEP 503 HTML project page: every `<a href>` is a file. Attributes are
/// `data-requires-python`, `data-yanked`, `data-core-metadata` (or the older
/// `data-dist-info-metadata`), entities decoded; the hash comes from a `#sha256=` fragment.
/// A `<meta name="pypi:repository-version">` with a major version other than 1 is refused
/// (PEP 629). Comments are skipped; anything else that is not an anchor is ignored.
///
/// # Errors
/// [`IndexError::ApiVersion`], [`IndexError::Hash`] for a malformed sha256,
/// [`IndexError::Url`] for an `href` that cannot be made absolute or has no file name.
pub fn parse_html(page_url: &str, body: &str) -> Result<Vec<ProjectFile>, IndexError> {
    let mut files = Vec::new();
    let mut base: Option<String> = None;
    let mut scanner = Scanner { text: body, pos: 0 };
    while let Some(tag) = scanner.next_tag() {
        match tag.name.as_str() {
            "base" if base.is_none() => {
                if let Some(href) = tag.attr("href") {
                    base = Some(resolve(page_url, page_url, href)?.0);
                }
            }
            "meta" => {
                let is_version = tag
                    .attr("name")
                    .is_some_and(|n| n.eq_ignore_ascii_case("pypi:repository-version"));
                if let (true, Some(version)) = (is_version, tag.attr("content")) {
                    check_api_version(page_url, version)?;
                }
            }
            "a" => {
                let text = scanner.anchor_text();
                let Some(href) = tag.attr("href").filter(|h| !h.trim().is_empty()) else {
                    continue;
                };
                let (url, fragment) = resolve(page_url, base.as_deref().unwrap_or(page_url), href)?;
                let filename = match url_filename(&url) {
                    Some(name) => name,
                    None if !text.is_empty() => text,
                    None => {
                        return Err(IndexError::Url {
                            url: page_url.to_string(),
                            href: href.to_string(),
                            reason: "it names no file".to_string(),
                        });
                    }
                };
                let sha256 = fragment.as_deref().and_then(fragment_sha256);
                let sha256 = check_sha256(page_url, &filename, sha256)?;
                let metadata = tag
                    .attr("data-core-metadata")
                    .or_else(|| tag.attr("data-dist-info-metadata"));
                let core_metadata = match metadata {
                    None => None,
                    Some(value) if value.trim().eq_ignore_ascii_case("false") => None,
                    Some(value) => {
                        let sha = value.trim().strip_prefix("sha256=");
                        Some(CoreMetadataFile {
                            sha256: check_sha256(page_url, &filename, sha)?,
                        })
                    }
                };
                files.push(ProjectFile {
                    sha256,
                    requires_python: tag
                        .attr("data-requires-python")
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_string),
                    yanked: tag.attr("data-yanked").map(str::to_string),
                    core_metadata,
                    size: None,
                    url,
                    filename,
                });
            }
            _ => {}
        }
    }
    Ok(files)
}

fn check_api_version(page_url: &str, version: &str) -> Result<(), IndexError> {
    if version.trim().split('.').next() == Some("1") {
        Ok(())
    } else {
        Err(IndexError::ApiVersion {
            url: page_url.to_string(),
            version: version.to_string(),
        })
    }
}

/// The value of `sha256=` in a fragment (`sha256=abc` or `a=b&sha256=abc`).
fn fragment_sha256(fragment: &str) -> Option<&str> {
    fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("sha256="))
}

fn check_sha256(
    page_url: &str,
    filename: &str,
    value: Option<&str>,
) -> Result<Option<String>, IndexError> {
    match value {
        None => Ok(None),
        Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(v.to_ascii_lowercase()))
        }
        Some(v) => Err(IndexError::Hash {
            url: page_url.to_string(),
            filename: filename.to_string(),
            value: v.to_string(),
        }),
    }
}

/// The last path segment of an absolute URL, percent-decoded; `None` when empty or not UTF-8.
fn url_filename(url: &str) -> Option<String> {
    let parts = split_url(url);
    let segment = parts.path.rsplit('/').next().unwrap_or_default();
    if segment.is_empty() {
        return None;
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

/// A URL split per RFC 3986 appendix B: `scheme:` `//authority` path `?query` `#fragment`.
struct UrlParts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split_url(url: &str) -> UrlParts<'_> {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    // A scheme is the text before the first `:` if no `/` comes earlier and it is valid.
    let (scheme, rest) = match rest.split_once(':') {
        Some((scheme, after))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (Some(scheme), after)
        }
        _ => (None, rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(slash) => (Some(&after[..slash]), &after[slash..]),
            None => (Some(after), ""),
        },
        None => (None, rest),
    };
    UrlParts {
        scheme,
        authority,
        path,
        query,
        fragment,
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path.to_string();
    let mut output = String::with_capacity(path.len());
    fn pop_segment(output: &mut String) {
        match output.rfind('/') {
            Some(i) => output.truncate(i),
            None => output.clear(),
        }
    }
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_string();
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_string();
        } else if input.starts_with("/./") {
            input.replace_range(..3, "/");
        } else if input == "/." {
            input = "/".to_string();
        } else if input.starts_with("/../") {
            input.replace_range(..4, "/");
            pop_segment(&mut output);
        } else if input == "/.." {
            input = "/".to_string();
            pop_segment(&mut output);
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input.replace_range(..end, "");
        }
    }
    output
}

/// Resolves `reference` against the absolute `base` (RFC 3986 §5.2.2), returning the
/// target without its fragment, and the fragment.
fn resolve(
    page_url: &str,
    base: &str,
    reference: &str,
) -> Result<(String, Option<String>), IndexError> {
    let reference = reference.trim();
    let err = |reason: &str| IndexError::Url {
        url: page_url.to_string(),
        href: reference.to_string(),
        reason: reason.to_string(),
    };
    let b = split_url(base);
    let r = split_url(reference);
    let Some(base_scheme) = b.scheme else {
        return Err(err("the page URL is not absolute"));
    };
    let (scheme, authority, path, query);
    if let Some(s) = r.scheme {
        scheme = s;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = base_scheme;
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            authority = b.authority;
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else if b.authority.is_some() && b.path.is_empty() {
                    remove_dot_segments(&format!("/{}", r.path))
                } else {
                    let dir = b.path.rfind('/').map_or("", |i| &b.path[..=i]);
                    remove_dot_segments(&format!("{dir}{}", r.path))
                };
                query = r.query;
            }
        }
    }
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "file"
    ) {
        return Err(err("only http, https and file URLs can be fetched"));
    }
    let mut out = format!("{scheme}:");
    if let Some(authority) = authority {
        out.push_str("//");
        out.push_str(authority);
    }
    out.push_str(&path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok((out, r.fragment.map(str::to_string)))
}

/// A start tag: its lower-cased name and attributes (names lower-cased, values decoded,
/// first occurrence wins).
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A forward-only scanner over HTML that yields start tags.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// The next start tag; end tags, comments, doctypes and processing instructions are
    /// skipped. `None` at the end of the text.
    fn next_tag(&mut self) -> Option<Tag> {
        loop {
            let lt = self.rest().find('<')?;
            self.pos += lt;
            let rest = self.rest();
            if let Some(comment) = rest.strip_prefix("<!--") {
                self.pos += comment.find("-->").map_or(rest.len(), |i| i + 4 + 3);
                continue;
            }
            let after = &rest[1..];
            if after.starts_with(['!', '?', '/']) {
                // Doctype, processing instruction or end tag: skip to `>`.
                self.pos += rest.find('>').map_or(rest.len(), |i| i + 1);
                continue;
            }
            let name_len = after
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            if name_len == 0 || !after.starts_with(|c: char| c.is_ascii_alphabetic()) {
                // A stray `<` in text.
                self.pos += 1;
                continue;
            }
            let name = after[..name_len].to_ascii_lowercase();
            self.pos += 1 + name_len;
            let attrs = self.attributes();
            return Some(Tag { name, attrs });
        }
    }

    /// Attributes up to and including the closing `>` of the current tag. Quoted values
    /// may hold `>` (`data-requires-python=">=3.9"` is common unescaped).
    fn attributes(&mut self) -> Vec<(String, String)> {
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            let rest = self.rest();
            let skip = rest
                .find(|c: char| !(c.is_ascii_whitespace() || c == '/'))
                .unwrap_or(rest.len());
            self.pos += skip;
            let rest = self.rest();
            if rest.is_empty() {
                return attrs;
            }
            if rest.starts_with('>') {
                self.pos += 1;
                return attrs;
            }
            // At least one character, so that a stray `=` cannot stall the scan (it is
            // ASCII, so one byte is a character boundary).
            let name_len = rest
                .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
                .unwrap_or(rest.len())
                .max(1);
            let name = rest[..name_len].to_ascii_lowercase();
            self.pos += name_len;
            let rest = self.rest();
            let ws = rest
                .find(|c: char| !c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let value = if rest[ws..].starts_with('=') {
                self.pos += ws + 1;
                let rest = self.rest();
                let ws = rest
                    .find(|c: char| !c.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                self.pos += ws;
                let rest = self.rest();
                let raw = match rest.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let end = rest[1..].find(q).map_or(rest.len(), |i| i + 1);
                        self.pos += (end + 1).min(rest.len());
                        &rest[1..end]
                    }
                    _ => {
                        let end = rest
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .unwrap_or(rest.len());
                        self.pos += end;
                        &rest[..end]
                    }
                };
                unescape(raw)
            } else {
                String::new()
            };
            if !attrs.iter().any(|(n, _)| *n == name) {
                attrs.push((name, value));
            }
        }
    }

    /// The text up to the next `</a>` — or the next `<a`, should one be left unclosed —
    /// with tags inside removed, entities decoded, trimmed; the scanner moves up to there.
    fn anchor_text(&mut self) -> String {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let is_a_at = |i: usize| {
            bytes.get(i).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
                && bytes.get(i + 1).is_none_or(|c| !c.is_ascii_alphanumeric())
        };
        let end = rest
            .match_indices('<')
            .map(|(i, _)| i)
            .find(|&i| is_a_at(i + 1) || (bytes.get(i + 1) == Some(&b'/') && is_a_at(i + 2)))
            .unwrap_or(rest.len());
        let inner = &rest[..end];
        self.pos += end;
        let mut text = String::new();
        let mut in_tag = false;
        for c in inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        unescape(text.trim())
    }
}

/// Decodes HTML character references: `&lt; &gt; &amp; &quot; &apos; &#39;`, any decimal
/// `&#N;` or hex `&#xH;`. Unknown or malformed references are left as they are.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let number = entity.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse::<u32>().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const H1: &str = "b3a3d2d4eb7a1f2f7e3c4ab2f8e8a9c1d9e0f1a2b3c4d5e6f708192a3b4c5d6e";
    const H2: &str = "0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";
    const H3: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const M1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn numpy_json() -> String {
        format!(
            r#"{{
  "meta": {{"_last-serial": 30111111, "api-version": "1.4"}},
  "name": "numpy",
  "versions": ["2.3.1", "2.3.2"],
  "files": [
    {{"core-metadata": {{"sha256": "{M1}"}}, "data-dist-info-metadata": {{"sha256": "{M1}"}},
      "filename": "numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
      "hashes": {{"sha256": "{H1}"}}, "provenance": null, "requires-python": ">=3.11",
      "size": 16605347, "upload-time": "2025-07-24T20:45:00.000000Z",
      "url": "https://files.pythonhosted.org/packages/aa/bb/numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
      "yanked": false}},
    {{"core-metadata": true, "dist-info-metadata": true,
      "filename": "numpy-2.3.2-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
      "hashes": {{"sha256": "{}"}}, "requires-python": ">=3.11", "size": 14000000,
      "url": "../../packages/cc/dd/numpy-2.3.2-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
      "yanked": false}},
    {{"core-metadata": false, "dist-info-metadata": false,
      "filename": "numpy-2.3.2.tar.gz", "hashes": {{"sha256": "{H2}", "md5": "00"}},
      "requires-python": ">=3.11", "size": 20558167,
      "url": "https://files.pythonhosted.org/packages/ee/ff/numpy-2.3.2.tar.gz", "yanked": false}},
    {{"dist-info-metadata": {{"sha256": "{M1}"}},
      "filename": "numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl",
      "hashes": {{}}, "requires-python": null,
      "url": "https://files.pythonhosted.org/packages/11/22/numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl#sha256={H3}",
      "yanked": "broken on aarch64"}},
    {{"filename": "numpy-2.3.0-py3-none-any.whl", "hashes": {{}},
      "url": "https://files.pythonhosted.org/numpy-2.3.0-py3-none-any.whl", "yanked": true}}
  ]
}}"#,
            H1.to_uppercase()
        )
    }

    #[test]
    fn parses_pep691_json() {
        let files = parse_json("https://pypi.org/simple/numpy/", numpy_json().as_bytes()).unwrap();
        assert_eq!(files.len(), 5);
        assert_eq!(
            files[0],
            ProjectFile {
                filename: "numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
                    .into(),
                url: "https://files.pythonhosted.org/packages/aa/bb/numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl".into(),
                sha256: Some(H1.into()),
                requires_python: Some(">=3.11".into()),
                yanked: None,
                core_metadata: Some(CoreMetadataFile { sha256: Some(M1.into()) }),
                size: Some(16605347),
            }
        );
        // Relative URL, upper-case hash, metadata without a hash.
        assert_eq!(
            files[1].url,
            "https://pypi.org/packages/cc/dd/numpy-2.3.2-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl"
        );
        assert_eq!(files[1].sha256.as_deref(), Some(H1));
        assert_eq!(
            files[1].core_metadata,
            Some(CoreMetadataFile { sha256: None })
        );
        // sdist: no metadata file.
        assert_eq!(files[2].core_metadata, None);
        assert_eq!(files[2].sha256.as_deref(), Some(H2));
        // Yanked with a reason, hash from the fragment, the old metadata key.
        assert_eq!(files[3].yanked.as_deref(), Some("broken on aarch64"));
        assert_eq!(files[3].sha256.as_deref(), Some(H3));
        assert!(!files[3].url.contains('#'));
        assert_eq!(files[3].requires_python, None);
        assert_eq!(
            files[3].core_metadata,
            Some(CoreMetadataFile {
                sha256: Some(M1.into())
            })
        );
        // Yanked without a reason.
        assert_eq!(files[4].yanked.as_deref(), Some(""));
        assert_eq!(files[4].sha256, None);
        assert_eq!(files[4].size, None);

        let via_type = parse_page(
            "https://pypi.org/simple/numpy/",
            "application/vnd.pypi.simple.v1+json; charset=utf-8",
            numpy_json().as_bytes(),
        )
        .unwrap();
        assert_eq!(via_type, files);
    }

    #[test]
    fn json_errors() {
        let url = "https://pypi.org/simple/numpy/";
        let v2 = br#"{"meta": {"api-version": "2.0"}, "files": []}"#;
        assert!(matches!(
            parse_json(url, v2),
            Err(IndexError::ApiVersion { .. })
        ));
        let no_meta = br#"{"files": []}"#;
        assert!(matches!(
            parse_json(url, no_meta),
            Err(IndexError::Json { .. })
        ));
        let html = b"<html></html>";
        assert!(matches!(
            parse_json(url, html),
            Err(IndexError::Json { .. })
        ));
        let bad_hash = br#"{"meta": {"api-version": "1.0"}, "files": [
            {"filename": "x-1.0.tar.gz", "url": "x-1.0.tar.gz", "hashes": {"sha256": "abc"}}]}"#;
        let e = parse_json(url, bad_hash).unwrap_err();
        assert!(e.to_string().contains("x-1.0.tar.gz"), "{e}");
        assert!(matches!(
            parse_page(url, "application/json", b"{}"),
            Err(IndexError::ContentType { .. })
        ));
    }

    fn numpy_html() -> String {
        format!(
            r#"<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.4">
    <title>Links for numpy</title>
  </head>
  <body>
    <h1>Links for numpy</h1>
    <!-- <a href="commented-out-1.0.tar.gz">commented-out-1.0.tar.gz</a> -->
    <a href="https://files.pythonhosted.org/packages/aa/bb/numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl#sha256={H1}" data-requires-python="&gt;=3.11" data-dist-info-metadata="sha256={M1}" data-core-metadata="sha256={M1}">numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl</a><br />
    <A HREF='../../packages/ee/ff/numpy-2.3.2.tar.gz#sha256={H2}' data-requires-python=">=3.11">numpy-2.3.2.tar.gz</A><br />
    <a href="/packages/11/22/numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl#sha256={H3}" data-requires-python="&gt;=3.11,&lt;4" data-yanked="broken on &quot;aarch64&quot; &amp; more" data-core-metadata="true">numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl</a><br />
    <a href=numpy-2.3.0-py3-none-any.whl data-yanked>
        numpy-2.3.0-py3-none-any.whl
    </a>
    <a href="https://download.pytorch.org/whl/cu128/torch-2.8.0%2Bcu128-cp313-cp313-manylinux_2_28_x86_64.whl#sha256={H3}&amp;egg=x">torch-2.8.0+cu128-cp313-cp313-manylinux_2_28_x86_64.whl</a>
    <a name="no-href">anchor without a link</a>
  </body>
</html>
<!--SERIAL 30111111-->
"#
        )
    }

    #[test]
    fn parses_pep503_html() {
        let files = parse_html("https://pypi.org/simple/numpy/", &numpy_html()).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
                "numpy-2.3.2.tar.gz",
                "numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl",
                "numpy-2.3.0-py3-none-any.whl",
                "torch-2.8.0+cu128-cp313-cp313-manylinux_2_28_x86_64.whl",
            ]
        );
        assert_eq!(
            files[0],
            ProjectFile {
                filename: names[0].into(),
                url: format!("https://files.pythonhosted.org/packages/aa/bb/{}", names[0]),
                sha256: Some(H1.into()),
                requires_python: Some(">=3.11".into()),
                yanked: None,
                core_metadata: Some(CoreMetadataFile {
                    sha256: Some(M1.into())
                }),
                size: None,
            }
        );
        assert_eq!(
            files[1].url,
            "https://pypi.org/packages/ee/ff/numpy-2.3.2.tar.gz"
        );
        assert_eq!(files[1].sha256.as_deref(), Some(H2));
        assert_eq!(files[1].requires_python.as_deref(), Some(">=3.11"));
        assert_eq!(files[1].core_metadata, None);
        assert_eq!(
            files[2].url,
            "https://pypi.org/packages/11/22/numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl"
        );
        assert_eq!(files[2].requires_python.as_deref(), Some(">=3.11,<4"));
        assert_eq!(
            files[2].yanked.as_deref(),
            Some(r#"broken on "aarch64" & more"#)
        );
        assert_eq!(
            files[2].core_metadata,
            Some(CoreMetadataFile { sha256: None })
        );
        assert_eq!(
            files[3].url,
            "https://pypi.org/simple/numpy/numpy-2.3.0-py3-none-any.whl"
        );
        assert_eq!(files[3].yanked.as_deref(), Some(""));
        assert_eq!(files[3].sha256, None);
        assert_eq!(
            files[4].url,
            "https://download.pytorch.org/whl/cu128/torch-2.8.0%2Bcu128-cp313-cp313-manylinux_2_28_x86_64.whl"
        );
        assert_eq!(files[4].sha256.as_deref(), Some(H3));

        let via_type = parse_page(
            "https://pypi.org/simple/numpy/",
            "text/html; charset=utf-8",
            numpy_html().as_bytes(),
        )
        .unwrap();
        assert_eq!(via_type, files);
    }

    #[test]
    fn html_base_and_version_and_errors() {
        let page = r#"<html><head><base href="https://mirror.example/files/"></head>
            <body><a href="x-1.0.tar.gz">x-1.0.tar.gz</a></body></html>"#;
        let files = parse_html("https://index.example/simple/x/", page).unwrap();
        assert_eq!(files[0].url, "https://mirror.example/files/x-1.0.tar.gz");

        let v2 =
            r#"<meta name="pypi:repository-version" content="2.0"><a href="x-1.0.tar.gz">x</a>"#;
        assert!(matches!(
            parse_html("https://i.example/simple/x/", v2),
            Err(IndexError::ApiVersion { .. })
        ));
        let bad = r#"<a href="x-1.0.tar.gz#sha256=xyz">x-1.0.tar.gz</a>"#;
        let e = parse_html("https://i.example/simple/x/", bad).unwrap_err();
        assert!(matches!(e, IndexError::Hash { .. }), "{e}");
        let js = r#"<a href="javascript:alert(1)">x</a>"#;
        assert!(matches!(
            parse_html("https://i.example/simple/x/", js),
            Err(IndexError::Url { .. })
        ));
        // Other hashes in the fragment are not sha256.
        let md5 = r#"<a href="x-1.0.tar.gz#md5=0123">x-1.0.tar.gz</a>"#;
        let files = parse_html("https://i.example/simple/x/", md5).unwrap();
        assert_eq!(files[0].sha256, None);
        assert!(
            parse_html("https://i.example/simple/x/", "")
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_html("https://i.example/simple/x/", "<a href=")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn resolves_references() {
        // RFC 3986 §5.4 examples.
        let base = "http://a/b/c/d;p?q";
        for (reference, expected) in [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
        ] {
            let resolved = match resolve(base, base, reference) {
                Ok((url, _)) => url,
                // `g:h` is a valid reference but not a fetchable scheme.
                Err(_) => reference.to_string(),
            };
            assert_eq!(resolved, expected, "{reference}");
        }
        let (url, fragment) = resolve(
            "https://pypi.org/simple/numpy/",
            "https://pypi.org/simple/numpy/",
            "https://files.example/p/x.whl#sha256=ab",
        )
        .unwrap();
        assert_eq!(url, "https://files.example/p/x.whl");
        assert_eq!(fragment.as_deref(), Some("sha256=ab"));
        assert_eq!(
            resolve("https://h", "https://h", "x.whl").unwrap().0,
            "https://h/x.whl"
        );
        assert!(resolve("relative/", "relative/", "x.whl").is_err());
    }

    #[test]
    fn unescapes_entities() {
        assert_eq!(unescape("&lt;&gt;&amp;&quot;&#39;&apos;"), "<>&\"''");
        assert_eq!(unescape("&#x3E;=3.9"), ">=3.9");
        assert_eq!(
            unescape("a & b &unknown; &#xZZ; &"),
            "a & b &unknown; &#xZZ; &"
        );
        assert_eq!(unescape("&amp;lt;"), "&lt;");
    }

    #[test]
    fn project_urls() {
        assert_eq!(
            project_url("https://pypi.org/simple", "Zope.Interface"),
            "https://pypi.org/simple/zope-interface/"
        );
        assert_eq!(
            project_url("https://pypi.org/simple/", "nvidia_cudnn_cu12"),
            "https://pypi.org/simple/nvidia-cudnn-cu12/"
        );
    }
}
