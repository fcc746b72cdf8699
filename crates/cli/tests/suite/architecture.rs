//! ARCHITECTURE.md's crate graph is the workspace's: every normal dependency
//! of a workspace crate on another is drawn there, and nothing more.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The graph `cargo metadata` reports: normal (not dev, not build)
/// dependencies of each workspace member on other `garrison-*` crates.
fn metadata_graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let mut graph = Graph::new();
    for package in meta["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_string();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|n| n.starts_with("garrison-"))
            .map(str::to_string)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// The `text` block after `<!-- crate-graph -->` in ARCHITECTURE.md, one
/// `garrison-x -> garrison-y, garrison-z` line per crate.
fn documented_graph() -> Graph {
    let doc = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md is readable");
    let (_, after) = doc
        .split_once("<!-- crate-graph -->")
        .expect("ARCHITECTURE.md marks its crate graph with <!-- crate-graph -->");
    let block = after
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("a ```text block follows the marker");
    let mut graph = Graph::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (name, deps) = line
            .split_once("->")
            .unwrap_or_else(|| panic!("`{line}` is not `crate -> deps`"));
        let deps = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        let previous = graph.insert(name.trim().to_string(), deps);
        assert!(previous.is_none(), "{} is listed twice", name.trim());
    }
    graph
}

#[test]
fn the_documented_crate_graph_is_the_real_one() {
    let real = metadata_graph();
    let drawn = documented_graph();
    let mut wrong = Vec::new();
    for name in real.keys().chain(drawn.keys()).collect::<BTreeSet<_>>() {
        match (real.get(name), drawn.get(name)) {
            (Some(r), Some(d)) if r == d => {}
            (Some(r), Some(d)) => {
                let missing: Vec<_> = r.difference(d).collect();
                let extra: Vec<_> = d.difference(r).collect();
                wrong.push(format!(
                    "{name}: depends on {missing:?} not drawn; drawn {extra:?} it does not depend on"
                ));
            }
            (Some(_), None) => wrong.push(format!("{name}: not in the drawn graph")),
            (None, Some(_)) => wrong.push(format!("{name}: drawn but not a workspace crate")),
            (None, None) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's crate graph is out of date:\n{}",
        wrong.join("\n")
    );
}
