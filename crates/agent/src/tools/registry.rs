//! The registry of tools a runtime offers: names, descriptions, input
//! schemas, and whether a tool may only run inside the sandbox.

use serde_json::{Value, json};

/// A tool as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Registered name, e.g. `fs.read`.
    pub name: &'static str,
    pub description: &'static str,
    /// JSON schema of `input`.
    pub parameters: Value,
    /// Runs a program, so it must run confined (see `sandbox`).
    pub needs_sandbox: bool,
}

/// Every built-in tool, in the order they are offered to a model.
pub const TOOL_NAMES: &[&str] = &["fs.read", "fs.write", "fs.list", "fs.edit", "shell.exec"];

/// The tools a runtime knows. A request naming anything else is
/// `tool.not_found`, before its input is looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    specs: Vec<ToolSpec>,
}

impl Registry {
    /// The built-in tools, in [`TOOL_NAMES`] order.
    pub fn builtin() -> Registry {
        let path = json!({"type": "string", "description": "Path relative to the workspace root"});
        let spec = |name, description, parameters| ToolSpec {
            name,
            description,
            parameters,
            needs_sandbox: false,
        };
        Registry {
            specs: vec![
                spec(
                    "fs.read",
                    "Read a UTF-8 text file from the workspace.",
                    json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
                ),
                spec(
                    "fs.write",
                    "Create or overwrite a file in the workspace; parent directories are created.",
                    json!({"type": "object", "properties": {
                        "path": path, "content": {"type": "string", "description": "Full new file content"}
                    }, "required": ["path", "content"]}),
                ),
                spec(
                    "fs.list",
                    "List a directory of the workspace (default: its root).",
                    json!({"type": "object", "properties": {"path": path}}),
                ),
                spec(
                    "fs.edit",
                    "Replace the one occurrence of `old` in a file with `new`; fails unless `old` occurs exactly once.",
                    json!({"type": "object", "properties": {
                        "path": path,
                        "old": {"type": "string", "description": "Exact text to replace; must occur exactly once"},
                        "new": {"type": "string", "description": "Replacement text"}
                    }, "required": ["path", "old", "new"]}),
                ),
                ToolSpec {
                    needs_sandbox: true,
                    ..spec(
                        "shell.exec",
                        "Run a program (no shell: no pipes, globs or redirects) with the workspace as working directory, confined: writes only inside the workspace, no network. A non-zero exit code is reported, not an error.",
                        json!({"type": "object", "properties": {
                            "command": {"type": "string", "description": "Program name or path, e.g. `ls` or `cargo`"},
                            "args": {"type": "array", "items": {"type": "string"}},
                            "timeout_ms": {"type": "integer", "minimum": 1}
                        }, "required": ["command"]}),
                    )
                },
            ],
        }
    }

    /// The spec registered under `name`.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Every registered spec, in offer order.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// Registered names, in offer order.
    pub fn names(&self) -> Vec<&'static str> {
        self.specs.iter().map(|s| s.name).collect()
    }
}

impl Default for Registry {
    fn default() -> Registry {
        Registry::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_the_name_list() {
        let r = Registry::builtin();
        assert_eq!(r.names(), TOOL_NAMES);
        assert!(r.get("shell.exec").is_some_and(|s| s.needs_sandbox));
        assert!(r.get("fs.read").is_some_and(|s| !s.needs_sandbox));
        assert!(r.get("web.fetch").is_none());
        for s in r.specs() {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
        }
    }
}
