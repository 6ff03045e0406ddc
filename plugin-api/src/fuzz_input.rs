//! The input layout the SQL connectors' fuzz targets share (issue 13): parameters,
//! read options and statements decoded from arbitrary bytes. Behind the `fuzzing` feature;
//! not part of the interface (hidden from the docs, no stability promise).
#![doc(hidden)]

use crate::partition::Partitioning;
use crate::{Params, ReadRequest, Value};

/// The SQL connectors' placeholder targets, over one input: `run(statement, own params,
/// shared params, mode)` sees every statement (the first with every param, as a read
/// binds), then the bound queries and range queries of a partitioned read of the first,
/// its column quoted by `quote`. `mode` bit 1 limits the read, the high bits pick the
/// partition bounds; the rest is the connector's.
pub fn placeholders(
    data: &[u8],
    quote: fn(&str) -> String,
    run: &dyn Fn(&str, &Params, &Params, u8),
) {
    let input = decode(data);
    let shared = params_at(&input, 0);
    for (i, statement) in input.statements.iter().enumerate() {
        let own = if i == 0 {
            all_params(&input)
        } else {
            params_at(&input, i + 1)
        };
        run(statement, &own, &shared, input.mode);
    }
    let Some(query) = input.statements.first() else {
        return;
    };
    let request = ReadRequest {
        query: query.clone(),
        params: all_params(&input),
        limit: (input.mode & 2 != 0).then_some(10),
        ..ReadRequest::default()
    };
    let request = with_options(request, &input.options);
    if let Ok(Some(partitioning)) = Partitioning::from_request(&request) {
        let column = quote(&partitioning.column);
        for wrapped in partitioning.bounds_sql(query, &column) {
            run(&wrapped, &request.params, &shared, input.mode);
        }
        let (min, max) = match input.mode >> 5 {
            0 => (i64::MIN, i64::MAX),
            1 => (0, 0),
            2 => (-5, 5),
            _ => (1, 1_000_000),
        };
        for part in partitioning
            .queries(query, &column, min, max)
            .into_iter()
            .take(300)
        {
            run(&part, &request.params, &shared, input.mode);
        }
    }
}

/// What a fuzz input holds: `[mode] [count] [param]… [options] 0x1E [statement]
/// (0x1E [statement])…`, each param `[where] [kind] [name length] [name] [value]`
/// (`where` 0: shared, `k`: statement `k`'s own), the options `key=value;…` as `-O` takes
/// them (a number, `true`/`false`, `[1,2]`, else text).
pub struct Decoded {
    pub mode: u8,
    pub params: Vec<(usize, String, Value)>,
    pub options: String,
    pub statements: Vec<String>,
}

/// Reads any bytes; what runs out reads as zeros.
pub fn decode(data: &[u8]) -> Decoded {
    let mut at = 0usize;
    let mut byte = || {
        let b = data.get(at).copied().unwrap_or(0);
        at += 1;
        b
    };
    let mode = byte();
    let count = byte() % 8;
    let mut params = Vec::new();
    for _ in 0..count {
        let place = usize::from(byte() % 4);
        let kind = byte();
        let len = usize::from(byte() % 16);
        let name: Vec<u8> = (0..len).map(|_| byte()).collect();
        let mut take = |n: usize| -> Vec<u8> { (0..n).map(|_| byte()).collect() };
        let value = match kind % 6 {
            0 => Value::Null,
            1 => Value::Bool(take(1)[0] & 1 == 1),
            2 => Value::Int(i64::from_le_bytes(take(8).try_into().unwrap_or_default())),
            3 => Value::Float(f64::from_le_bytes(take(8).try_into().unwrap_or_default())),
            4 => {
                let n = usize::from(take(1)[0] % 32);
                Value::String(String::from_utf8_lossy(&take(n)).into_owned())
            }
            _ => {
                let n = usize::from(take(1)[0] % 32);
                Value::Bytes(take(n))
            }
        };
        params.push((place, String::from_utf8_lossy(&name).into_owned(), value));
    }
    let rest = data.get(at..).unwrap_or_default();
    let mut parts = rest.split(|&b| b == 0x1e);
    let options = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let statements = parts
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    Decoded {
        mode,
        params,
        options,
        statements,
    }
}

/// The inverse of [`decode`], for seeds.
pub fn encode(
    mode: u8,
    params: &[(usize, &str, Value)],
    options: &str,
    statements: &[&str],
) -> Vec<u8> {
    let mut out = vec![mode, params.len() as u8];
    for (place, name, value) in params {
        out.push(*place as u8);
        let (kind, payload) = match value {
            Value::Null => (0, Vec::new()),
            Value::Bool(b) => (1, vec![u8::from(*b)]),
            Value::Int(i) => (2, i.to_le_bytes().to_vec()),
            Value::Float(f) => (3, f.to_le_bytes().to_vec()),
            Value::String(s) => (4, [&[s.len() as u8][..], s.as_bytes()].concat()),
            Value::Bytes(b) => (5, [&[b.len() as u8][..], b].concat()),
        };
        out.push(kind);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(options.as_bytes());
    for s in statements {
        out.push(0x1e);
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// `request` with the options `text` gives.
pub fn with_options(mut request: ReadRequest, text: &str) -> ReadRequest {
    let options = &mut request.options;
    for pair in text.split(';').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = key.to_owned();
        if let Some(items) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            let items: Vec<&str> = items.split(',').map(str::trim).collect();
            match items
                .iter()
                .map(|i| i.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(numbers) => options.insert(key, numbers.into()),
                Err(_) => options.insert(key, items.into()),
            };
        } else if let Ok(n) = value.parse::<i64>() {
            options.insert(key, n.into());
        } else if let Ok(b) = value.parse::<bool>() {
            options.insert(key, b.into());
        } else {
            options.insert(key, value.into());
        }
    }
    request
}

/// The params bound to statement `k` (1-based; 0: the shared ones).
pub fn params_at(decoded: &Decoded, k: usize) -> Params {
    decoded
        .params
        .iter()
        .filter(|(place, _, _)| *place == k)
        .map(|(_, name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Every param, wherever it was placed (a read has one statement).
pub fn all_params(decoded: &Decoded) -> Params {
    decoded
        .params
        .iter()
        .map(|(_, name, value)| (name.clone(), value.clone()))
        .collect()
}
