//! The HTTP surface: one axum router per contract surface, bearer auth, error envelopes.
