//! Scale-out on PostgreSQL: two `garrison serve` nodes with different
//! `--services` and four `garrison worker` processes on one fresh database.
//! 2000 orders run through them while one worker and one node are SIGKILLed
//! mid-run; afterwards the ledger must show every order completed exactly
//! once, no order claimed twice for one attempt (a claim only ever follows a
//! reissue), and the units' own log no attempt run to completion twice.
//!
//! Node A runs `gateway,co,ledger,worker,patrols` (the test talks to it);
//! node B runs `worker,patrols,integration`. Workers w1 and w2 use A; w3 and
//! w4 use B and fail over to A. The killed worker (w1) holds a lease when it
//! dies, so a surviving duty officer must reissue that order; B's workers
//! carry their jobs (leases granted by B) over to A.
//!
//! Orders have no theater (no git work), so the run measures the queue and
//! leases, not git; they are planned into the ledger through `POST
//! /events/batch` the way the CO records a plan, and dispatched with `POST
//! /runs/{id}/dispatch`. Needs `GARRISON_TEST_DATABASE_URL`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use garrison_client::ServerUrl;
use garrison_test_support::process::{KillOnDrop, Served};
use serde_json::{Value, json};

use super::common::garrison;

const TOKEN: &str = "multinode-test-token-0123456789abcdef";
const RUNS: usize = 20;
const PER_RUN: usize = 100;
/// Runs submitted before the kills; the rest after.
const RUNS_BEFORE_KILL: usize = 10;
/// Orders completed before the kills happen.
const COMPLETED_BEFORE_KILL: usize = 300;
/// The whole test must end within this (it fails with a message otherwise).
const LIMIT: Duration = Duration::from_secs(480);

/// A child process, named for the messages, killed (SIGKILL) when dropped.
struct Proc {
    name: String,
    process: KillOnDrop,
}

impl Proc {
    fn kill(&mut self) {
        self.process.kill();
    }
}

struct Setup {
    dir: PathBuf,
    data: PathBuf,
    db_url: String,
}

impl Setup {
    /// The binary with a clean `GARRISON_*` environment, on the shared data
    /// dir and database.
    fn garrison(&self) -> Command {
        let mut c = garrison();
        c.env("RUST_LOG", "warn")
            .env("GARRISON_API_TOKEN", TOKEN)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--database-url")
            .arg(&self.db_url);
        c
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap()
    }

    /// Starts a node and waits for its listen line.
    fn node(&self, name: &str, services: &str) -> (Proc, String) {
        let served = Served::start(
            self.garrison()
                .args(["serve", "--listen", "127.0.0.1:0", "--services", services])
                .stderr(self.log(name)),
            1,
        );
        let url = served.url();
        let proc = Proc {
            name: name.into(),
            process: served.process,
        };
        (proc, url)
    }

    /// Starts a worker on `servers`; its unit sleeps `sleep` seconds.
    fn worker(&self, name: &str, servers: &[&str], sleep: &str) -> Proc {
        let cwd = self.dir.join(name);
        std::fs::create_dir_all(&cwd).unwrap();
        let child = self
            .garrison()
            .args(["worker", "--unit-id", name, "--wait-ms", "2000", "--server"])
            .arg(servers.join(","))
            .env("W", name)
            .env("SLEEP", sleep)
            .current_dir(&cwd)
            .stdout(Stdio::null())
            .stderr(self.log(name))
            .spawn()
            .unwrap();
        Proc {
            name: name.into(),
            process: KillOnDrop(child),
        }
    }
}

async fn get(node: &ServerUrl, path: &str) -> Value {
    let (status, v) = node.get_json(path, Some(TOKEN)).await.unwrap();
    assert_eq!(status, 200, "GET {path}: {v}");
    v["data"].clone()
}

async fn post(node: &ServerUrl, path: &str, body: &Value) -> Value {
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let resp = node
        .post(path, &headers, &serde_json::to_vec(body).unwrap())
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    assert!(
        (200..300).contains(&resp.status),
        "POST {path} answered {}: {v}",
        resp.status
    );
    v["data"].clone()
}

/// Every event of `type` (all pages).
async fn events(node: &ServerUrl, event_type: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = get(
            node,
            &format!("/api/events?type={event_type}&after={after}&limit=1000"),
        )
        .await;
        let batch = page["events"].as_array().cloned().unwrap_or_default();
        if batch.is_empty() {
            return out;
        }
        after = page["next_after"].as_i64().unwrap();
        out.extend(batch);
    }
}

