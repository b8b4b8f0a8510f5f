//! Computing something once per key while several threads may ask for it at the same time
//! (extracting a `.deb`, installing a wheel): the first caller computes, the others wait for
//! its result, and different keys proceed in parallel.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Values computed once per key.
pub struct OnceMap<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceLock<V>>>>,
}

impl<K, V> Default for OnceMap<K, V> {
    fn default() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> OnceMap<K, V> {
    /// The value for `key`, computed by `init` on the first request. Keep `V` cheap to clone
    /// (wrap big values in `Arc`).
    pub fn get_or_init(&self, key: &K, init: impl FnOnce() -> V) -> V {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cells.entry(key.clone()).or_default())
        };
        cell.get_or_init(init).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_key_is_computed_once_across_threads() {
        let map: OnceMap<u32, u32> = OnceMap::default();
        let calls = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for k in 0..4 {
                        let v = map.get_or_init(&k, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            k * 10
                        });
                        assert_eq!(v, k * 10);
                    }
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
