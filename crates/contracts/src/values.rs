//! Small readers over JSON documents, shared by the domain crates.

use serde_json::Value;

/// Items of a string list at `ptr`, or none when absent or not such a list.
pub fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Appends the items `into` does not hold yet, keeping first-seen order.
pub fn push_unique(into: &mut Vec<String>, items: Vec<String>) {
    for i in items {
        if !into.contains(&i) {
            into.push(i);
        }
    }
}
