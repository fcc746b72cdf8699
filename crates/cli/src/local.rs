//! Opening the data dir's ledger from a one-shot command.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use garrison_ledger::{Ledger, LedgerError};

use crate::config::Settings;

/// Opens the ledger, explaining the one failure operators hit most: the
/// embedded ledger is held by a running `garrison serve`.
pub async fn open_ledger(settings: &Settings) -> Result<Arc<dyn Ledger>> {
    match garrison_ledger::open(&settings.data_dir, settings.database_url.as_deref()).await {
        Ok(l) => Ok(l),
        Err(LedgerError::InUse(_)) => Err(anyhow!(
            "the ledger in {} is in use by a running `garrison serve` (the embedded ledger has \
                 one owner); read it through the server instead, e.g. --server http://{}",
            settings.data_dir.display(),
            settings.listen
        )),
        Err(e) => Err(anyhow!(
            "cannot open the ledger in {}: {e}",
            settings.data_dir.display()
        )),
    }
}
