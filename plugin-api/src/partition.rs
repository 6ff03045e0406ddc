//! Range-partitioned reads: the `partition_on` and `partitions` read options.
//!
//! As in connectorx: the query's result is split on an integer column into `partitions`
//! contiguous ranges between its minimum and maximum (or the `partition_range` given), and
//! each range is read on its own connection, in parallel. The partitions are concatenated
//! in range order. Rows whose partition column is NULL are read by one more query, so no
//! row is lost.
//!
//! A SQL connector calls [`Partitioning::from_request`] and, when it gets one, runs
//! [`Partitioning::bounds_sql`] for the range and [`Partitioning::queries`] for the parts.

use arrow_array::{Array, RecordBatch};

use crate::{PluginError, ReadRequest};

/// How a read is to be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    /// The column to split on, as given (quoted by the connector's dialect).
    pub column: String,
    /// How many ranges; 2 or more.
    pub count: usize,
    /// Inclusive bounds given by the caller instead of being queried.
    pub range: Option<(i64, i64)>,
}

impl Partitioning {
    /// The partitioning a read asks for: `None` without `partition_on`, or with
    /// `partitions = 1`. A row limit reads unpartitioned, so that "the first N rows" keeps
    /// its meaning.
    pub fn from_request(request: &ReadRequest) -> Result<Option<Self>, PluginError> {
        let options = &request.options;
        let column = match options.get("partition_on") {
            None => {
                if options.contains_key("partitions") || options.contains_key("partition_range") {
                    return Err(PluginError::query(
                        "read options partitions/partition_range need partition_on (an integer column)",
                    ));
                }
                return Ok(None);
            }
            Some(v) => v
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    PluginError::query("read option partition_on: expected a column name")
                })?
                .trim()
                .to_owned(),
        };
        let count = match options.get("partitions") {
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| {
                    PluginError::query(format!("read option partitions = {v}: expected 1 to 256"))
                })? as usize,
        };
        let range = match options.get("partition_range") {
            None => None,
            Some(v) => {
                let pair = v.as_array().and_then(|a| match a.as_slice() {
                    [lo, hi] => Some((lo.as_i64()?, hi.as_i64()?)),
                    _ => None,
                });
                match pair {
                    Some((lo, hi)) if lo <= hi => Some((lo, hi)),
                    _ => {
                        return Err(PluginError::query(format!(
                            "read option partition_range = {v}: expected [low, high] integers"
                        )));
                    }
                }
            }
        };
        if count < 2 || request.limit.is_some() {
            return Ok(None);
        }
        Ok(Some(Partitioning {
            column,
            count,
            range,
        }))
    }

    /// Two queries, for the minimum and the maximum of the column (two, because a database
    /// answers one from an index and would scan for both at once).
    pub fn bounds_sql(&self, query: &str, quoted_column: &str) -> [String; 2] {
        let inner = trim_statement(query);
        ["min", "max"]
            .map(|f| format!("SELECT {f}({quoted_column}) FROM ({inner}\n) AS plugboard_bounds"))
    }

    /// One query per range between `min` and `max` (inclusive), in order, then one for the
    /// rows where the column is NULL.
    pub fn queries(&self, query: &str, quoted_column: &str, min: i64, max: i64) -> Vec<String> {
        let inner = trim_statement(query);
        let mut out: Vec<String> = ranges(min, max, self.count)
            .into_iter()
            .map(|(lo, hi)| {
                format!(
                    "SELECT * FROM ({inner}\n) AS plugboard_part WHERE {quoted_column} BETWEEN {lo} AND {hi}"
                )
            })
            .collect();
        out.push(format!(
            "SELECT * FROM ({inner}\n) AS plugboard_part WHERE {quoted_column} IS NULL"
        ));
        out
    }
}

impl Partitioning {
    /// The whole partitioned read, for a connector whose plain read is `read`: the bounds
    /// (unless `partition_range` gave them), each range on its own thread, the batches
    /// concatenated in range order. `None` tells the connector to read unpartitioned
    /// instead: the result has no rows to split, or its parts disagree on their types (a
    /// column typed by its values).
    pub fn read(
        &self,
        request: &ReadRequest,
        quoted_column: &str,
        read: impl Fn(&ReadRequest) -> Result<Vec<RecordBatch>, PluginError> + Sync,
    ) -> Result<Option<Vec<RecordBatch>>, PluginError> {
        let with = |query: String, options| ReadRequest {
            query,
            options,
            ..request.clone()
        };
        let (min, max) = match self.range {
            Some(range) => range,
            None => {
                let [min_sql, max_sql] = self.bounds_sql(&request.query, quoted_column);
                let bound = |sql: String, what: &str| -> Result<Option<i64>, PluginError> {
                    let batches = read(&with(sql, Default::default()))?;
                    first_integer(batches.first(), what)
                };
                match (bound(min_sql, "minimum")?, bound(max_sql, "maximum")?) {
                    (Some(min), Some(max)) => (min, max),
                    _ => return Ok(None),
                }
            }
        };
        let parts = read_parts(self.queries(&request.query, quoted_column, min, max), |q| {
            read(&with(q, request.options.clone()))
        })?;
        let batches: Vec<RecordBatch> = parts.into_iter().flatten().collect();
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Ok(None);
        };
        if batches.iter().any(|b| b.schema() != schema) {
            return Ok(None);
        }
        Ok(Some(batches))
    }
}

