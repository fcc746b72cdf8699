//! The failure-loop contract (§2): consecutive failing tool results put the
//! run into error-recovery mode; more failures while recovering end the run
//! with a request for guidance. Pure state, no I/O.
//!
//! Counting rules, in the order the results come back (call order within a
//! turn):
//! - outside recovery, [`RECOVERY_AFTER_FAILURES`] failing results in a row
//!   arm recovery mode; it becomes active at the next model turn, so the
//!   model always gets at least one recovery turn;
//! - results of calls made in a recovery turn count towards the escalation
//!   budget: the [`ESCALATE_AFTER_RECOVERY_FAILURES`]th failure ends the run;
//!   a success does not reset that count;
//! - recovery clears only after [`RECOVERY_CLEAR_SUCCESSES`] successful
//!   results in a row; one success between failures is not enough.

use std::collections::VecDeque;

use garrison_contracts::openclawssy::ToolResponse;
use garrison_contracts::secrets::redact;

/// Consecutive failing results that arm recovery mode.
pub const RECOVERY_AFTER_FAILURES: u32 = 2;
/// Failing results while recovering that end the run asking for guidance.
pub const ESCALATE_AFTER_RECOVERY_FAILURES: u32 = 3;
/// Consecutive successful results that end recovery mode.
pub const RECOVERY_CLEAR_SUCCESSES: u32 = 2;
/// Attempts kept for the recovery note and the escalation text.
pub const RECENT_ATTEMPTS: usize = 5;
/// Longest input, error or output snippet quoted per attempt.
pub const SNIPPET_CHARS: usize = 200;

/// One tool call as the failure loop remembers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub tool: String,
    pub tool_call_id: String,
    /// The call's arguments, shortened and redacted.
    pub input: String,
    pub ok: bool,
    /// `code: message` for a failure, empty on success.
    pub error: String,
    /// Output (or error details) excerpt, shortened and redacted.
    pub output: String,
}

impl Attempt {
    /// The attempt a response records; `input` is the raw arguments.
    pub fn from_response(tool_call_id: &str, input: &str, resp: &ToolResponse) -> Attempt {
        let error = resp
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.code, e.message))
            .unwrap_or_default();
        let output = match (&resp.output, &resp.error) {
            (Some(out), _) => out.to_string(),
            (None, Some(e)) if !e.details.is_empty() => {
                serde_json::Value::Object(e.details.clone()).to_string()
            }
            _ => String::new(),
        };
        Attempt {
            tool: resp.tool.clone(),
            tool_call_id: tool_call_id.to_string(),
            input: snippet(input),
            ok: resp.ok,
            error: snippet(&error),
            output: snippet(&output),
        }
    }
}

/// What the runner does after a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Stop and answer with [`FailureLoop::escalation`].
    Escalate,
}

/// The failure-loop state of one run.
#[derive(Debug, Clone, Default)]
pub struct FailureLoop {
    consecutive_failures: u32,
    armed: bool,
    recovering: bool,
    recovery_failures: u32,
    success_streak: u32,
    recent: VecDeque<Attempt>,
}

impl FailureLoop {
    pub fn new() -> FailureLoop {
        FailureLoop::default()
    }

    /// Called before each model turn; returns whether that turn runs in
    /// error-recovery mode.
    pub fn begin_turn(&mut self) -> bool {
        if self.armed {
            self.armed = false;
            self.recovering = true;
            self.recovery_failures = 0;
            self.success_streak = 0;
        }
        self.recovering
    }

    /// Whether the current turn is a recovery turn.
    pub fn recovering(&self) -> bool {
        self.recovering
    }

    /// Failing results counted since recovery began.
    pub fn recovery_failures(&self) -> u32 {
        self.recovery_failures
    }

    /// Records one result, in call order.
    pub fn record(&mut self, attempt: Attempt) -> Verdict {
        let ok = attempt.ok;
        if self.recent.len() == RECENT_ATTEMPTS {
            self.recent.pop_front();
        }
        self.recent.push_back(attempt);
        if self.recovering {
            if ok {
                self.success_streak += 1;
                if self.success_streak >= RECOVERY_CLEAR_SUCCESSES {
                    self.recovering = false;
                    self.recovery_failures = 0;
                    self.consecutive_failures = 0;
                    self.success_streak = 0;
                }
                return Verdict::Continue;
            }
            self.success_streak = 0;
            self.recovery_failures += 1;
            return if self.recovery_failures >= ESCALATE_AFTER_RECOVERY_FAILURES {
                Verdict::Escalate
            } else {
                Verdict::Continue
            };
        }
        if ok {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures += 1;
            if self.consecutive_failures >= RECOVERY_AFTER_FAILURES {
                self.armed = true;
            }
        }
        Verdict::Continue
    }

