//! The in-memory cluster: indices, point-in-time snapshots, scroll contexts,
//! and the subset of the query DSL wiretrail sends.
//!
//! Documents of one index are one "shard": `_shard_doc` is the shard's
//! position in the PIT (high 32 bits) and the document's position in the
//! index (low 32 bits), as in Elasticsearch (es-api.md A4.2). `_doc` is the
//! position in the index alone, as Lucene's doc id: unique within a shard
//! only. Hits of equal sort values are merged shard by shard, and
//! `search_after` is strict on the values it is given, as on a real cluster:
//! with `_doc` a page boundary skips a twin on a later shard.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One stored document.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: String,
    pub source: Arc<Value>,
    pub version: u64,
}

/// Documents computed from their position, so a benchmark can scan millions
/// of hits without the server holding them. Document `i` has the timestamp
/// `start_ns + i * step_ns` in `ts_field`, and id `g{i}`.
pub struct Generated {
    pub count: u64,
    pub start_ns: i64,
    pub step_ns: i64,
    pub ts_field: String,
    /// Builds document `i` given its timestamp (ns since epoch).
    pub make: Box<dyn Fn(u64, i64) -> Value + Send + Sync>,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub enum IndexData {
    Stored {
        docs: Arc<Vec<Doc>>,
        by_id: HashMap<String, usize>,
    },
    Generated(Arc<Generated>),
}

#[derive(Debug, Clone)]
pub struct Index {
    pub data: IndexData,
    /// `mappings` as given by a template or `PUT /<index>`.
    pub mappings: Value,
}

impl Index {
    pub fn new(mappings: Value) -> Index {
        Index {
            data: IndexData::Stored {
                docs: Arc::new(Vec::new()),
                by_id: HashMap::new(),
            },
            mappings,
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            IndexData::Stored { docs, .. } => docs.len(),
            IndexData::Generated(g) => g.count as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An index as frozen by a PIT or scroll.
#[derive(Debug, Clone)]
pub enum Frozen {
    Stored(Arc<Vec<Doc>>),
    Generated(Arc<Generated>),
}

impl Frozen {
    fn len(&self) -> usize {
        match self {
            Frozen::Stored(d) => d.len(),
            Frozen::Generated(g) => g.count as usize,
        }
    }
}

#[derive(Debug)]
pub struct Snapshot {
    /// (index name, data), in shard order.
    pub shards: Vec<(String, Frozen)>,
    /// Sorted views, built on first use per (field, nanos, order).
    views: Mutex<HashMap<(String, bool, DocOrder), Arc<View>>>,
}

/// How entries of equal primary key are ordered, which is also what the
/// tiebreaker sort value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocOrder {
    /// `_shard_doc` (or no tiebreaker): by shard, then position.
    ShardDoc,
    /// `_doc`: by position (Lucene's doc id), then shard, as a coordinating
    /// node merges equal sort values.
    Doc,
}

impl DocOrder {
    fn code(self, sd: u64) -> u64 {
        match self {
            DocOrder::ShardDoc => sd,
            DocOrder::Doc => ((sd & 0xffff_ffff) << 32) | (sd >> 32),
        }
    }
    fn shard_doc(self, code: u64) -> u64 {
        // The swap is its own inverse.
        self.code(code)
    }
}

/// Entries in sort order: (key, order code); [`View::get`] gives the
/// `_shard_doc` back.
#[derive(Debug)]
pub enum View {
    Built(Vec<(i64, u64)>, DocOrder),
    /// A single generated shard, already in timestamp order.
    Generated {
        shard: u32,
        g: Arc<Generated>,
        by_ts: bool,
        nanos: bool,
        order: DocOrder,
    },
}

impl View {
    pub fn len(&self) -> usize {
        match self {
            View::Built(v, _) => v.len(),
            View::Generated { g, .. } => g.count as usize,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn order(&self) -> DocOrder {
        match self {
            View::Built(_, o) | View::Generated { order: o, .. } => *o,
        }
    }
    /// (key, order code) of entry `i`.
    pub fn entry(&self, i: usize) -> (i64, u64) {
        match self {
            View::Built(v, _) => v[i],
            View::Generated {
                shard,
                g,
                by_ts,
                nanos,
                order,
            } => {
                let key = if *by_ts {
                    truncate(g.start_ns + i as i64 * g.step_ns, *nanos)
                } else {
                    0
                };
                (key, order.code(((*shard as u64) << 32) | i as u64))
            }
        }
    }
    /// (key, `_shard_doc`) of entry `i`.
    pub fn get(&self, i: usize) -> (i64, u64) {
        let (key, code) = self.entry(i);
        (key, self.order().shard_doc(code))
    }
    /// First position whose entry sorts after `after` (key, order code).
    fn position_after(&self, after: (i64, u64)) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid) <= after {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

fn truncate(ns: i64, nanos: bool) -> i64 {
    if nanos {
        ns
    } else {
        ns.div_euclid(1_000_000) * 1_000_000
    }
}

impl Snapshot {
    pub fn new(shards: Vec<(String, Frozen)>) -> Snapshot {
        Snapshot {
            shards,
            views: Mutex::new(HashMap::new()),
        }
    }

    /// The sorted view for a primary sort field (`None`: `_shard_doc`/`_doc` only).
    pub fn view(
        &self,
        field: Option<&str>,
        nanos: bool,
        order: DocOrder,
    ) -> Result<Arc<View>, String> {
        let key = (field.unwrap_or("").to_string(), nanos, order);
        if let Some(v) = self.views.lock().unwrap().get(&key) {
            return Ok(v.clone());
        }
        let view = if let [(_, Frozen::Generated(g))] = self.shards.as_slice() {
            let by_ts = match field {
                None => false,
                Some(f) if f == g.ts_field => true,
                Some(f) => {
                    return Err(format!(
                        "generated index can only sort on [{}], not [{f}]",
                        g.ts_field
                    ))
                }
            };
            View::Generated {
                shard: 0,
                g: g.clone(),
                by_ts,
                nanos,
                order,
            }
        } else {
            let mut entries = Vec::new();
            for (shard, (_, data)) in self.shards.iter().enumerate() {
                let Frozen::Stored(docs) = data else {
                    return Err("a generated index must be the only index of a search".into());
                };
                for (i, d) in docs.iter().enumerate() {
                    let key = match field {
                        None => 0,
                        Some(f) => lookup(&d.source, f)
                            .and_then(parse_time_value)
                            .map(|t| truncate(t, nanos))
                            .unwrap_or(i64::MAX),
                    };
                    entries.push((key, order.code(((shard as u64) << 32) | i as u64)));
                }
            }
            entries.sort_unstable();
            View::Built(entries, order)
        };
        let view = Arc::new(view);
        self.views.lock().unwrap().insert(key, view.clone());
        Ok(view)
    }

    /// (index name, id, source) of a `_shard_doc` value.
    pub fn doc(&self, sd: u64) -> (String, String, Arc<Value>) {
        let shard = (sd >> 32) as usize;
        let pos = (sd & 0xffff_ffff) as usize;
        let (name, data) = &self.shards[shard];
        match data {
            Frozen::Stored(docs) => (name.clone(), docs[pos].id.clone(), docs[pos].source.clone()),
            Frozen::Generated(g) => {
                let ts = g.start_ns + pos as i64 * g.step_ns;
                (
                    name.clone(),
                    format!("g{pos}"),
                    Arc::new((g.make)(pos as u64, ts)),
                )
            }
        }
    }

    pub fn total_docs(&self) -> usize {
        self.shards.iter().map(|(_, d)| d.len()).sum()
    }
}

/// A point in time.
#[derive(Debug)]
pub struct Pit {
    pub snapshot: Arc<Snapshot>,
    pub expires: Instant,
    /// Ids handed out for one PIT (rotation) share a group; closing any frees all.
    pub group: u64,
}

/// A scroll context: a search frozen with its position.
#[derive(Debug)]
pub struct Scroll {
    pub snapshot: Arc<Snapshot>,
    pub search: SearchSpec,
    pub after: Option<(i64, u64)>,
    pub expires: Instant,
}

/// Everything the server stores.
#[derive(Debug, Default)]
pub struct Store {
    pub indices: BTreeMap<String, Index>,
    pub templates: BTreeMap<String, Value>,
    pub pits: HashMap<String, Pit>,
    pub scrolls: HashMap<String, Scroll>,
    pub next_ctx: u64,
    pub seq_no: u64,
}

impl Store {
    /// Concrete index names for a comma list of names/wildcards. A concrete
    /// missing name is an `index_not_found_exception`, a wildcard matching
    /// nothing is not (es-api.md A7).
    pub fn resolve(&self, expr: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for part in expr.split(',').filter(|p| !p.is_empty()) {
            if part.contains('*') {
                for name in self.indices.keys() {
                    if glob(part, name) && !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            } else if self.indices.contains_key(part) {
                if !out.iter().any(|n| n == part) {
                    out.push(part.to_string());
                }
            } else {
                return Err(part.to_string());
            }
        }
        Ok(out)
    }

    pub fn snapshot(&self, names: &[String]) -> Snapshot {
        let shards = names
            .iter()
            .map(|n| {
                let idx = &self.indices[n];
                let f = match &idx.data {
                    IndexData::Stored { docs, .. } => Frozen::Stored(docs.clone()),
                    IndexData::Generated(g) => Frozen::Generated(g.clone()),
                };
                (n.clone(), f)
            })
            .collect();
        Snapshot::new(shards)
    }

    pub fn new_ctx_id(&mut self, prefix: &str) -> String {
        self.next_ctx += 1;
        // Opaque, URL-safe-base64-looking, with padding like the real ids.
        format!(
            "{prefix}{:016x}AAAAAA==",
            self.next_ctx.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }

    /// The mappings of the highest-priority template whose pattern matches.
    pub fn template_mappings(&self, index: &str) -> Value {
        let mut best: Option<(i64, &Value)> = None;
        for t in self.templates.values() {
            let pats: Vec<&str> = match &t["index_patterns"] {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if pats.iter().any(|p| glob(p, index)) {
                let prio = t["priority"].as_i64().unwrap_or(0);
                if best.is_none_or(|(p, _)| prio > p) {
                    best = Some((prio, t));
                }
            }
        }
        best.map(|(_, t)| t["template"]["mappings"].clone())
            .unwrap_or(Value::Null)
    }
}

/// Shell-style glob with `*` only.
pub fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            if !s.starts_with(head) {
                return false;
            }
            let rest = &s[head.len()..];
            if tail.is_empty() {
                return true;
            }
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// A field by dotted path, whether the document stored it nested or dotted.
/// Written here again on purpose: the server is the contract's oracle and
/// does not borrow the client's reading of it.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(path) {
        return Some(x);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(child) = obj.get(&path[..i]) {
            if let Some(x) = lookup(child, &path[i + 1..]) {
                return Some(x);
            }
        }
    }
    None
}

/// A date as ns since epoch: RFC 3339 string or epoch-millis number.
pub fn parse_time_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().map(|ms| ms * 1_000_000),
        Value::String(s) => {
            parse_rfc3339(s).or_else(|| s.parse::<i64>().ok().map(|ms| ms * 1_000_000))
        }
        _ => None,
    }
}

pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

pub fn format_nanos(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The query subset: `bool` (filter/must/must_not/should), `range`,
/// `match_phrase`, `term`, `terms`, `exists`, `match_all`.
#[derive(Debug, Clone)]
pub enum Filter {
    All,
    Range {
        field: String,
        gte: Option<i64>,
        gt: Option<i64>,
        lte: Option<i64>,
        lt: Option<i64>,
    },
    Phrase {
        field: String,
        phrase: String,
    },
    Terms {
        field: String,
        values: Vec<String>,
    },
    Exists {
        field: String,
    },
    Bool {
        must: Vec<Filter>,
        must_not: Vec<Filter>,
        should: Vec<Filter>,
    },
}

impl Filter {
    pub fn parse(q: &Value) -> Result<Filter, String> {
        let obj = q.as_object().ok_or("query must be an object")?;
        let (kind, body) = obj.iter().next().ok_or("empty query")?;
        match kind.as_str() {
            "match_all" => Ok(Filter::All),
            "bool" => {
                let list = |k: &str| -> Result<Vec<Filter>, String> {
                    match &body[k] {
                        Value::Null => Ok(vec![]),
                        Value::Array(a) => a.iter().map(Filter::parse).collect(),
                        o => Ok(vec![Filter::parse(o)?]),
                    }
                };
                let mut must = list("filter")?;
                must.extend(list("must")?);
                Ok(Filter::Bool {
                    must,
                    must_not: list("must_not")?,
                    should: list("should")?,
                })
            }
            "range" => {
                let (field, b) = body
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or("[range] needs a field")?;
                let fmt = b["format"].as_str().unwrap_or("");
                let bound = |k: &str| -> Result<Option<i64>, String> {
                    match &b[k] {
                        Value::Null => Ok(None),
                        Value::Number(n) if fmt.contains("epoch_second") => {
                            Ok(n.as_i64().map(|s| s * 1_000_000_000))
                        }
                        v => parse_time_value(v).map(Some).ok_or_else(|| {
                            format!("failed to parse date field [{v}] with format [{fmt}]")
                        }),
                    }
                };
                Ok(Filter::Range {
                    field: field.clone(),
                    gte: bound("gte")?,
                    gt: bound("gt")?,
                    lte: bound("lte")?,
                    lt: bound("lt")?,
                })
            }
            "match_phrase" => {
                let (field, b) = body
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or("[match_phrase] needs a field")?;
                let phrase = match b {
                    Value::String(s) => s.clone(),
                    o => o["query"]
                        .as_str()
                        .ok_or("[match_phrase] needs a query")?
                        .to_string(),
                };
                Ok(Filter::Phrase {
                    field: field.clone(),
                    phrase: phrase.to_lowercase(),
                })
            }
            "term" | "terms" => {
                let (field, b) = body
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or("[term] needs a field")?;
                let one = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                };
                let values = match b {
                    Value::Array(a) => a.iter().map(one).collect(),
                    Value::Object(o) if o.contains_key("value") => vec![one(&o["value"])],
                    v => vec![one(v)],
                };
                Ok(Filter::Terms {
                    field: field.clone(),
                    values,
                })
            }
            "exists" => Ok(Filter::Exists {
                field: body["field"]
                    .as_str()
                    .ok_or("[exists] needs a field")?
                    .to_string(),
            }),
            other => Err(format!("unknown query [{other}]")),
        }
    }

    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Filter::All => true,
            Filter::Range {
                field,
                gte,
                gt,
                lte,
                lt,
            } => {
                let Some(t) = lookup(doc, field).and_then(parse_time_value) else {
                    return false;
                };
                gte.is_none_or(|b| t >= b)
                    && gt.is_none_or(|b| t > b)
                    && lte.is_none_or(|b| t <= b)
                    && lt.is_none_or(|b| t < b)
            }
            Filter::Phrase { field, phrase } => lookup(doc, field)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().contains(phrase.as_str())),
            Filter::Terms { field, values } => match lookup(doc, field) {
                Some(Value::String(s)) => values.iter().any(|v| v == s),
                Some(Value::Array(a)) => a
                    .iter()
                    .any(|x| x.as_str().is_some_and(|s| values.iter().any(|v| v == s))),
                Some(v) => {
                    let v = v.to_string();
                    values.contains(&v)
                }
                None => false,
            },
            Filter::Exists { field } => lookup(doc, field).is_some_and(|v| !v.is_null()),
            Filter::Bool {
                must,
                must_not,
                should,
            } => {
                must.iter().all(|f| f.matches(doc))
                    && !must_not.iter().any(|f| f.matches(doc))
                    && (should.is_empty()
                        || !must.is_empty()
                        || should.iter().any(|f| f.matches(doc)))
            }
        }
    }
}

/// `_source` includes: keep the paths matching a pattern, in the stored shape.
pub fn filter_source(v: &Value, includes: &[String]) -> Value {
    if includes.is_empty() {
        return v.clone();
    }
    filter_obj(v, "", includes).unwrap_or_else(|| json!({}))
}

fn filter_obj(v: &Value, prefix: &str, includes: &[String]) -> Option<Value> {
    let obj = v.as_object()?;
    let mut out = Map::new();
    for (k, child) in obj {
        let full = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if includes.iter().any(|p| glob(p, &full)) {
            out.insert(k.clone(), child.clone());
        } else if child.is_object() {
            let deeper = format!("{full}.");
            let may = includes.iter().any(|p| {
                let head = p.split('*').next().unwrap_or("");
                p.starts_with(&deeper)
                    || (p.contains('*') && (head.starts_with(&deeper) || deeper.starts_with(head)))
            });
            if may {
                if let Some(sub) = filter_obj(child, &full, includes) {
                    if sub.as_object().is_some_and(|m| !m.is_empty()) {
                        out.insert(k.clone(), sub);
                    }
                }
            }
        }
    }
    Some(Value::Object(out))
}

/// The tiebreaker sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiebreak {
    /// `_shard_doc`: unique in the PIT (given, or implicit on a PIT search).
    ShardDoc,
    /// `_doc`: the position within its shard.
    Doc,
}

/// What the server's flavor supports of the tiebreakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortSupport {
    /// `_shard_doc` exists (Elasticsearch ≥ 7.12, OpenSearch ≥ 3.3).
    pub shard_doc: bool,
    /// ... but its value is the doc id within the shard, like `_doc`
    /// (OpenSearch 3.6 sorts two indices' first documents as `[ts, 0]`, `[ts, 0]`).
    pub shard_doc_is_local: bool,
    /// A PIT search gets `_shard_doc` appended when not given
    /// (Elasticsearch ≥ 7.12; no OpenSearch, 3.6 included).
    pub implicit_on_pit: bool,
}

