//! Helpers shared by this crate's unit tests.

use serde_json::Value;

/// Sets the value at a JSON pointer, creating the last key if needed.
pub(crate) fn put(doc: &mut Value, ptr: &str, v: Value) {
    let Some((parent, key)) = ptr.rsplit_once('/') else {
        panic!("not a JSON pointer: {ptr}")
    };
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.to_string(), v);
        }
        Some(Value::Array(a)) => match key.parse::<usize>() {
            Ok(i) if i < a.len() => a[i] = v,
            _ => panic!("bad index in {ptr}"),
        },
        _ => panic!("no container at {ptr}"),
    }
}
