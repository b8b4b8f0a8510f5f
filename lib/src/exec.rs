//! A parallel executor for a DAG of build nodes, on a rayon pool of `jobs` threads.
//!
//! In-degree counting: a node is spawned as soon as all its dependencies have finished.
//! A failing node's transitive dependents never run; independent nodes keep going, so one
//! broken layer does not stop others from landing in the store. Results come back indexed
//! by node. Knows nothing about layers or images.

use std::sync::{Arc, Mutex, PoisonError};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

/// How one node ended.
#[derive(Debug)]
pub enum Outcome<O, E> {
    /// It ran and succeeded.
    Done(Arc<O>),
    /// It ran and failed.
    Failed(E),
    /// It did not run because a dependency failed (the index of that dependency).
    Skipped(NodeIndex),
}

struct State<O, E> {
    indegree: Vec<usize>,
    outcomes: Vec<Option<Outcome<O, E>>>,
}

/// Runs every node of `graph` (edges point from a dependency to its dependent) with at most
/// `jobs` nodes at once. `run` receives the node and the outputs of its dependencies in
/// edge order. Every node gets an [`Outcome`].
///
/// # Errors
/// The pool cannot be created (returned as its message).
pub fn execute<N, O, E, F>(
    graph: &DiGraph<N, ()>,
    jobs: usize,
    run: F,
) -> Result<Vec<Outcome<O, E>>, String>
where
    N: Sync,
    O: Send + Sync,
    E: Send,
    F: Fn(NodeIndex, &N, &[Arc<O>]) -> Result<O, E> + Sync,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .thread_name(|i| format!("compose-{i}"))
        .build()
        .map_err(|e| e.to_string())?;
    let n = graph.node_count();
    let indegree = graph
        .node_indices()
        .map(|i| graph.edges_directed(i, Direction::Incoming).count())
        .collect();
    let state = Mutex::new(State {
        indegree,
        outcomes: (0..n).map(|_| None).collect(),
    });
    let ready: Vec<NodeIndex> = graph
        .node_indices()
        .filter(|i| {
            graph
                .edges_directed(*i, Direction::Incoming)
                .next()
                .is_none()
        })
        .collect();
    pool.scope(|s| {
        for idx in ready {
            spawn(s, graph, &state, &run, idx);
        }
    });
    let state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok(state
        .outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Skipped(NodeIndex::end())))
        .collect())
}

fn spawn<'s, N, O, E, F>(
    s: &rayon::Scope<'s>,
    graph: &'s DiGraph<N, ()>,
    state: &'s Mutex<State<O, E>>,
    run: &'s F,
    idx: NodeIndex,
) where
    N: Sync,
    O: Send + Sync,
    E: Send,
    F: Fn(NodeIndex, &N, &[Arc<O>]) -> Result<O, E> + Sync,
{
    s.spawn(move |s| {
        let deps: Vec<Arc<O>> = {
            let st = state.lock().unwrap_or_else(PoisonError::into_inner);
            graph
                .edges_directed(idx, Direction::Incoming)
                .filter_map(|e| match &st.outcomes[e.source().index()] {
                    Some(Outcome::Done(o)) => Some(Arc::clone(o)),
                    _ => None,
                })
                .collect()
        };
        let result = run(idx, &graph[idx], &deps);
        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(o) => {
                st.outcomes[idx.index()] = Some(Outcome::Done(Arc::new(o)));
                let dependents: Vec<NodeIndex> = graph
                    .edges_directed(idx, Direction::Outgoing)
                    .map(|e| e.target())
                    .collect();
                for d in dependents {
                    st.indegree[d.index()] -= 1;
                    if st.indegree[d.index()] == 0 && st.outcomes[d.index()].is_none() {
                        spawn(s, graph, state, run, d);
                    }
                }
            }
            Err(e) => {
                st.outcomes[idx.index()] = Some(Outcome::Failed(e));
                // Every transitive dependent is skipped, naming this node as the cause.
                let mut stack: Vec<NodeIndex> = graph
                    .edges_directed(idx, Direction::Outgoing)
                    .map(|e| e.target())
                    .collect();
                while let Some(d) = stack.pop() {
                    if st.outcomes[d.index()].is_none() {
                        st.outcomes[d.index()] = Some(Outcome::Skipped(idx));
                        stack.extend(
                            graph
                                .edges_directed(d, Direction::Outgoing)
                                .map(|e| e.target()),
                        );
                    }
                }
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_in_dependency_order_and_passes_outputs() {
        let mut g = DiGraph::new();
        let a = g.add_node(1u64);
        let b = g.add_node(2);
        let c = g.add_node(3);
        g.add_edge(a, c, ());
        g.add_edge(b, c, ());
        for jobs in [1, 4] {
            let out = execute(&g, jobs, |_, n, deps: &[Arc<u64>]| -> Result<u64, ()> {
                Ok(*n + deps.iter().map(|d| **d).sum::<u64>())
            })
            .unwrap();
            assert!(matches!(&out[c.index()], Outcome::Done(v) if **v == 6));
        }
    }

    #[test]
    fn failure_skips_dependents_but_not_independent_nodes() {
        let mut g = DiGraph::new();
        let bad = g.add_node("bad");
        let good = g.add_node("good");
        let top = g.add_node("top");
        let above = g.add_node("above");
        g.add_edge(bad, top, ());
        g.add_edge(good, top, ());
        g.add_edge(top, above, ());
        let ran = AtomicUsize::new(0);
        let out = execute(&g, 2, |_, n, _: &[Arc<()>]| {
            ran.fetch_add(1, Ordering::SeqCst);
            if *n == "bad" { Err("boom") } else { Ok(()) }
        })
        .unwrap();
        assert!(matches!(out[bad.index()], Outcome::Failed("boom")));
        assert!(matches!(out[good.index()], Outcome::Done(_)));
        assert!(matches!(out[top.index()], Outcome::Skipped(i) if i == bad));
        assert!(matches!(out[above.index()], Outcome::Skipped(i) if i == bad));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn independent_nodes_run_concurrently() {
        let mut g = DiGraph::new();
        for _ in 0..4 {
            g.add_node(());
        }
        let live = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        execute(&g, 4, |_, (), _: &[Arc<()>]| -> Result<(), ()> {
            let now = live.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            live.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert!(peak.load(Ordering::SeqCst) >= 2);
    }
}
