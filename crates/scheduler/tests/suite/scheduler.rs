//! Scheduler jobs over a real ledger with a hand-moved clock: next runs,
//! no replay after downtime, one-shots fired once or missed, one claim per
//! window across two schedulers, persistence across reopening the ledger,
//! and what a fire records when its run fails or cannot start.

use garrison_test_support::db::scratch_database;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::postgres::PgLedger;
use garrison_ledger::sqlite::SqliteLedger;
use garrison_ledger::{Ledger, Query};
use garrison_scheduler::{
    JobInput, LaunchRequest, LaunchedRun, ManualClock, RunLauncher, RunOutcome, Scheduler,
    SchedulerError,
};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const T0: &str = "2026-03-01T10:00:00Z";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ts(s: &str) -> String {
    garrison_ledger::format_ts(t(s))
}

/// How the recording launcher answers.
#[derive(Clone)]
enum Answer {
    Complete,
    Fail(&'static str),
    Refuse(&'static str),
    /// Queued, and never finishes.
    Hold,
}

/// Records every launch and answers as told.
struct Recorder {
    launches: Mutex<Vec<LaunchRequest>>,
    answer: Mutex<Answer>,
    /// Keeps held runs' senders alive.
    held: Mutex<Vec<oneshot::Sender<RunOutcome>>>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            launches: Mutex::new(Vec::new()),
            answer: Mutex::new(Answer::Complete),
            held: Mutex::new(Vec::new()),
        })
    }

    fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn launches(&self) -> Vec<LaunchRequest> {
        self.launches.lock().unwrap().clone()
    }
}

impl RunLauncher for Recorder {
    fn launch(&self, request: LaunchRequest) -> BoxFuture<'static, Result<LaunchedRun, String>> {
        let run_id = format!("run-{}-{}", request.job_id, request.fire);
        self.launches.lock().unwrap().push(request);
        let result = match self.answer.lock().unwrap().clone() {
            Answer::Complete => Ok(LaunchedRun {
                run_id,
                finished: async { RunOutcome::completed() }.boxed(),
            }),
            Answer::Fail(reason) => Ok(LaunchedRun {
                run_id,
                finished: async move { RunOutcome::failed(reason) }.boxed(),
            }),
            Answer::Refuse(reason) => Err(reason.to_string()),
            Answer::Hold => {
                let (tx, rx) = oneshot::channel();
                self.held.lock().unwrap().push(tx);
                Ok(LaunchedRun {
                    run_id,
                    finished: async move {
                        rx.await
                            .unwrap_or_else(|_| RunOutcome::failed("the run was dropped"))
                    }
                    .boxed(),
                })
            }
        };
        async move { result }.boxed()
    }
}

fn open(path: &Path) -> Arc<dyn Ledger> {
    Arc::new(SqliteLedger::open(&path.join("ledger.db")).unwrap())
}

fn job(id: &str, schedule: &str) -> JobInput {
    serde_json::from_value(json!({
        "job_id": id, "agent_id": "agent_default", "schedule": schedule,
        "message": format!("message of {id}"), "mode": "isolated", "enabled": true
    }))
    .unwrap()
}

fn patch(v: Value) -> JobInput {
    serde_json::from_value(v).unwrap()
}

