//! apt-like dependency closure over package indices, pure and deterministic.
//!
//! Given every configured suite's packages for one architecture, the layers' requests and
//! the include/exclude lists, [`resolve`] picks one version of each needed package and the
//! layer it goes in:
//!
//! - **Relations**: `Pre-Depends` and `Depends` (Recommends and Suggests are not followed,
//!   as with `--no-install-recommends`). Groups are ANDed; within a group the first
//!   alternative that an already selected package satisfies wins, else the first
//!   alternative (left to right) that can be satisfied at all.
//! - **Candidates**: a package must be `Architecture:` the target or `all`. Of the versions
//!   that satisfy a relation, the highest across all suites wins (apt's default pin, so a
//!   security update beats the release version); equal versions are broken by suite,
//!   component and archive name, so the input order never matters. One version per name.
//! - **Virtual packages**: a `Provides` satisfies an unversioned relation, and a versioned
//!   one only with `(= V)` where V meets it. Among several providers, none selected: the
//!   one with `Priority: required`, else `important`, else the lexically first name.
//! - **Architecture qualifiers**: `name:any` needs `Multi-Arch: allowed` (dpkg's rule);
//!   `name:native` and `name:<target arch>` are the plain name.
//! - **Exclude** means "assumed present": never installed, and a group with an alternative
//!   that names an excluded package, or a virtual package an excluded package provides, is
//!   satisfied. A layer request for an excluded package is an error; an `include` entry
//!   for one is dropped (the exclude list is the image's last word on its base set).
//! - **Layers**: processed bottom first; each package lands in the lowest layer whose
//!   requests pull it, and a later layer's closure stops at packages already placed below.
//!   `include` entries are requests of the first layer.
//! - **Conflicts and Breaks** between selected packages (directly or through `Provides`,
//!   a package never conflicting with itself) are errors naming both.
//!
//! The search is greedy breadth-first, like apt without its problem resolver: no
//! backtracking. Cycles end because a selected package is never visited twice.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::control::{Op, Relation, format_group, parse_relations};
use super::index::IndexPackage;
use super::version::DebVersion;

/// What to resolve.
#[derive(Debug, Clone)]
pub struct ResolveRequest<'a> {
    /// Every configured suite/component for the target architecture (`Architecture: all`
    /// packages included; other architectures are ignored).
    pub index: &'a [IndexPackage],
    /// Target architecture, e.g. `amd64`.
    pub arch: &'a str,
    /// `(layer name, requests)` in image order, bottom first. A request is `name`,
    /// `name=VERSION`, `name (>= VERSION)` (any relation, alternatives with `|` allowed).
    pub layers: Vec<(String, Vec<String>)>,
    /// Extra requests for the first layer (the Essential set, …).
    pub include: Vec<String>,
    /// Never installed; relations naming them count as satisfied.
    pub exclude: Vec<String>,
    /// Versions to keep when they still satisfy (name → version), e.g. from an existing lock
    /// during `compose update PKG`: such a package keeps this version instead of moving to
    /// the highest available one.
    pub prefer: BTreeMap<String, String>,
}

/// The chosen packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Sorted by package name.
    pub packages: Vec<ResolvedPackage>,
}

impl Resolution {
    /// The packages placed in `layer`, by name.
    #[must_use]
    pub fn in_layer(&self, layer: &str) -> Vec<&ResolvedPackage> {
        self.packages.iter().filter(|p| p.layer == layer).collect()
    }

    /// The package named `name`, if selected.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ResolvedPackage> {
        self.packages
            .binary_search_by(|p| p.package.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.packages[i])
    }
}

/// One chosen package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedPackage {
    /// The index record (version, suite, URL, hash).
    pub package: IndexPackage,
    /// The layer it goes in.
    pub layer: String,
    /// Why: `requested`, `requested as awk` (through a virtual package), `included`, or the
    /// chain from a request, `python3 → python3.13 → libpython3.13-stdlib`.
    pub reason: String,
}

/// Why resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A request that does not parse.
    #[error("layer `{layer}`: bad package request `{request}`: {reason}")]
    BadRequest {
        /// Layer (empty when there is no layer at all).
        layer: String,
        /// The request as given.
        request: String,
        /// Why.
        reason: String,
    },
    /// A requested name that no index has, for any architecture.
    #[error("layer `{layer}`: unknown package `{name}`{}", did_you_mean(.suggestions))]
    UnknownPackage {
        /// Layer.
        layer: String,
        /// The name.
        name: String,
        /// Index names within edit distance 2, closest first.
        suggestions: Vec<String>,
    },
    /// A layer requests a package that the exclude list forbids.
    #[error("layer `{layer}` requests `{name}`, which is also excluded")]
    RequestedAndExcluded {
        /// Layer.
        layer: String,
        /// The name.
        name: String,
    },
    /// A request or dependency that nothing satisfies.
    #[error("layer `{layer}`: cannot satisfy {}", unsat_chain(.chain, .relation, .reason))]
    Unsatisfiable {
        /// Layer whose closure failed.
        layer: String,
        /// Packages from the request down to the one whose relation failed (empty when the
        /// request itself failed).
        chain: Vec<String>,
        /// The failing relation group, as Debian writes it.
        relation: String,
        /// Why: `not found in trixie/main`, `only 1.0-1 available`, ….
        reason: String,
    },
    /// Two selected packages conflict.
    #[error("{0}")]
    Conflict(Box<Conflict>),
    /// An index record whose version or relation field does not parse.
    #[error("package `{package}` {version} ({origin}): bad `{field}`: {error}")]
    BadPackage {
        /// `Package`.
        package: String,
        /// `Version`.
        version: String,
        /// `suite/component`.
        origin: String,
        /// The field.
        field: &'static str,
        /// The parse error.
        error: String,
    },
}

/// Two selected packages that cannot be installed together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "conflict: {package} {version} declares `{field}: {relation}` but {other} \
     {other_version} is selected too ({package}: {reason}; {other}: {other_reason})"
)]
pub struct Conflict {
    /// The package declaring the relation.
    pub package: String,
    /// Its version.
    pub version: String,
    /// `Conflicts` or `Breaks`.
    pub field: &'static str,
    /// The relation that matched.
    pub relation: String,
    /// Why it was selected.
    pub reason: String,
    /// The package it hits.
    pub other: String,
    /// Its version.
    pub other_version: String,
    /// Why that one was selected.
    pub other_reason: String,
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
        format!("; did you mean {}?", quoted.join(" or "))
    }
}

