//! The architecture invariants of ARCHITECTURE.md, checked: every crate's
//! modules form a DAG, crate dependencies point down the layers, the core
//! crates stay synchronous, the binary holds no protocol logic, and
//! `wiretrail-correlate` and `wiretrail-report` read no files.
//!
//! The module graph is read from the sources as text (comments, strings and
//! `#[cfg(test)]` items left out): an edge `a -> b` means module `a` names a
//! path into sibling module `b` (`crate::b::..`, `super::b::..`, or an item
//! the crate root re-exports from `b`). Children of one module are compared
//! among themselves, so `catalog::probe -> catalog::names` is an edge of
//! `catalog`'s graph, and a module using its parent (or its own children)
//! is no edge. Run with `--nocapture` to see every graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles that exist today in code other work is reshaping, written as the
/// sorted members of each strongly connected component. The test fails if
/// one of them disappears (remove it here then) or a new one appears; this
/// list only shrinks. Empty: the last one, the pipeline's
/// (`adapters <-> config <-> engine <-> outputs <-> remote`), went with
/// issue 16's engine seam.
const KNOWN_CYCLES: &[&str] = &[];

fn workspace() -> PathBuf {
    // This test belongs to crates/wiretrail-cli (the root manifest is virtual).
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crate_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- lexing

/// `src` with comments, string, byte-string and char literals blanked
/// (every character but newlines turned into a space), so that no text in
/// them is read as code.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, cs: &[char]| {
        for &x in cs {
            out.push(if x == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let after_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        // Line comment.
        if ch == '/' && next == Some('/') {
            let end = c[i..]
                .iter()
                .position(|&x| x == '\n')
                .map_or(c.len(), |p| i + p);
            blank(&mut out, &c[i..end]);
            i = end;
            continue;
        }
        // Block comment (nested).
        if ch == '/' && next == Some('*') {
            let (mut k, mut depth) = (i, 0);
            while k < c.len() {
                if c[k] == '/' && c.get(k + 1) == Some(&'*') {
                    depth += 1;
                    k += 2;
                } else if c[k] == '*' && c.get(k + 1) == Some(&'/') {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    k += 1;
                }
            }
            let k = k.min(c.len());
            blank(&mut out, &c[i..k]);
            i = k;
            continue;
        }
        // Raw (byte) string: r"..", r#".."#, br#".."#.
        if !after_ident && (ch == 'r' || (ch == 'b' && next == Some('r'))) {
            let mut j = i + if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                let mut k = j + 1;
                while k < c.len() {
                    if c[k] == '"' && (0..hashes).all(|h| c.get(k + 1 + h) == Some(&'#')) {
                        k += 1 + hashes;
                        break;
                    }
                    k += 1;
                }
                let k = k.min(c.len());
                blank(&mut out, &c[i..k]);
                i = k;
                continue;
            }
        }
        // String (a `b` prefix stays as code, harmlessly).
        if ch == '"' {
            let mut k = i + 1;
            while k < c.len() && c[k] != '"' {
                if c[k] == '\\' {
                    k += 1;
                }
                k += 1;
            }
            let k = (k + 1).min(c.len());
            blank(&mut out, &c[i..k]);
            i = k;
            continue;
        }
        // Char literal ('x', '\n', '\'', '\u{1f600}'); otherwise a lifetime.
        if ch == '\'' {
            let end = if next == Some('\\') {
                let from = (i + 3).min(c.len());
                c[from..]
                    .iter()
                    .position(|&x| x == '\'')
                    .map(|p| from + p + 1)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            if let Some(end) = end {
                let end = end.min(c.len());
                blank(&mut out, &c[i..end]);
                i = end;
                continue;
            }
        }
        out.push(ch);
        i += 1;
    }
    out
}

/// `code` (already [`code_only`]) with every `#[cfg(test)]` item blanked,
/// and the names of the child modules declared test-only (`#[cfg(test)]
/// mod x;`).
fn without_tests(code: &str) -> (String, BTreeSet<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut out: Vec<char> = code.chars().collect();
    let text: String = out.iter().collect();
    let mut test_mods = BTreeSet::new();
    let mut from = 0;
    while let Some(p) = text[from..].find(ATTR) {
        let start = from + p;
        // Char offsets equal byte offsets here only for ASCII; work in chars.
        let cstart = text[..start].chars().count();
        let mut k = cstart + ATTR.chars().count();
        let mut depth = 0i32;
        let mut item = String::new();
        while k < out.len() {
            let ch = out[k];
            item.push(ch);
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        k += 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    k += 1;
                    break;
                }
                _ => {}
            }
            k += 1;
        }
        let words: Vec<&str> = item
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ';'))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(i) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(i + 1) {
                if let Some(name) = name.strip_suffix(';') {
                    test_mods.insert(name.to_string());
                }
            }
        }
        for ch in out.iter_mut().take(k).skip(cstart) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        from = start + ATTR.len();
    }
    (out.into_iter().collect(), test_mods)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Parse a use tree (or a plain path) at `*i`, after a `::`: every path it
