//! Run and order ids: UUID-shaped, time-ordered.
//!
//! IronClaw allows ULID or UUID ids, and the operator-workflow packets a
//! worker exchanges require a 36-character UUID for `run_id`/`task_id`, so
//! Garrison mints UUIDv7-shaped ids (a ULID's millisecond time and
//! randomness, with the UUID version and variant bits set): they sort by
//! creation time and pass both contracts.

/// A new time-ordered UUID string.
pub fn new_id() -> String {
    let raw = ulid::Ulid::new().0;
    // Version 7 in bits 76..80, variant 0b10 in bits 62..64.
    let v = (raw & !(0xF_u128 << 76)) | (0x7_u128 << 76);
    let v = (v & !(0b11_u128 << 62)) | (0b10_u128 << 62);
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_accepted_by_the_workflow_contract() {
        let a = new_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(garrison_contracts::is_run_id(&a));
        assert!(garrison_contracts::is_task_id(&a));
        assert_ne!(a, new_id());
    }
}
