//! Small helpers that every layer uses and that depend on nothing else in the crate.

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The bytes of `path`, if there are at most `max` of them (`None` past that). Reads at
/// most `max + 1`, so a file that never ends (`/dev/zero`) cannot exhaust memory.
pub(crate) fn read_at_most(path: &std::path::Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    read_at_most_from(std::fs::File::open(path)?, max)
}

/// As [`read_at_most`], from any reader (standard input).
pub(crate) fn read_at_most_from(
    reader: impl std::io::Read,
    max: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// JSON with object keys sorted at every level, so equal tables give equal text: the same
/// function plugins use for their targets.
pub(crate) use plugboard_api::canonical_json;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names() {
        let names = ["pets_db", "chinook", "warehouse"];
        assert_eq!(closest("pet_db", names.iter().copied()), Some("pets_db"));
        assert_eq!(closest("zzz", names.iter().copied()), None);
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": 2, "c": 3}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":3,"d":2},"b":1}"#);
    }
}