/// names, each as its segments (a group's `self` names the prefix).
fn use_tree(c: &[char], i: &mut usize) -> Vec<Vec<String>> {
    let skip_ws = |i: &mut usize| {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut prefix: Vec<String> = Vec::new();
    loop {
        skip_ws(i);
        if *i >= c.len() {
            return vec![prefix];
        }
        if c[*i] == '{' {
            *i += 1;
            let mut all = Vec::new();
            loop {
                skip_ws(i);
                if *i >= c.len() {
                    break;
                }
                if c[*i] == '}' {
                    *i += 1;
                    break;
                }
                if c[*i] == ',' {
                    *i += 1;
                    continue;
                }
                let before = *i;
                for sub in use_tree(c, i) {
                    let mut p = prefix.clone();
                    p.extend(sub.into_iter().filter(|s| s != "self"));
                    all.push(p);
                }
                if *i == before {
                    *i += 1; // something unexpected: never loop
                }
            }
            return all;
        }
        if c[*i] == '*' {
            *i += 1;
            return vec![prefix];
        }
        if !is_ident(c[*i]) {
            return vec![prefix];
        }
        let start = *i;
        while *i < c.len() && is_ident(c[*i]) {
            *i += 1;
        }
        prefix.push(c[start..*i].iter().collect());
        let save = *i;
        skip_ws(i);
        if c.get(*i) == Some(&':') && c.get(*i + 1) == Some(&':') {
            *i += 2;
            continue;
        }
        // `as alias`: the path is what matters.
        if c.get(*i) == Some(&'a')
            && c.get(*i + 1) == Some(&'s')
            && c.get(*i + 2).is_some_and(|x| x.is_whitespace())
        {
            *i += 2;
            skip_ws(i);
            while *i < c.len() && is_ident(c[*i]) {
                *i += 1;
            }
        } else {
            *i = save;
        }
        return vec![prefix];
    }
}

// ---------------------------------------------------------- module graphs

type ModPath = Vec<String>;

struct CrateSrc {
    name: String,
    /// Module path → its file's code (tests left out).
    modules: BTreeMap<ModPath, String>,
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "main.rs" if parts.is_empty() => parts,
        "mod.rs" => parts,
        other => {
            parts.push(other.trim_end_matches(".rs").to_string());
            parts
        }
    }
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

fn read_crate(dir: &Path) -> CrateSrc {
    let src = dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeMap::new();
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    for f in &files {
        let m = module_path(&src, f);
        let (code, test_mods) = without_tests(&code_only(&std::fs::read_to_string(f).unwrap()));
        for t in test_mods {
            let mut p = m.clone();
            p.push(t);
            test_only.insert(p);
        }
        modules.insert(m, code);
    }
    modules.retain(|m, _| !test_only.iter().any(|t| m.starts_with(t)));
    CrateSrc {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        modules,
    }
}

/// The longest known module that `path` (absolute segments) lies in.
fn owning_module<'a>(known: &'a BTreeSet<ModPath>, path: &[String]) -> &'a ModPath {
    (0..=path.len())
        .rev()
        .find_map(|n| known.get(&path[..n].to_vec()))
        .expect("the crate root is always known")
}