/// The integer in the first row of a bound query's first column (`None`: no rows, or
/// NULL); any other type is an error saying to partition on an integer column.
fn first_integer(batch: Option<&RecordBatch>, what: &str) -> Result<Option<i64>, PluginError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
    };
    use arrow_schema::DataType;
    let Some(c) = batch
        .filter(|b| b.num_columns() > 0)
        .map(|b| b.column(0))
        .filter(|c| !c.is_empty() && c.is_valid(0))
    else {
        return Ok(None);
    };
    Ok(Some(match c.data_type() {
        DataType::Int64 => c.as_primitive::<Int64Type>().value(0),
        DataType::Int32 => c.as_primitive::<Int32Type>().value(0).into(),
        DataType::Int16 => c.as_primitive::<Int16Type>().value(0).into(),
        DataType::Int8 => c.as_primitive::<Int8Type>().value(0).into(),
        DataType::UInt32 => c.as_primitive::<UInt32Type>().value(0).into(),
        DataType::UInt16 => c.as_primitive::<UInt16Type>().value(0).into(),
        DataType::UInt8 => c.as_primitive::<UInt8Type>().value(0).into(),
        DataType::UInt64 => {
            i64::try_from(c.as_primitive::<UInt64Type>().value(0)).map_err(|_| {
                PluginError::query(format!(
                    "partition_on: the {what} is past the range of a signed 64-bit integer"
                ))
            })?
        }
        other => {
            return Err(PluginError::query(format!(
                "partition_on: the {what} is {other}, not an integer; partition on an integer \
                 column"
            )));
        }
    }))
}

/// Runs `read` on every query, each on its own thread, and returns the results in query
/// order; a panicking part is an error, not a panic.
pub fn read_parts<T: Send>(
    queries: Vec<String>,
    read: impl Fn(String) -> Result<T, PluginError> + Sync,
) -> Result<Vec<T>, PluginError> {
    let read = &read;
    std::thread::scope(|scope| {
        let handles: Vec<_> = queries
            .into_iter()
            .map(|sql| scope.spawn(move || read(sql)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(PluginError::internal("a partition's reader panicked")))
            })
            .collect()
    })
}

/// `[min, max]` split into at most `n` contiguous inclusive ranges of near-equal width.
pub fn ranges(min: i64, max: i64, n: usize) -> Vec<(i64, i64)> {
    let span = (max as i128) - (min as i128) + 1;
    let n = (n as i128).clamp(1, span.max(1));
    (0..n)
        .map(|i| {
            let lo = min as i128 + span * i / n;
            let hi = min as i128 + span * (i + 1) / n - 1;
            (lo as i64, hi as i64)
        })
        .collect()
}

/// The query without a trailing `;` or whitespace, to be wrapped as a subquery.
fn trim_statement(query: &str) -> &str {
    query.trim().trim_end_matches(';').trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(options: serde_json::Value) -> ReadRequest {
        ReadRequest {
            options: options.as_object().cloned().unwrap_or_default(),
            ..ReadRequest::default()
        }
    }

    #[test]
    fn ranges_cover_every_value_once() {
        assert_eq!(ranges(1, 10, 2), [(1, 5), (6, 10)]);
        assert_eq!(ranges(1, 10, 3), [(1, 3), (4, 6), (7, 10)]);
        assert_eq!(ranges(5, 5, 4), [(5, 5)]);
        assert_eq!(ranges(-3, 2, 4), [(-3, -3), (-2, -1), (0, 0), (1, 2)]);
        let wide = ranges(i64::MIN, i64::MAX, 3);
        assert_eq!(wide.first().map(|r| r.0), Some(i64::MIN));
        assert_eq!(wide.last().map(|r| r.1), Some(i64::MAX));
        for w in wide.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
    }

    #[test]
    fn options_are_checked() {
        let p = Partitioning::from_request(&request(
            serde_json::json!({"partition_on": "id", "partitions": 2}),
        ));
        assert_eq!(p.ok().flatten().map(|p| p.count), Some(2));
        let none = Partitioning::from_request(&request(
            serde_json::json!({"partition_on": "id", "partitions": 1}),
        ));
        assert_eq!(none.ok().flatten(), None);
        for bad in [
            serde_json::json!({"partitions": 2}),
            serde_json::json!({"partition_on": 5}),
            serde_json::json!({"partition_on": "id", "partitions": 0}),
            serde_json::json!({"partition_on": "id", "partition_range": [9, 1]}),
        ] {
            assert!(
                Partitioning::from_request(&request(bad.clone())).is_err(),
                "{bad}"
            );
        }
        let mut limited = request(serde_json::json!({"partition_on": "id", "partitions": 2}));
        limited.limit = Some(5);
        assert_eq!(Partitioning::from_request(&limited).ok().flatten(), None);
    }

    #[test]
    fn queries_wrap_the_statement() {
        let p = Partitioning {
            column: "id".into(),
            count: 2,
            range: None,
        };
        let q = p.queries("SELECT * FROM t;", "\"id\"", 1, 4);
        assert_eq!(q.len(), 3);
        assert!(q[0].ends_with("WHERE \"id\" BETWEEN 1 AND 2"), "{}", q[0]);
        assert!(q[1].contains("(SELECT * FROM t\n)"), "{}", q[1]);
        assert!(q[2].ends_with("\"id\" IS NULL"));
    }
}
