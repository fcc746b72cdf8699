//! What a node notes beside the ledger, one lock per concern: the runs it
//! watches ([`RunBook`]) and the integrations it owes ([`IntegrationBook`]).
//! Both are indexes `restore` rebuilds from the ledger, never the truth.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// The runs this node watches.
#[derive(Debug, Default)]
pub(crate) struct RunBook {
    /// Runs not yet ended, for patrols (the ledger has them all; this saves a scan).
    pub open: BTreeSet<String>,
    /// Per run, the orders another order of it depends on, as its latest
    /// full `advance` found them (see `Orchestrator::advance_can_wait`).
    pub depended_on: HashMap<String, HashSet<String>>,
    /// Runs whose advance a report left to a later one; the duty officer
    /// advances them on its next patrol whatever happened since.
    pub deferred: BTreeSet<String>,
}

impl RunBook {
    /// Forgets everything about a run but whether it is open.
    pub fn forget(&mut self, run_id: &str) {
        self.depended_on.remove(run_id);
    }
}

/// How a pending integration is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Marked INTEGRATION_READY (here or by another node): integrate unless
    /// an integration of it already started elsewhere.
    Ready,
    /// Started before a restart and never finished: integrate again
    /// (promotion is idempotent).
    Interrupted,
}

/// The integrations this node owes, and the integrated worktrees it keeps.
#[derive(Debug, Default)]
pub(crate) struct IntegrationBook {
    /// Orders this node's integration service has yet to integrate. An
    /// interrupted integration outranks a later "ready" note of the same order.
    pub pending: BTreeMap<String, Pending>,
    /// Integrated orders whose worktrees still exist, per theater (retention).
    pub integrated: HashMap<String, VecDeque<(String, jiff::Timestamp)>>,
}

impl IntegrationBook {
    pub fn note(&mut self, order_id: &str, how: Pending) {
        let entry = self
            .pending
            .entry(order_id.to_string())
            .or_insert(Pending::Ready);
        if how == Pending::Interrupted {
            *entry = Pending::Interrupted;
        }
    }

    pub fn take(&mut self) -> Vec<(String, Pending)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_integration_is_not_downgraded_by_a_ready_note() {
        let mut book = IntegrationBook::default();
        book.note("a", Pending::Interrupted);
        book.note("a", Pending::Ready);
        book.note("b", Pending::Ready);
        book.note("b", Pending::Interrupted);
        book.note("c", Pending::Ready);
        assert_eq!(
            book.take(),
            vec![
                ("a".to_string(), Pending::Interrupted),
                ("b".to_string(), Pending::Interrupted),
                ("c".to_string(), Pending::Ready),
            ]
        );
        assert!(book.take().is_empty());
    }
}
