//! "Did you mean …?": the closest known name to a misspelt one.

/// The candidate closest to `word`: the smallest edit distance up to 2 (and less than
/// the word's length), else a candidate that `word` is a prefix of (or that is a prefix
/// of `word`). Ties go to the earlier candidate.
pub(crate) fn closest<'c, S: AsRef<str>>(word: &str, candidates: &'c [S]) -> Option<&'c str> {
    let len = word.chars().count();
    let by_distance = candidates
        .iter()
        .map(|c| (levenshtein(word, c.as_ref()), c.as_ref()))
        .filter(|&(d, _)| d <= 2 && d < len)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c);
    by_distance.or_else(|| {
        candidates
            .iter()
            .map(AsRef::as_ref)
            .find(|c| len >= 2 && !c.is_empty() && (c.starts_with(word) || word.starts_with(c)))
    })
}

/// `did you mean `x`?`, or the list of what is accepted.
pub(crate) fn help<S: AsRef<str>>(word: &str, candidates: &[S], accepted_in: &str) -> String {
    match closest(word, candidates) {
        Some(c) => format!("did you mean `{c}`?"),
        None if candidates.is_empty() => format!("{accepted_in} takes none"),
        None => format!("{accepted_in} accepts {}", list(candidates)),
    }
}

/// "`a`, `b` and `c`".
pub(crate) fn list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{}`", s.as_ref())).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Edit distance in characters (insert, delete, substitute).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &[&str] = &["env", "entrypoint", "cmd", "workdir", "user", "stop-signal"];

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("workdir", "workdir"), 0);
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("wrkdir", NODES), Some("workdir"));
        assert_eq!(closest("work", NODES), Some("workdir"));
        assert_eq!(closest("stop", NODES), Some("stop-signal"));
        assert_eq!(closest("cmdline", NODES), Some("cmd"));
        assert_eq!(closest("frobnicate", NODES), None);
        assert_eq!(closest("x", NODES), None);
        assert_eq!(help("usr", NODES, "`config`"), "did you mean `user`?");
        assert_eq!(
            help("zzz", &["a", "b"], "`image`"),
            "`image` accepts `a` and `b`"
        );
        assert_eq!(
            help("zzz", &[] as &[&str], "`symlink`"),
            "`symlink` takes none"
        );
    }
}