/// The parsed sort: an optional primary date field plus the doc tiebreaker.
#[derive(Debug, Clone)]
pub struct SortSpec {
    pub primary: Option<String>,
    /// `format` given: sort values are date strings.
    pub as_string: bool,
    /// `numeric_type: date_nanos`: sort values in nanoseconds.
    pub nanos: bool,
    /// A tiebreaker value is appended to each hit's `sort`.
    pub tiebreak: Option<Tiebreak>,
}

impl SortSpec {
    pub fn parse(sort: &Value, pit: bool, support: SortSupport) -> Result<SortSpec, String> {
        let mut spec = SortSpec {
            primary: None,
            as_string: false,
            nanos: false,
            tiebreak: (pit && support.implicit_on_pit).then_some(Tiebreak::ShardDoc),
        };
        let items: Vec<Value> = match sort {
            Value::Null => vec![],
            Value::Array(a) => a.clone(),
            v => vec![v.clone()],
        };
        for it in items {
            let (name, opts) = match &it {
                Value::String(s) => (s.clone(), Value::Null),
                Value::Object(o) if o.len() == 1 => {
                    let (k, v) = o.iter().next().unwrap();
                    (k.clone(), v.clone())
                }
                other => return Err(format!("malformed sort entry {other}")),
            };
            let order = match &opts {
                Value::String(s) => s.as_str(),
                Value::Object(o) => o.get("order").and_then(Value::as_str).unwrap_or("asc"),
                _ => "asc",
            };
            if order != "asc" {
                return Err("the test server sorts ascending only".into());
            }
            match name.as_str() {
                "_shard_doc" if !support.shard_doc => {
                    return Err(SHARD_DOC_MISSING.into());
                }
                "_shard_doc" if support.shard_doc_is_local => spec.tiebreak = Some(Tiebreak::Doc),
                "_shard_doc" => spec.tiebreak = Some(Tiebreak::ShardDoc),
                "_doc" => spec.tiebreak = Some(Tiebreak::Doc),
                f => {
                    if spec.primary.is_some() {
                        return Err("the test server sorts on one field plus the tiebreaker".into());
                    }
                    spec.primary = Some(f.to_string());
                    spec.as_string = opts.get("format").is_some();
                    spec.nanos =
                        opts.get("numeric_type").and_then(Value::as_str) == Some("date_nanos");
                }
            }
        }
        Ok(spec)
    }