/// Every path a module's code names, resolved to the module it lies in.
fn references(
    m: &ModPath,
    code: &str,
    known: &BTreeSet<ModPath>,
    reexports: &BTreeMap<String, ModPath>,
) -> BTreeSet<ModPath> {
    let c: Vec<char> = code.chars().collect();
    let mut out = BTreeSet::new();
    // Inline modules (`mod x { .. }`): their names and the depth they close at.
    let mut inline: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '{' {
            depth += 1;
        } else if ch == '}' {
            depth -= 1;
            if inline.last().is_some_and(|(_, d)| *d > depth) {
                inline.pop();
            }
        }
        let boundary = i == 0 || !(is_ident(c[i - 1]) || c[i - 1] == '$');
        if !(boundary && is_ident(ch)) {
            i += 1;
            continue;
        }
        let start = i;
        while i < c.len() && is_ident(c[i]) {
            i += 1;
        }
        let word: String = c[start..i].iter().collect();
        if word == "mod" {
            // `mod name {` opens an inline module.
            let mut k = i;
            while k < c.len() && c[k].is_whitespace() {
                k += 1;
            }
            let ns = k;
            while k < c.len() && is_ident(c[k]) {
                k += 1;
            }
            let name: String = c[ns..k].iter().collect();
            while k < c.len() && c[k].is_whitespace() {
                k += 1;
            }
            if !name.is_empty() && c.get(k) == Some(&'{') {
                inline.push((name, depth + 1));
            }
            continue;
        }
        if !matches!(word.as_str(), "crate" | "super" | "self") {
            continue;
        }
        let mut here: ModPath = m.clone();
        here.extend(inline.iter().map(|(n, _)| n.clone()));
        let mut base = match word.as_str() {
            "crate" => Vec::new(),
            "super" => here[..here.len().saturating_sub(1)].to_vec(),
            _ => here.clone(),
        };
        if !(c.get(i) == Some(&':') && c.get(i + 1) == Some(&':')) {
            continue;
        }
        i += 2;
        for mut p in use_tree(&c, &mut i) {
            while p.first().is_some_and(|s| s == "super") {
                p.remove(0);
                base.pop();
            }
            let mut full = base.clone();
            full.extend(p);
            let mut owner = owning_module(known, &full).clone();
            if owner.is_empty() {
                if let Some(target) = full.first().and_then(|s| reexports.get(s)) {
                    owner = target.clone();
                }
            }
            out.insert(owner);
        }
    }
    out
}

/// Items the crate root re-exports from one of its modules
/// (`pub use model::{Report, Cause}`): name → that module.
fn root_reexports(root_code: &str, known: &BTreeSet<ModPath>) -> BTreeMap<String, ModPath> {
    let c: Vec<char> = root_code.chars().collect();
    let text: String = c.iter().collect();
    let mut map = BTreeMap::new();
    let mut from = 0;
    while let Some(p) = text[from..].find("use ") {
        let at = from + p;
        from = at + 4;
        let before = text[..at].trim_end();
        if !(before.ends_with("pub") || before.ends_with(')')) {
            continue;
        }
        let mut i = text[..from].chars().count();
        for path in use_tree(&c, &mut i) {
            let mut path = path;
            if path.first().is_some_and(|s| s == "crate" || s == "self") {
                path.remove(0);
            }
            let owner = owning_module(known, &path);
            if let (false, Some(last)) = (owner.is_empty(), path.last()) {
                map.insert(last.clone(), owner.clone());
            }
        }
    }
    map
}

/// Per parent module: edges among its children.
type Graphs = BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>>;