/// Plans one run of `PER_RUN` orders the way the CO records a plan, and
/// dispatches it. Returns the run id.
async fn submit_run(node: &ServerUrl, n: usize) -> String {
    let run_id = format!("run-{n:03}-{}", std::process::id());
    let mut batch = vec![
        json!({"type": "RUN_CREATED", "run_id": run_id, "payload": {"objective": format!("multinode run {n}")}}),
        json!({"type": "RUN_UPDATED", "run_id": run_id, "payload": {"metadata": {"planned_at": "2026-01-01T00:00:00.000Z", "orders": PER_RUN}}}),
    ];
    for i in 0..PER_RUN {
        batch.push(json!({
            "type": "ORDER_CREATED",
            "run_id": run_id,
            "order_id": format!("{run_id}-o{i:03}"),
            "payload": {
                "plan_id": format!("o{i}"),
                "objective": "append one line to the log",
                "global_objective": "multinode",
                "depends_on": [],
                "lock_scope": [],
                "profile": {"name": "mark", "model": null},
                "type": "task",
                "inputs": {},
                "acceptance_criteria": [],
                "constraints": {"max_retries": 5},
            }
        }));
    }
    post(node, "/events/batch", &json!({ "events": batch })).await;
    post(node, &format!("/runs/{run_id}/dispatch"), &json!({})).await;
    run_id
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn check_deadline(started: Instant, what: &str, procs: &[&Proc], dir: &Path) {
    if started.elapsed() > LIMIT {
        let names: Vec<&str> = procs.iter().map(|p| p.name.as_str()).collect();
        panic!(
            "timed out after {:?} waiting for {what}; logs of {names:?} are in {}",
            LIMIT,
            dir.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_and_four_workers_lose_nothing_and_claim_nothing_twice() {
    let Some(db_url) = garrison_test_support::db::scratch_database("multinode")
        .await
        .expect("create a scratch database on GARRISON_TEST_DATABASE_URL")
    else {
        return;
    };
    let started = Instant::now();
    // Kept on failure (node and worker logs); removed once the test passes.
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("multinode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let done_log = dir.join("completed.log");
    let start_log = dir.join("started.log");
    // The unit: note the start, work a little, note the completion (one
    // O_APPEND line each), as the worker that ran it.
    let script = format!(
        "echo \"$GARRISON_ORDER_ID $GARRISON_ATTEMPT $W\" >> {start}; sleep \"$SLEEP\"; \
         echo \"$GARRISON_ORDER_ID $GARRISON_ATTEMPT $W\" >> {done}",
        start = start_log.display(),
        done = done_log.display()
    );
    std::fs::write(
        data.join("garrison.toml"),
        format!(
            "[orchestration]\nworkers = 0\nlease_secs = 3\nmax_retries = 5\n\
             patrol_interval_secs = 1\nsentinel_interval_secs = 30\n\
             default_profile = \"mark\"\n\n\
             [profiles.mark]\nkind = \"command\"\nprogram = \"sh\"\nargs = [\"-c\", {script:?}]\n\n\
             # The logs the test reads live beside the data dir.\n\
             [profiles.mark.sandbox]\nwrite = [{dir:?}]\n",
            dir = dir.display().to_string()
        ),
    )
    .unwrap();
    let setup = Setup {
        dir: dir.clone(),
        data,
        db_url,
    };

    let (node_a, url_a) = setup.node("node-a", "gateway,co,ledger,worker,patrols");
    let (mut node_b, url_b) = setup.node("node-b", "worker,patrols,integration");
    // w1 works slowly so that it holds a lease when it is killed.
    let mut w1 = setup.worker("w1", &[&url_a], "0.5");
    let w2 = setup.worker("w2", &[&url_a], "0.02");
    let w3 = setup.worker("w3", &[&url_b, &url_a], "0.02");
    let w4 = setup.worker("w4", &[&url_b, &url_a], "0.02");
    let a = ServerUrl::parse(&url_a).unwrap();

    // A node without the CO answers its routes with 503.
    let b = ServerUrl::parse(&url_b).unwrap();
    let (status, _) = b.get_json("/runs/none", Some(TOKEN)).await.unwrap();
    assert_eq!(status, 404, "ledger read routes run on every node");
    let auth = format!("Bearer {TOKEN}");
    let refused = b
        .post(
            "/runs",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", auth.as_str()),
            ],
            br#"{"user_id":"u","objective":"x"}"#,
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 503, "node B does not run the CO");

    let mut runs = Vec::new();
    for n in 0..RUNS_BEFORE_KILL {
        runs.push(submit_run(&a, n).await);
    }

    // Mid-run: once enough orders completed, and just after w1 started a
    // unit, SIGKILL w1 and node B.
    loop {
        check_deadline(
            started,
            "progress before the kills",
            &[&node_a, &node_b],
            &dir,
        );
        if lines(&done_log).len() >= COMPLETED_BEFORE_KILL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w1_started = |l: &Vec<String>| l.iter().filter(|l| l.ends_with(" w1")).count();
    let before = w1_started(&lines(&start_log));
    loop {
        check_deadline(started, "w1 to start a unit", &[&w1], &dir);
        if w1_started(&lines(&start_log)) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w1.kill();
    node_b.kill();
    let killed_at = lines(&done_log).len();

    for n in RUNS_BEFORE_KILL..RUNS {
        runs.push(submit_run(&a, n).await);
    }

    // Every run ends (RUN_COMPLETED or RUN_FAILED), bounded.
    loop {
        check_deadline(started, "every run to end", &[&node_a, &w2, &w3, &w4], &dir);
        let ended = events(&a, "RUN_COMPLETED").await.len() + events(&a, "RUN_FAILED").await.len();
        if ended >= RUNS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The ledger's account.
    let mut orders: BTreeMap<String, Value> = BTreeMap::new();
    for run_id in &runs {
        let view = get(&a, &format!("/runs/{run_id}")).await;
        assert_eq!(
            view["run"]["status"], "COMPLETE",
            "run {run_id}: {}",
            view["run"]
        );
        for o in view["orders"].as_array().unwrap() {
            orders.insert(o["order_id"].as_str().unwrap().to_string(), o.clone());
        }
    }
    let submitted = RUNS * PER_RUN;
    assert_eq!(
        orders.len(),
        submitted,
        "orders in the ledger = orders submitted"
    );
    let lost: Vec<&String> = orders
        .iter()
        .filter(|(_, o)| o["status"] != "COMPLETED")
        .map(|(id, _)| id)
        .collect();
    assert!(lost.is_empty(), "orders not COMPLETED: {lost:?}");

    let by_order = |evs: &[Value]| {
        let mut m: HashMap<String, Vec<Value>> = HashMap::new();
        for e in evs {
            m.entry(e["order_id"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(e.clone());
        }
        m
    };
    let claims = events(&a, "ORDER_CLAIMED").await;
    let reissues = events(&a, "ORDER_REISSUED").await;
    let completions = events(&a, "ORDER_COMPLETED").await;
    let claims_of = by_order(&claims);
    let reissues_of = by_order(&reissues);
    let completions_of = by_order(&completions);
    let mut duplicates = Vec::new();
    for id in orders.keys() {
        // Exactly one completion.
        if completions_of.get(id).map_or(0, Vec::len) != 1 {
            duplicates.push(format!(
                "{id}: completed {} times",
                completions_of.get(id).map_or(0, Vec::len)
            ));
        }
        // Claims go 1, 2, … with a reissue (which ends the previous lease)
        // between any two: never two live leases on one order.
        let attempts: Vec<u64> = claims_of
            .get(id)
            .map(|c| {
                c.iter()
                    .map(|e| e["payload"]["attempt"].as_u64().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<u64> = (1..=attempts.len() as u64).collect();
        let reissued = reissues_of.get(id).map_or(0, Vec::len);
        if attempts != expected || reissued + 1 != attempts.len() {
            duplicates.push(format!(
                "{id}: claims for attempts {attempts:?} with {reissued} reissues"
            ));
        }
        let seqs = |evs: Option<&Vec<Value>>| -> Vec<i64> {
            evs.map(|v| v.iter().map(|e| e["seq"].as_i64().unwrap()).collect())
                .unwrap_or_default()
        };
        let (c, r) = (seqs(claims_of.get(id)), seqs(reissues_of.get(id)));
        for (i, pair) in c.windows(2).enumerate() {
            if !r.get(i).is_some_and(|s| pair[0] < *s && *s < pair[1]) {
                duplicates.push(format!(
                    "{id}: claim at seq {} without a reissue before it",
                    pair[1]
                ));
            }
        }
    }
    // The units' own account: no attempt ran to completion twice.
    let mut ran: BTreeSet<(String, String)> = BTreeSet::new();
    for l in lines(&done_log) {
        let mut parts = l.split(' ');
        let (Some(order), Some(attempt)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !ran.insert((order.to_string(), attempt.to_string())) {
            duplicates.push(format!("{order} attempt {attempt} ran to completion twice"));
        }
    }
    assert!(duplicates.is_empty(), "duplicates: {duplicates:#?}");
    for id in orders.keys() {
        assert!(
            ran.iter().any(|(o, _)| o == id),
            "order {id} is COMPLETED but no unit completed it"
        );
    }
    // B's workers went on through A after B died.
    let after_kill = lines(&done_log).split_off(killed_at);
    for w in ["w3", "w4"] {
        assert!(
            after_kill.iter().any(|l| l.ends_with(&format!(" {w}"))),
            "{w} completed nothing after node B died: it did not fail over to node A"
        );
    }
    let reissued = reissues.len();
    assert!(
        reissued >= 1,
        "w1 died holding a lease: a surviving duty officer must have reissued it"
    );
    println!(
        "orders={} claims={} reissued={reissued} duplicates=0 lost=0 killed_node=node-b \
         killed_worker=w1 completed_before_kill={killed_at} elapsed_s={}",
        orders.len(),
        claims.len(),
        started.elapsed().as_secs()
    );
    drop((node_a, w2, w3, w4));
    garrison_test_support::db::drop_database(&setup.db_url).await;
    let _ = std::fs::remove_dir_all(&dir);
}
