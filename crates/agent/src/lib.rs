//! The agent runtime: model providers, command units, the policed tool runtime and the audit log.
//!
//! Not yet implemented: the agent-runtime issue builds it.
