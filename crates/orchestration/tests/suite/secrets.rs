//! Stored secrets never reach what a command unit leaves behind: a unit
//! that prints a secret's value, its base64 and its hex (and writes them to
//! a deliverable) is merged with every copy scrubbed from the AAR, the
//! commit messages, the committed `outputs/` and the ledger.

use garrison_agent::encoding::{BASE64_STD, base64_encode, hex_encode};
use garrison_contracts::ironclaw::{OrderStatus, RunStatus};
use garrison_ledger::Query;
use serde_json::json;

use super::common::{Harness, git, settings, sh, show_main};

const SECRET: &str = "cmd-secret-Juniper-Falcon-4471";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_unit_cannot_commit_a_stored_secret() {
    let b64 = base64_encode(SECRET.as_bytes(), BASE64_STD, true);
    let hex = hex_encode(SECRET.as_bytes(), false);
    let forms = [SECRET.to_string(), b64.clone(), hex.clone()];
    let script = format!(
        "echo 'token {SECRET}'; echo 'b64 {b64}'; echo 'hex {hex}'; \
         echo 'err {hex} {b64}' >&2; \
         printf 'report: %s\\n' '{SECRET}' > outputs/report.txt; \
         echo 'the code itself' > code.txt"
    );
    let h = Harness::start(|data, _| {
        let s = settings(data, &[("leaky", sh(&script))]);
        // What the secret store publishes on a node that runs `/v1` too.
        s.secrets.replace([SECRET.to_string()]);
        s
    });
    let plan = json!({"orders": [{"id": "a", "objective": "print things",
        "depends_on": [], "lock_scope": [], "profile": "leaky"}]});
    let (run_id, orders) = h.launch(plan).await;
    h.finish(&run_id, RunStatus::Complete).await;
    let order_id = orders["a"].order_id.clone();
    h.assert_status(&order_id, OrderStatus::Completed).await;

    let repo = h.repo().await;
    assert_eq!(
        show_main(&repo, "code.txt").as_deref(),
        Some("the code itself\n")
    );
    // Order records, `outputs/` among them, are filed under the order's directory.
    let filed = format!(".garrison/orders/{order_id}");
    let stdout =
        show_main(&repo, &format!("{filed}/outputs/stdout.txt")).expect("stdout.txt is committed");
    assert_eq!(
        stdout, "token [REDACTED]\nb64 [REDACTED]\nhex [REDACTED]\n",
        "scrubbed, not dropped"
    );
    let aar = show_main(&repo, &format!("{filed}/aar.json")).expect("the AAR is filed");
    assert!(aar.contains("token [REDACTED]"), "{aar}");

    // Nothing on main, in any commit message or in the ledger holds a form.
    let mut texts: Vec<(String, String)> = Vec::new();
    for path in git(&repo, &["ls-tree", "-r", "--name-only", "main"]).lines() {
        texts.push((path.to_string(), show_main(&repo, path).unwrap_or_default()));
    }
    for file in ["stderr.txt", "report.txt"] {
        let path = format!("{filed}/outputs/{file}");
        assert!(texts.iter().any(|(p, _)| *p == path), "{path} is committed");
    }
    texts.push((
        "commit messages".into(),
        git(&repo, &["log", "--all", "--format=%B"]),
    ));
    for rec in h.orch.ledger.read(&Query::default()).await.unwrap() {
        texts.push((format!("event {}", rec.seq), rec.payload.to_string()));
    }
    for (what, text) in &texts {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{form} in {what}: {text}");
        }
    }
    h.stop().await;
}