    pub fn order(&self) -> DocOrder {
        match self.tiebreak {
            Some(Tiebreak::Doc) => DocOrder::Doc,
            _ => DocOrder::ShardDoc,
        }
    }

    pub fn values(&self, key: i64, sd: u64) -> Value {
        let mut v = Vec::new();
        if self.primary.is_some() {
            if key == i64::MAX {
                v.push(json!(i64::MAX));
            } else if self.as_string {
                v.push(json!(format_nanos(key)));
            } else if self.nanos {
                v.push(json!(key));
            } else {
                v.push(json!(key / 1_000_000));
            }
        }
        match self.tiebreak {
            Some(Tiebreak::ShardDoc) => v.push(json!(sd)),
            Some(Tiebreak::Doc) => v.push(json!(sd & 0xffff_ffff)),
            None => {}
        }
        Value::Array(v)
    }

    /// `search_after` as a view position key (key, order code). Strict: an
    /// entry equal on every value given is not returned.
    pub fn parse_after(&self, after: &Value) -> Result<(i64, u64), String> {
        let a = after.as_array().ok_or("[search_after] must be an array")?;
        let want = self.primary.is_some() as usize + self.tiebreak.is_some() as usize;
        if a.len() != want {
            return Err(format!(
                "search_after has {} value(s) but sort has {want}",
                a.len()
            ));
        }
        let mut it = a.iter();
        let key = if self.primary.is_some() {
            let v = it.next().unwrap();
            match v {
                Value::String(s) => {
                    parse_rfc3339(s).ok_or_else(|| format!("failed to parse date [{s}]"))?
                }
                Value::Number(n) => {
                    let n = n.as_i64().ok_or("search_after value is not an integer")?;
                    if n == i64::MAX || self.nanos {
                        n
                    } else {
                        n * 1_000_000
                    }
                }
                other => return Err(format!("bad search_after value {other}")),
            }
        } else {
            0
        };
        let code = match self.tiebreak {
            Some(Tiebreak::ShardDoc) => it
                .next()
                .and_then(Value::as_u64)
                .ok_or("bad tiebreaker value")?,
            Some(Tiebreak::Doc) => {
                // A doc id (Lucene's `int`); -1 is "before the first".
                let d = it
                    .next()
                    .and_then(Value::as_i64)
                    .ok_or("bad tiebreaker value")?;
                if d < 0 {
                    return Ok((key.saturating_sub(1), u64::MAX));
                }
                ((d as u64) << 32) | 0xffff_ffff
            }
            None => u64::MAX,
        };
        Ok((key, code))
    }
}

