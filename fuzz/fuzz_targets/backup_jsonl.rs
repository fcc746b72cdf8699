//! Any bytes as a ledger export: `verify` never panics (it reports a line
//! and a reason instead).
#![no_main]

use garrison_ledger::backup::verify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = verify(data);
});
