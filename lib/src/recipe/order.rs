//! Layer order: a topological order of `after`, ties broken by declaration order.
//!
//! Each layer names at most one layer it sits above, so the constraints form a forest
//! when they are acyclic. Kahn's algorithm, always taking the earliest-declared ready
//! layer, keeps every layer as close to its declared position as the constraints allow.

/// Image order (indices into `after`) of layers where `after[i]` is the index of the
/// layer that layer `i` must come after.
///
/// # Errors
/// Every cycle, each as the layer indices along `after` edges starting at the
/// earliest-declared member (`[a, b]` means a is after b and b is after a).
pub(crate) fn order(after: &[Option<usize>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let cycles = cycles(after);
    if !cycles.is_empty() {
        return Err(cycles);
    }
    let n = after.len();
    let mut placed = vec![false; n];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // Earliest-declared layer whose `after` is placed (or absent).
        let next =
            (0..n).find(|&i| !placed[i] && after[i].is_none_or(|a| placed.get(a) == Some(&true)));
        match next {
            Some(i) => {
                placed[i] = true;
                out.push(i);
            }
            // Unreachable without a cycle or an out-of-range index; never loop forever.
            None => break,
        }
    }
    Ok(out)
}

/// Every cycle of `after` edges, once each, starting at its earliest-declared member.
fn cycles(after: &[Option<usize>]) -> Vec<Vec<usize>> {
    // 0 = unvisited, 1 = on the current walk, 2 = done.
    let mut state = vec![0u8; after.len()];
    let mut found = Vec::new();
    for start in 0..after.len() {
        let mut walk = Vec::new();
        let mut cur = Some(start);
        while let Some(i) = cur {
            match state.get(i) {
                Some(0) => {
                    state[i] = 1;
                    walk.push(i);
                    cur = after[i];
                }
                Some(1) => {
                    // `i` is on this walk: the cycle is the walk from `i` on.
                    if let Some(pos) = walk.iter().position(|&w| w == i) {
                        let mut cycle = walk[pos..].to_vec();
                        if let Some(min_pos) = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, v)| **v)
                            .map(|(p, _)| p)
                        {
                            cycle.rotate_left(min_pos);
                        }
                        found.push(cycle);
                    }
                    cur = None;
                }
                _ => cur = None,
            }
        }
        for i in walk {
            state[i] = 2;
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_order_without_constraints() {
        assert_eq!(order(&[None, None, None]), Ok(vec![0, 1, 2]));
        assert_eq!(order(&[]), Ok(vec![]));
    }

    #[test]
    fn after_moves_a_layer_up() {
        // 0 after 2: 1 and 2 come first, then 0.
        assert_eq!(order(&[Some(2), None, None]), Ok(vec![1, 2, 0]));
        // chain declared backwards: c after b after a
        assert_eq!(order(&[Some(1), Some(2), None]), Ok(vec![2, 1, 0]));
    }

    #[test]
    fn ties_go_to_declaration_order() {
        // 0 base; 1 after 0; 2 free; 3 after 0.
        assert_eq!(order(&[None, Some(0), None, Some(0)]), Ok(vec![0, 1, 2, 3]));
        // 0 after 3; 1 free; 2 after 1; 3 free: 1, 2 ready before 3 is reached.
        assert_eq!(order(&[Some(3), None, Some(1), None]), Ok(vec![1, 2, 3, 0]));
    }

    #[test]
    fn cycles_are_reported_once() {
        assert_eq!(order(&[Some(1), Some(0)]), Err(vec![vec![0, 1]]));
        assert_eq!(order(&[Some(0)]), Err(vec![vec![0]]));
        // 3 → 1 → 2 → 1 plus 0 free: one cycle [1, 2]
        assert_eq!(
            order(&[None, Some(2), Some(1), Some(1)]),
            Err(vec![vec![1, 2]])
        );
        // two cycles
        assert_eq!(
            order(&[Some(1), Some(0), Some(3), Some(2)]),
            Err(vec![vec![0, 1], vec![2, 3]])
        );
        // declared starting in the middle of the cycle: rotated to the earliest
        assert_eq!(
            order(&[None, Some(3), Some(1), Some(2)]),
            Err(vec![vec![1, 3, 2]])
        );
    }
}