fn unsat_chain(chain: &[String], relation: &str, reason: &str) -> String {
    let mut parts: Vec<&str> = chain.iter().map(String::as_str).collect();
    parts.push(relation);
    parts.push(reason);
    parts.join(" → ")
}

/// One usable package version.
struct Cand<'a> {
    pkg: &'a IndexPackage,
    version: DebVersion,
    /// `Provides`, flattened.
    provides: Vec<Relation>,
}

impl Cand<'_> {
    fn priority_rank(&self) -> u8 {
        match self.pkg.priority.as_deref() {
            Some("required") => 0,
            Some("important") => 1,
            _ => 2,
        }
    }
    fn origin(&self) -> String {
        format!("{}/{}", self.pkg.suite, self.pkg.component)
    }
}

/// How a selected package got in.
struct Sel {
    cand: usize,
    layer: usize,
    /// The package whose relation pulled it; `None` for a request.
    parent: Option<usize>,
    /// The virtual name it was picked for.
    via: Option<String>,
    /// For a request: `true` when it came from `include`.
    included: bool,
}

/// A group that holds.
enum Sat {
    /// Nothing to add (already selected, or assumed present through exclude).
    Holds,
    /// Select this candidate, for this virtual name.
    New(usize, Option<String>),
}

struct Resolver<'a> {
    arch: &'a str,
    /// Sorted by name, then version descending, then origin: index order never matters.
    cands: Vec<Cand<'a>>,
    /// Name → candidate indices (version descending).
    by_name: BTreeMap<&'a str, Vec<usize>>,
    /// Virtual name → (candidate, index of the entry in its `Provides`), by candidate.
    providers: BTreeMap<String, Vec<(usize, usize)>>,
    /// Names only present for other architectures → those architectures.
    other_arch: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// `suite/component` of the index, sorted, for "not found in …".
    origins: String,
    exclude: BTreeSet<&'a str>,
    prefer: &'a BTreeMap<String, String>,
    selected: BTreeMap<&'a str, Sel>,
    layers: Vec<String>,
}

/// Resolves the closure of every layer's requests. See the module documentation for the
/// rules.
///
/// # Errors
/// [`ResolveError`]: a bad request, an unknown name (with suggestions), an excluded name
/// requested, an unsatisfiable relation (with the chain from the request), a conflict
/// between selected packages, or an index record that does not parse.
pub fn resolve(req: &ResolveRequest<'_>) -> Result<Resolution, ResolveError> {
    let mut r = Resolver::new(req)?;
    if req.layers.is_empty() {
        if let Some(first) = req.include.first() {
            return Err(ResolveError::BadRequest {
                layer: String::new(),
                request: first.clone(),
                reason: "no layer to put included packages in".into(),
            });
        }
        return Ok(Resolution {
            packages: Vec::new(),
        });
    }
    for (li, (_, requests)) in req.layers.iter().enumerate() {
        let mut roots: Vec<(&str, bool)> = requests.iter().map(|s| (s.as_str(), false)).collect();
        if li == 0 {
            roots.extend(req.include.iter().map(|s| (s.as_str(), true)));
        }
        r.close_layer(li, &roots)?;
    }
    r.check_conflicts()?;
    let packages = r
        .selected
        .values()
        .map(|sel| ResolvedPackage {
            package: r.cands[sel.cand].pkg.clone(),
            layer: r.layers[sel.layer].clone(),
            reason: r.reason(sel),
        })
        .collect();
    Ok(Resolution { packages })
}

