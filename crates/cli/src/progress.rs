//! Live progress of a run: on a terminal, one spinner line per order
//! (indicatif); otherwise one plain line each time an order changes state.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use garrison_contracts::ironclaw::{EventType, RunStatus};
use garrison_ledger::{OrderSnapshot, RunSnapshot};
use garrison_orchestration::Orchestrator;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What an order shows: its status, and its integration once it completed.
fn state(o: &OrderSnapshot) -> String {
    match o.integration {
        Some(EventType::Integrated) => "INTEGRATED".into(),
        Some(EventType::IntegrationFailed) => "INTEGRATION_FAILED".into(),
        Some(EventType::IntegrationStarted | EventType::IntegrationPassed) => "INTEGRATING".into(),
        _ if o.attempt > 1 => format!("{} (attempt {})", o.status.as_str(), o.attempt),
        _ => o.status.as_str().to_string(),
    }
}

fn label(o: &OrderSnapshot) -> String {
    let obj: String = o
        .objective
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(48)
        .collect();
    format!(
        "{} {obj}",
        o.order_id
            .get(o.order_id.len().saturating_sub(8)..)
            .unwrap_or(&o.order_id)
    )
}

enum View {
    Tty {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
    Plain {
        last: HashMap<String, String>,
    },
}

/// Watches a run until it ends or `limit` passes; returns the last snapshot.
pub async fn follow(
    orch: &Orchestrator,
    run_id: &str,
    limit: Duration,
) -> anyhow::Result<RunSnapshot> {
    let started = Instant::now();
    let mut view = if std::io::stderr().is_terminal() {
        View::Tty {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: HashMap::new(),
        }
    } else {
        View::Plain {
            last: HashMap::new(),
        }
    };
    let mut rx = orch.ledger.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let run = orch
            .ledger
            .run_snapshot(run_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("run {run_id} disappeared"))?;
        let orders = orch.ledger.run_orders(run_id).await?;
        render(&mut view, &orders, started);
        if run.status != RunStatus::Open {
            if let View::Tty { bars, .. } = &view {
                for b in bars.values() {
                    b.finish();
                }
            }
            return Ok(run);
        }
        tokio::select! {
            r = rx.recv() => {
                // A closed feed would wake this loop at once, forever.
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = tokio::time::sleep_until(deadline) => {
                eprintln!("garrison: the run did not end within {} s", limit.as_secs());
                return Ok(run);
            }
        }
    }
}

fn render(view: &mut View, orders: &[OrderSnapshot], started: Instant) {
    match view {
        View::Tty { multi, bars } => {
            let style = ProgressStyle::with_template("{spinner} {prefix:<58} {msg:<24} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            for o in orders {
                let bar = bars.entry(o.order_id.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(style.clone());
                    b.set_prefix(label(o));
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                });
                bar.set_message(state(o));
                if o.status.task_status().is_terminal()
                    && !bar.is_finished()
                    && o.integration != Some(EventType::IntegrationStarted)
                    && (o.integration.is_some()
                        || o.status != garrison_contracts::ironclaw::OrderStatus::Completed)
                {
                    bar.finish();
                }
            }
        }
        View::Plain { last } => {
            for o in orders {
                let s = state(o);
                if last.get(&o.order_id) != Some(&s) {
                    eprintln!(
                        "[{:>6.1}s] {:<58} {s}",
                        started.elapsed().as_secs_f64(),
                        label(o)
                    );
                    last.insert(o.order_id.clone(), s);
                }
            }
        }
    }
}