    /// The most recent attempts, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Attempt> {
        self.recent.iter()
    }

    /// The note a recovery turn's request ends with.
    pub fn recovery_note(&self) -> String {
        let mut s = format!(
            "Error-recovery mode: recent tool calls failed. Do not repeat a call that failed \
             with the same input; read the errors below, check your assumptions (paths, \
             arguments, whether the file exists) and change approach. After {} more failing \
             tool calls the run stops and asks the user for guidance.\n",
            ESCALATE_AFTER_RECOVERY_FAILURES.saturating_sub(self.recovery_failures)
        );
        self.write_attempts(&mut s);
        s
    }

    /// The terminal response asking the user for guidance.
    pub fn escalation(&self) -> String {
        let mut s = format!(
            "I need your guidance to continue. Tool calls kept failing: {} in a row put me into \
             error recovery, and {} more failed while recovering, so I stopped instead of \
             retrying blindly. Recent attempts:\n",
            RECOVERY_AFTER_FAILURES, self.recovery_failures
        );
        self.write_attempts(&mut s);
        s.push_str("How should I proceed?");
        s
    }

    fn write_attempts(&self, s: &mut String) {
        for (i, a) in self.recent.iter().enumerate() {
            let status = if a.ok { "ok" } else { "failed" };
            s.push_str(&format!(
                "{}. {} ({}) {status} input: {}\n",
                i + 1,
                a.tool,
                a.tool_call_id,
                a.input
            ));
            if !a.error.is_empty() {
                s.push_str(&format!("   error: {}\n", a.error));
            }
            if !a.output.is_empty() {
                s.push_str(&format!("   output: {}\n", a.output));
            }
        }
    }
}

/// `text` redacted, on one line, at most [`SNIPPET_CHARS`] characters.
fn snippet(text: &str) -> String {
    let flat: String = redact(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::context::cap_chars(flat.trim(), SNIPPET_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(ok: bool) -> Attempt {
        Attempt {
            tool: "fs.read".into(),
            tool_call_id: "c".into(),
            input: "{}".into(),
            ok,
            error: if ok { String::new() } else { "e: m".into() },
            output: String::new(),
        }
    }

    /// Feeds one result per turn; returns the turn (1-based) that escalated.
    fn run(results: &[bool]) -> (Option<usize>, Vec<bool>) {
        let mut f = FailureLoop::new();
        let mut modes = Vec::new();
        for (i, ok) in results.iter().enumerate() {
            modes.push(f.begin_turn());
            if f.record(attempt(*ok)) == Verdict::Escalate {
                return (Some(i + 1), modes);
            }
        }
        (None, modes)
    }

    #[test]
    fn two_failures_arm_and_three_more_escalate() {
        let (at, modes) = run(&[false, false, false, false, false, true]);
        assert_eq!(at, Some(5));
        assert_eq!(modes, [false, false, true, true, true]);
        // One failure is not enough to enter recovery.
        let (at, modes) = run(&[false, true, false, true, false, true]);
        assert_eq!(at, None);
        assert!(modes.iter().all(|m| !m));
    }

    #[test]
    fn a_single_success_does_not_clear_recovery() {
        let (at, modes) = run(&[false, false, false, true, false, false]);
        assert_eq!(at, Some(6));
        assert_eq!(modes, [false, false, true, true, true, true]);
    }

    #[test]
    fn sustained_success_clears_recovery() {
        let (at, modes) = run(&[false, false, false, true, true, false, false, false]);
        assert_eq!(at, None);
        assert_eq!(modes, [false, false, true, true, true, false, false, true]);
    }

    #[test]
    fn results_of_the_arming_turn_do_not_count_towards_escalation() {
        let mut f = FailureLoop::new();
        assert!(!f.begin_turn());
        for _ in 0..5 {
            assert_eq!(f.record(attempt(false)), Verdict::Continue);
        }
        assert!(f.begin_turn());
        assert_eq!(f.recovery_failures(), 0);
        assert_eq!(f.record(attempt(false)), Verdict::Continue);
        assert_eq!(f.record(attempt(false)), Verdict::Continue);
        assert_eq!(f.record(attempt(false)), Verdict::Escalate);
        let text = f.escalation();
        assert!(text.contains("guidance"));
        assert_eq!(text.matches("error: e: m").count(), RECENT_ATTEMPTS);
    }

    #[test]
    fn snippets_are_short_and_redacted() {
        let s = snippet(&format!("password=hunter2 {}", "x".repeat(500)));
        assert!(!s.contains("hunter2"));
        assert_eq!(s.chars().count(), SNIPPET_CHARS);
    }
}
