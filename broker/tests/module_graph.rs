//! The broker's module graph stays layered (docs/ARCHITECTURE.md): no
//! import cycle between its top-level modules, the front-ends (`native`,
//! `http`) are used by nothing but the wiring (`server`) and never by each
//! other, the services are used by no domain module, and the transport knows
//! no front-end. A guard against the layers growing back together: it reads
//! the sources, so it fails on the commit that adds such an import.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Most source files the walk reads; the crate has about a hundred.
const MAX_FILES: usize = 1000;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert!(out.len() < MAX_FILES, "more than {MAX_FILES} source files");
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a source file that ships: everything before its first
/// `#[cfg(test)]` block (tests come last in every file; a `#[cfg(test)]`
/// on a one-line `mod x;` skips that line only), no comment lines; files
/// that are test modules themselves are left out.
fn shipped_code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name == "test_support.rs" {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().peekable();
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim().starts_with("#[cfg(") && line.contains("test") {
            match lines.peek() {
                Some(next) if next.trim().starts_with("mod ") && next.trim().ends_with(';') => {
                    lines.next();
                    continue;
                }
                _ => break,
            }
        }
        if !line.trim_start().starts_with("//") {
            out.push(line);
        }
    }
    out.join("\n")
}

#[test]
fn the_reader_sees_past_a_test_module_declaration() {
    // transport/mod.rs declares `#[cfg(test)] mod tests;` near its top; the
    // code after it ships and must be read.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/transport/mod.rs");
    let code = shipped_code(&file);
    assert!(code.contains("pub async fn accept_loop"), "{code}");
    assert!(code.contains("crate::config"), "{code}");
}

/// The top-level modules `code` names with `crate::module`.
fn used_modules(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

/// Top-level module -> the top-level modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let code = shipped_code(file);
        assert!(
            !code.contains("crate::{"),
            "{}: import crate modules one path at a time (this test reads `crate::module`)",
            file.display()
        );
        let used = graph.entry(top.clone()).or_default();
        used.extend(used_modules(&code).into_iter().filter(|m| *m != top));
    }
    graph
}

/// A cycle through `node`, if the walk from it finds one.
fn find_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut cycle = path[at..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = find_cycle(graph, next, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_broker_modules_have_no_import_cycle() {
    let graph = graph();
    assert!(graph.len() > 10, "read the modules: {graph:?}");
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = find_cycle(&graph, node, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn front_ends_services_and_transport_keep_their_layers() {
    let graph = graph();
    let front_ends = ["native", "http"];
    let wiring = ["server"];
    let domain = [
        "auth",
        "config",
        "connections",
        "error",
        "groups",
        "metadata",
        "metrics",
        "offsets_retention",
        "partition",
        "routing",
        "share",
        "throughput",
        "tls",
        "topics",
    ];
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        for u in used {
            let bad = (front_ends.contains(&u.as_str()) && !wiring.contains(&module.as_str()))
                || (u == "services" && domain.contains(&module.as_str()))
                || (module == "transport"
                    && ["native", "http", "services", "state", "server"].contains(&u.as_str()))
                || (domain.contains(&module.as_str()) && ["state", "server"].contains(&u.as_str()));
            if bad {
                wrong.push(format!("{module} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Every module is placed in a layer, so a new one must be too.
    let known: BTreeSet<&str> = front_ends
        .iter()
        .chain(&wiring)
        .chain(&domain)
        .chain(&["services", "state", "transport"])
        .copied()
        .collect();
    let unplaced: Vec<&String> = graph
        .keys()
        .filter(|m| !known.contains(m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "place these modules in a layer here: {unplaced:?}"
    );
}
