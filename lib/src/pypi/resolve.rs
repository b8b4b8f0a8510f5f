//! PyPI dependency resolution for the image, pure and deterministic: pubgrub over a
//! [`Provider`] that knows the index.
//!
//! [`resolve_python`] makes ONE resolution across all of an image's Python layers, as pip or
//! uv would for one environment:
//!
//! - **Names** are normalized (PEP 503); the provider is always asked with the normalized
//!   name.
//! - **Markers** are evaluated against the image's [`MarkerEnvironment`] (not the host's);
//!   a requirement whose marker is false is dropped.
//! - **Extras** are virtual packages, uv's way: `name[extra]` at version V depends on
//!   `name == V` plus the requirements whose marker holds only with that extra in scope
//!   (`extra == "socks"`). An extra the project does not provide pulls nothing (pip warns
//!   and goes on).
//! - **Candidates**: a version is usable when its Requires-Python contains the image's
//!   Python, it has a wheel the image can use (a version with only an sdist is never
//!   chosen), and it is not yanked, unless some requirement pins exactly that version
//!   (`==V`, `===V`, PEP 592) or `prefer` names it.
//! - **Choice**: the highest usable version in range; a version in `prefer` wins when it is
//!   in range (keep the lock's versions, e.g. for `update PKG`). Pre-releases (and dev
//!   releases) are taken only when a requirement on that project names one in a specifier
//!   (`>=2.0b1`), or when nothing but pre-releases fits the range (PEP 440's "only available
//!   version" rule, as pip does).
//! - **Versions** follow PEP 440 exactly, local labels included: `==1.2` and `<=1.2` accept
//!   `1.2+cu121`, `<2` accepts no pre-release of 2, `>1.2` no post-release of 1.2.
//! - **Layers**: each package lands in the lowest layer whose requirements pull it, found by
//!   walking the resolved graph breadth first from each layer's requests, bottom first; the
//!   reason is `requested`, or the shortest chain back to a request, e.g.
//!   `numpy ← pandas (layer app)`.
//!
//! Failures: [`PyResolveError::NoVersions`] when a layer asks for a project of which no
//! version in the asked range is usable, for one clear reason (only source distributions,
//! Requires-Python, yanked); [`PyResolveError::NoSolution`] with pubgrub's explanation,
//! rewritten to name layers and PEP 440 ranges and to say why versions were unusable.
//!
//! No I/O here; no hash-map iteration order reaches a result (pubgrub's own maps use a fixed
//! hasher, and everything of ours is a `BTreeMap` or a `Vec`).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyProvider, DerivationTree, Derived, External,
    Map, PackageResolutionStatistics, PubGrubError, Ranges, ReportFormatter, Reporter,
    SelectedDependencies, Term,
};

/// What the resolver may ask about the index. Names are normalized (PEP 503).
pub trait Provider {
    /// Every candidate version of a project, in any order: the versions with a wheel the
    /// image can use, and those with only an sdist (`has_wheel: false`). An empty list
    /// means the index has nothing the image could use.
    fn versions(&self, name: &str) -> Result<Vec<Candidate>, ProviderError>;
    /// The dependencies of one candidate (its core metadata).
    fn requires(&self, name: &str, version: &Version) -> Result<Requires, ProviderError>;
}

/// One version of a project as the index offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The version.
    pub version: Version,
    /// Yanked (PEP 592): used only when a requirement pins exactly this version.
    pub yanked: bool,
    /// The files' `Requires-Python`, if any.
    pub requires_python: Option<VersionSpecifiers>,
    /// Whether a wheel compatible with the image exists; `false` means only an sdist, which
    /// is never chosen.
    pub has_wheel: bool,
    /// What the version's files are, for the error when none fits: each wheel's tag triple
    /// as its file name spells it (`cp312-cp312-manylinux_2_17_x86_64`), `sdist` for a
    /// source distribution; sorted, deduplicated.
    pub files: Vec<String>,
}

/// A candidate's dependencies, from its core metadata.
#[derive(Debug, Clone, Default)]
pub struct Requires {
    /// `Requires-Dist`, markers and all.
    pub requires_dist: Vec<Requirement>,
    /// `Provides-Extra` (informational: markers decide what an extra pulls).
    pub provides_extra: Vec<String>,
}

/// What to resolve.
#[derive(Debug, Clone)]
pub struct PyRequest<'a> {
    /// `(layer name, requirements)` in image order, bottom first.
    pub layers: Vec<(String, Vec<Requirement>)>,
    /// The image's marker environment.
    pub env: &'a MarkerEnvironment,
    /// The image's Python version, checked against each candidate's Requires-Python.
    pub python_version: Version,
    /// Versions to keep when they still fit (name → version), e.g. from the lock during
    /// `compose update PKG`. A preferred version is used even if yanked since.
    pub prefer: BTreeMap<String, Version>,
}

/// The resolution: one version per project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyResolution {
    /// Sorted by normalized name.
    pub packages: Vec<PyResolved>,
}

impl PyResolution {
    /// The package of that name (any spelling), if resolved.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&PyResolved> {
        let name = PackageName::from_str(name).ok()?;
        self.packages.iter().find(|p| p.name == name.as_ref())
    }
}

/// One chosen project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyResolved {
    /// Normalized name.
    pub name: String,
    /// Chosen version (as the index spells it).
    pub version: Version,
    /// The layer it goes in: the lowest whose requirements pull it.
    pub layer: String,
    /// Extras in effect for it (normalized, sorted).
    pub extras: Vec<String>,
    /// `requested`, or the chain back to a request: `numpy ← pandas (layer app)`.
    pub reason: String,
}

