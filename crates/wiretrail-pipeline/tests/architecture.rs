//! Architecture invariants of the pipeline crate, checked on its source:
//!
//! - only `CratesEngine` (`src/crates_engine/`) calls the other wiretrail
//!   crates; `src/model.rs` re-exports their data types and does nothing
//!   else;
//! - the crate's modules form a DAG (no module uses one that uses it back,
//!   directly or through others; a child using its parent counts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 5] = [
    "wiretrail_logs",
    "wiretrail_capture",
    "wiretrail_correlate",
    "wiretrail_report",
    "wiretrail_elastic",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file: comments (line and doc) removed, and the unit-test
/// module at its end (`#[cfg(test)] mod tests`), which may use anything.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            // Not inside a string: no `"` before it on the line.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`; `src/lib.rs` → `` (the root).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

#[test]
fn only_the_crates_engine_calls_the_other_crates() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let engine_dir = src().join("crates_engine");
    let mut offenders = Vec::new();
    for f in &files {
        if f.starts_with(&engine_dir) {
            continue;
        }
        let text = code(&std::fs::read_to_string(f).unwrap());
        let is_model = f.ends_with("model.rs") && f.parent() == Some(src().as_path());
        // In model.rs, each statement naming a crate is a `pub use`.
        let statements: Vec<&str> = if is_model {
            text.split(';').collect()
        } else {
            text.lines().collect()
        };
        for s in statements {
            let names_a_crate = CRATES.iter().any(|c| s.contains(c));
            // The statement's first line that is not an attribute.
            let head = s
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("#["));
            let reexport = is_model && head.is_some_and(|l| l.starts_with("pub use "));
            if names_a_crate && !reexport {
                offenders.push(format!("{}: {}", f.display(), s.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "only src/crates_engine/ may call the other wiretrail crates (src/model.rs may re-export their types):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn modules_form_a_dag() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeMap<String, String> = files
        .iter()
        .map(|f| (module_of(f), code(&std::fs::read_to_string(f).unwrap())))
        .collect();
    // The longest module a path names, from module `m`.
    let resolve = |m: &str, path: &[&str]| -> Option<String> {
        let (mut base, rest): (Vec<&str>, &[&str]) = match path.first() {
            Some(&"crate") => (Vec::new(), &path[1..]),
            Some(&"super") => {
                let mut b: Vec<&str> = m.split("::").filter(|s| !s.is_empty()).collect();
                let mut rest = path;
                while rest.first() == Some(&"super") {
                    b.pop();
                    rest = &rest[1..];
                }
                (b, rest)
            }
            _ => return None,
        };
        let mut best = None;
        for part in rest {
            base.push(part);
            let cand = base.join("::");
            if modules.contains_key(&cand) {
                best = Some(cand);
            } else {
                break;
            }
        }
        best.or_else(|| (!base.is_empty()).then(String::new))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in &modules {
        let out = edges.entry(m.clone()).or_default();
        // `crate::a::b` and `super::x` paths, and `use a::{b, c}` heads.
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.starts_with("crate::") || w.starts_with("super::"))
            .collect();
        for w in words {
            let path: Vec<&str> = w.split("::").filter(|s| !s.is_empty()).collect();
            if let Some(r) = resolve(m, &path) {
                if !r.is_empty() && &r != m {
                    out.insert(r);
                }
            }
        }
        // A parent's uses of its children by their bare names (`child::f`).
        for c in modules.keys() {
            let (parent, name) = match c.rsplit_once("::") {
                Some((p, n)) => (p, n),
                None => ("", c.as_str()),
            };
            if parent == m && !c.is_empty() {
                let needle = format!("{name}::");
                let used = text.match_indices(&needle).any(|(i, _)| {
                    i == 0 || {
                        let b = text.as_bytes()[i - 1];
                        !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                    }
                });
                if used {
                    out.insert(c.clone());
                }
            }
        }
    }
    edges.remove("");
    for e in edges.values_mut() {
        e.remove("");
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for n in edges.get(m).into_iter().flatten() {
            match state.get(n.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == n).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(n.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(n, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            if let Some(cycle) = visit(m, &edges, &mut state, &mut Vec::new()) {
                panic!("module cycle: {}\nedges: {edges:#?}", cycle.join(" -> "));
            }
        }
    }
    // The graph was read at all: the modes use the engine.
    assert!(edges["investigate"].contains("engine"), "{edges:#?}");
    assert!(
        edges["crates_engine::analyse"].contains("crates_engine::remote"),
        "{edges:#?}"
    );
}
