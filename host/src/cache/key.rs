//! Cache keys: the SHA-256 of everything that decides what a read returns.
//!
//! A key is made of the connection's identity (a keyed digest of its config, see
//! `crate::client`), the target the plugin reported it reached, the current invalidation
//! generations of the cache, the connection and the target (see [`super::state`]), the
//! method and the canonical request ([`canonical_read`]).

use sha2::{Digest, Sha256};

use super::state::{Slot, State};

/// A cache key: the SHA-256 of everything that determines a result.
pub type Key = [u8; 32];

/// Builds a key from its parts; each part is length-prefixed, so parts cannot run together.
pub fn key<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Key {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The canonical bytes of a read request, for its key: every field that can change the
/// result, each tagged and length-prefixed, so that no two different requests share
/// them. Unlike JSON, NaN, infinities and -0.0 stay distinct from each other and from
/// null. Whether the read streams is left out: both read the same table.
pub(crate) fn canonical_read(request: &plugboard_api::ReadRequest) -> Vec<u8> {
    use plugboard_api::Value;
    // Destructured whole, so that a new field cannot be left out of the key unnoticed.
    let plugboard_api::ReadRequest {
        query,
        params,
        limit,
        batch_size,
        options,
        stream: _,
        catalog,
    } = request;
    let mut out = Vec::with_capacity(query.len() + 64);
    let mut bytes = |tag: u8, b: &[u8]| {
        out.push(tag);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    bytes(b'q', query.as_bytes());
    for (name, value) in params {
        bytes(b'p', name.as_bytes());
        match value {
            Value::Null => bytes(b'n', &[]),
            Value::Bool(v) => bytes(b'b', &[u8::from(*v)]),
            Value::Int(v) => bytes(b'i', &v.to_le_bytes()),
            Value::Float(v) => bytes(b'f', &v.to_bits().to_le_bytes()),
            Value::String(v) => bytes(b's', v.as_bytes()),
            Value::Bytes(v) => bytes(b'x', v),
        }
    }
    if let Some(n) = limit {
        bytes(b'l', &n.to_le_bytes());
    }
    if let Some(n) = batch_size {
        bytes(b'z', &(*n as u64).to_le_bytes());
    }
    match catalog {
        None => {}
        Some(plugboard_api::Catalog::Tables) => bytes(b'T', &[]),
        Some(plugboard_api::Catalog::Columns { table }) => bytes(b'C', table.as_bytes()),
    }
    // serde_json values hold no NaN and always print.
    let options = crate::util::canonical_json(&serde_json::Value::Object(options.clone()));
    bytes(b'o', options.as_bytes());
    out
}

/// The key of a request of `method` on a connection: see the module docs.
pub(crate) fn request_key(
    state: &State,
    identity: &str,
    scope: Slot,
    target: Option<(&str, Slot)>,
    method: &[u8],
    request: &[u8],
) -> Key {
    let generations = [
        state.all_generation(),
        state.generation(scope),
        target.map_or(0, |(_, slot)| state.generation(slot)),
    ];
    let mut g = [0u8; 24];
    for (chunk, n) in g.chunks_exact_mut(8).zip(generations) {
        chunk.copy_from_slice(&n.to_le_bytes());
    }
    let target = match target {
        Some((t, _)) => [b"t:".as_slice(), t.as_bytes()].concat(),
        None => b"-".to_vec(),
    };
    key([identity.as_bytes(), &target, &g, method, request])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_do_not_run_together() {
        assert_ne!(key([b"ab".as_slice(), b"c"]), key([b"a".as_slice(), b"bc"]));
    }

    #[test]
    fn canonical_reads_keep_every_value_apart() {
        use plugboard_api::{ReadRequest, Value};
        let with = |v: Value| {
            let mut r = ReadRequest::default();
            r.params.insert("x".into(), v);
            canonical_read(&r)
        };
        let values = [
            Value::Null,
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Int(0),
            Value::Bool(false),
            Value::String(String::new()),
            Value::String("0".into()),
            Value::Bytes(Vec::new()),
        ];
        let keys: std::collections::HashSet<Vec<u8>> = values.iter().cloned().map(with).collect();
        assert_eq!(keys.len(), values.len(), "every value has its own key");
        let limited = ReadRequest {
            limit: Some(0),
            ..ReadRequest::default()
        };
        assert_ne!(
            canonical_read(&limited),
            canonical_read(&ReadRequest::default())
        );
        let streamed = ReadRequest {
            stream: true,
            ..ReadRequest::default()
        };
        assert_eq!(
            canonical_read(&streamed),
            canonical_read(&ReadRequest::default())
        );
        let catalog = |c: Option<plugboard_api::Catalog>| {
            canonical_read(&ReadRequest {
                catalog: c,
                ..ReadRequest::default()
            })
        };
        let lists: std::collections::HashSet<Vec<u8>> = [
            catalog(None),
            catalog(Some(plugboard_api::Catalog::Tables)),
            catalog(Some(plugboard_api::Catalog::Columns {
                table: String::new(),
            })),
            catalog(Some(plugboard_api::Catalog::Columns { table: "t".into() })),
        ]
        .into_iter()
        .collect();
        assert_eq!(lists.len(), 4, "a catalog read never shares a query's key");
    }
}
