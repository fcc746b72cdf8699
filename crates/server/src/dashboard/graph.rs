//! The layered layout of a run's dependency graph, drawn as server-side SVG:
//! an order sits one column right of its deepest dependency, so edges
//! (dependency → dependent) always point rightwards on an acyclic plan.

use std::collections::HashMap;

pub const NODE_W: i64 = 200;
pub const NODE_H: i64 = 58;
const COL_STEP: i64 = 260;
const ROW_STEP: i64 = 82;
const MARGIN: i64 = 16;

/// One placed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub index: usize,
    pub layer: usize,
    pub x: i64,
    pub y: i64,
}

/// One dependency edge as an SVG path (`from` is the dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// In input order.
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub width: i64,
    pub height: i64,
}

/// Lays out `items` given as (id, depends_on). Dependencies outside the set
/// are ignored; a cycle (never produced by the planner) is cut after as many
/// rounds as there are orders, so the layout always ends.
pub fn layout(items: &[(&str, &[String])]) -> Layout {
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let deps: Vec<Vec<usize>> = items
        .iter()
        .map(|(_, d)| {
            d.iter()
                .filter_map(|id| index.get(id.as_str()).copied())
                .collect()
        })
        .collect();
    let mut layer = vec![0usize; items.len()];
    for _ in 0..items.len() {
        let mut changed = false;
        for (i, ds) in deps.iter().enumerate() {
            let want = ds.iter().map(|d| layer[*d] + 1).max().unwrap_or(0);
            let want = want.min(items.len().saturating_sub(1));
            if want > layer[i] {
                layer[i] = want;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut rows: HashMap<usize, i64> = HashMap::new();
    let nodes: Vec<Node> = layer
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let row = rows.entry(*l).or_insert(0);
            let node = Node {
                index: i,
                layer: *l,
                x: MARGIN + COL_STEP * i64::try_from(*l).unwrap_or(0),
                y: MARGIN + ROW_STEP * *row,
            };
            *row += 1;
            node
        })
        .collect();
    let edges = deps
        .iter()
        .enumerate()
        .flat_map(|(to, ds)| ds.iter().map(move |from| (*from, to)))
        .map(|(from, to)| {
            let (a, b) = (&nodes[from], &nodes[to]);
            let (x1, y1) = (a.x + NODE_W, a.y + NODE_H / 2);
            let (x2, y2) = (b.x, b.y + NODE_H / 2);
            let dx = ((x2 - x1) / 2).max(30);
            Edge {
                from,
                to,
                path: format!("M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}", x1 + dx, x2 - dx),
            }
        })
        .collect();
    let width = nodes.iter().map(|n| n.x + NODE_W).max().unwrap_or(0) + MARGIN;
    let height = nodes.iter().map(|n| n.y + NODE_H).max().unwrap_or(0) + MARGIN;
    Layout {
        nodes,
        edges,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependents_sit_right_of_their_dependencies() {
        let none = ids(&[]);
        let both = ids(&["a", "b"]);
        let c = ids(&["c"]);
        let items: Vec<(&str, &[String])> = vec![
            ("a", &none),
            ("b", &none),
            ("c", &both),
            ("d", &c),
            ("e", &none),
        ];
        let l = layout(&items);
        let layers: Vec<usize> = l.nodes.iter().map(|n| n.layer).collect();
        assert_eq!(layers, [0, 0, 1, 2, 0]);
        // Three roots stack in one column.
        assert_eq!(l.nodes[0].x, l.nodes[4].x);
        assert!(l.nodes[4].y > l.nodes[1].y && l.nodes[1].y > l.nodes[0].y);
        let pairs: Vec<(usize, usize)> = l.edges.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(pairs, [(0, 2), (1, 2), (2, 3)]);
        for e in &l.edges {
            assert!(l.nodes[e.to].x > l.nodes[e.from].x);
            assert!(e.path.starts_with('M'));
        }
        assert!(l.width >= l.nodes[3].x + NODE_W);
    }

    #[test]
    fn unknown_dependencies_and_cycles_end() {
        let x = ids(&["x", "b"]);
        let a = ids(&["a"]);
        let items: Vec<(&str, &[String])> = vec![("a", &x), ("b", &a)];
        let l = layout(&items);
        assert_eq!(l.nodes.len(), 2);
        assert!(l.nodes.iter().all(|n| n.layer <= 1));
        assert_eq!(l.edges.len(), 2);
        assert_eq!(layout(&[]).nodes.len(), 0);
    }
}