fn graphs(krate: &CrateSrc) -> Graphs {
    let known: BTreeSet<ModPath> = krate.modules.keys().cloned().collect();
    let reexports = root_reexports(&krate.modules[&Vec::new()], &known);
    let mut g: Graphs = BTreeMap::new();
    for m in &known {
        let parent = &m[..m.len().saturating_sub(1)];
        if !m.is_empty() {
            g.entry(parent.to_vec())
                .or_default()
                .entry(m[m.len() - 1].clone())
                .or_default();
        }
    }
    for (m, code) in &krate.modules {
        for t in references(m, code, &known, &reexports) {
            if t.starts_with(m) || m.starts_with(&t) {
                continue; // itself, a child, or an ancestor
            }
            let l = m.iter().zip(&t).take_while(|(a, b)| a == b).count();
            g.entry(m[..l].to_vec())
                .or_default()
                .entry(m[l].clone())
                .or_default()
                .insert(t[l].clone());
        }
    }
    g
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let succ: Vec<&'a str> = t
            .edges
            .get(v)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default();
        for w in succ {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn show(krate: &str, parent: &ModPath) -> String {
    if parent.is_empty() {
        format!("{krate}: crate")
    } else {
        format!("{krate}: crate::{}", parent.join("::"))
    }
}

#[test]
fn every_crates_modules_form_a_dag() {
    let mut found: BTreeSet<String> = BTreeSet::new();
    for dir in crate_dirs() {
        let krate = read_crate(&dir);
        for (parent, edges) in graphs(&krate) {
            if edges.len() < 2 {
                continue;
            }
            eprintln!("{}", show(&krate.name, &parent));
            for (from, to) in &edges {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                eprintln!("  {from} -> {}", to.join(", "));
            }
            for c in cycles(&edges) {
                let c = format!("{}: {}", show(&krate.name, &parent), c.join(" <-> "));
                eprintln!("  CYCLE {c}");
                found.insert(c);
            }
        }
    }
    let known: BTreeSet<String> = KNOWN_CYCLES.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = found.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "module cycles (make shared pieces leaf modules): {new:#?}"
    );
    assert!(
        gone.is_empty(),
        "these cycles are gone: remove them from KNOWN_CYCLES: {gone:#?}"
    );
}

#[test]
fn the_graph_reader_sees_paths_and_cycles() {
    let code = code_only(
        r##"
        //! crate::docs::are_not_code
        use crate::{a::{self, X}, b::Y as Z};
        use super::c;
        fn f() { let s = "crate::strings::are_not_code"; crate::d::g(); let r = r#"crate::raw"#; let q = '"'; }
        #[cfg(test)]
        mod tests { use crate::e::T; }
        mod inline { use super::super::f; }
        "##,
    );
    let (code, test_mods) = without_tests(&code);
    assert!(test_mods.is_empty());
    let known: BTreeSet<ModPath> = [
        vec![],
        vec!["m".to_string()],
        vec!["m".into(), "n".into()],
        vec!["a".into()],
        vec!["b".into()],
        vec!["c".into()],
        vec!["d".into()],
        vec!["e".into()],
        vec!["f".into()],
    ]
    .into_iter()
    .collect();
    let refs = references(
        &vec!["m".into(), "n".into()],
        &code,
        &known,
        &BTreeMap::new(),
    );
    let names: BTreeSet<String> = refs.iter().map(|p| p.join("::")).collect();
    // `super::c` from m::n is m::c (unknown: it lies in m); `super::super::f`
    // from the inline module m::n::inline is m::f (lies in m).
    assert_eq!(
        names,
        ["a", "b", "d", "m"].into_iter().map(String::from).collect()
    );
    let (_, test_mods) = without_tests("#[cfg(test)]\nmod testkit;\nmod real;");
    assert_eq!(test_mods, BTreeSet::from(["testkit".to_string()]));

    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        edges.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
    edges.get_mut("c").unwrap().remove("a");
    assert!(cycles(&edges).is_empty());
}

// --------------------------------------------------- crate-level invariants

/// Non-test code of a crate that names any of `forbidden`: (file, what).
fn naming(krate: &str, forbidden: &[&str]) -> Vec<String> {
    let dir = workspace().join("crates").join(krate);
    let src = read_crate(&dir);
    let mut hits = Vec::new();
    for (m, code) in &src.modules {
        for f in forbidden {
            if code.contains(f) {
                hits.push(format!("{krate}::{}: {f}", m.join("::")));
            }
        }
    }
    hits
}

#[test]
fn correlate_reads_no_files() {
    let hits = naming(
        "wiretrail-correlate",
        &[
            "std::fs",
            "fs::",
            "File::",
            "OpenOptions",
            "read_dir",
            "memmap2",
            "std::env",
            "std::process",
            "std::net::Tcp",
            "UdpSocket",
        ],
    );
    assert!(
        hits.is_empty(),
        "correlate takes records and packets from its callers: {hits:#?}"
    );
}

#[test]
fn report_reads_no_files_and_probes_no_terminal() {
    let hits = naming(
        "wiretrail-report",
        &[
            "std::fs",
            "fs::",
            "File::",
            "OpenOptions",
            "std::env",
            "is_terminal",
            "IsTerminal",
            "stdout(",
            "stderr(",
            "stdin(",
        ],
    );
    assert!(
        hits.is_empty(),
        "the renderers write to the `dyn Write` they are given: {hits:#?}"
    );
}

/// `cargo metadata` of the workspace: package name → its dependencies as
/// (name, kind), kind `None` for normal ones.
fn dependencies() -> BTreeMap<String, Vec<(String, Option<String>)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap().to_string(),
                        d["kind"].as_str().map(str::to_string),
                    )
                })
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// The layers, bottom up. A crate depends only on crates of lower layers;
/// `wiretrail-testsupport` is a dev-dependency only.
const LAYERS: &[(&str, u8)] = &[
    ("wiretrail-logs", 0),
    ("wiretrail-capture", 0),
    ("wiretrail-testsupport", 0),
    ("wiretrail-correlate", 1),
    ("wiretrail-report", 2),
    ("wiretrail-elastic", 2),
    ("wiretrail-pipeline", 3),
    ("wiretrail", 4),
];

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

