//! Command units against real processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use garrison_agent::{PromptMode, UnitJob, UnitOutcome, UnitProfile, run_unit};

fn job(workspace: &Path, prompt: &str, budget: Duration) -> UnitJob {
    UnitJob {
        workspace: workspace.to_path_buf(),
        prompt: prompt.to_string(),
        budget,
        env: vec![("GARRISON_ORDER_ID".into(), "order_7".into())],
        run_id: "run_1".into(),
        agent_id: "agent_default".into(),
    }
}

fn sh(script: &str) -> UnitProfile {
    UnitProfile::Command {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        prompt: PromptMode::Stdin,
        env: BTreeMap::new(),
        sandbox: Default::default(),
    }
}

fn read(ws: &Path, rel: &str) -> String {
    std::fs::read_to_string(ws.join(rel)).unwrap()
}

/// Whether a process whose command line holds `marker` is still running
/// (the unit's own pids are those of its PID namespace, not the host's).
fn running_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(marker)
            })
            .unwrap_or(false)
    })
}

async fn wait_no_process_with(marker: &str) -> bool {
    for _ in 0..60 {
        if !running_with(marker) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn stdin_prompt_reaches_the_program() {
    let ws = tempfile::tempdir().unwrap();
    let profile = sh("cat > outputs/prompt.txt; echo; echo done; echo note >&2");
    let report = run_unit(
        &profile,
        &job(ws.path(), "write the docs\nplease", Duration::from_secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    assert_eq!(
        read(ws.path(), "outputs/prompt.txt"),
        "write the docs\nplease"
    );
    assert_eq!(read(ws.path(), "outputs/stdout.txt"), "\ndone\n");
    assert_eq!(read(ws.path(), "outputs/stderr.txt"), "note\n");
    assert_eq!(report.summary, "exit status 0: done");
    let paths: Vec<_> = report.artifacts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "outputs/prompt.txt",
            "outputs/stderr.txt",
            "outputs/stdout.txt"
        ]
    );
    assert!(report.artifacts.iter().all(|a| a.mime_type == "text/plain"));
    assert_eq!(report.model.provider, "command");
    assert_eq!(report.model.name, "sh");
    assert_eq!(report.tool_calls, 0);
}

#[tokio::test]
async fn argv_prompt_is_substituted_everywhere() {
    let ws = tempfile::tempdir().unwrap();
    let profile = UnitProfile::Command {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            r#"printf '%s|%s' "$1" "$2" > outputs/argv.txt"#.into(),
            "sh".into(),
            "{prompt}".into(),
            "<{prompt}/{prompt}>".into(),
        ],
        prompt: PromptMode::Argv,
        env: BTreeMap::new(),
        sandbox: Default::default(),
    };
    let report = run_unit(&profile, &job(ws.path(), "fix it", Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    assert_eq!(
        read(ws.path(), "outputs/argv.txt"),
        "fix it|<fix it/fix it>"
    );
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

#[tokio::test]
async fn environment_is_the_jobs_and_the_profiles() {
    let ws = tempfile::tempdir().unwrap();
    let profile = UnitProfile::Command {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            r#"echo "$GARRISON_ORDER_ID $UNIT_FLAVOUR $(pwd)" > outputs/env.txt"#.into(),
        ],
        prompt: PromptMode::Stdin,
        env: BTreeMap::from([("UNIT_FLAVOUR".to_string(), "plain".to_string())]),
        sandbox: Default::default(),
    };
    run_unit(&profile, &job(ws.path(), "", Duration::from_secs(20)))
        .await
        .unwrap();
    let cwd = ws.path().canonicalize().unwrap();
    assert_eq!(
        read(ws.path(), "outputs/env.txt"),
        format!("order_7 plain {}\n", cwd.display())
    );
}

#[tokio::test]
async fn non_zero_exit_fails_with_the_last_stderr_line() {
    let ws = tempfile::tempdir().unwrap();
    let profile = sh("echo partial; echo first >&2; echo 'last words' >&2; exit 3");
    let report = run_unit(&profile, &job(ws.path(), "", Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        UnitOutcome::Failed {
            reason: "exit status 3: last words".into()
        }
    );
    assert_eq!(report.summary, "exit status 3: partial");
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let ws = tempfile::tempdir().unwrap();
    let profile = sh("sleep 31.25 & sleep 32.5");
    let started = Instant::now();
    let report = run_unit(&profile, &job(ws.path(), "", Duration::from_millis(1500)))
        .await
        .unwrap();
    assert_eq!(report.outcome, UnitOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    for marker in ["sleep 31.25", "sleep 32.5"] {
        assert!(
            wait_no_process_with(marker).await,
            "`{marker}` survived the timeout"
        );
    }
}

#[tokio::test]
async fn leftover_background_processes_are_killed_after_exit() {
    let ws = tempfile::tempdir().unwrap();
    // The background sleep holds stdout open: capture only ends because the
    // group is killed once the shell exits.
    let profile = sh("sleep 33.75 & echo started");
    let started = Instant::now();
    let report = run_unit(&profile, &job(ws.path(), "", Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        wait_no_process_with("sleep 33.75").await,
        "the background process survived"
    );
    assert_eq!(report.summary, "exit status 0: started");
}

#[tokio::test]
async fn death_by_signal_is_killed_not_failed() {
    let ws = tempfile::tempdir().unwrap();
    let report = run_unit(
        &sh("kill -9 $$"),
        &job(ws.path(), "", Duration::from_secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Killed { signal: 9 });
}

#[tokio::test]
async fn output_is_capped_at_one_mebibyte() {
    let ws = tempfile::tempdir().unwrap();
    let report = run_unit(
        &sh("head -c 1500000 /dev/zero | tr '\\0' x"),
        &job(ws.path(), "", Duration::from_secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    let len = std::fs::metadata(ws.path().join("outputs/stdout.txt"))
        .unwrap()
        .len();
    assert_eq!(len, 1024 * 1024);
    assert_eq!(
        report.notes,
        ["stdout truncated: kept 1048576 of 1500000 bytes"]
    );
}

#[tokio::test]
async fn setup_errors_are_errors() {
    let ws = tempfile::tempdir().unwrap();
    let missing = UnitProfile::Command {
        program: "/nonexistent/garrison-unit".into(),
        args: vec![],
        prompt: PromptMode::Stdin,
        env: BTreeMap::new(),
        sandbox: Default::default(),
    };
    let err = run_unit(&missing, &job(ws.path(), "", Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SPAWN_FAILED");
    let err = run_unit(
        &sh("true"),
        &job(&ws.path().join("absent"), "", Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "WORKSPACE_INVALID");
}

#[tokio::test]
async fn noop_succeeds_and_writes_nothing() {
    let ws = tempfile::tempdir().unwrap();
    let report = run_unit(
        &UnitProfile::Noop,
        &job(ws.path(), "x", Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, UnitOutcome::Succeeded);
    assert_eq!(report.summary, "noop");
    assert!(report.artifacts.is_empty());
    assert_eq!(std::fs::read_dir(ws.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn the_summary_is_the_agents_own_not_its_banner() {
    let ws = tempfile::tempdir().unwrap();
    // The last paragraph of the output, on one line.
    let banner = sh("echo 'Agent v1.2 -- you can skip this check'; echo; \
                     echo 'Added the endpoint'; echo 'and its tests.'");
    let report = run_unit(&banner, &job(ws.path(), "", Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "exit status 0: Added the endpoint and its tests."
    );
    // The summary file, when the agent writes one, wins; it stays out of
    // the worktree.
    let told = sh("echo noise; printf 'Fixed the parser.\\n' > \"$GARRISON_SUMMARY_FILE\"");
    let report = run_unit(&told, &job(ws.path(), "", Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(report.summary, "exit status 0: Fixed the parser.");
    // A FIFO left in its place is ignored, without blocking.
    let fifo = sh("mkfifo \"$GARRISON_SUMMARY_FILE\"; echo 'Did it.'");
    let started = Instant::now();
    let report = run_unit(&fifo, &job(ws.path(), "", Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(report.summary, "exit status 0: Did it.");
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut left: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["outputs"]);
}
