//! The suites of this crate's integration tests, one module each.

mod agent_run;
mod command_unit;
mod escape;
mod openai_loop;
mod path_policy;
mod sandbox;
mod scripted_unit;
mod tools;
