//! Storage knows logs and files only: no source file of the crate uses the
//! protocol's request and response types (`warren_protocol::api`: routing
//! modes, groups, share groups, ACLs) or names the broker's per-topic
//! settings. A guard against the layers growing back together; the broker
//! owns those (`warren_broker::metadata`).
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};

/// Most source files the walk reads; the crate has about twenty.
const MAX_FILES: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            out.len() < MAX_FILES,
            "more than {MAX_FILES} files under src"
        );
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn storage_uses_nothing_of_routing_groups_or_share_groups() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(!files.is_empty());
    let forbidden = [
        "warren_protocol::api",
        "RoutingMode",
        "TopicRouting",
        "ShareConfig",
        "AclEntry",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in forbidden {
                if line.contains(word) {
                    found.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