/// A failure of the [`Provider`]: the index could not be read, metadata did not parse, ….
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// What went wrong, naming the project and URL where there is one.
    pub message: String,
    /// The underlying error, if any (its text is usually part of `message` already).
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ProviderError {
    /// An error with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Why resolution failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PyResolveError {
    /// No set of versions satisfies every layer; `report` explains why, step by step.
    #[error("the Python requirements cannot be satisfied together:\n{report}")]
    NoSolution {
        /// pubgrub's explanation, one sentence a line.
        report: String,
    },
    /// A layer asks for a project of which no version can be used, for one clear reason.
    #[error("no usable version of `{name}`: {reason}")]
    NoVersions {
        /// Normalized project name.
        name: String,
        /// Why, e.g. `no wheel compatible with the image (only a source distribution, …): 1.0`.
        reason: String,
    },
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Resolve every layer's requirements together for the image.
///
/// # Errors
///
/// See [`PyResolveError`].
pub fn resolve_python(
    req: &PyRequest<'_>,
    provider: &dyn Provider,
) -> Result<PyResolution, PyResolveError> {
    let prefer: BTreeMap<PackageName, Version> = req
        .prefer
        .iter()
        .filter_map(|(n, v)| Some((PackageName::from_str(n).ok()?, v.clone())))
        .collect();
    // Exact pins allow yanked versions, but a pin deep in the graph may be seen only after
    // its yanked version was already ruled out; then resolve again knowing the pin. The set
    // only grows, so this ends.
    let mut pins = BTreeMap::new();
    loop {
        let solver = Solver {
            provider,
            env: req.env,
            python: &req.python_version,
            layers: &req.layers,
            prefer: &prefer,
            candidates: RefCell::default(),
            requires: RefCell::default(),
            deps: RefCell::default(),
            pins: RefCell::new(pins.clone()),
            explicit_pre: RefCell::default(),
            chosen: RefCell::default(),
            order: RefCell::default(),
        };
        match pubgrub::resolve(&solver, Pkg::Root, root_version()) {
            Ok(selected) => return Ok(solver.resolution(&selected)),
            Err(PubGrubError::NoSolution(tree)) => {
                if solver.new_yanked_pins(&pins) {
                    pins = solver.pins.take();
                    continue;
                }
                return Err(solver.explain(tree));
            }
            Err(
                PubGrubError::ErrorChoosingVersion { source, .. }
                | PubGrubError::ErrorRetrievingDependencies { source, .. }
                | PubGrubError::ErrorInShouldCancel(source),
            ) => return Err(source.into()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The pubgrub side.

/// A pubgrub package: the image (root), a layer, a project, or a project's extra.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pkg {
    Root,
    Layer(String),
    Project(PackageName),
    Extra(PackageName, ExtraName),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the image"),
            Pkg::Layer(l) => write!(f, "layer {l}"),
            Pkg::Project(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// The one version of the root and of each layer.
fn root_version() -> Version {
    Version::new([0u64])
}

type Deps = Rc<[(Pkg, Ranges<Version>)]>;
type Tree = DerivationTree<Pkg, Ranges<Version>, String>;

/// Errors inside the solver.
#[derive(Debug, thiserror::Error)]
enum SolveError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("{by} asks for {name} by URL")]
    Url {
        name: String,
        url: String,
        by: String,
    },
}

impl From<SolveError> for PyResolveError {
    fn from(e: SolveError) -> Self {
        match e {
            SolveError::Provider(e) => PyResolveError::Provider(e),
            SolveError::Url { name, url, by } => PyResolveError::NoVersions {
                name,
                reason: format!(
                    "{by} asks for it by URL ({url}); only versions from the index can be resolved"
                ),
            },
        }
    }
}

/// `a, b, c` for at most eight entries, then `and N more`.
fn tag_list(files: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = files
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        s.push_str(&format!(" and {} more", files.len() - SHOWN));
    }
    s
}

/// Why a candidate cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Exclusion {
    /// Its Requires-Python (the specifier) excludes the image's Python.
    RequiresPython(String),
    /// No compatible wheel; the files the version has (tags, `sdist`).
    NoWheel(Vec<String>),
    /// Yanked and not pinned.
    Yanked,
}

impl Exclusion {
    fn kind(&self) -> u8 {
        match self {
            Exclusion::RequiresPython(_) => 0,
            Exclusion::NoWheel(_) => 1,
            Exclusion::Yanked => 2,
        }
    }
}

struct Solver<'a> {
    provider: &'a dyn Provider,
    env: &'a MarkerEnvironment,
    python: &'a Version,
    layers: &'a [(String, Vec<Requirement>)],
    prefer: &'a BTreeMap<PackageName, Version>,
    /// Per project, sorted highest version first, one entry per version.
    candidates: RefCell<BTreeMap<PackageName, Rc<[Candidate]>>>,
    requires: RefCell<BTreeMap<(PackageName, Version), Rc<Requires>>>,
    deps: RefCell<BTreeMap<(Pkg, Version), Deps>>,
    /// `==` / `===` specifiers seen on each project (they allow yanked versions).
    pins: RefCell<BTreeMap<PackageName, BTreeSet<VersionSpecifier>>>,
    /// Projects on which some requirement names a pre-release.
    explicit_pre: RefCell<BTreeSet<PackageName>>,
    /// The version last chosen for each project, which its extras then try first.
    chosen: RefCell<BTreeMap<PackageName, Version>>,
    /// Discovery order, the last tie-breaker of priorities.
    order: RefCell<BTreeMap<Pkg, u32>>,
}

impl Solver<'_> {
    fn candidates(&self, name: &PackageName) -> Result<Rc<[Candidate]>, ProviderError> {
        if let Some(c) = self.candidates.borrow().get(name) {
            return Ok(c.clone());
        }
        let mut list = self.provider.versions(name.as_ref())?;
        // Highest first; of equal versions ("1.0", "1.0.0") keep the most usable record.
        list.sort_by(|a, b| {
            b.version
                .cmp(&a.version)
                .then(b.has_wheel.cmp(&a.has_wheel))
                .then(a.yanked.cmp(&b.yanked))
                .then_with(|| a.version.to_string().cmp(&b.version.to_string()))
        });
        list.dedup_by(|later, earlier| later.version == earlier.version);
        let list: Rc<[Candidate]> = list.into();
        self.candidates
            .borrow_mut()
            .insert(name.clone(), list.clone());
        Ok(list)
    }

    fn requires(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<Rc<Requires>, ProviderError> {
        let key = (name.clone(), version.clone());
        if let Some(r) = self.requires.borrow().get(&key) {
            return Ok(r.clone());
        }
        let r = Rc::new(self.provider.requires(name.as_ref(), version)?);
        self.requires.borrow_mut().insert(key, r.clone());
        Ok(r)
    }

    fn exclusion(&self, name: &PackageName, c: &Candidate) -> Option<Exclusion> {
        if let Some(rp) = &c.requires_python
            && !rp.contains(self.python)
        {
            return Some(Exclusion::RequiresPython(rp.to_string()));
        }
        if !c.has_wheel {
            return Some(Exclusion::NoWheel(c.files.clone()));
        }
        if c.yanked && !self.yank_allowed(name, &c.version) {
            return Some(Exclusion::Yanked);
        }
        None
    }

    fn yank_allowed(&self, name: &PackageName, version: &Version) -> bool {
        self.prefer.get(name) == Some(version)
            || self
                .pins
                .borrow()
                .get(name)
                .is_some_and(|pins| pins.iter().any(|s| s.contains(version)))
    }

    /// The version to try for a project within `range`, or `None` when no usable one is.
    fn pick(
        &self,
        name: &PackageName,
        range: &Ranges<Version>,
        hint: Option<&Version>,
    ) -> Result<Option<Version>, ProviderError> {
        let cands = self.candidates(name)?;
        let usable =
            |c: &&Candidate| range.contains(&c.version) && self.exclusion(name, c).is_none();
        for wanted in [self.prefer.get(name), hint].into_iter().flatten() {
            if let Some(c) = cands.iter().filter(usable).find(|c| &c.version == wanted) {
                return Ok(Some(c.version.clone()));
            }
        }
        let allow_pre = self.explicit_pre.borrow().contains(name);
        let best = cands
            .iter()
            .filter(usable)
            .find(|c| allow_pre || !c.version.any_prerelease())
            .or_else(|| cands.iter().find(usable));
        Ok(best.map(|c| c.version.clone()))
    }

    /// Note what a requirement says about pins and pre-releases.
    fn record(&self, name: &PackageName, specs: &VersionSpecifiers) {
        for s in specs.iter() {
            match s.operator() {
                Operator::Equal | Operator::ExactEqual => {
                    self.pins
                        .borrow_mut()
                        .entry(name.clone())
                        .or_default()
                        .insert(s.clone());
                }
                _ => {}
            }
            if s.any_prerelease()
                && !matches!(s.operator(), Operator::NotEqual | Operator::NotEqualStar)
            {
                self.explicit_pre.borrow_mut().insert(name.clone());
            }
        }
    }

    fn add_requirement(
        &self,
        r: &Requirement,
        by: &Pkg,
        out: &mut Vec<(Pkg, Ranges<Version>)>,
    ) -> Result<(), SolveError> {
        let range = match &r.version_or_url {
            None => Ranges::full(),
            Some(VersionOrUrl::VersionSpecifier(specs)) => {
                self.record(&r.name, specs);
                specifiers_range(specs)
            }
            Some(VersionOrUrl::Url(url)) => {
                return Err(SolveError::Url {
                    name: r.name.to_string(),
                    url: url.to_string(),
                    by: by.to_string(),
                });
            }
        };
        push_dep(out, by, Pkg::Project(r.name.clone()), range.clone());
        for e in &r.extras {
            push_dep(
                out,
                by,
                Pkg::Extra(r.name.clone(), e.clone()),
                range.clone(),
            );
        }
        Ok(())
    }

    fn dependencies(&self, pkg: &Pkg, version: &Version) -> Result<Deps, SolveError> {
        let key = (pkg.clone(), version.clone());
        if let Some(d) = self.deps.borrow().get(&key) {
            return Ok(d.clone());
        }
        let mut out = Vec::new();
        match pkg {
            Pkg::Root => {
                for (layer, _) in self.layers {
                    let dep = Pkg::Layer(layer.clone());
                    push_dep(&mut out, pkg, dep, Ranges::singleton(root_version()));
                }
            }
            Pkg::Layer(name) => {
                for (_, reqs) in self.layers.iter().filter(|(l, _)| l == name) {
                    for r in reqs.iter().filter(|r| r.evaluate_markers(self.env, &[])) {
                        self.add_requirement(r, pkg, &mut out)?;
                    }
                }
            }
            Pkg::Project(name) => {
                let requires = self.requires(name, version)?;
                for r in &requires.requires_dist {
                    if r.evaluate_markers(self.env, &[]) {
                        self.add_requirement(r, pkg, &mut out)?;
                    }
                }
            }
            Pkg::Extra(name, extra) => {
                let base = Pkg::Project(name.clone());
                push_dep(&mut out, pkg, base, Ranges::singleton(version.clone()));
                let requires = self.requires(name, version)?;
                let extras = std::slice::from_ref(extra);
                for r in &requires.requires_dist {
                    if r.evaluate_markers(self.env, extras) && !r.evaluate_markers(self.env, &[]) {
                        self.add_requirement(r, pkg, &mut out)?;
                    }
                }
            }
        }
        let deps: Deps = out.into();
        self.deps.borrow_mut().insert(key, deps.clone());
        Ok(deps)
    }

    /// Whether this run saw an exact pin, not known when it started, of a yanked version.
    fn new_yanked_pins(&self, before: &BTreeMap<PackageName, BTreeSet<VersionSpecifier>>) -> bool {
        let candidates = self.candidates.borrow();
        self.pins.borrow().iter().any(|(name, specs)| {
            specs
                .iter()
                .filter(|s| before.get(name).is_none_or(|b| !b.contains(*s)))
                .any(|s| {
                    candidates.get(name).is_some_and(|cands| {
                        cands.iter().any(|c| c.yanked && s.contains(&c.version))
                    })
                })
        })
    }

    /// The exclusions of every candidate of `name` in `range`, or `None` if one is usable.
    fn all_excluded(
        &self,
        name: &PackageName,
        range: &Ranges<Version>,
    ) -> Option<Vec<(Version, Exclusion)>> {
        let cands = self.candidates(name).ok()?;
        let mut out = Vec::new();
        for c in cands.iter().filter(|c| range.contains(&c.version)) {
            out.push((c.version.clone(), self.exclusion(name, c)?));
        }
        Some(out)
    }

    fn explain(&self, mut tree: Tree) -> PyResolveError {
        // A layer asks for a project no version of which, in the asked range, is usable, for
        // one reason: that alone dooms the resolution, and is the clearest thing to say.
        for (layer, _) in self.layers {
            let key = (Pkg::Layer(layer.clone()), root_version());
            let Some(deps) = self.deps.borrow().get(&key).cloned() else {
                continue;
            };
            for (dep, range) in deps.iter() {
                let Pkg::Project(name) = dep else { continue };
                let Some(excluded) = self.all_excluded(name, range) else {
                    continue;
                };
                let Some(first) = excluded.first() else {
                    continue;
                };
                if excluded.iter().all(|(_, e)| e.kind() == first.1.kind()) {
                    return PyResolveError::NoVersions {
                        name: name.to_string(),
                        reason: self.describe(&excluded),
                    };
                }
            }
        }
        self.collapse(&mut tree);
        let report =
            DefaultStringReporter::report_with_formatter(&tree, &Explainer { solver: self });
        PyResolveError::NoSolution { report }
    }

    /// Whether `r` holds no candidate of `p` at all, so that "there is no version of p in r"
    /// says nothing worth a sentence (unlike a range whose versions are all unusable, or a
    /// project the index lacks).
    fn plainly_absent(&self, p: &Pkg, r: &Ranges<Version>) -> bool {
        match p {
            Pkg::Root | Pkg::Layer(_) => true,
            Pkg::Project(name) | Pkg::Extra(name, _) => self
                .candidates(name)
                .is_ok_and(|c| !c.is_empty() && !c.iter().any(|c| r.contains(&c.version))),
        }
    }

    /// pubgrub's `collapse_no_versions`, but only for [`Self::plainly_absent`] ranges: fold
    /// "there is no version of a (<1.0 or >1.0)" into the neighbouring dependency, so that
    /// "a==1.0 depends on c==1.0" reads "a depends on c==1.0".
    fn collapse(&self, tree: &mut Tree) {
        let DerivationTree::Derived(derived) = tree else {
            return;
        };
        let merged = [
            (&derived.cause1, &derived.cause2),
            (&derived.cause2, &derived.cause1),
        ]
        .into_iter()
        .find_map(|(absent, other)| {
            let DerivationTree::External(External::NoVersions(p, r)) = absent.as_ref() else {
                return None;
            };
            if !self.plainly_absent(p, r) {
                return None;
            }
            let mut other = other.as_ref().clone();
            self.collapse(&mut other);
            merge_no_versions(other, p, r)
        });
        if let Some(merged) = merged {
            *tree = merged;
            return;
        }
        self.collapse(Arc::make_mut(&mut derived.cause1));
        self.collapse(Arc::make_mut(&mut derived.cause2));
    }

    /// Exclusions grouped by reason, highest versions first:
    /// `no wheel compatible with the image (…): 2.0, 1.0; yanked, …: 1.5`.
    fn describe(&self, excluded: &[(Version, Exclusion)]) -> String {
        let mut groups: Vec<(&Exclusion, Vec<&Version>)> = Vec::new();
        for (v, e) in excluded {
            match groups.iter_mut().find(|(g, _)| *g == e) {
                Some((_, vs)) => vs.push(v),
                None => groups.push((e, vec![v])),
            }
        }
        groups
            .iter()
            .map(|(e, vs)| {
                let vs = version_list(vs);
                match e {
                    Exclusion::RequiresPython(spec) => format!(
                        "Requires-Python {spec} excludes the image's Python {}: {vs}",
                        self.python
                    ),
                    Exclusion::NoWheel(files) => format!(
                        "no wheel compatible with the image (Python {}, its glibc and platform): {vs} {}",
                        self.python,
                        if files.is_empty() {
                            "has no files".to_string()
                        } else {
                            format!("has only {}", tag_list(files))
                        }
                    ),
                    Exclusion::Yanked => {
                        format!("yanked, and no requirement pins it with ==: {vs}")
                    }
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn resolution(&self, selected: &SelectedDependencies<Pkg, Version>) -> PyResolution {
        let chosen: BTreeMap<Pkg, Version> = selected
            .iter()
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect();
        let deps_of = |p: &Pkg| -> Deps {
            chosen
                .get(p)
                .and_then(|v| self.deps.borrow().get(&(p.clone(), v.clone())).cloned())
                .unwrap_or_else(|| Rc::new([]))
        };
        // Bottom layer first, breadth first; a package already placed is not walked again,
        // so later layers stop at what lower ones pulled.
        let mut placed: BTreeMap<Pkg, (usize, Option<Pkg>)> = BTreeMap::new();
        for (i, (layer, _)) in self.layers.iter().enumerate() {
            let mut queue = VecDeque::new();
            let mut parent = None;
            let mut node = Pkg::Layer(layer.clone());
            loop {
                for (dep, _) in deps_of(&node).iter() {
                    if !placed.contains_key(dep) {
                        placed.insert(dep.clone(), (i, parent.clone()));
                        queue.push_back(dep.clone());
                    }
                }
                let Some(next) = queue.pop_front() else { break };
                parent = Some(next.clone());
                node = next;
            }
        }
        let mut extras: BTreeMap<&PackageName, Vec<String>> = BTreeMap::new();
        for p in chosen.keys() {
            if let Pkg::Extra(name, extra) = p {
                extras.entry(name).or_default().push(extra.to_string());
            }
        }
        let packages = chosen
            .iter()
            .filter_map(|(p, version)| {
                let Pkg::Project(name) = p else { return None };
                let (layer, reason) = match placed.get(p) {
                    Some((i, _)) => {
                        let layer = self.layers[*i].0.clone();
                        let chain = chain(&placed, p);
                        let reason = if chain.len() <= 1 {
                            "requested".to_string()
                        } else {
                            format!("{} (layer {layer})", chain.join(" ← "))
                        };
                        (layer, reason)
                    }
                    // Unreachable: pubgrub selects only what the layers pull.
                    None => (String::new(), String::new()),
                };
                Some(PyResolved {
                    name: name.to_string(),
                    version: version.clone(),
                    layer,
                    extras: extras.get(name).cloned().unwrap_or_default(),
                    reason,
                })
            })
            .collect();
        PyResolution { packages }
    }
}

/// Fold "no version of `p` in `r`" into the other cause, as pubgrub's own collapse does
/// (but only into a dependency of `p`'s own).
fn merge_no_versions(tree: Tree, p: &Pkg, r: &Ranges<Version>) -> Option<Tree> {
    match tree {
        DerivationTree::Derived(_) => Some(tree),
        // Only the depender's missing versions: "there is no version of the dependency"
        // is the point of a report, not noise.
        DerivationTree::External(External::FromDependencyOf(p1, r1, p2, r2)) if p1 == *p => Some(
            DerivationTree::External(External::FromDependencyOf(p1, r1.union(r), p2, r2)),
        ),
        DerivationTree::External(_) => None,
    }
}

/// Add a dependency, intersecting with an earlier one on the same package; never a
/// dependency of a package on itself (pubgrub cannot express one).
fn push_dep(out: &mut Vec<(Pkg, Ranges<Version>)>, by: &Pkg, pkg: Pkg, range: Ranges<Version>) {
    if &pkg == by {
        return;
    }
    match out.iter_mut().find(|(p, _)| *p == pkg) {
        Some((_, r)) => *r = r.intersection(&range),
        None => out.push((pkg, range)),
    }
}

/// The labels from `pkg` back to a layer's request, an extra merged into its project:
/// `["pysocks", "requests[socks]"]`.
fn chain(placed: &BTreeMap<Pkg, (usize, Option<Pkg>)>, pkg: &Pkg) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    let mut last: Option<&PackageName> = None;
    let mut cur = Some(pkg);
    while let Some(p) = cur {
        match (p, labels.last_mut()) {
            (Pkg::Extra(name, _), Some(label)) if last == Some(name) => *label = p.to_string(),
            _ => labels.push(p.to_string()),
        }
        last = match p {
            Pkg::Project(n) | Pkg::Extra(n, _) => Some(n),
            _ => None,
        };
        cur = placed.get(p).and_then(|(_, parent)| parent.as_ref());
    }
    labels
}

fn version_list(vs: &[&Version]) -> String {
    const SHOWN: usize = 5;
    let mut s = vs
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if vs.len() > SHOWN {
        s.push_str(&format!(" and {} more", vs.len() - SHOWN));
    }
    s
}

impl DependencyProvider for Solver<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = SolveError;
    /// Root and layers, then pinned projects, then the most conflicting, then the first seen.
    type Priority = (u8, u32, Reverse<u32>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let class = match package {
            Pkg::Root | Pkg::Layer(_) => 3,
            _ if range.as_singleton().is_some() => 2,
            _ => 1,
        };
        let mut order = self.order.borrow_mut();
        let next = u32::try_from(order.len()).unwrap_or(u32::MAX);
        let seen = *order.entry(package.clone()).or_insert(next);
        (class, stats.conflict_count(), Reverse(seen))
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, SolveError> {
        match package {
            Pkg::Root | Pkg::Layer(_) => Ok(range.contains(&root_version()).then(root_version)),
            Pkg::Project(name) => {
                let v = self.pick(name, range, None)?;
                if let Some(v) = &v {
                    self.chosen.borrow_mut().insert(name.clone(), v.clone());
                }
                Ok(v)
            }
            Pkg::Extra(name, _) => {
                let hint = self.chosen.borrow().get(name).cloned();
                Ok(self.pick(name, range, hint.as_ref())?)
            }
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, SolveError> {
        let deps = self.dependencies(package, version)?;
        Ok(Dependencies::Available(deps.iter().cloned().collect()))
    }
}

// ---------------------------------------------------------------------------------------
// PEP 440 specifiers as ranges.

/// The versions a set of specifiers accepts (pre-release policy aside).
fn specifiers_range(specs: &VersionSpecifiers) -> Ranges<Version> {
    specs.iter().fold(Ranges::full(), |acc, s| {
        acc.intersection(&specifier_range(s))
    })
}

/// The smallest version above every `v+local` (PEP 440 ignores a candidate's local label
/// when the specifier has none): the next dev, post-dev, or `.post0.dev0`.
fn local_upper(v: &Version) -> Version {
    let v = v.clone().without_local();
    if let Some(dev) = v.dev() {
        v.with_dev(Some(dev + 1))
    } else if let Some(post) = v.post() {
        v.with_post(Some(post + 1)).with_dev(Some(0))
    } else {
        v.with_post(Some(0)).with_dev(Some(0))
    }
}

fn specifier_range(s: &VersionSpecifier) -> Ranges<Version> {
    let v = s.version().clone();
    let equal = |v: Version| {
        if v.is_local() {
            Ranges::singleton(v)
        } else {
            let upper = local_upper(&v);
            Ranges::from_range_bounds(v..upper)
        }
    };
    match s.operator() {
        Operator::Equal => equal(v),
        Operator::ExactEqual => Ranges::singleton(v),
        Operator::NotEqual => equal(v).complement(),
        Operator::EqualStar => star_range(v),
        Operator::NotEqualStar => star_range(v).complement(),
        Operator::TildeEqual => {
            let release = v.release();
            if release.len() < 2 {
                return Ranges::higher_than(v);
            }
            let mut upper = release[..release.len() - 1].to_vec();
            if let Some(last) = upper.last_mut() {
                *last += 1;
            }
            let upper = Version::new(upper).with_epoch(v.epoch()).with_dev(Some(0));
            Ranges::from_range_bounds(v..upper)
        }
        Operator::LessThan => {
            if v.any_prerelease() {
                Ranges::strictly_lower_than(v)
            } else if v.is_post() {
                // Not the post-release's own dev releases.
                Ranges::strictly_lower_than(v.with_dev(Some(0)))
            } else {
                // Not the pre-releases of V itself.
                Ranges::strictly_lower_than(v.without_local().with_min(Some(0)))
            }
        }
        Operator::LessThanEqual => {
            if v.is_local() {
                Ranges::lower_than(v)
            } else {
                Ranges::strictly_lower_than(local_upper(&v))
            }
        }
        Operator::GreaterThan => {
            if v.is_dev() || v.is_post() {
                Ranges::higher_than(local_upper(&v))
            } else {
                // Neither V's post-releases nor its local versions.
                Ranges::strictly_higher_than(v.without_local().with_max(Some(0)))
            }
        }
        Operator::GreaterThanEqual => Ranges::higher_than(v),
    }
}

/// `==V.*`: from V's first dev release up to the next prefix.
fn star_range(v: Version) -> Ranges<Version> {
    let low = v.with_dev(Some(0));
    let high = if let Some(post) = low.post() {
        low.clone().with_post(Some(post + 1))
    } else if let Some(pre) = low.pre() {
        low.clone().with_pre(Some(pep440_rs::Prerelease {
            kind: pre.kind,
            number: pre.number + 1,
        }))
    } else {
        let mut release = low.release().to_vec();
        if let Some(last) = release.last_mut() {
            *last += 1;
        }
        low.clone().with_release(release)
    };
    Ranges::from_range_bounds(low..high)
}

// ---------------------------------------------------------------------------------------
// Reports.

/// `V` when `v` is [`local_upper`] of a release V (`1.2.post0.dev0` → `1.2`).
fn local_base(v: &Version) -> Option<Version> {
    (v.post() == Some(0) && v.dev() == Some(0) && v.min().is_none() && v.max().is_none())
        .then(|| v.clone().with_post(None).with_dev(None))
}

/// A range as PEP 440 specifiers: `>=1.0,<2`, `==1.2.3`; several pieces in parentheses
/// joined by `or`. Empty for any version.
fn range_text(r: &Ranges<Version>) -> String {
    let pieces: Vec<String> = r.iter().map(|(lo, hi)| segment_text(lo, hi)).collect();
    match pieces.as_slice() {
        [] => " (no version)".into(),
        [one] if one == "*" => String::new(),
        [one] => one.clone(),
        many => format!(" ({})", many.join(" or ")),
    }
}

fn segment_text(lo: &Bound<Version>, hi: &Bound<Version>) -> String {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) if a == b => return format!("=={a}"),
        (Bound::Included(a), Bound::Excluded(b)) if !a.is_local() && *b == local_upper(a) => {
            return format!("=={a}");
        }
        _ => {}
    }
    let mut parts = Vec::new();
    match lo {
        Bound::Included(a) => parts.push(match local_base(a) {
            Some(base) => format!(">{base}"),
            None => format!(">={a}"),
        }),
        Bound::Excluded(a) => parts.push(format!(">{a}")),
        Bound::Unbounded => {}
    }
    match hi {
        Bound::Excluded(b) => parts.push(match local_base(b) {
            Some(base) => format!("<={base}"),
            None if b.dev() == Some(0) && b.pre().is_none() && b.post().is_none() => {
                format!("<{}", b.clone().with_dev(None))
            }
            None => format!("<{b}"),
        }),
        Bound::Included(b) => parts.push(format!("<={b}")),
        Bound::Unbounded => {}
    }
    if parts.is_empty() {
        "*".into()
    } else {
        parts.join(",")
    }
}

/// A package with a range, as a person would write it: `foo>=1.0,<2`, `layer app`.
fn label(p: &Pkg, r: &Ranges<Version>) -> String {
    match p {
        Pkg::Root | Pkg::Layer(_) => p.to_string(),
        Pkg::Project(_) | Pkg::Extra(..) => format!("{p}{}", range_text(r)),
    }
}

struct Explainer<'s, 'a> {
    solver: &'s Solver<'a>,
}

type Ext = External<Pkg, Ranges<Version>, String>;
type Terms = Map<Pkg, Term<Ranges<Version>>>;
type Der = Derived<Pkg, Ranges<Version>, String>;

impl Explainer<'_, '_> {
    /// [`label`], with the range put in terms of the versions the index has: none when it
    /// holds them all, `==V` when it holds one, else the simplest range holding the same
    /// ones (`app (<1.0 or >1.0)` with versions 0.9 and 1.0 reads `app==0.9`).
    fn subject(&self, p: &Pkg, r: &Ranges<Version>) -> String {
        if let Pkg::Project(name) | Pkg::Extra(name, _) = p
            && let Ok(cands) = self.solver.candidates(name)
            && !cands.is_empty()
        {
            let inside: Vec<&Version> = cands
                .iter()
                .map(|c| &c.version)
                .filter(|v| r.contains(v))
                .collect();
            if inside.len() == cands.len() {
                return p.to_string();
            }
            if let [one] = inside.as_slice() {
                return format!("{p}=={one}");
            }
            if !inside.is_empty() {
                return label(p, &r.simplify(cands.iter().rev().map(|c| &c.version)));
            }
        }
        label(p, r)
    }

    /// `layer app requires foo>=2`, `foo==1.0 depends on bar<3`.
    fn dependency(&self, p: &Pkg, rp: &Ranges<Version>, d: &Pkg, rd: &Ranges<Version>) -> String {
        match p {
            Pkg::Root => format!("the image includes {}", label(d, rd)),
            Pkg::Layer(_) => format!("{p} requires {}", label(d, rd)),
            _ => format!("{} depends on {}", self.subject(p, rp), label(d, rd)),
        }
    }

    fn no_versions(&self, p: &Pkg, r: &Ranges<Version>) -> String {
        let name = match p {
            Pkg::Project(n) | Pkg::Extra(n, _) => n,
            Pkg::Root | Pkg::Layer(_) => return format!("{p} cannot be used"),
        };
        let cands = self.solver.candidates(name).ok();
        if cands.as_ref().is_some_and(|c| c.is_empty()) {
            return format!("the index has no version of {name} that the image can use");
        }
        let excluded: Vec<(Version, Exclusion)> = cands
            .iter()
            .flat_map(|c| c.iter())
            .filter(|c| r.contains(&c.version))
            .filter_map(|c| Some((c.version.clone(), self.solver.exclusion(name, c)?)))
            .collect();
        if excluded.is_empty() {
            format!("there is no version of {}", label(p, r))
        } else {
            format!(
                "there is no usable version of {} ({})",
                label(p, r),
                self.solver.describe(&excluded)
            )
        }
    }
}

impl ReportFormatter<Pkg, Ranges<Version>, String> for Explainer<'_, '_> {
    type Output = String;

    fn format_external(&self, external: &Ext) -> String {
        match external {
            External::NotRoot(..) => "the image's Python packages are being resolved".into(),
            External::NoVersions(p, r) => self.no_versions(p, r),
            External::FromDependencyOf(p, rp, d, rd) => self.dependency(p, rp, d, rd),
            External::Custom(p, r, reason) => format!("{} cannot be used: {reason}", label(p, r)),
        }
    }

    fn format_terms(&self, terms: &Terms) -> String {
        let mut terms: Vec<_> = terms.iter().collect();
        terms.sort_by(|a, b| a.0.cmp(b.0));
        match terms.as_slice() {
            [] | [(Pkg::Root, Term::Positive(_))] => "the requirements cannot all be met".into(),
            [(p @ Pkg::Layer(_), Term::Positive(_))] => format!("{p} cannot be satisfied"),
            [(p, Term::Positive(r))] => format!("{} cannot be used", self.subject(p, r)),
            [(p, Term::Negative(r))] => format!("{} is required", label(p, r)),
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => {
                self.dependency(p1, r1, p2, r2)
            }
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => self.subject(p, r),
                        Term::Negative(r) => label(p, &r.complement()),
                    })
                    .collect();
                match parts.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} and {last} are incompatible", rest.join(", "))
                    }
                    _ => format!("{} are incompatible", parts.join(", ")),
                }
            }
        }
    }

    fn explain_both_external(&self, e1: &Ext, e2: &Ext, current: &Terms) -> String {
        format!(
            "Because {} and {}, {}.",
            self.format_external(e1),
            self.format_external(e2),
            self.format_terms(current)
        )
    }

    fn explain_both_ref(
        &self,
        id1: usize,
        d1: &Der,
        id2: usize,
        d2: &Der,
        current: &Terms,
    ) -> String {
        format!(
            "Because {} ({id1}) and {} ({id2}), {}.",
            self.format_terms(&d1.terms),
            self.format_terms(&d2.terms),
            self.format_terms(current)
        )
    }

    fn explain_ref_and_external(&self, id: usize, d: &Der, e: &Ext, current: &Terms) -> String {
        format!(
            "Because {} ({id}) and {}, {}.",
            self.format_terms(&d.terms),
            self.format_external(e),
            self.format_terms(current)
        )
    }

    fn and_explain_external(&self, e: &Ext, current: &Terms) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(e),
            self.format_terms(current)
        )
    }

    fn and_explain_ref(&self, id: usize, d: &Der, current: &Terms) -> String {
        format!(
            "And because {} ({id}), {}.",
            self.format_terms(&d.terms),
            self.format_terms(current)
        )
    }

    fn and_explain_prior_and_external(&self, prior: &Ext, e: &Ext, current: &Terms) -> String {
        format!(
            "And because {} and {}, {}.",
            self.format_external(prior),
            self.format_external(e),
            self.format_terms(current)
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pep508_rs::MarkerEnvironmentBuilder;

    struct Entry {
        cand: Candidate,
        requires: Vec<String>,
        extras: Vec<String>,
    }

    /// An in-memory index: normalized name → version text → entry.
    #[derive(Default)]
    struct Index {
        projects: BTreeMap<String, BTreeMap<String, Entry>>,
        /// Hand out candidates in reverse order (the provider's order must not matter).
        reversed: bool,
    }

    impl Index {
        fn add(mut self, name: &str, version: &str, deps: &[&str]) -> Self {
            let name = PackageName::from_str(name).unwrap().to_string();
            let entry = Entry {
                cand: Candidate {
                    version: Version::from_str(version).unwrap(),
                    yanked: false,
                    requires_python: None,
                    has_wheel: true,
                    files: vec!["py3-none-any".into()],
                },
                requires: deps.iter().map(ToString::to_string).collect(),
                extras: Vec::new(),
            };
            self.projects
                .entry(name)
                .or_default()
                .insert(version.to_string(), entry);
            self
        }

        fn edit(mut self, name: &str, version: &str, f: impl FnOnce(&mut Entry)) -> Self {
            f(self
                .projects
                .get_mut(name)
                .and_then(|p| p.get_mut(version))
                .unwrap());
            self
        }

        fn yanked(self, name: &str, version: &str) -> Self {
            self.edit(name, version, |e| e.cand.yanked = true)
        }

        fn sdist_only(self, name: &str, version: &str) -> Self {
            self.edit(name, version, |e| {
                e.cand.has_wheel = false;
                e.cand.files = vec!["sdist".into()];
            })
        }

        fn requires_python(self, name: &str, version: &str, spec: &str) -> Self {
            self.edit(name, version, |e| {
                e.cand.requires_python = Some(VersionSpecifiers::from_str(spec).unwrap());
            })
        }

        fn extras(self, name: &str, version: &str, extras: &[&str]) -> Self {
            self.edit(name, version, |e| {
                e.extras = extras.iter().map(ToString::to_string).collect();
            })
        }
    }

    impl Provider for Index {
        fn versions(&self, name: &str) -> Result<Vec<Candidate>, ProviderError> {
            if name == "broken" {
                return Err(ProviderError::new(
                    "https://pypi.example/simple/broken/: HTTP 500",
                ));
            }
            let mut out: Vec<Candidate> = self
                .projects
                .get(name)
                .map(|p| p.values().map(|e| e.cand.clone()).collect())
                .unwrap_or_default();
            if self.reversed {
                out.reverse();
            }
            Ok(out)
        }

        fn requires(&self, name: &str, version: &Version) -> Result<Requires, ProviderError> {
            let entry = self
                .projects
                .get(name)
                .and_then(|p| p.values().find(|e| &e.cand.version == version))
                .ok_or_else(|| ProviderError::new(format!("no metadata for {name} {version}")))?;
            Ok(Requires {
                requires_dist: entry.requires.iter().map(|r| req(r)).collect(),
                provides_extra: entry.extras.clone(),
            })
        }
    }

    fn env() -> MarkerEnvironment {
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: "3.13.5",
            os_name: "posix",
            platform_machine: "x86_64",
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: "3.13.5",
            python_version: "3.13",
            sys_platform: "linux",
        })
        .unwrap()
    }

    fn req(s: &str) -> Requirement {
        Requirement::from_str(s).unwrap()
    }

    fn run_with(
        index: &Index,
        layers: &[(&str, &[&str])],
        prefer: &[(&str, &str)],
    ) -> Result<PyResolution, PyResolveError> {
        let env = env();
        let request = PyRequest {
            layers: layers
                .iter()
                .map(|(l, reqs)| (l.to_string(), reqs.iter().map(|r| req(r)).collect()))
                .collect(),
            env: &env,
            python_version: Version::from_str("3.13.5").unwrap(),
            prefer: prefer
                .iter()
                .map(|(n, v)| (n.to_string(), Version::from_str(v).unwrap()))
                .collect(),
        };
        resolve_python(&request, index)
    }

    fn run(index: &Index, reqs: &[&str]) -> Result<PyResolution, PyResolveError> {
        run_with(index, &[("app", reqs)], &[])
    }

    /// `name==version` of every package, in order.
    fn pins(r: &PyResolution) -> Vec<String> {
        r.packages
            .iter()
            .map(|p| format!("{}=={}", p.name, p.version))
            .collect()
    }

    fn reason(r: &PyResolution, name: &str) -> String {
        r.get(name).unwrap().reason.clone()
    }

    fn no_solution(e: PyResolveError) -> String {
        match e {
            PyResolveError::NoSolution { report } => report,
            other => panic!("expected NoSolution, got {other:?}"),
        }
    }

    #[test]
    fn simple_chain() {
        let index = Index::default()
            .add(
                "pandas",
                "2.2.3",
                &["numpy>=1.26", "python-dateutil>=2.8.2"],
            )
            .add("numpy", "1.26.4", &[])
            .add("numpy", "2.2.1", &[])
            .add("python-dateutil", "2.9.0.post0", &["six>=1.5"])
            .add("six", "1.17.0", &[]);
        let r = run(&index, &["Pandas"]).unwrap();
        assert_eq!(
            pins(&r),
            [
                "numpy==2.2.1",
                "pandas==2.2.3",
                "python-dateutil==2.9.0.post0",
                "six==1.17.0"
            ]
        );
        assert!(r.packages.iter().all(|p| p.layer == "app"));
        assert_eq!(reason(&r, "pandas"), "requested");
        assert_eq!(reason(&r, "numpy"), "numpy ← pandas (layer app)");
        assert_eq!(
            reason(&r, "six"),
            "six ← python-dateutil ← pandas (layer app)"
        );
    }

    #[test]
    fn diamond_with_backtracking() {
        let index = Index::default()
            .add("a", "1.0", &["b", "c"])
            .add("b", "1.0", &["d>=1,<3"])
            .add("b", "2.0", &["d>=3"])
            .add("c", "1.0", &["d<2"])
            .add("d", "1.0", &[])
            .add("d", "1.5", &[])
            .add("d", "2.0", &[])
            .add("d", "3.0", &[]);
        let r = run(&index, &["a"]).unwrap();
        assert_eq!(pins(&r), ["a==1.0", "b==1.0", "c==1.0", "d==1.5"]);
        // Breadth first: the first parent found explains it.
        assert_eq!(reason(&r, "d"), "d ← b ← a (layer app)");
    }

    fn requests_index() -> Index {
        Index::default()
            .add(
                "requests",
                "2.32.3",
                &[
                    "urllib3>=1.21.1,<3",
                    "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
                    "chardet>=3.0.2,<6; extra == \"use-chardet-on-py3\"",
                ],
            )
            .extras("requests", "2.32.3", &["socks", "use-chardet-on-py3"])
            .add("urllib3", "2.3.0", &[])
            .add("pysocks", "1.5.7", &[])
            .add("pysocks", "1.7.1", &[])
            .add("chardet", "5.2.0", &[])
    }

    #[test]
    fn extras_pull_their_requirements_only_when_asked() {
        let index = requests_index();
        let r = run(&index, &["requests"]).unwrap();
        assert_eq!(pins(&r), ["requests==2.32.3", "urllib3==2.3.0"]);
        assert!(r.get("requests").unwrap().extras.is_empty());

        let r = run(&index, &["requests[SOCKS]>=2"]).unwrap();
        assert_eq!(
            pins(&r),
            ["pysocks==1.7.1", "requests==2.32.3", "urllib3==2.3.0"]
        );
        let requests = r.get("requests").unwrap();
        assert_eq!(requests.extras, ["socks"]);
        assert_eq!(requests.reason, "requested");
        assert_eq!(
            reason(&r, "PySocks"),
            "pysocks ← requests[socks] (layer app)"
        );
        assert_eq!(reason(&r, "urllib3"), "urllib3 ← requests (layer app)");

        // An extra the project does not have pulls nothing.
        let r = run(&index, &["requests[nope]"]).unwrap();
        assert_eq!(pins(&r), ["requests==2.32.3", "urllib3==2.3.0"]);
    }

    #[test]
    fn an_extra_naming_other_extras_of_its_project() {
        let index = Index::default()
            .add(
                "foo",
                "1.0",
                &[
                    "foo[a]; extra == 'all'",
                    "foo; extra == 'a'",
                    "bar; extra == 'a'",
                ],
            )
            .add("bar", "1.0", &[]);
        let r = run(&index, &["foo[all]"]).unwrap();
        assert_eq!(pins(&r), ["bar==1.0", "foo==1.0"]);
        assert_eq!(r.get("foo").unwrap().extras, ["a", "all"]);
        assert_eq!(reason(&r, "bar"), "bar ← foo[all] (layer app)");
    }

    #[test]
    fn markers_are_evaluated_for_the_image() {
        let index = Index::default()
            .add(
                "tool",
                "1.0",
                &[
                    "pywin32>=300; sys_platform == 'win32'",
                    "tomli>=1.1; python_version < '3.10'",
                    "typing-extensions>=4; python_version >= '3.10' and platform_machine == 'x86_64'",
                ],
            )
            .add("typing-extensions", "4.12.2", &[]);
        // Neither pywin32 nor tomli is in the index: dropped requirements are never looked up.
        let r = run(&index, &["tool", "colorama; os_name == 'nt'"]).unwrap();
        assert_eq!(pins(&r), ["tool==1.0", "typing-extensions==4.12.2"]);
    }

    #[test]
    fn requires_python_excludes_versions() {
        let index = Index::default()
            .add("foo", "1.9", &[])
            .add("foo", "2.0", &[])
            .requires_python("foo", "1.9", ">=3.9")
            .requires_python("foo", "2.0", ">=3.14");
        let r = run(&index, &["foo"]).unwrap();
        assert_eq!(pins(&r), ["foo==1.9"]);

        let err = run(&index, &["foo>=2"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no usable version of `foo`: Requires-Python >=3.14 excludes the image's Python \
             3.13.5: 2.0"
        );
    }

    #[test]
    fn yanked_versions_only_when_pinned() {
        let index = Index::default()
            .add("foo", "1.0", &[])
            .add("foo", "1.1", &[])
            .yanked("foo", "1.1")
            .add("bar", "1.0", &["foo==1.1"]);
        assert_eq!(pins(&run(&index, &["foo"]).unwrap()), ["foo==1.0"]);
        assert_eq!(pins(&run(&index, &["foo>=1.0"]).unwrap()), ["foo==1.0"]);
        assert_eq!(pins(&run(&index, &["foo==1.1"]).unwrap()), ["foo==1.1"]);
        // Pinned deep in the graph, after `foo` was already chosen: still allowed.
        let r = run_with(&index, &[("base", &["foo>=1"]), ("app", &["bar"])], &[]).unwrap();
        assert_eq!(pins(&r), ["bar==1.0", "foo==1.1"]);
        assert_eq!(r.get("foo").unwrap().layer, "base");

        let only_yanked = Index::default().add("foo", "1.0", &[]).yanked("foo", "1.0");
        let err = run(&only_yanked, &["foo"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no usable version of `foo`: yanked, and no requirement pins it with ==: 1.0"
        );
    }

    #[test]
    fn source_only_versions_are_never_chosen() {
        let index = Index::default()
            .add("foo", "1.0", &[])
            .add("foo", "2.0", &[])
            .sdist_only("foo", "2.0")
            .add("bar", "1.0", &[])
            .sdist_only("bar", "1.0")
            .add("baz", "1.0", &["bar"]);
        assert_eq!(pins(&run(&index, &["foo"]).unwrap()), ["foo==1.0"]);

        let err = run(&index, &["bar"]).unwrap_err();
        assert!(matches!(&err, PyResolveError::NoVersions { name, .. } if name == "bar"));
        assert_eq!(
            err.to_string(),
            "no usable version of `bar`: no wheel compatible with the image (Python 3.13.5, \
             its glibc and platform): 1.0 has only sdist"
        );
        let err = run(&index, &["foo==2.0"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("no wheel compatible with the image"),
            "{err}"
        );

        // Deeper in the graph, the report says why.
        let report = no_solution(run(&index, &["baz"]).unwrap_err());
        assert!(
            report
                .contains("there is no usable version of bar (no wheel compatible with the image"),
            "{report}"
        );
        assert!(report.contains("baz depends on bar"), "{report}");
    }

    #[test]
    fn versions_unusable_for_different_reasons_are_all_explained() {
        let index = Index::default()
            .add("foo", "1.0", &[])
            .add("foo", "1.1", &[])
            .add("foo", "2.0", &[])
            .requires_python("foo", "1.0", ">=3.14")
            .yanked("foo", "1.1")
            .sdist_only("foo", "2.0");
        let report = no_solution(run(&index, &["foo"]).unwrap_err());
        assert_eq!(
            report.lines().next().unwrap(),
            "Because there is no usable version of foo (no wheel compatible with the image \
             (Python 3.13.5, its glibc and platform): 2.0 has only sdist; yanked, and no requirement pins it with ==: 1.1; \
             Requires-Python >=3.14 excludes the image's Python 3.13.5: 1.0) and layer app \
             requires foo, layer app cannot be satisfied."
        );
    }

    #[test]
    fn pre_releases_only_when_named_or_nothing_else_fits() {
        let index = Index::default()
            .add("foo", "1.0", &[])
            .add("foo", "2.0b1", &[])
            .add("foo", "2.0.dev3", &[]);
        assert_eq!(pins(&run(&index, &["foo"]).unwrap()), ["foo==1.0"]);
        assert_eq!(pins(&run(&index, &["foo<3"]).unwrap()), ["foo==1.0"]);
        // Named in a specifier: the highest version, pre-release or not.
        assert_eq!(pins(&run(&index, &["foo>=1.0b1"]).unwrap()), ["foo==2.0b1"]);
        assert_eq!(
            pins(&run(&index, &["foo==2.0.dev3"]).unwrap()),
            ["foo==2.0.dev3"]
        );
        // Only pre-releases fit the range.
        assert_eq!(pins(&run(&index, &["foo>1.0"]).unwrap()), ["foo==2.0b1"]);
        // `<2` accepts no pre-release of 2 (PEP 440).
        let report = no_solution(run(&index, &["foo>1.0,<2"]).unwrap_err());
        assert!(
            report.contains("there is no version of foo>1.0,<2"),
            "{report}"
        );
    }

    #[test]
    fn lowest_layer_placement() {
        let index = Index::default()
            .add("pandas", "2.2.3", &["numpy>=1.26", "pytz>=2020.1"])
            .add("numpy", "2.2.1", &[])
            .add("pytz", "2024.2", &[]);
        let layers = |r: &PyResolution| -> Vec<String> {
            r.packages
                .iter()
                .map(|p| format!("{}:{}", p.name, p.layer))
                .collect()
        };
        let r = run_with(&index, &[("base", &["numpy"]), ("app", &["pandas"])], &[]).unwrap();
        assert_eq!(layers(&r), ["numpy:base", "pandas:app", "pytz:app"]);
        assert_eq!(reason(&r, "numpy"), "requested");
        assert_eq!(reason(&r, "pytz"), "pytz ← pandas (layer app)");

        // The upper layer asks for what the lower one already pulls: it stays below.
        let r = run_with(&index, &[("base", &["pandas"]), ("app", &["numpy"])], &[]).unwrap();
        assert_eq!(layers(&r), ["numpy:base", "pandas:base", "pytz:base"]);
        assert_eq!(reason(&r, "numpy"), "numpy ← pandas (layer base)");
    }

    #[test]
    fn one_resolution_across_layers() {
        // The upper layer's constraint moves the lower layer's package.
        let index = Index::default()
            .add("numpy", "1.26.4", &[])
            .add("numpy", "2.2.1", &[])
            .add("tensorflow", "2.18.0", &["numpy>=1.26,<2.1"]);
        let r = run_with(
            &index,
            &[("base", &["numpy"]), ("framework", &["tensorflow==2.18.0"])],
            &[],
        )
        .unwrap();
        assert_eq!(pins(&r), ["numpy==1.26.4", "tensorflow==2.18.0"]);
        assert_eq!(r.get("numpy").unwrap().layer, "base");
    }

    #[test]
    fn unversioned_cuda_layer_below_the_framework_that_pins_it() {
        // DESIGN.md's recipe: the framework's extra picks the versions, the layer below gets
        // the packages.
        let index = Index::default()
            .add(
                "tensorflow",
                "2.21.0",
                &[
                    "numpy>=1.26",
                    "nvidia-cudnn-cu12==9.3.0.75; extra == 'and-cuda'",
                    "nvidia-cublas-cu12==12.5.3.2; extra == 'and-cuda'",
                ],
            )
            .extras("tensorflow", "2.21.0", &["and-cuda"])
            .add("numpy", "2.2.1", &[])
            .add("nvidia-cudnn-cu12", "9.3.0.75", &["nvidia-cublas-cu12"])
            .add("nvidia-cudnn-cu12", "9.5.1.17", &["nvidia-cublas-cu12"])
            .add("nvidia-cublas-cu12", "12.5.3.2", &[])
            .add("nvidia-cublas-cu12", "12.6.4.1", &[]);
        let r = run_with(
            &index,
            &[
                ("cuda", &["nvidia-cudnn-cu12", "nvidia-cublas-cu12"]),
                ("framework", &["tensorflow[and-cuda]==2.21.0"]),
            ],
            &[],
        )
        .unwrap();
        let placed: Vec<String> = r
            .packages
            .iter()
            .map(|p| format!("{}=={} {} ({})", p.name, p.version, p.layer, p.reason))
            .collect();
        assert_eq!(
            placed,
            [
                "numpy==2.2.1 framework (numpy ← tensorflow (layer framework))",
                "nvidia-cublas-cu12==12.5.3.2 cuda (requested)",
                "nvidia-cudnn-cu12==9.3.0.75 cuda (requested)",
                "tensorflow==2.21.0 framework (requested)",
            ]
        );
        assert_eq!(r.get("tensorflow").unwrap().extras, ["and-cuda"]);
    }

    #[test]
    fn preferred_versions_are_kept_when_they_fit() {
        let index = Index::default()
            .add("foo", "1.0", &[])
            .add("foo", "1.1", &[])
            .add("foo", "1.2", &[])
            .yanked("foo", "1.1");
        let r = run_with(&index, &[("app", &["foo"])], &[("Foo", "1.1")]).unwrap();
        assert_eq!(pins(&r), ["foo==1.1"]);
        let r = run_with(&index, &[("app", &["foo>=1.2"])], &[("foo", "1.1")]).unwrap();
        assert_eq!(pins(&r), ["foo==1.2"]);
        let r = run_with(&index, &[("app", &["foo"])], &[("foo", "0.9")]).unwrap();
        assert_eq!(pins(&r), ["foo==1.2"]);
    }

    #[test]
    fn conflicting_layers_are_explained() {
        let index = Index::default()
            .add("foo", "1.0", &[])
            .add("foo", "2.0", &[]);
        let err = run_with(&index, &[("base", &["foo<2"]), ("app", &["foo>=2"])], &[]).unwrap_err();
        let report = no_solution(err);
        assert!(report.contains("layer base requires foo<2"), "{report}");
        assert!(report.contains("layer app requires foo>=2"), "{report}");
    }

    #[test]
    fn conflicting_dependencies_are_explained() {
        let index = Index::default()
            .add("a", "1.0", &["c==1.0"])
            .add("b", "1.0", &["c>=2"])
            .add("c", "1.0", &[])
            .add("c", "2.0", &[]);
        let err = run(&index, &["a", "b"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("the Python requirements cannot be satisfied together:\n"),
            "{text}"
        );
        let report = no_solution(err);
        assert!(report.contains("a depends on c==1.0"), "{report}");
        assert!(report.contains("b depends on c>=2"), "{report}");
        assert!(report.contains("a and b are incompatible"), "{report}");
        assert!(report.contains("layer app requires a"), "{report}");
    }

    #[test]
    fn missing_projects_and_versions() {
        let index = Index::default().add("foo", "1.0", &[]);
        let report = no_solution(run(&index, &["nothere"]).unwrap_err());
        assert!(
            report.contains("the index has no version of nothere that the image can use"),
            "{report}"
        );
        let report = no_solution(run(&index, &["foo==3"]).unwrap_err());
        assert!(report.contains("there is no version of foo==3"), "{report}");
    }

    #[test]
    fn provider_errors_and_url_requirements() {
        let index = Index::default().add("foo", "1.0", &["broken"]);
        let err = run(&index, &["foo"]).unwrap_err();
        assert!(matches!(err, PyResolveError::Provider(_)));
        assert_eq!(
            err.to_string(),
            "https://pypi.example/simple/broken/: HTTP 500"
        );

        let err = run(
            &index,
            &["foo @ https://example.org/foo-1.0-py3-none-any.whl"],
        )
        .unwrap_err();
        assert!(
            matches!(&err, PyResolveError::NoVersions { name, reason }
                if name == "foo" && reason.starts_with("layer app asks for it by URL")),
            "{err}"
        );
    }

    #[test]
    fn local_versions_match_plain_pins() {
        let index =
            Index::default()
                .add("torch", "2.5.1+cu121", &[])
                .add("torch", "2.6.0+cu124", &[]);
        assert_eq!(
            pins(&run(&index, &["torch==2.5.1"]).unwrap()),
            ["torch==2.5.1+cu121"]
        );
        assert_eq!(
            pins(&run(&index, &["torch<=2.5.1"]).unwrap()),
            ["torch==2.5.1+cu121"]
        );
        assert_eq!(
            pins(&run(&index, &["torch!=2.6.0"]).unwrap()),
            ["torch==2.5.1+cu121"]
        );
        assert_eq!(
            pins(&run(&index, &["torch>2.5.1"]).unwrap()),
            ["torch==2.6.0+cu124"]
        );
    }

    #[test]
    fn specifier_ranges_follow_pep_440() {
        let accepts = |spec: &str, v: &str| {
            let specs = VersionSpecifiers::from_str(spec).unwrap();
            specifiers_range(&specs).contains(&Version::from_str(v).unwrap())
        };
        assert!(accepts("==1.2", "1.2.0"));
        assert!(accepts("==1.2", "1.2+local"));
        assert!(!accepts("==1.2", "1.2.post1"));
        assert!(accepts("<2", "1.9"));
        assert!(!accepts("<2", "2.0rc1"));
        assert!(accepts("<2rc2", "2.0rc1"));
        assert!(!accepts(">1.2", "1.2.post1"));
        assert!(!accepts(">1.2", "1.2+local"));
        assert!(accepts(">1.2", "1.2.1"));
        assert!(accepts(">1.2.post1", "1.2.post2"));
        assert!(accepts("~=1.4.2", "1.4.9"));
        assert!(!accepts("~=1.4.2", "1.5"));
        assert!(accepts("==1.4.*", "1.4.0.post3"));
        assert!(!accepts("==1.4.*", "1.5.0"));
        assert!(!accepts("!=1.4.*", "1.4.2"));
        assert!(accepts("<=1.4", "1.4+cu1"));
        assert!(!accepts("<=1.4", "1.4.post1"));
        assert!(accepts(">=1.4,!=1.5", "1.6"));
    }

    #[test]
    fn ranges_read_as_specifiers() {
        let text = |spec: &str| {
            range_text(&specifiers_range(
                &VersionSpecifiers::from_str(spec).unwrap(),
            ))
        };
        assert_eq!(text(""), "");
        assert_eq!(text("==1.2.3"), "==1.2.3");
        assert_eq!(text(">=1.0,<2"), ">=1.0,<2");
        assert_eq!(text("<=1.4"), "<=1.4");
        assert_eq!(text(">1.4"), ">1.4");
        assert_eq!(text("~=1.4.2"), ">=1.4.2,<1.5");
        assert_eq!(text("!=1.5"), " (<1.5 or >1.5)");
    }

    #[test]
    fn deterministic_whatever_the_provider_order() {
        let build = |reversed| {
            let mut index = requests_index()
                .add("pandas", "2.2.3", &["numpy>=1.26", "requests[socks]"])
                .add("numpy", "1.26.4", &[])
                .add("numpy", "2.1.3", &[])
                .add("numpy", "2.2.1", &[])
                .add("numpy", "2.3.0rc1", &[])
                .add("app", "1.0", &["pandas", "numpy<2.2"])
                .add("app", "0.9", &["pandas", "numpy<2"]);
            index.reversed = reversed;
            index
        };
        let layers: &[(&str, &[&str])] = &[("base", &["numpy"]), ("app", &["app", "requests"])];
        let first = run_with(&build(false), layers, &[]).unwrap();
        for reversed in [false, true] {
            assert_eq!(run_with(&build(reversed), layers, &[]).unwrap(), first);
        }
        assert_eq!(
            pins(&first),
            [
                "app==1.0",
                "numpy==2.1.3",
                "pandas==2.2.3",
                "pysocks==1.7.1",
                "requests==2.32.3",
                "urllib3==2.3.0"
            ]
        );
        let conflict: &[(&str, &[&str])] = &[("base", &["numpy>=2.2"]), ("app", &["app"])];
        let a = no_solution(run_with(&build(false), conflict, &[]).unwrap_err());
        let b = no_solution(run_with(&build(true), conflict, &[]).unwrap_err());
        assert_eq!(a, b);
    }
}