#[test]
fn crate_dependencies_point_down_the_layers() {
    let deps = dependencies();
    let ours: BTreeSet<&str> = deps.keys().map(String::as_str).collect();
    let listed: BTreeSet<&str> = LAYERS.iter().map(|(n, _)| *n).collect();
    assert_eq!(ours, listed, "every workspace crate has a layer here");
    let mut wrong = Vec::new();
    for (krate, ds) in &deps {
        let mine = layer(krate).unwrap();
        for (d, kind) in ds {
            let Some(theirs) = layer(d) else { continue };
            let dev = kind.as_deref() == Some("dev");
            if d == "wiretrail-testsupport" && !dev {
                wrong.push(format!(
                    "{krate} -> {d}: test support is a dev-dependency only"
                ));
            } else if !dev && theirs >= mine {
                wrong.push(format!("{krate} (layer {mine}) -> {d} (layer {theirs})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layers: {wrong:#?}"
    );
}

#[test]
fn the_core_crates_are_synchronous_and_the_binary_holds_no_protocol_logic() {
    let deps = dependencies();
    let normal = |krate: &str| -> BTreeSet<String> {
        deps[krate]
            .iter()
            .filter(|(_, k)| k.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    };
    let asynchronous = ["tokio", "hyper", "axum", "elasticsearch", "reqwest"];
    for core in [
        "wiretrail-logs",
        "wiretrail-capture",
        "wiretrail-correlate",
        "wiretrail-report",
    ] {
        let n = normal(core);
        for a in asynchronous {
            assert!(
                !n.contains(a),
                "{core} depends on {a}: tokio lives at the edges"
            );
        }
    }
    let protocol = [
        "pcap-parser",
        "etherparse",
        "nom",
        "memchr",
        "memmap2",
        "flate2",
        "zstd",
        "elasticsearch",
        "axum",
        "hyper",
    ];
    let bin = normal("wiretrail");
    for p in protocol {
        assert!(
            !bin.contains(p),
            "the binary depends on {p}: parsing and protocols live in the library crates"
        );
    }
}
