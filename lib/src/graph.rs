//! The build graph: content-addressed nodes and their dependencies, built from layer plans.
//! Pure: no I/O. [`crate::exec`] runs it; `compose graph` prints it.
//!
//! Nodes today: one per layer (which builds or reuses its fragments, see [`crate::layer`])
//! and the image node (config, manifest and index), which depends on every layer. Layers do
//! not depend on each other: `after` orders them in the image, it does not order their builds,
//! so all layers of an image build in parallel.

use std::fmt::Write as _;

use composer_store::{NodeId, NodeKey};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::layer::plan::{FORMAT_VERSION, layer_id};
use crate::layer::{Compression, LayerPlan};
use crate::recipe::ImageSpec;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Builds layer number `n` (bottom first).
    Layer(usize),
    /// Writes config, manifest and index.
    Image,
}

/// One node.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// Content address of the node's output.
    pub id: NodeId,
    /// Human name (`layer app`, `image demo`).
    pub label: String,
    /// What it does.
    pub kind: NodeKind,
}

/// The DAG; edges point from a dependency to its dependent.
#[derive(Debug, Clone)]
pub struct BuildGraph {
    /// The graph.
    pub dag: DiGraph<GraphNode, ()>,
    /// The image node.
    pub image: NodeIndex,
}

/// Builds the graph for `spec` with its layer plans.
#[must_use]
pub fn build_graph(
    spec: &ImageSpec,
    plans: &[LayerPlan],
    compression: Compression,
    mtime: u64,
) -> BuildGraph {
    let mut dag = DiGraph::new();
    let mut layer_nodes = Vec::with_capacity(plans.len());
    for (i, p) in plans.iter().enumerate() {
        let frag_ids: Vec<NodeId> = p
            .fragments
            .iter()
            .map(|f| f.node_id(compression, mtime))
            .collect();
        let id = layer_id(&frag_ids, compression);
        layer_nodes.push(dag.add_node(GraphNode {
            id,
            label: format!("layer {}", p.name),
            kind: NodeKind::Layer(i),
        }));
    }
    let layer_ids: Vec<NodeId> = layer_nodes.iter().map(|n| dag[*n].id).collect();
    let image = dag.add_node(GraphNode {
        id: image_id(spec, &layer_ids, compression, mtime),
        label: format!("image {}", spec.name),
        kind: NodeKind::Image,
    });
    for n in layer_nodes {
        dag.add_edge(n, image, ());
    }
    BuildGraph { dag, image }
}

/// The image node's id: every input of config, manifest and index.
#[must_use]
pub fn image_id(
    spec: &ImageSpec,
    layers: &[NodeId],
    compression: Compression,
    mtime: u64,
) -> NodeId {
    let mut k = NodeKey::new("image", FORMAT_VERSION);
    k.str("compression", &compression.key())
        .u64("created", mtime);
    k.str("name", &spec.name)
        .str("platform", &spec.platform.to_string());
    k.opt_str("version", spec.version.as_deref())
        .opt_str("source", spec.source.as_deref());
    k.opt_str("revision", spec.revision.as_deref());
    for t in &spec.tags {
        k.str("tag", t);
    }
    for (l, p) in layers.iter().zip(&spec.layers) {
        k.node("layer", l).str("layer-name", &p.name);
    }
    let c = &spec.config;
    for (key, v) in &c.env {
        k.str("env-key", key).str("env-value", v);
    }
    for (field, list) in [("entrypoint", &c.entrypoint), ("cmd", &c.cmd)] {
        match list {
            None => k.str(field, "unset"),
            Some(args) => {
                k.u64(field, args.len() as u64);
                for a in args {
                    k.str("arg", a);
                }
                &mut k
            }
        };
    }
    k.opt_str("workdir", c.workdir.as_deref())
        .opt_str("user", c.user.as_deref());
    k.opt_str("stop-signal", c.stop_signal.as_deref());
    for (key, v) in &c.labels {
        k.str("label-key", key).str("label-value", v);
    }
    for (key, v) in &c.annotations {
        k.str("annotation-key", key).str("annotation-value", v);
    }
    for p in &c.exposed_ports {
        k.str("expose", p);
    }
    for v in &c.volumes {
        k.str("volume", v);
    }
    k.finish()
}

/// Human-readable size.
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl BuildGraph {
    /// A text tree: the image, its layers bottom first, and each layer's fragments.
    #[must_use]
    pub fn render_text(&self, plans: &[LayerPlan], compression: Compression, mtime: u64) -> String {
        let img = &self.dag[self.image];
        let mut s = format!("{} ({})\n", img.label, short(&img.id));
        let layers: Vec<&GraphNode> = self
            .dag
            .node_weights()
            .filter(|n| matches!(n.kind, NodeKind::Layer(_)))
            .collect();
        for (li, node) in layers.iter().enumerate() {
            let NodeKind::Layer(i) = node.kind else {
                continue;
            };
            let Some(plan) = plans.get(i) else { continue };
            let last_layer = li + 1 == layers.len();
            let (branch, pad) = if last_layer {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            let total: u64 = plan.fragments.iter().map(|f| f.tar_len).sum();
            let _ = writeln!(
                s,
                "{branch}{} ({}, {} uncompressed)",
                node.label,
                short(&node.id),
                human_bytes(total)
            );
            for (fi, f) in plan.fragments.iter().enumerate() {
                let b = if fi + 1 == plan.fragments.len() {
                    "└── "
                } else {
                    "├── "
                };
                let _ = writeln!(
                    s,
                    "{pad}{b}fragment {} ({}, {} entries, {})",
                    f.label,
                    short(&f.node_id(compression, mtime)),
                    f.entries.len(),
                    human_bytes(f.tar_len)
                );
            }
        }
        s
    }

    /// Graphviz DOT of the nodes and edges.
    #[must_use]
    pub fn render_dot(&self) -> String {
        let mut s = String::from("digraph compose {\n  rankdir=BT;\n");
        for i in self.dag.node_indices() {
            let n = &self.dag[i];
            let _ = writeln!(
                s,
                "  n{} [label=\"{}\\n{}\"];",
                i.index(),
                n.label.replace('"', "\\\""),
                short(&n.id)
            );
        }
        for e in self.dag.raw_edges() {
            let _ = writeln!(s, "  n{} -> n{};", e.source().index(), e.target().index());
        }
        s.push_str("}\n");
        s
    }
}

fn short(id: &NodeId) -> String {
    id.to_string().chars().take(12).collect()
}