impl<'a> Resolver<'a> {
    fn new(req: &'a ResolveRequest<'a>) -> Result<Self, ResolveError> {
        let mut cands = Vec::new();
        let mut other_arch: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        // Sorted with a suite before its `-updates`/`-security` companions.
        let mut origins: BTreeSet<(Vec<&str>, &str)> = BTreeSet::new();
        for pkg in req.index {
            origins.insert((pkg.suite.split('-').collect(), pkg.component.as_str()));
            if pkg.architecture != req.arch && pkg.architecture != "all" {
                other_arch
                    .entry(pkg.name.as_str())
                    .or_default()
                    .insert(pkg.architecture.as_str());
                continue;
            }
            let bad = |field: &'static str, error: String| ResolveError::BadPackage {
                package: pkg.name.clone(),
                version: pkg.version.clone(),
                origin: format!("{}/{}", pkg.suite, pkg.component),
                field,
                error,
            };
            let version =
                DebVersion::parse(&pkg.version).map_err(|e| bad("Version", e.to_string()))?;
            let provides = parse_relations(&pkg.provides)
                .map_err(|e| bad("Provides", e.to_string()))?
                .into_iter()
                .flatten()
                .collect();
            cands.push(Cand {
                pkg,
                version,
                provides,
            });
        }
        cands.sort_by(|a, b| {
            let key = |c: &Cand<'a>| {
                (
                    c.pkg.suite.as_str(),
                    c.pkg.component.as_str(),
                    c.pkg.archive.as_str(),
                    c.pkg.architecture.as_str(),
                    c.pkg.filename.as_str(),
                    c.pkg.sha256.as_str(),
                )
            };
            a.pkg
                .name
                .cmp(&b.pkg.name)
                .then_with(|| b.version.cmp(&a.version))
                .then_with(|| b.pkg.version.cmp(&a.pkg.version))
                .then_with(|| key(a).cmp(&key(b)))
        });
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut providers: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        for (i, c) in cands.iter().enumerate() {
            by_name.entry(c.pkg.name.as_str()).or_default().push(i);
            for (j, p) in c.provides.iter().enumerate() {
                providers.entry(p.name.clone()).or_default().push((i, j));
            }
        }
        other_arch.retain(|name, _| !by_name.contains_key(name) && !providers.contains_key(*name));
        Ok(Resolver {
            arch: req.arch,
            cands,
            by_name,
            providers,
            other_arch,
            origins: origins
                .iter()
                .map(|(suite, component)| format!("{}/{component}", suite.join("-")))
                .collect::<Vec<_>>()
                .join(", "),
            exclude: req.exclude.iter().map(String::as_str).collect(),
            prefer: &req.prefer,
            selected: BTreeMap::new(),
            layers: req.layers.iter().map(|(n, _)| n.clone()).collect(),
        })
    }

    /// Selects the requests of layer `li`, then their closure, breadth first.
    fn close_layer(&mut self, li: usize, roots: &[(&str, bool)]) -> Result<(), ResolveError> {
        let layer = self.layers[li].clone();
        let mut queue = VecDeque::new();
        for &(text, included) in roots {
            let group = parse_request(text).map_err(|reason| ResolveError::BadRequest {
                layer: layer.clone(),
                request: text.to_string(),
                reason,
            })?;
            if let Some(r) = group
                .iter()
                .find(|r| self.exclude.contains(r.name.as_str()))
            {
                if included {
                    continue;
                }
                return Err(ResolveError::RequestedAndExcluded {
                    layer,
                    name: r.name.clone(),
                });
            }
            // A typo check for single names; alternatives may name what this index lacks.
            if let [r] = group.as_slice()
                && !self.knows(&r.name)
            {
                return Err(ResolveError::UnknownPackage {
                    layer,
                    name: r.name.clone(),
                    suggestions: self.suggest(&r.name),
                });
            }
            match self.satisfy(&group) {
                Ok(Sat::Holds) => {}
                Ok(Sat::New(c, via)) => {
                    self.select(c, li, None, via, included);
                    queue.push_back(c);
                }
                Err(reason) => {
                    return Err(ResolveError::Unsatisfiable {
                        layer,
                        chain: Vec::new(),
                        relation: format_group(&group),
                        reason,
                    });
                }
            }
        }
        while let Some(c) = queue.pop_front() {
            for group in self.dependencies(c)? {
                match self.satisfy(&group) {
                    Ok(Sat::Holds) => {}
                    Ok(Sat::New(d, via)) => {
                        self.select(d, li, Some(c), via, false);
                        queue.push_back(d);
                    }
                    Err(reason) => {
                        return Err(ResolveError::Unsatisfiable {
                            layer,
                            chain: self.chain(c),
                            relation: format_group(&group),
                            reason,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn select(
        &mut self,
        cand: usize,
        layer: usize,
        parent: Option<usize>,
        via: Option<String>,
        included: bool,
    ) {
        let name = self.cands[cand].pkg.name.as_str();
        self.selected.insert(
            name,
            Sel {
                cand,
                layer,
                parent,
                via,
                included,
            },
        );
    }

    /// `Pre-Depends` then `Depends` of a candidate.
    fn dependencies(&self, cand: usize) -> Result<Vec<Vec<Relation>>, ResolveError> {
        let c = &self.cands[cand];
        let mut out = Vec::new();
        for (field, text) in [
            ("Pre-Depends", &c.pkg.pre_depends),
            ("Depends", &c.pkg.depends),
        ] {
            out.extend(parse_relations(text).map_err(|e| ResolveError::BadPackage {
                package: c.pkg.name.clone(),
                version: c.pkg.version.clone(),
                origin: c.origin(),
                field,
                error: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Whether a name exists in the index, as a package (any architecture) or a virtual one.
    fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
            || self.providers.contains_key(name)
            || self.other_arch.contains_key(name)
    }

    /// Known names within edit distance 2 of `name`, closest first, at most 3.
    fn suggest(&self, name: &str) -> Vec<String> {
        let mut hits: Vec<(usize, &str)> = self
            .by_name
            .keys()
            .copied()
            .chain(self.providers.keys().map(String::as_str))
            .chain(self.other_arch.keys().copied())
            .filter_map(|k| edit_distance(name, k, 2).map(|d| (d, k)))
            .collect();
        hits.sort_unstable();
        hits.dedup();
        hits.into_iter()
            .take(3)
            .map(|(_, k)| k.to_string())
            .collect()
    }

    /// dpkg's `deparchsatisfied` for a single-architecture system: every candidate is the
    /// native architecture or `all`.
    fn arch_ok(&self, cand: usize, r: &Relation) -> bool {
        match r.arch.as_deref() {
            None | Some("native") => true,
            Some("any") => self.cands[cand].pkg.multi_arch.as_deref() == Some("allowed"),
            Some(a) => a == self.arch,
        }
    }

    /// Whether `Provides` entry `p` satisfies `r`'s version constraint: any entry for an
    /// unversioned relation, only `(= V)` with V meeting it for a versioned one.
    fn provide_ok(p: &Relation, r: &Relation) -> bool {
        match (&r.constraint, &p.constraint) {
            (None, _) => true,
            (Some(_), Some((Op::Eq, v))) => DebVersion::parse(v).is_ok_and(|v| r.accepts(&v)),
            (Some(_), _) => false,
        }
    }

    /// The selected candidate index for a name.
    fn selected_cand(&self, name: &str) -> Option<usize> {
        self.selected.get(name).map(|s| s.cand)
    }

    /// A group holds if an alternative is assumed present (exclude), or is met by a selected
    /// package; else the first alternative that a candidate can meet is picked.
    fn satisfy(&self, group: &[Relation]) -> Result<Sat, String> {
        if group.iter().any(|r| self.excluded_satisfies(r)) {
            return Ok(Sat::Holds);
        }
        if group.iter().any(|r| self.selected_satisfies(r)) {
            return Ok(Sat::Holds);
        }
        let mut reasons = Vec::new();
        for r in group {
            match self.pick(r) {
                Ok((c, via)) => return Ok(Sat::New(c, via)),
                Err(reason) => reasons.push((r.name.as_str(), reason)),
            }
        }
        if let [(_, only)] = reasons.as_slice() {
            return Err(only.clone());
        }
        let parts: Vec<String> = reasons
            .iter()
            .map(|(name, reason)| format!("{name}: {reason}"))
            .collect();
        Err(parts.join("; "))
    }

    fn excluded_satisfies(&self, r: &Relation) -> bool {
        self.exclude.contains(r.name.as_str())
            || self.providers.get(&r.name).is_some_and(|ps| {
                ps.iter()
                    .any(|&(c, _)| self.exclude.contains(self.cands[c].pkg.name.as_str()))
            })
    }

    fn selected_satisfies(&self, r: &Relation) -> bool {
        if let Some(c) = self.selected_cand(&r.name)
            && self.arch_ok(c, r)
            && r.accepts(&self.cands[c].version)
        {
            return true;
        }
        self.providers.get(&r.name).is_some_and(|ps| {
            ps.iter().any(|&(c, j)| {
                self.selected_cand(&self.cands[c].pkg.name) == Some(c)
                    && self.arch_ok(c, r)
                    && Self::provide_ok(&self.cands[c].provides[j], r)
            })
        })
    }

    /// The best candidate for one relation not met by the selection, or why there is none.
    fn pick(&self, r: &Relation) -> Result<(usize, Option<String>), String> {
        let mut notes = Vec::new();
        if let Some(list) = self.by_name.get(r.name.as_str()) {
            if let Some(sel) = self.selected.get(r.name.as_str()) {
                let c = &self.cands[sel.cand];
                notes.push(format!(
                    "{} {} is already selected ({})",
                    c.pkg.name,
                    c.pkg.version,
                    self.reason(sel)
                ));
            } else if !list.iter().any(|&c| self.arch_ok(c, r)) {
                notes.push(format!(
                    "{} is not Multi-Arch: allowed, so `{}` cannot use it",
                    r.name,
                    Relation {
                        constraint: None,
                        ..r.clone()
                    }
                ));
            } else if let Some(&c) = self
                .prefer
                .get(r.name.as_str())
                .and_then(|want| {
                    list.iter().find(|&&c| {
                        self.cands[c].pkg.version == *want
                            && self.arch_ok(c, r)
                            && r.accepts(&self.cands[c].version)
                    })
                })
                .or_else(|| {
                    list.iter()
                        .find(|&&c| self.arch_ok(c, r) && r.accepts(&self.cands[c].version))
                })
            {
                return Ok((c, None));
            } else {
                let mut versions: Vec<&str> = list
                    .iter()
                    .map(|&c| self.cands[c].pkg.version.as_str())
                    .collect();
                versions.dedup();
                notes.push(format!("only {} available", versions.join(", ")));
            }
        }
        if let Some(ps) = self.providers.get(&r.name) {
            // Best usable candidate per provider name (candidates are version-descending).
            let mut best: BTreeMap<&str, usize> = BTreeMap::new();
            for &(c, j) in ps {
                let name = self.cands[c].pkg.name.as_str();
                if self.selected.contains_key(name) || best.contains_key(name) {
                    continue;
                }
                if self.arch_ok(c, r) && Self::provide_ok(&self.cands[c].provides[j], r) {
                    best.insert(name, c);
                }
            }
            if let Some((_, &c)) = best
                .iter()
                .min_by_key(|&(name, &c)| (self.cands[c].priority_rank(), *name))
            {
                return Ok((c, Some(r.name.clone())));
            }
            let mut offers: Vec<String> = ps
                .iter()
                .map(|&(c, j)| {
                    let p = &self.cands[c].provides[j];
                    match &p.constraint {
                        Some((op, v)) => format!("{} ({op} {v})", self.cands[c].pkg.name),
                        None => format!("{} (no version)", self.cands[c].pkg.name),
                    }
                })
                .collect();
            offers.dedup();
            notes.push(format!("only provided by {}", offers.join(", ")));
        }
        if notes.is_empty() {
            if let Some(archs) = self.other_arch.get(r.name.as_str()) {
                let archs: Vec<&str> = archs.iter().copied().collect();
                notes.push(format!(
                    "not available for {} (only {})",
                    self.arch,
                    archs.join(", ")
                ));
            } else {
                notes.push(format!("not found in {}", self.origins));
            }
        }
        Err(notes.join("; "))
    }

    /// Labels from the request down to `cand`: `name`, or `name (provides virtual)`.
    fn chain(&self, cand: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(cand);
        while let Some(c) = cur {
            let name = self.cands[c].pkg.name.as_str();
            let Some(sel) = self.selected.get(name) else {
                break;
            };
            out.push(match &sel.via {
                Some(v) => format!("{name} (provides {v})"),
                None => name.to_string(),
            });
            cur = sel.parent;
        }
        out.reverse();
        out
    }

    fn reason(&self, sel: &Sel) -> String {
        if sel.parent.is_some() {
            return self.chain(sel.cand).join(" → ");
        }
        let base = if sel.included {
            "included"
        } else {
            "requested"
        };
        match &sel.via {
            Some(v) => format!("{base} as {v}"),
            None => base.to_string(),
        }
    }

    /// `Conflicts` and `Breaks` between selected packages, in name order.
    fn check_conflicts(&self) -> Result<(), ResolveError> {
        for (&name, sel) in &self.selected {
            let c = &self.cands[sel.cand];
            for (field, text) in [("Conflicts", &c.pkg.conflicts), ("Breaks", &c.pkg.breaks)] {
                let groups = parse_relations(text).map_err(|e| ResolveError::BadPackage {
                    package: c.pkg.name.clone(),
                    version: c.pkg.version.clone(),
                    origin: c.origin(),
                    field,
                    error: e.to_string(),
                })?;
                for r in groups.iter().flatten() {
                    if let Some(hit) = self.conflict_target(name, r) {
                        let other = &self.selected[hit];
                        let o = &self.cands[other.cand];
                        return Err(ResolveError::Conflict(Box::new(Conflict {
                            package: name.to_string(),
                            version: c.pkg.version.clone(),
                            field,
                            relation: r.to_string(),
                            reason: self.reason(sel),
                            other: hit.to_string(),
                            other_version: o.pkg.version.clone(),
                            other_reason: self.reason(other),
                        })));
                    }
                }
            }
        }
        Ok(())
    }

    /// A selected package other than `me` that relation `r` of `me` hits.
    fn conflict_target(&self, me: &str, r: &Relation) -> Option<&'a str> {
        if let Some((&name, sel)) = self.selected.get_key_value(r.name.as_str())
            && name != me
            && r.accepts(&self.cands[sel.cand].version)
        {
            return Some(name);
        }
        let ps = self.providers.get(&r.name)?;
        ps.iter().find_map(|&(c, j)| {
            let name = self.cands[c].pkg.name.as_str();
            (name != me
                && self.selected_cand(name) == Some(c)
                && Self::provide_ok(&self.cands[c].provides[j], r))
            .then_some(self.cands[c].pkg.name.as_str())
        })
    }
}

/// A request: `name`, `name=VERSION`, or relation syntax (`name (>= 1)`, `a | b`).
fn parse_request(text: &str) -> Result<Vec<Relation>, String> {
    let t = text.trim();
    let rel_text = match t.split_once('=') {
        Some((name, version)) if !t.contains('(') => {
            format!("{} (= {})", name.trim(), version.trim())
        }
        _ => t.to_string(),
    };
    let mut groups = parse_relations(&rel_text).map_err(|e| match e {
        super::control::ControlError::Relation { reason, .. } => reason,
        other => other.to_string(),
    })?;
    match groups.len() {
        0 => Err("empty request".into()),
        1 => Ok(groups.remove(0)),
        _ => Err("one package per request (no `,`)".into()),
    }
}

/// Levenshtein distance between `a` and `b` if it is at most `max`.
fn edit_distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().min().is_some_and(|&m| m > max) {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= max).then_some(d)
}

impl fmt::Display for ResolvedPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}/{}) in layer `{}`: {}",
            self.package.name,
            self.package.version,
            self.package.suite,
            self.package.component,
            self.layer,
            self.reason
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A trixie/main amd64 package.
    fn pkg(name: &str, version: &str) -> IndexPackage {
        IndexPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            filename: format!("pool/main/{name}_{version}_amd64.deb"),
            size: 1,
            sha256: "0".repeat(64),
            suite: "trixie".into(),
            component: "main".into(),
            archive: "https://deb.debian.org/debian".into(),
            ..IndexPackage::default()
        }
    }

    fn deps(name: &str, version: &str, depends: &str) -> IndexPackage {
        IndexPackage {
            depends: depends.into(),
            ..pkg(name, version)
        }
    }

    fn in_suite(p: IndexPackage, suite: &str) -> IndexPackage {
        IndexPackage {
            suite: suite.into(),
            ..p
        }
    }

    fn layer(name: &str, reqs: &[&str]) -> (String, Vec<String>) {
        (name.into(), reqs.iter().map(|s| (*s).to_string()).collect())
    }

    fn request<'a>(
        index: &'a [IndexPackage],
        layers: Vec<(String, Vec<String>)>,
    ) -> ResolveRequest<'a> {
        ResolveRequest {
            index,
            arch: "amd64",
            layers,
            include: Vec::new(),
            exclude: Vec::new(),
            prefer: BTreeMap::new(),
        }
    }

    fn run(index: &[IndexPackage], reqs: &[&str]) -> Result<Resolution, ResolveError> {
        resolve(&request(index, vec![layer("system", reqs)]))
    }

    /// `name version layer` lines, sorted by name.
    fn summary(r: &Resolution) -> Vec<String> {
        r.packages
            .iter()
            .map(|p| format!("{} {} {}", p.package.name, p.package.version, p.layer))
            .collect()
    }

    fn names(r: &Resolution) -> Vec<&str> {
        r.packages.iter().map(|p| p.package.name.as_str()).collect()
    }

    #[test]
    fn chain_and_reasons() {
        let index = [
            deps(
                "python3",
                "3.13.5-1",
                "python3.13 (>= 3.13.5-1~), libpython3-stdlib",
            ),
            deps(
                "python3.13",
                "3.13.5-2",
                "libpython3.13-stdlib (= 3.13.5-2)",
            ),
            deps("libpython3.13-stdlib", "3.13.5-2", "libc6 (>= 2.38)"),
            deps("libpython3-stdlib", "3.13.5-1", "libpython3.13-stdlib"),
            pkg("libc6", "2.41-12"),
        ];
        let r = run(&index, &["python3"]).unwrap();
        assert_eq!(
            names(&r),
            [
                "libc6",
                "libpython3-stdlib",
                "libpython3.13-stdlib",
                "python3",
                "python3.13"
            ]
        );
        let reason = |n: &str| r.get(n).unwrap().reason.clone();
        assert_eq!(reason("python3"), "requested");
        assert_eq!(reason("python3.13"), "python3 → python3.13");
        // Breadth first: the shortest chain explains each package.
        assert_eq!(
            reason("libpython3.13-stdlib"),
            "python3 → python3.13 → libpython3.13-stdlib"
        );
        assert_eq!(
            reason("libc6"),
            "python3 → python3.13 → libpython3.13-stdlib → libc6"
        );
        assert_eq!(r.get("nope"), None);
        assert_eq!(r.in_layer("system").len(), 5);
    }

    #[test]
    fn unsatisfiable_chain_text() {
        let index = [
            deps("python3", "3.13.5-1", "python3.13"),
            deps(
                "python3.13",
                "3.13.5-2",
                "libpython3.13-stdlib (>= 3.13.5-2)",
            ),
            in_suite(deps("libfoo-user", "1", "libfoo (>= 2)"), "trixie-updates"),
            pkg("libfoo", "1.0-1"),
            in_suite(pkg("libfoo", "1.5-1"), "trixie-updates"),
            deps("alt-user", "1", "libfoo (>= 2) | libbar"),
        ];
        let e = run(&index, &["python3"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy python3 → python3.13 → libpython3.13-stdlib \
             (>= 3.13.5-2) → not found in trixie/main, trixie-updates/main"
        );
        assert_eq!(
            e,
            ResolveError::Unsatisfiable {
                layer: "system".into(),
                chain: vec!["python3".into(), "python3.13".into()],
                relation: "libpython3.13-stdlib (>= 3.13.5-2)".into(),
                reason: "not found in trixie/main, trixie-updates/main".into(),
            }
        );
        let e = run(&index, &["libfoo-user"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy libfoo-user → libfoo (>= 2) → only 1.5-1, 1.0-1 available"
        );
        let e = run(&index, &["alt-user"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy alt-user → libfoo (>= 2) | libbar → libfoo: only \
             1.5-1, 1.0-1 available; libbar: not found in trixie/main, trixie-updates/main"
        );
        // The request itself.
        let e = run(&index, &["libfoo (>= 3)"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy libfoo (>= 3) → only 1.5-1, 1.0-1 available"
        );
    }

    #[test]
    fn unknown_request_suggests() {
        let index = [
            pkg("python3", "3.13.5-1"),
            pkg("python3-venv", "3.13.5-1"),
            pkg("perl", "5.40"),
        ];
        let e = run(&index, &["pyhton3"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: unknown package `pyhton3`; did you mean `python3`?"
        );
        let e = run(&index, &["python3-ven"]).unwrap_err();
        assert_eq!(
            e,
            ResolveError::UnknownPackage {
                layer: "system".into(),
                name: "python3-ven".into(),
                suggestions: vec!["python3-venv".into()],
            }
        );
        let e = run(&index, &["zzzzzzzz"]).unwrap_err();
        assert_eq!(e.to_string(), "layer `system`: unknown package `zzzzzzzz`");
        assert_eq!(edit_distance("kitten", "sitting", 3), Some(3));
        assert_eq!(edit_distance("kitten", "sitting", 2), None);
        assert_eq!(edit_distance("", "ab", 2), Some(2));
    }

    #[test]
    fn bad_requests() {
        let index = [pkg("a", "1")];
        for bad in ["a, b", "", "a (>= x)", "a=", "a ("] {
            let e = run(&index, &[bad]).unwrap_err();
            assert!(matches!(e, ResolveError::BadRequest { .. }), "{bad:?}: {e}");
        }
        let e = run(&index, &["a, b"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: bad package request `a, b`: one package per request (no `,`)"
        );
    }

    #[test]
    fn alternatives() {
        let index = [
            deps("x", "1", "b | c"),
            deps("y", "1", "missing | c"),
            deps("z", "1", "b (>= 2) | c"),
            pkg("b", "1"),
            pkg("c", "1"),
        ];
        // First alternative that can be satisfied.
        assert_eq!(names(&run(&index, &["x"]).unwrap()), ["b", "x"]);
        assert_eq!(names(&run(&index, &["y"]).unwrap()), ["c", "y"]);
        assert_eq!(names(&run(&index, &["z"]).unwrap()), ["c", "z"]);
        // One already selected is preferred, even when it is not the first.
        assert_eq!(names(&run(&index, &["c", "x"]).unwrap()), ["c", "x"]);
        // Also when selected in a lower layer.
        let r = resolve(&request(
            &index,
            vec![layer("base", &["c"]), layer("app", &["x"])],
        ))
        .unwrap();
        assert_eq!(summary(&r), ["c 1 base", "x 1 app"]);
        // Requests may have alternatives too.
        assert_eq!(names(&run(&index, &["missing | c"]).unwrap()), ["c"]);
    }

    #[test]
    fn virtual_packages() {
        let index = [
            deps("user", "1", "mail-transport-agent"),
            IndexPackage {
                provides: "mail-transport-agent".into(),
                conflicts: "mail-transport-agent".into(),
                priority: Some("optional".into()),
                ..pkg("postfix", "3.10")
            },
            IndexPackage {
                provides: "mail-transport-agent".into(),
                conflicts: "mail-transport-agent".into(),
                priority: Some("optional".into()),
                ..pkg("exim4-daemon-light", "4.98")
            },
            deps("awk-user", "1", "awk"),
            IndexPackage {
                provides: "awk".into(),
                priority: Some("optional".into()),
                ..pkg("gawk", "5.2")
            },
            IndexPackage {
                provides: "awk".into(),
                priority: Some("required".into()),
                ..pkg("mawk", "1.3.4")
            },
            deps("abi-user", "1", "libfoo-abi-2 (>= 2.1)"),
            IndexPackage {
                provides: "libfoo-abi-2 (= 2.0)".into(),
                ..pkg("libfoo2", "2.0-1")
            },
            IndexPackage {
                provides: "libfoo-abi-2 (= 2.2), libfoo-abi-2-extra".into(),
                ..pkg("libfoo2-new", "2.2-1")
            },
            IndexPackage {
                provides: "libfoo-abi-2".into(),
                ..pkg("libfoo2-compat", "9")
            },
            deps("unversioned-only", "1", "libbar-abi (>= 1)"),
            IndexPackage {
                provides: "libbar-abi".into(),
                ..pkg("libbar1", "1.0")
            },
        ];
        // Lexically first provider when priorities tie; a provider that conflicts with
        // the virtual name it provides does not conflict with itself.
        let r = run(&index, &["user"]).unwrap();
        assert_eq!(names(&r), ["exim4-daemon-light", "user"]);
        assert_eq!(
            r.get("exim4-daemon-light").unwrap().reason,
            "user → exim4-daemon-light (provides mail-transport-agent)"
        );
        // Priority required beats the lexical order.
        assert_eq!(
            names(&run(&index, &["awk-user"]).unwrap()),
            ["awk-user", "mawk"]
        );
        let r = run(&index, &["awk"]).unwrap();
        assert_eq!(r.get("mawk").unwrap().reason, "requested as awk");
        // A selected provider is preferred.
        assert_eq!(
            names(&run(&index, &["gawk", "awk-user"]).unwrap()),
            ["awk-user", "gawk"]
        );
        // Versioned dependency: only a versioned Provides that matches.
        assert_eq!(
            names(&run(&index, &["abi-user"]).unwrap()),
            ["abi-user", "libfoo2-new"]
        );
        let e = run(&index, &["unversioned-only"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy unversioned-only → libbar-abi (>= 1) → only provided \
             by libbar1 (no version)"
        );
        // Two providers of the same virtual name conflict through it.
        let e = run(&index, &["postfix", "exim4-daemon-light"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflict: exim4-daemon-light 4.98 declares `Conflicts: mail-transport-agent` but \
             postfix 3.10 is selected too (exim4-daemon-light: requested; postfix: requested)"
        );
    }

    #[test]
    fn versions_epochs_tildes() {
        let index = [
            deps("epoch-user", "1", "x (>= 1:1.0)"),
            pkg("x", "2.0"),
            pkg("x", "1:0.9"),
            deps("tilde-user", "1", "y (>= 1.0~)"),
            pkg("y", "1.0~rc1"),
            deps("below-user", "1", "z (<< 1.0)"),
            pkg("z", "1.0"),
            pkg("z", "1.0~rc1"),
            pkg("z", "0.9"),
        ];
        let e = run(&index, &["epoch-user"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy epoch-user → x (>= 1:1.0) → only 1:0.9, 2.0 available"
        );
        // The epoch wins over a larger upstream version.
        assert_eq!(summary(&run(&index, &["x"]).unwrap()), ["x 1:0.9 system"]);
        assert_eq!(
            summary(&run(&index, &["tilde-user"]).unwrap())[1],
            "y 1.0~rc1 system"
        );
        // The highest version that satisfies the constraint, not the highest overall.
        assert_eq!(
            summary(&run(&index, &["below-user"]).unwrap())[1],
            "z 1.0~rc1 system"
        );
        assert_eq!(summary(&run(&index, &["z"]).unwrap()), ["z 1.0 system"]);
        assert_eq!(summary(&run(&index, &["z=0.9"]).unwrap()), ["z 0.9 system"]);
        assert_eq!(
            summary(&run(&index, &["z (<< 1.0~)"]).unwrap()),
            ["z 0.9 system"]
        );
        // One version per name: a later relation must accept the one already chosen.
        let e = run(&index, &["z", "below-user"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy below-user → z (<< 1.0) → z 1.0 is already selected (requested)"
        );
    }

    #[test]
    fn preferred_versions_are_kept_while_they_satisfy() {
        let index = vec![
            pkg("a", "1.0-1"),
            in_suite(pkg("a", "1.1-1"), "trixie-updates"),
            deps("b", "2.0-1", "a (>= 1.0)"),
            deps("c", "1.0-1", "a (>= 1.1)"),
        ];
        let mut req = request(&index, vec![layer("system", &["b"])]);
        req.prefer = BTreeMap::from([("a".to_string(), "1.0-1".to_string())]);
        assert_eq!(
            summary(&resolve(&req).unwrap()),
            ["a 1.0-1 system", "b 2.0-1 system"]
        );
        // A preference that no longer satisfies is dropped for the highest version.
        let mut req = request(&index, vec![layer("system", &["c"])]);
        req.prefer = BTreeMap::from([("a".to_string(), "1.0-1".to_string())]);
        assert_eq!(
            summary(&resolve(&req).unwrap()),
            ["a 1.1-1 system", "c 1.0-1 system"]
        );
    }

    #[test]
    fn highest_version_across_suites() {
        let index = [
            pkg("libssl3t64", "3.5.1-1"),
            in_suite(pkg("libssl3t64", "3.5.1-1+deb13u1"), "trixie-security"),
            in_suite(pkg("libssl3t64", "3.5.0-1"), "trixie-updates"),
            // Same version in two suites: broken by suite name, whatever the index order.
            pkg("tzdata", "2025b-4"),
            in_suite(pkg("tzdata", "2025b-4"), "trixie-updates"),
        ];
        let r = run(&index, &["libssl3t64", "tzdata"]).unwrap();
        let ssl = &r.get("libssl3t64").unwrap().package;
        assert_eq!(
            (ssl.version.as_str(), ssl.suite.as_str()),
            ("3.5.1-1+deb13u1", "trixie-security")
        );
        assert_eq!(r.get("tzdata").unwrap().package.suite, "trixie");
        let mut reversed = index.to_vec();
        reversed.reverse();
        assert_eq!(run(&reversed, &["libssl3t64", "tzdata"]).unwrap(), r);
    }

    #[test]
    fn architectures_and_qualifiers() {
        let index = [
            deps("tool", "1", "python3:any, perl:native, libc6:amd64, data"),
            IndexPackage {
                multi_arch: Some("allowed".into()),
                ..pkg("python3", "3.13.5-1")
            },
            pkg("perl", "5.40"),
            pkg("libc6", "2.41"),
            IndexPackage {
                architecture: "all".into(),
                ..pkg("data", "1")
            },
            IndexPackage {
                architecture: "arm64".into(),
                ..pkg("only-arm", "1")
            },
            IndexPackage {
                architecture: "arm64".into(),
                ..pkg("data", "2")
            },
            deps("strict", "1", "perl:any"),
            deps("foreign", "1", "libc6:arm64"),
        ];
        let r = run(&index, &["tool"]).unwrap();
        assert_eq!(
            summary(&r),
            [
                "data 1 system",
                "libc6 2.41 system",
                "perl 5.40 system",
                "python3 3.13.5-1 system",
                "tool 1 system"
            ]
        );
        let e = run(&index, &["strict"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy strict → perl:any → perl is not Multi-Arch: allowed, \
             so `perl:any` cannot use it"
        );
        let e = run(&index, &["only-arm"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer `system`: cannot satisfy only-arm → not available for amd64 (only arm64)"
        );
        assert!(run(&index, &["foreign"]).is_err());
    }

    #[test]
    fn exclude_is_assumed_present() {
        let index = [
            deps("python3-minimal", "3.13.5-1", "dpkg (>= 1.13.20), libc6"),
            deps("dpkg", "1.22", "tar"),
            pkg("tar", "1.35"),
            pkg("libc6", "2.41"),
            deps(
                "ca-certificates",
                "20250419",
                "openssl, debconf (>= 0.5) | debconf-2.0",
            ),
            deps("other", "1", "debconf-2.0"),
            pkg("openssl", "3.5"),
            IndexPackage {
                provides: "debconf-2.0".into(),
                ..pkg("debconf", "1.5.91")
            },
            IndexPackage {
                provides: "debconf-2.0".into(),
                ..pkg("cdebconf", "0.280")
            },
        ];
        let mut req = request(
            &index,
            vec![layer(
                "system",
                &["python3-minimal", "ca-certificates", "other"],
            )],
        );
        req.exclude = vec!["dpkg".into(), "debconf".into()];
        let r = resolve(&req).unwrap();
        // Neither dpkg (nor tar through it) nor any debconf-2.0 provider.
        assert_eq!(
            names(&r),
            [
                "ca-certificates",
                "libc6",
                "openssl",
                "other",
                "python3-minimal"
            ]
        );
        // Requested and excluded: an error for a layer, dropped for include.
        req.layers = vec![layer("system", &["dpkg"])];
        assert_eq!(
            resolve(&req).unwrap_err().to_string(),
            "layer `system` requests `dpkg`, which is also excluded"
        );
        req.layers = vec![layer("system", &["libc6"])];
        req.include = vec!["dpkg".into(), "tar".into()];
        assert_eq!(names(&resolve(&req).unwrap()), ["libc6", "tar"]);
    }

    #[test]
    fn include_and_lowest_layer() {
        let index = [
            deps("base-files", "13.8", ""),
            deps("python3", "3.13", "libpython3, libc6"),
            deps("libpython3", "3.13", "libc6, libexpat1"),
            pkg("libc6", "2.41"),
            pkg("libexpat1", "2.7"),
            deps(
                "python3-numpy",
                "2.2",
                "python3, libblas3 | libblas.so.3, libc6",
            ),
            pkg("libblas3", "3.12"),
            deps("tool", "1", "libexpat1, libc6"),
        ];
        let mut req = request(
            &index,
            vec![
                layer("system", &["tool"]),
                layer("python", &["python3"]),
                layer("science", &["python3-numpy", "libc6"]),
            ],
        );
        req.include = vec!["base-files".into()];
        let r = resolve(&req).unwrap();
        assert_eq!(
            summary(&r),
            [
                "base-files 13.8 system",
                "libblas3 3.12 science",
                "libc6 2.41 system",
                "libexpat1 2.7 system",
                "libpython3 3.13 python",
                "python3 3.13 python",
                "python3-numpy 2.2 science",
                "tool 1 system",
            ]
        );
        assert_eq!(r.get("base-files").unwrap().reason, "included");
        assert_eq!(r.get("libc6").unwrap().reason, "tool → libc6");
        // A request that is already placed below stays below.
        assert_eq!(r.get("libc6").unwrap().layer, "system");
        assert_eq!(r.in_layer("python").len(), 2);
        // Include without any layer is an error; no layers, no packages.
        req.layers.clear();
        assert!(matches!(
            resolve(&req),
            Err(ResolveError::BadRequest { .. })
        ));
        req.include.clear();
        assert!(resolve(&req).unwrap().packages.is_empty());
    }

    #[test]
    fn cycles_terminate() {
        let index = [
            deps("a", "1", "b"),
            deps("b", "1", "c, a"),
            deps("c", "1", "a (>= 1), c"),
            IndexPackage {
                pre_depends: "b".into(),
                ..deps("d", "1", "d")
            },
        ];
        assert_eq!(names(&run(&index, &["a"]).unwrap()), ["a", "b", "c"]);
        assert_eq!(names(&run(&index, &["d"]).unwrap()), ["a", "b", "c", "d"]);
        assert_eq!(
            run(&index, &["d"]).unwrap().get("a").unwrap().reason,
            "d → b → a"
        );
    }

    #[test]
    fn conflicts_and_breaks() {
        let index = [
            IndexPackage {
                conflicts: "b".into(),
                ..pkg("a", "1")
            },
            pkg("b", "2"),
            IndexPackage {
                breaks: "b (<< 2)".into(),
                ..pkg("c", "1")
            },
            IndexPackage {
                breaks: "b (<< 3)".into(),
                ..deps("d", "1", "x")
            },
            deps("x", "1", "b"),
        ];
        let e = run(&index, &["a", "b"]).unwrap_err();
        let ResolveError::Conflict(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            *c,
            Conflict {
                package: "a".into(),
                version: "1".into(),
                field: "Conflicts",
                relation: "b".into(),
                reason: "requested".into(),
                other: "b".into(),
                other_version: "2".into(),
                other_reason: "requested".into(),
            }
        );
        // Breaks only when the version matches.
        assert_eq!(names(&run(&index, &["c", "b"]).unwrap()), ["b", "c"]);
        let e = run(&index, &["d"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflict: d 1 declares `Breaks: b (<< 3)` but b 2 is selected too (d: requested; b: d → x → b)"
        );
    }

    #[test]
    fn bad_index_records() {
        let index = [pkg("a", "x1")];
        let e = run(&index, &["a"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("package `a` x1 (trixie/main): bad `Version`"),
            "{e}"
        );
        let index = [deps("a", "1", "b (>= )")];
        let e = run(&index, &["a"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("package `a` 1 (trixie/main): bad `Depends`"),
            "{e}"
        );
    }

    #[test]
    fn deterministic_under_index_order() {
        let mut index = vec![
            deps("app", "1", "libx | liby, virt, common (>= 1)"),
            deps("libx", "1", "common"),
            pkg("liby", "1"),
            IndexPackage {
                provides: "virt".into(),
                ..deps("p2", "1", "common")
            },
            IndexPackage {
                provides: "virt".into(),
                ..pkg("p1", "1")
            },
            pkg("common", "1"),
            in_suite(pkg("common", "1.1"), "trixie-updates"),
            in_suite(pkg("common", "1.1"), "trixie-proposed-updates"),
            in_suite(deps("libx", "1", "common"), "trixie-updates"),
            deps("tool", "2", "app"),
        ];
        let layers = || vec![layer("base", &["app"]), layer("top", &["tool"])];
        let first = resolve(&request(&index, layers())).unwrap();
        assert_eq!(
            summary(&first),
            [
                "app 1 base",
                "common 1.1 base",
                "libx 1 base",
                "p1 1 base",
                "tool 2 top"
            ]
        );
        assert_eq!(
            first.get("common").unwrap().package.suite,
            "trixie-proposed-updates"
        );
        // Every rotation and its reverse: same result.
        for k in 0..index.len() {
            index.rotate_left(1);
            assert_eq!(
                resolve(&request(&index, layers())).unwrap(),
                first,
                "rotation {k}"
            );
            let mut rev = index.clone();
            rev.reverse();
            assert_eq!(
                resolve(&request(&rev, layers())).unwrap(),
                first,
                "reversed rotation {k}"
            );
        }
    }
}
