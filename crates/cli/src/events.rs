//! `garrison events tail`: print ledger records as JSON lines, from the local
//! ledger or through a running server, optionally following new ones.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{Ledger, Query, Record, tail};

use crate::config::{Global, Settings};
use garrison_client::{ServerUrl, encode, error_message};

/// Page size for reads (the server's maximum).
const PAGE: i64 = 1000;

#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// Print events as JSON lines (oldest first), optionally following new ones
    #[command(after_help = "\
Prints every event with seq > --after (default 0) that matches the filters,
one Record JSON per line, at most --limit of them. --follow keeps printing new
events as they are appended until Ctrl-C (through --server, or directly on a
PostgreSQL ledger).

The embedded ledger has one owner: while `garrison serve` runs on the data dir,
read through it with --server (token from GARRISON_API_TOKEN or
<data-dir>/api-token).

Examples:
  garrison events tail
  garrison events tail --run 01J… --type ORDER_COMPLETED
  garrison events tail --after 1200 --follow
  garrison events tail --follow --server http://127.0.0.1:7878")]
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only events with a sequence number greater than SEQ
    #[arg(long, value_name = "SEQ", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub after: i64,
    /// Only events of this run
    #[arg(long = "run", value_name = "ID")]
    pub run_id: Option<String>,
    /// Only events of this order
    #[arg(long = "order", value_name = "ID")]
    pub order_id: Option<String>,
    /// Only events of this type (e.g. ORDER_COMPLETED)
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub event_type: Option<EventType>,
    /// Stop after printing N events
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Keep printing new events as they are appended
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Read through a running server (http:// or https://HOST:PORT) instead of the local ledger
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

fn parse_type(s: &str) -> Result<EventType, String> {
    s.parse::<EventType>().map_err(|e| e.to_string())
}

impl TailArgs {
    fn matches(&self, r: &Record) -> bool {
        self.run_id
            .as_ref()
            .is_none_or(|id| r.run_id.as_ref() == Some(id))
            && self
                .order_id
                .as_ref()
                .is_none_or(|id| r.order_id.as_ref() == Some(id))
            && self.event_type.is_none_or(|t| r.event_type == t)
    }

    fn filter_query(&self) -> String {
        let mut q = String::new();
        if let Some(r) = &self.run_id {
            q.push_str(&format!("&run_id={}", encode(r)));
        }
        if let Some(o) = &self.order_id {
            q.push_str(&format!("&order_id={}", encode(o)));
        }
        if let Some(t) = self.event_type {
            q.push_str(&format!("&type={}", encode(t.as_str())));
        }
        q
    }
}

pub fn run(global: &Global, cmd: EventsCmd) -> Result<ExitCode> {
    let EventsCmd::Tail(args) = cmd;
    let settings = Settings::load(global)?;
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        match args.server.clone() {
            Some(url) => tail_remote(&settings, &args, &url).await,
            None => tail_local(&settings, &args).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Counts printed lines against `--limit`.
struct Printer {
    left: Option<u64>,
    out: std::io::Stdout,
}

impl Printer {
    fn new(limit: Option<u64>) -> Self {
        Printer {
            left: limit,
            out: std::io::stdout(),
        }
    }

    fn done(&self) -> bool {
        self.left == Some(0)
    }

    /// Prints one line; flushes so `--follow` output is live in pipes.
    fn line(&mut self, json: &str) -> Result<()> {
        let mut out = self.out.lock();
        writeln!(out, "{json}")?;
        out.flush()?;
        if let Some(n) = self.left.as_mut() {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }
}

async fn tail_local(settings: &Settings, args: &TailArgs) -> Result<()> {
    if args.follow && settings.database_url.is_none() {
        // This process would own the embedded ledger, so nothing else could
        // append to it while we wait: following only works through the owner.
        bail!(
            "--follow on the embedded ledger needs the server that owns it: run `garrison serve` \
             and add --server http://{}",
            settings.listen
        );
    }
    let ledger = crate::local::open_ledger(settings).await?;
    let result = tail_ledger(ledger.clone(), args).await;
    ledger.close().await?;
    result
}

async fn tail_ledger(ledger: Arc<dyn Ledger>, args: &TailArgs) -> Result<()> {
    let mut printer = Printer::new(args.limit);
    if args.follow {
        let mut stream = Box::pin(tail::follow(ledger, args.after));
        loop {
            if printer.done() {
                return Ok(());
            }
            let next = tokio::select! {
                next = stream.next() => next,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            match next {
                Some(rec) => {
                    let rec = rec?;
                    if args.matches(&rec) {
                        printer.line(&serde_json::to_string(&rec)?)?;
                    }
                }
                None => return Ok(()),
            }
        }
    }
    let mut after = args.after;
    loop {
        let page = PAGE.min(printer.left.map_or(PAGE, |n| n.min(PAGE as u64) as i64));
        let q = Query {
            run_id: args.run_id.clone(),
            order_id: args.order_id.clone(),
            event_type: args.event_type,
            after_seq: Some(after),
            limit: Some(page),
            newest_first: false,
        };
        let records = ledger.read(&q).await?;
        let Some(last) = records.last() else {
            return Ok(());
        };
        after = last.seq;
        for rec in &records {
            printer.line(&serde_json::to_string(rec)?)?;
        }
        if printer.done() {
            return Ok(());
        }
    }
}

async fn tail_remote(settings: &Settings, args: &TailArgs, url: &str) -> Result<()> {
    let server = ServerUrl::parse(url)?;
    let token = settings.client_token()?;
    let token = token.as_deref();
    let mut printer = Printer::new(args.limit);
    let filters = args.filter_query();
    if args.follow {
        let path = format!("/api/events/stream?after={}{filters}", args.after);
        let mut stream = server
            .sse(&path, token)
            .await
            .with_context(|| format!("cannot follow events at {url}"))?;
        loop {
            if printer.done() {
                return Ok(());
            }
            let next = tokio::select! {
                next = stream.next_event() => next?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            match next {
                Some(ev) if ev.event.as_deref() == Some("error") => {
                    bail!("the server ended the stream: {}", ev.data)
                }
                Some(ev) => printer.line(&ev.data)?,
                None => bail!("the server closed the event stream"),
            }
        }
    }
    let mut after = args.after;
    loop {
        let page = PAGE.min(printer.left.map_or(PAGE, |n| n.min(PAGE as u64) as i64));
        let path = format!("/api/events?after={after}&limit={page}{filters}");
        let (status, body) = server
            .get_json(&path, token)
            .await
            .with_context(|| format!("cannot read events from {url}"))?;
        if status != 200 {
            bail!(
                "HTTP {status} from {url}: {}",
                error_message(body.to_string().as_bytes())
            );
        }
        let events = body["data"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if events.is_empty() {
            return Ok(());
        }
        for ev in &events {
            printer.line(&ev.to_string())?;
        }
        after = match body["data"]["next_after"].as_i64() {
            Some(n) if n > after => n,
            _ => bail!("the server's event page did not advance"),
        };
        if printer.done() {
            return Ok(());
        }
    }
}
