//! Commands whose interface is fixed by DESIGN.md but whose implementation is
//! not in this build. They parse their real arguments and then say so — exit
//! 2, never a fake success.

// The arguments are parsed so the interface is already fixed; nothing reads them yet.
#![allow(dead_code)]

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

/// Says the command is missing from this build; exit status 2.
pub fn unavailable(command: &str, issue: &str) -> ExitCode {
    eprintln!(
        "`garrison {command}` is not yet available in this build (tracked by the `{issue}` issue)"
    );
    ExitCode::from(2)
}
