//! Findings and the report: text for people, JSON (serde) for scripts, in one stable order.

use std::fmt::Write as _;

use serde::Serialize;

/// How bad a finding is. Errors fail `compose check` and `compose build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The image will not work as built.
    Error,
    /// Suspicious, or not checkable.
    Warning,
    /// A fact worth showing (the driver floor, an allowed finding).
    Info,
}

impl Severity {
    /// `error`, `warning`, `info`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// One problem or fact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// Severity (first: the report lists errors first).
    pub severity: Severity,
    /// The check: `elf-closure`, `abi`, `wheel-tag`, `cuda`, `elf`.
    pub check: String,
    /// The file concerned, as an absolute path in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What the finding is about: a missing library, a version, a distribution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The package that shipped the file (`libfoo1 1.0-1 (deb)`, `numpy 2.3.0 (wheel)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// What is wrong, in words.
    pub detail: String,
}

impl Finding {
    /// A finding of `check` with `severity` and `detail`.
    #[must_use]
    pub fn new(check: &str, severity: Severity, detail: impl Into<String>) -> Self {
        Self {
            severity,
            check: check.into(),
            file: None,
            subject: None,
            package: None,
            detail: detail.into(),
        }
    }

    /// Sets the file (given relative to the image root).
    #[must_use]
    pub fn file(mut self, path: &str) -> Self {
        self.file = Some(format!("/{}", path.trim_start_matches('/')));
        self
    }

    /// Sets the subject.
    #[must_use]
    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }

    /// Sets the package.
    #[must_use]
    pub fn package(mut self, p: Option<&str>) -> Self {
        self.package = p.map(str::to_owned);
        self
    }
}

/// The CUDA facts of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CudaSummary {
    /// CUDA majors of the nvidia wheels.
    pub majors: Vec<u32>,
    /// The CUDA runtime (`major.minor`) and the distribution that ships it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The lowest driver that runs it (minor-version compatibility).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_min: Option<String>,
    /// The driver of the toolkit release itself (every feature, PTX JIT included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_full: Option<String>,
}

/// What was looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Paths in the merged tree.
    pub paths: usize,
    /// ELF files read.
    pub elf_files: usize,
    /// Installed wheels (`.dist-info` directories with a `WHEEL` file).
    pub wheels: usize,
    /// Files whose package is known.
    pub owned_files: usize,
}

/// The result of checking one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The image checked (its path).
    pub image: String,
    /// Checks run.
    pub checks: Vec<String>,
    /// Every finding, errors first, then by check, file, subject.
    pub findings: Vec<Finding>,
    /// CUDA facts, when the image has CUDA wheels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda: Option<CudaSummary>,
    /// What was looked at.
    pub counts: Counts,
}

impl Report {
    /// Sorts and deduplicates the findings (the stable order of every output).
    pub fn normalize(&mut self) {
        self.findings.sort();
        self.findings.dedup();
        self.checks.sort();
        self.checks.dedup();
    }

    /// Findings of `severity`.
    #[must_use]
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether the image passes (no errors).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.count(Severity::Error) == 0
    }

    /// The report for people.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = write!(out, "{}[{}]", f.severity.as_str(), f.check);
            if let Some(file) = &f.file {
                let _ = write!(out, " {file}");
            }
            if let Some(p) = &f.package {
                let _ = write!(out, " (from {p})");
            }
            out.push('\n');
            let _ = writeln!(out, "    {}", f.detail);
        }
        if let Some(c) = &self.cuda
            && let Some(d) = &c.driver_min
        {
            let _ = writeln!(
                out,
                "CUDA {}: needs NVIDIA driver >= {d}{}",
                c.runtime.as_deref().unwrap_or("?"),
                c.driver_full
                    .as_deref()
                    .map(|f| format!(" (>= {f} for every feature of this release)"))
                    .unwrap_or_default()
            );
        }
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        let _ = writeln!(
            out,
            "{}: {}, {} ({} ELF files, {} wheels, {} paths)",
            if self.passed() { "passed" } else { "FAILED" },
            plural(self.count(Severity::Error), "error"),
            plural(self.count(Severity::Warning), "warning"),
            self.counts.elf_files,
            self.counts.wheels,
            self.counts.paths,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_come_first_in_a_stable_order() {
        let mut r = Report {
            findings: vec![
                Finding::new("cuda", Severity::Info, "floor"),
                Finding::new("elf-closure", Severity::Error, "b").file("usr/lib/b.so"),
                Finding::new("abi", Severity::Error, "a").file("/usr/lib/a.so"),
                Finding::new("abi", Severity::Error, "a").file("/usr/lib/a.so"),
            ],
            ..Report::default()
        };
        r.normalize();
        let order: Vec<(&str, Option<&str>)> = r
            .findings
            .iter()
            .map(|f| (f.check.as_str(), f.file.as_deref()))
            .collect();
        assert_eq!(
            order,
            [
                ("abi", Some("/usr/lib/a.so")),
                ("elf-closure", Some("/usr/lib/b.so")),
                ("cuda", None)
            ]
        );
        assert!(!r.passed());
        let text = r.to_text();
        assert!(text.contains("error[abi] /usr/lib/a.so\n    a\n"), "{text}");
        assert!(
            text.ends_with("FAILED: 2 errors, 0 warnings (0 ELF files, 0 wheels, 0 paths)\n"),
            "{text}"
        );
        let json = serde_json::to_value(&r)
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert!(json.contains(r#""severity":"error""#), "{json}");
    }
}
