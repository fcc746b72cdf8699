//! Any string: `parse` never panics, and whatever it accepts formats back to
//! a string that parses to the same value.
#![no_main]

use garrison_contracts::go_duration::{format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(nanos) = parse(s) {
        assert_eq!(parse(&format(nanos)), Ok(nanos), "{s:?}");
    }
});