/// What a cluster without `_shard_doc` answers (seen from OpenSearch 2.19).
pub const SHARD_DOC_MISSING: &str = "No mapping found for [_shard_doc] in order to sort on";

/// A parsed search body (the parts the test server honours).
#[derive(Debug, Clone)]
pub struct SearchSpec {
    pub size: usize,
    pub filter: Filter,
    pub includes: Vec<String>,
    pub sort: SortSpec,
    pub slice: Option<Slice>,
    pub track_total: bool,
}

#[derive(Debug, Clone)]
pub struct Slice {
    pub id: u64,
    pub max: u64,
    /// `field` given: membership by the field's value, else by `_shard_doc`.
    pub by_field: bool,
}

impl SearchSpec {
    pub fn parse(body: &Value, pit: bool, support: SortSupport) -> Result<SearchSpec, String> {
        let size = body["size"].as_u64().unwrap_or(10) as usize;
        let filter = match &body["query"] {
            Value::Null => Filter::All,
            q => Filter::parse(q)?,
        };
        let includes = match &body["_source"] {
            Value::Object(o) => o
                .get("includes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => vec![],
        };
        let sort = SortSpec::parse(&body["sort"], pit, support)?;
        let slice = match &body["slice"] {
            Value::Null => None,
            s => {
                let id = s["id"].as_u64().ok_or("[slice] needs id")?;
                let max = s["max"].as_u64().ok_or("[slice] needs max")?;
                if max <= 1 || id >= max {
                    return Err(format!(
                        "max must be greater than 1 and id less than max, got id {id} max {max}"
                    ));
                }
                Some(Slice {
                    id,
                    max,
                    by_field: s.get("field").is_some(),
                })
            }
        };
        let track_total = body["track_total_hits"] != json!(false);
        Ok(SearchSpec {
            size,
            filter,
            includes,
            sort,
            slice,
            track_total,
        })
    }
}

fn mix(x: u64) -> u64 {
    // splitmix64 finaliser: stable slice membership from a value.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One page: hits as JSON and the key of the last entry visited.
#[derive(Debug)]
pub struct Page {
    pub hits: Vec<Value>,
    pub last: Option<(i64, u64)>,
    pub total: Option<usize>,
}

pub fn run_search(
    snap: &Snapshot,
    spec: &SearchSpec,
    after: Option<(i64, u64)>,
) -> Result<Page, String> {
    let view = snap.view(
        spec.sort.primary.as_deref(),
        spec.sort.nanos,
        spec.sort.order(),
    )?;
    let start = after.map_or(0, |a| view.position_after(a));
    let mut hits = Vec::new();
    let mut last = None;
    let in_slice = |key: i64, sd: u64| match &spec.slice {
        None => true,
        Some(s) if s.by_field => mix(key as u64) % s.max == s.id,
        Some(s) => mix(sd) % s.max == s.id,
    };
    let mut i = start;
    while i < view.len() && hits.len() < spec.size {
        let (key, sd) = view.get(i);
        i += 1;
        if !in_slice(key, sd) {
            continue;
        }
        let (index, id, source) = snap.doc(sd);
        if !spec.filter.matches(&source) {
            continue;
        }
        last = Some(view.entry(i - 1));
        hits.push(json!({
            "_index": index, "_id": id, "_score": null,
            "_source": filter_source(&source, &spec.includes),
            "sort": spec.sort.values(key, sd),
        }));
    }
    let total = if spec.track_total {
        let mut n = 0;
        for j in 0..view.len() {
            let (key, sd) = view.get(j);
            if in_slice(key, sd) && spec.filter.matches(&snap.doc(sd).2) {
                n += 1;
            }
        }
        Some(n)
    } else {
        None
    };
    Ok(Page { hits, last, total })
}

/// A `terms` aggregation over the documents `filter` matches: buckets by
/// count (descending), then key, as Elasticsearch orders them. Arrays count
/// each value once per document.
pub fn terms_agg(snap: &Snapshot, filter: &Filter, field: &str, size: usize) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, data) in &snap.shards {
        let n = data.len();
        for pos in 0..n {
            let src = match data {
                Frozen::Stored(docs) => docs[pos].source.clone(),
                Frozen::Generated(_) => continue,
            };
            if !filter.matches(&src) {
                continue;
            }
            let mut vals: Vec<String> = match lookup(&src, field) {
                Some(Value::Array(a)) => a.iter().map(term_key).collect(),
                Some(Value::Null) | None => vec![],
                Some(v) => vec![term_key(v)],
            };
            vals.sort();
            vals.dedup();
            for v in vals {
                *counts.entry(v).or_default() += 1;
            }
        }
    }
    let mut buckets: Vec<(String, u64)> = counts.into_iter().collect();
    buckets.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let other: u64 = buckets.iter().skip(size).map(|b| b.1).sum();
    buckets.truncate(size);
    json!({ "doc_count_error_upper_bound": 0, "sum_other_doc_count": other,
        "buckets": buckets.into_iter().map(|(k, c)| json!({ "key": k, "doc_count": c })).collect::<Vec<_>>() })
}

fn term_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        o => o.to_string(),
    }
}

/// Parse `1m`, `30s`, `500ms`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..digits].parse().ok()?;
    Some(match &s[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return None,
    })
}
