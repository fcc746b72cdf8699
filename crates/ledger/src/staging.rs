//! Write-behind layers for a writer's group commit.
//!
//! A batch stages its stream versions and snapshots in its own layer; when its
//! savepoint is released the layer folds into the group's; when the group
//! commits, each touched snapshot is written once. A failed batch just drops
//! its layer, so staged state never runs ahead of what is stored.

use std::collections::HashMap;

use crate::projection::{OrderSnapshot, RunSnapshot};

#[derive(Default)]
pub(crate) struct Staged {
    pub streams: HashMap<String, i64>,
    pub runs: HashMap<String, RunSnapshot>,
    pub orders: HashMap<String, OrderSnapshot>,
}

impl Staged {
    /// Folds a later layer into this one (later values win).
    pub fn absorb(&mut self, later: Staged) {
        self.streams.extend(later.streams);
        self.runs.extend(later.runs);
        self.orders.extend(later.orders);
    }

    pub fn len(&self) -> usize {
        self.streams.len() + self.runs.len() + self.orders.len()
    }

    pub fn clear(&mut self) {
        self.streams.clear();
        self.runs.clear();
        self.orders.clear();
    }
}

/// The newest staged value across `layers` (innermost first).
pub(crate) fn stream(layers: &[&Staged], name: &str) -> Option<i64> {
    layers.iter().find_map(|l| l.streams.get(name).copied())
}

pub(crate) fn run(layers: &[&Staged], id: &str) -> Option<RunSnapshot> {
    layers.iter().find_map(|l| l.runs.get(id).cloned())
}

pub(crate) fn order(layers: &[&Staged], id: &str) -> Option<OrderSnapshot> {
    layers.iter().find_map(|l| l.orders.get(id).cloned())
}