async fn job_events(ledger: &dyn Ledger, t: EventType) -> Vec<Value> {
    ledger
        .read(&Query {
            event_type: Some(t),
            ..Query::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.payload)
        .collect()
}

#[tokio::test]
async fn an_every_job_fires_on_time_and_records_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    let launcher = Recorder::new();
    let mut runner = s.runner(launcher.clone());

    let created = s.create(job("report", "@every 1m")).await.unwrap();
    assert_eq!(
        created.next_run_at.as_deref(),
        Some(ts("2026-03-01T10:01:00Z").as_str())
    );
    assert_eq!(created.job.created_at.as_deref(), Some(ts(T0).as_str()));
    assert_eq!(created.state, "scheduled");
    assert_eq!(created.fires, 0);
    assert_eq!(created.last_outcome, None);

    let tick = runner.tick().await.unwrap();
    assert!(tick.fired.is_empty());
    assert_eq!(tick.next_due, Some(t("2026-03-01T10:01:00Z")));

    clock.advance(Duration::from_secs(59));
    assert!(runner.tick().await.unwrap().fired.is_empty());
    clock.advance(Duration::from_secs(1));
    let tick = runner.tick().await.unwrap();
    assert_eq!(tick.fired, vec![("report".to_string(), 1)]);
    runner.settle().await;

    let launches = launcher.launches();
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0].agent_id, "agent_default");
    assert_eq!(launches[0].message, "message of report");
    let v = s.get("report").await.unwrap();
    assert_eq!(v.fires, 1);
    assert_eq!(
        v.last_fired_at.as_deref(),
        Some(ts("2026-03-01T10:01:00Z").as_str())
    );
    assert_eq!(v.last_run_id.as_deref(), Some("run-report-1"));
    assert_eq!(v.last_outcome.as_deref(), Some("completed"));
    assert_eq!(
        v.next_run_at.as_deref(),
        Some(ts("2026-03-01T10:02:00Z").as_str())
    );
    let fires = s.fires("report", 10).await.unwrap();
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].scheduled_for, ts("2026-03-01T10:01:00Z"));
    assert_eq!(fires[0].outcome, "completed");
    assert!(fires[0].finished_at.is_some());
    // The ledger holds the fire, its run's start and its end.
    assert_eq!(
        job_events(ledger.as_ref(), EventType::JobFired).await.len(),
        1
    );
    let started = job_events(ledger.as_ref(), EventType::JobRunStarted).await;
    assert_eq!(started[0]["run_id"], "run-report-1");
    let finished = job_events(ledger.as_ref(), EventType::JobRunFinished).await;
    assert_eq!(finished[0]["status"], "completed");
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn downtime_is_not_replayed_and_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(T0)));
    let launcher = Recorder::new();
    {
        let ledger = open(dir.path());
        let s = Scheduler::with_clock(ledger.clone(), clock.clone());
        s.create(job("digest", "@every 10m")).await.unwrap();
        let mut runner = s.runner(launcher.clone());
        clock.advance(Duration::from_secs(600));
        assert_eq!(runner.tick().await.unwrap().fired.len(), 1);
        runner.settle().await;
        ledger.close().await.unwrap();
    }
    // Down for three hours: eighteen windows pass unseen.
    clock.advance(Duration::from_secs(3 * 3600));
    let ledger = open(dir.path());
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    let before = s.get("digest").await.unwrap();
    assert_eq!(before.fires, 1);
    assert_eq!(before.last_outcome.as_deref(), Some("completed"));
    assert_eq!(before.job.created_at.as_deref(), Some(ts(T0).as_str()));
    assert_eq!(
        before.next_run_at.as_deref(),
        Some(ts("2026-03-01T10:20:00Z").as_str())
    );

    let mut runner = s.runner(launcher.clone());
    let tick = runner.tick().await.unwrap();
    assert_eq!(tick.fired, vec![("digest".to_string(), 2)]);
    // Nothing else is owed for the missed windows.
    assert!(runner.tick().await.unwrap().fired.is_empty());
    runner.settle().await;
    let after = s.get("digest").await.unwrap();
    assert_eq!(after.fires, 2);
    assert_eq!(
        after.last_fired_at.as_deref(),
        Some(ts("2026-03-01T13:10:00Z").as_str())
    );
    // The next window counts from the catch-up fire, not from the old grid.
    assert_eq!(
        after.next_run_at.as_deref(),
        Some(ts("2026-03-01T13:20:00Z").as_str())
    );
    clock.advance(Duration::from_secs(599));
    assert!(runner.tick().await.unwrap().fired.is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(runner.tick().await.unwrap().fired.len(), 1);
    runner.settle().await;
    assert_eq!(launcher.launches().len(), 3);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn one_shots_fire_once_and_a_missed_one_never_fires() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    let launcher = Recorder::new();
    s.create(job("launch", "2026-03-01T10:05:00Z"))
        .await
        .unwrap();
    s.create(job("later", "2026-03-01T10:30:00Z"))
        .await
        .unwrap();

    let mut runner = s.runner(launcher.clone());
    clock.set(t("2026-03-01T10:05:00Z"));
    assert_eq!(
        runner.tick().await.unwrap().fired,
        vec![("launch".to_string(), 1)]
    );
    runner.settle().await;
    clock.set(t("2026-03-01T10:06:00Z"));
    assert!(runner.tick().await.unwrap().fired.is_empty());
    let done = s.get("launch").await.unwrap();
    assert_eq!(done.state, "done");
    assert_eq!(done.next_run_at, None);
    assert_eq!(done.last_outcome.as_deref(), Some("completed"));
    drop(runner);

    // No scheduler runs at 10:30; one that starts at 11:00 does not replay it.
    clock.set(t("2026-03-01T11:00:00Z"));
    let mut runner = s.runner(launcher.clone());
    let tick = runner.tick().await.unwrap();
    assert!(tick.fired.is_empty());
    assert_eq!(tick.missed, vec!["later".to_string()]);
    assert!(runner.tick().await.unwrap().missed.is_empty());
    let missed = s.get("later").await.unwrap();
    assert_eq!(missed.state, "missed");
    assert_eq!(missed.last_outcome.as_deref(), Some("missed"));
    assert_eq!(missed.next_run_at, None);
    assert_eq!(missed.fires, 0);
    assert_eq!(launcher.launches().len(), 1);

    // Rescheduling a missed one-shot makes it due again.
    s.patch("later", patch(json!({"schedule": "2026-03-01T11:10:00Z"})))
        .await
        .unwrap();
    clock.set(t("2026-03-01T11:10:00Z"));
    assert_eq!(runner.tick().await.unwrap().fired.len(), 1);
    runner.settle().await;
    assert_eq!(s.get("later").await.unwrap().state, "done");
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn disabled_jobs_never_fire_and_enabling_counts_from_then() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    let launcher = Recorder::new();
    let mut runner = s.runner(launcher.clone());
    let mut input = job("quiet", "@every 1s");
    input.enabled = Some(false);
    let v = s.create(input).await.unwrap();
    assert_eq!((v.state, v.next_run_at), ("disabled", None));
    clock.advance(Duration::from_secs(3600));
    let tick = runner.tick().await.unwrap();
    assert!(tick.fired.is_empty());
    assert_eq!(tick.next_due, None);

    let v = s.set_enabled("quiet", true).await.unwrap();
    assert_eq!(
        v.next_run_at.as_deref(),
        Some(ts("2026-03-01T11:00:01Z").as_str())
    );
    assert!(runner.tick().await.unwrap().fired.is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(runner.tick().await.unwrap().fired.len(), 1);
    runner.settle().await;
    s.set_enabled("quiet", false).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    assert!(runner.tick().await.unwrap().fired.is_empty());
    assert_eq!(launcher.launches().len(), 1);
    ledger.close().await.unwrap();
}

/// Two schedulers (two nodes' caches) over one ledger, ticking at the same
/// moments: every window is claimed and launched exactly once.
async fn each_window_once(ledger: Arc<dyn Ledger>) {
    let clock = Arc::new(ManualClock::new(t(T0)));
    let launcher = Recorder::new();
    let a = Scheduler::with_clock(ledger.clone(), clock.clone());
    let b = Scheduler::with_clock(ledger.clone(), clock.clone());
    a.create(job("shared", "@every 5m")).await.unwrap();
    b.create(job("other", "@every 15m")).await.unwrap();
    let mut ra = a.runner(launcher.clone());
    let mut rb = b.runner(launcher.clone());
    let mut fired = Vec::new();
    for _ in 0..24 {
        clock.advance(Duration::from_secs(300));
        let (ta, tb) = tokio::join!(ra.tick(), rb.tick());
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        let mut both: Vec<_> = ta.fired.into_iter().chain(tb.fired).collect();
        both.sort();
        fired.extend(both);
    }
    tokio::join!(ra.settle(), rb.settle());
    let shared: Vec<u64> = fired
        .iter()
        .filter(|(j, _)| j == "shared")
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(shared, (1..=24).collect::<Vec<_>>());
    let other: Vec<u64> = fired
        .iter()
        .filter(|(j, _)| j == "other")
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(other, (1..=8).collect::<Vec<_>>());
    assert_eq!(launcher.launches().len(), 32);
    let claims = job_events(ledger.as_ref(), EventType::JobFired).await;
    assert_eq!(claims.len(), 32);
    assert_eq!(
        job_events(ledger.as_ref(), EventType::JobRunFinished)
            .await
            .len(),
        32
    );
    // Both caches agree on the outcome.
    let (va, vb) = (
        a.get("shared").await.unwrap(),
        b.get("shared").await.unwrap(),
    );
    assert_eq!(va, vb);
    assert_eq!(va.fires, 24);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn two_schedulers_claim_each_window_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    each_window_once(open(dir.path())).await;
}

#[tokio::test]
async fn two_schedulers_claim_each_window_once_on_postgres() {
    let Some(url) =
        scratch_database("scheduler::two_schedulers_claim_each_window_once_on_postgres")
            .await
            .unwrap()
    else {
        return;
    };
    let ledger: Arc<dyn Ledger> = Arc::new(PgLedger::connect(&url).await.unwrap());
    each_window_once(ledger).await;
}

#[tokio::test]
async fn failures_are_visible_in_the_last_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    let launcher = Recorder::new();
    let mut runner = s.runner(launcher.clone());
    s.create(job("flaky", "@every 1m")).await.unwrap();

    launcher.answer(Answer::Refuse("no agent `agent_default` on this node"));
    clock.advance(Duration::from_secs(60));
    runner.tick().await.unwrap();
    runner.settle().await;
    let v = s.get("flaky").await.unwrap();
    assert_eq!(
        v.last_outcome.as_deref(),
        Some("launch failed: no agent `agent_default` on this node")
    );
    assert_eq!(v.last_run_id, None);

    launcher.answer(Answer::Fail("model unavailable"));
    clock.advance(Duration::from_secs(60));
    runner.tick().await.unwrap();
    runner.settle().await;
    let v = s.get("flaky").await.unwrap();
    assert_eq!(v.last_outcome.as_deref(), Some("failed: model unavailable"));
    assert_eq!(v.last_run_id.as_deref(), Some("run-flaky-2"));

    // A run still going when the scheduler stops is recorded as interrupted.
    launcher.answer(Answer::Hold);
    clock.advance(Duration::from_secs(60));
    runner.tick().await.unwrap();
    let running = loop {
        let v = s.get("flaky").await.unwrap();
        if v.last_outcome.as_deref() == Some("running") {
            break v;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(running.last_run_id.as_deref(), Some("run-flaky-3"));
    runner.stop().await;
    let v = s.get("flaky").await.unwrap();
    assert_eq!(
        v.last_outcome.as_deref(),
        Some("interrupted: the scheduler stopped before the run finished")
    );
    let outcomes: Vec<String> = s
        .fires("flaky", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.outcome)
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes[2].starts_with("launch failed"), "{outcomes:?}");
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn writes_follow_the_contract_rules() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    s.create(job("a", "@every 1h")).await.unwrap();
    assert!(matches!(
        s.create(job("a", "@every 2h")).await,
        Err(SchedulerError::Exists(id)) if id == "a"
    ));
    for (schedule, says) in [
        ("0 * * * *", "cron expressions are not supported"),
        ("@daily", "cron expressions are not supported"),
        ("@every 0s", "must be positive"),
        ("@every -1m", "must be positive"),
        ("soon", "is neither `@every <duration>`"),
    ] {
        match s.create(job("b", schedule)).await {
            Err(SchedulerError::Invalid(m)) => assert!(m.contains(says), "{schedule}: {m}"),
            other => panic!("{schedule}: {other:?}"),
        }
        match s.patch("a", patch(json!({ "schedule": schedule }))).await {
            Err(SchedulerError::Invalid(m)) => assert!(m.contains(says), "{schedule}: {m}"),
            other => panic!("{schedule}: {other:?}"),
        }
    }
    let mut tz = job("b", "@every 1h");
    tz.timezone = Some("America/New_York".into());
    assert!(
        matches!(s.create(tz).await, Err(SchedulerError::Invalid(m)) if m.contains("timezone"))
    );
    assert!(matches!(
        s.patch("nope", patch(json!({"enabled": false}))).await,
        Err(SchedulerError::NotFound(_))
    ));
    assert!(matches!(s.get("b").await, Err(SchedulerError::NotFound(_))));

    // A change keeps created_at, moves updated_at, and restarts the interval.
    clock.advance(Duration::from_secs(1800));
    let v = s
        .patch(
            "a",
            patch(json!({"schedule": "@every 2h", "mode": "main_like"})),
        )
        .await
        .unwrap();
    assert_eq!(v.job.created_at.as_deref(), Some(ts(T0).as_str()));
    assert_eq!(
        v.job.updated_at.as_deref(),
        Some(ts("2026-03-01T10:30:00Z").as_str())
    );
    assert_eq!(
        v.next_run_at.as_deref(),
        Some(ts("2026-03-01T12:30:00Z").as_str())
    );
    // A message change alone does not.
    let v = s
        .patch("a", patch(json!({"message": "new"})))
        .await
        .unwrap();
    assert_eq!(
        v.next_run_at.as_deref(),
        Some(ts("2026-03-01T12:30:00Z").as_str())
    );
    // Replacing needs every required field.
    assert!(matches!(
        s.replace("a", patch(json!({"message": "only"}))).await,
        Err(SchedulerError::Invalid(m)) if m == "agent_id is required"
    ));
    s.replace("a", job("a", "@every 3h")).await.unwrap();
    assert_eq!(s.get("a").await.unwrap().job.message, "message of a");

    // Deleted: gone from the list, its id free again, history kept.
    s.delete("a").await.unwrap();
    assert!(matches!(
        s.delete("a").await,
        Err(SchedulerError::NotFound(_))
    ));
    assert!(s.list().await.unwrap().is_empty());
    let again = s.create(job("a", "@every 1m")).await.unwrap();
    assert_eq!(again.fires, 0);
    assert_eq!(s.list().await.unwrap().len(), 1);
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_from_two_nodes_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let a = Scheduler::with_clock(ledger.clone(), clock.clone());
    let b = Scheduler::with_clock(ledger.clone(), clock.clone());
    a.create(job("j", "@every 1h")).await.unwrap();
    let (ra, rb) = tokio::join!(
        async {
            for i in 0..10 {
                a.patch("j", patch(json!({"message": format!("m{i}")})))
                    .await
                    .unwrap();
            }
        },
        async {
            for i in 0..10 {
                b.patch("j", patch(json!({"agent_id": format!("agent{i}")})))
                    .await
                    .unwrap();
            }
        }
    );
    let _ = (ra, rb);
    let v = a.get("j").await.unwrap();
    assert_eq!(v.job.message, "m9");
    assert_eq!(v.job.agent_id, "agent9");
    assert_eq!(
        job_events(ledger.as_ref(), EventType::JobUpdated)
            .await
            .len(),
        20
    );
    ledger.close().await.unwrap();
}

/// Two real firing loops (two nodes' schedulers) on the wall clock over one
/// ledger: every fire number is claimed once and launched once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_firing_loops_never_fire_a_window_twice() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let launcher = Recorder::new();
    let a = Scheduler::new(ledger.clone());
    let b = Scheduler::new(ledger.clone());
    a.create(job("pulse", "@every 1s")).await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let poll = Duration::from_millis(50);
    let loops = [
        tokio::spawn(a.runner(launcher.clone()).run(rx.clone(), poll)),
        tokio::spawn(b.runner(launcher.clone()).run(rx, poll)),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while launcher.launches().len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the loops did not fire 4 times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for l in loops {
        l.await.unwrap();
    }
    let mut fires: Vec<u64> = launcher.launches().iter().map(|l| l.fire).collect();
    let n = fires.len() as u64;
    fires.sort_unstable();
    assert_eq!(
        fires,
        (1..=n).collect::<Vec<_>>(),
        "each fire launched once"
    );
    let claimed: Vec<u64> = job_events(ledger.as_ref(), EventType::JobFired)
        .await
        .iter()
        .map(|p| p["fire"].as_u64().unwrap())
        .collect();
    assert_eq!(
        claimed,
        (1..=n).collect::<Vec<_>>(),
        "each fire claimed once"
    );
    assert_eq!(a.get("pulse").await.unwrap().fires, n);
    ledger.close().await.unwrap();
}

/// A node SIGKILLed during a fire records nothing more: its fire stays
/// `running` (and a window it had just claimed `launching`). The next start
/// of the firing loop on the embedded ledger records both `interrupted`,
/// saying why, and the job's `last_outcome` follows; a finished fire and
/// a second restart are left alone.
#[tokio::test]
async fn fires_left_running_by_a_killed_node_read_interrupted_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(T0)));
    {
        let ledger = open(dir.path());
        let s = Scheduler::with_clock(ledger.clone(), clock.clone());
        let launcher = Recorder::new();
        s.create(job("done", "@every 1m")).await.unwrap();
        s.create(job("stuck", "@every 1m")).await.unwrap();
        let mut runner = s.runner(launcher.clone());
        clock.advance(Duration::from_secs(60));
        runner.tick().await.unwrap();
        runner.settle().await;
        // The next window of `stuck` starts a run that never ends…
        s.patch("done", patch(json!({"enabled": false})))
            .await
            .unwrap();
        launcher.answer(Answer::Hold);
        clock.advance(Duration::from_secs(60));
        runner.tick().await.unwrap();
        loop {
            let v = s.get("stuck").await.unwrap();
            if v.last_outcome.as_deref() == Some("running") {
                break;
            }
            tokio::task::yield_now().await;
        }
        // …and the node dies: no stop, so no end is recorded. Dropping the
        // runner aborts its fire tasks as a SIGKILL would.
        drop(runner);
        assert_eq!(
            s.get("stuck").await.unwrap().last_outcome.as_deref(),
            Some("running")
        );
        ledger.close().await.unwrap();
    }

    let ledger = open(dir.path());
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    assert_eq!(
        s.get("stuck").await.unwrap().last_outcome.as_deref(),
        Some("running"),
        "nothing changed before the scheduler starts"
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(
        s.runner(Recorder::new())
            .run(shutdown, Duration::from_millis(20)),
    );
    let expected = format!("interrupted: {}", garrison_scheduler::NODE_STOPPED);
    let mut seen = None;
    for _ in 0..500 {
        let v = s.get("stuck").await.unwrap();
        if v.last_outcome.as_deref() != Some("running") {
            seen = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    let v = seen.expect("the fire left running was never recovered");
    assert_eq!(v.last_outcome.as_deref(), Some(expected.as_str()));
    assert_eq!(v.last_run_id.as_deref(), Some("run-stuck-2"));
    let fires = s.fires("stuck", 10).await.unwrap();
    assert_eq!(fires.len(), 2);
    assert_eq!(fires[0].outcome, expected);
    assert!(fires[0].finished_at.is_some());
    assert_eq!(fires[1].outcome, "completed");
    assert_eq!(
        s.get("done").await.unwrap().last_outcome.as_deref(),
        Some("completed")
    );
    let finished = job_events(ledger.as_ref(), EventType::JobRunFinished).await;
    assert_eq!(finished.len(), 3, "{finished:?}");
    // A second restart finds nothing left to recover.
    assert!(s.recover_interrupted().await.unwrap().is_empty());
    ledger.close().await.unwrap();
}

/// On a ledger several nodes share, a running fire may belong to a live
/// node: nothing is recovered there.
#[tokio::test]
async fn fires_are_not_recovered_on_a_shared_ledger() {
    let Some(url) = scratch_database("scheduler::fires_are_not_recovered_on_a_shared_ledger")
        .await
        .unwrap()
    else {
        return;
    };
    let ledger: Arc<dyn Ledger> = Arc::new(PgLedger::connect(&url).await.unwrap());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = Scheduler::with_clock(ledger.clone(), clock.clone());
    let launcher = Recorder::new();
    launcher.answer(Answer::Hold);
    s.create(job("elsewhere", "@every 1m")).await.unwrap();
    let mut runner = s.runner(launcher.clone());
    clock.advance(Duration::from_secs(60));
    runner.tick().await.unwrap();
    loop {
        if s.get("elsewhere").await.unwrap().last_outcome.as_deref() == Some("running") {
            break;
        }
        tokio::task::yield_now().await;
    }
    let other = Scheduler::with_clock(ledger.clone(), clock.clone());
    assert!(other.recover_interrupted().await.unwrap().is_empty());
    assert_eq!(
        other
            .get("elsewhere")
            .await
            .unwrap()
            .last_outcome
            .as_deref(),
        Some("running")
    );
    runner.stop().await;
    ledger.close().await.unwrap();
}
