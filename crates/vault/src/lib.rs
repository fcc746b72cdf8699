//! The vault: theater repositories and per-order git worktrees (prepare, archive, remove, commit, merge).
//!
//! Not yet implemented: the orchestration issue builds it.
