//! The vault against real git repositories in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use garrison_vault::{
    PrepareFiles, Promotion, Theater, VaultError, Worktree, changed_files, changes, commit_all,
    commits_since, dirty_files, head_sha, last_commit_unix, prepare,
};
use serde_json::json;
use tempfile::TempDir;

fn git_out(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@localhost"])
        .args(["-c", "commit.gpgSign=false"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git")
}

/// Runs git and returns trimmed stdout, failing the test on a non-zero exit.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_out(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn git_fails(dir: &Path, args: &[&str]) -> bool {
    !git_out(dir, args).status.success()
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, text).expect("write");
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("read")
}

struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    theater: Theater,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = TempDir::new().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical");
        let theater =
            Theater::open("demo", &root.join("repo"), &root.join("worktrees")).expect("open");
        Fixture {
            _tmp: tmp,
            root,
            theater,
        }
    }

    fn repo(&self) -> &Path {
        &self.theater.repo
    }

    /// Commits `files` on the mainline directly in the theater repo.
    fn commit_on_mainline(&self, files: &[(&str, &str)]) -> String {
        for (path, text) in files {
            write(&self.repo().join(path), text);
        }
        git(self.repo(), &["add", "-A"]);
        git(self.repo(), &["commit", "-q", "-m", "mainline change"]);
        git(self.repo(), &["rev-parse", "HEAD"])
    }

    /// Creates the order's worktree, writes `files` into it and commits them.
    fn order(&self, id: &str, files: &[(&str, &str)]) -> Worktree {
        let wt = self
            .theater
            .create_worktree(id, &Theater::branch_for(id))
            .expect("create worktree");
        for (path, text) in files {
            write(&wt.path.join(path), text);
        }
        assert!(
            commit_all(&wt.path, &format!("work of {id}"))
                .expect("commit")
                .is_some()
        );
        wt
    }

    fn main_sha(&self) -> String {
        git(self.repo(), &["rev-parse", "refs/heads/main"])
    }
}

fn record_files(id: &str, extra: (&str, &str)) -> Vec<(String, String)> {
    vec![
        ("order.json".into(), format!("{{\"order_id\":\"{id}\"}}\n")),
        (
            "aar.json".into(),
            format!("{{\"order_id\":\"{id}\",\"status\":\"completed\"}}\n"),
        ),
        ("outputs/x.txt".into(), format!("output of {id}\n")),
        (extra.0.into(), extra.1.into()),
    ]
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect()
}

#[test]
fn open_creates_a_repo_with_a_commit_and_is_idempotent() {
    let fx = Fixture::new();
    assert_eq!(fx.theater.theater_id, "demo");
    assert_eq!(fx.theater.mainline, "main");
    assert_eq!(fx.theater.repo, fx.root.join("repo"));
    assert!(fx.theater.worktrees.is_dir());
    assert_eq!(git(fx.repo(), &["rev-list", "--count", "main"]), "1");
    assert!(git(fx.repo(), &["show", "main:README.md"]).contains("demo"));
    assert_eq!(fx.theater.mainline_sha().expect("sha"), fx.main_sha());
    assert_eq!(git(fx.repo(), &["status", "--porcelain"]), "");

    let again =
        Theater::open("demo", &fx.root.join("repo"), &fx.root.join("worktrees")).expect("reopen");
    assert_eq!(again, fx.theater);
    assert_eq!(git(fx.repo(), &["rev-list", "--count", "main"]), "1");
}

#[test]
fn open_uses_the_branch_an_existing_repo_is_on() {
    let tmp = TempDir::new().expect("tempdir");
    let repo = tmp.path().join("user");
    fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "trunk"]);
    write(&repo.join("src.txt"), "hello\n");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let tip = git(&repo, &["rev-parse", "HEAD"]);

    let theater = Theater::open("user", &repo, &tmp.path().join("wt")).expect("open");
    assert_eq!(theater.mainline, "trunk");
    assert_eq!(theater.mainline_sha().expect("sha"), tip);
    // Nothing was added to an existing repository.
    assert_eq!(git(&repo, &["rev-list", "--count", "trunk"]), "1");

    let wt = theater.create_worktree("o1", "order_o1").expect("worktree");
    assert_eq!(wt.base_sha, tip);
    assert_eq!(read(&wt.path.join("src.txt")), "hello\n");
}

#[test]
fn open_gives_an_unborn_repo_an_empty_commit_and_keeps_its_index() {
    let tmp = TempDir::new().expect("tempdir");
    let repo = tmp.path().join("fresh");
    fs::create_dir(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "dev"]);
    write(&repo.join("staged.txt"), "staged\n");
    git(&repo, &["add", "staged.txt"]);

    let theater = Theater::open("fresh", &repo, &tmp.path().join("wt")).expect("open");
    assert_eq!(theater.mainline, "dev");
    assert_eq!(git(&repo, &["rev-list", "--count", "dev"]), "1");
    assert_eq!(git(&repo, &["ls-tree", "dev"]), "");
    assert_eq!(
        git(&repo, &["diff", "--cached", "--name-only"]),
        "staged.txt"
    );
}

#[test]
fn open_refuses_what_is_not_a_theater_repo() {
    let tmp = TempDir::new().expect("tempdir");
    let wt = tmp.path().join("wt");

    let plain = tmp.path().join("plain");
    write(&plain.join("notes.txt"), "not a repo\n");
    let err = Theater::open("t", &plain, &wt).expect_err("non-empty dir");
    assert_eq!(err.code(), "NOT_A_REPO", "{err}");
    assert!(!plain.join(".git").exists());

    let file = tmp.path().join("file.txt");
    write(&file, "x");
    let err = Theater::open("t", &file, &wt).expect_err("file");
    assert_eq!(err.code(), "NOT_A_REPO");

    // A non-empty subdirectory of a repository is not that repository.
    let parent = tmp.path().join("parent");
    fs::create_dir(&parent).expect("mkdir");
    git(&parent, &["init", "-q", "-b", "main"]);
    write(&parent.join("sub/a.txt"), "a\n");
    let err = Theater::open("t", &parent.join("sub"), &wt).expect_err("subdir");
    assert_eq!(err.code(), "NOT_A_REPO");

    // A detached HEAD has no mainline.
    let detached = tmp.path().join("detached");
    fs::create_dir(&detached).expect("mkdir");
    git(&detached, &["init", "-q", "-b", "main"]);
    git(&detached, &["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&detached, &["checkout", "-q", "--detach"]);
    let err = Theater::open("t", &detached, &wt).expect_err("detached");
    assert!(matches!(err, VaultError::NotARepo(_)), "{err}");
}

#[test]
fn create_worktree_is_idempotent() {
    let fx = Fixture::new();
    let first = fx
        .theater
        .create_worktree("o1", "order_o1")
        .expect("create");
    assert_eq!(first.path, fx.theater.worktree_path("o1"));
    assert_eq!(first.path, fx.root.join("worktrees/order_o1"));
    assert_eq!(first.branch, "order_o1");
    assert_eq!(first.base_sha, fx.main_sha());
    assert_eq!(
        git(&first.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/order_o1"
    );
    assert!(first.path.join("README.md").is_file());

    write(&first.path.join("draft.txt"), "work in progress\n");
    let second = fx.theater.create_worktree("o1", "order_o1").expect("again");
    assert_eq!(second, first);
    assert_eq!(read(&first.path.join("draft.txt")), "work in progress\n");
    assert_eq!(fx.theater.worktree("o1").expect("lookup"), first);

    let err = fx
        .theater
        .create_worktree("o1", "other")
        .expect_err("other branch");
    assert_eq!(err.code(), "INVALID_ID", "{err}");
    let err = fx
        .theater
        .create_worktree("o2", "main")
        .expect_err("mainline");
    assert_eq!(err.code(), "INVALID_ID", "{err}");
    assert_eq!(
        git(fx.repo(), &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        2
    );
}

#[test]
fn prepare_writes_the_operational_files() {
    let fx = Fixture::new();
    let wt = fx
        .theater
        .create_worktree("o1", "order_o1")
        .expect("create");
    let files = PrepareFiles {
        order_json: json!({"order_id": "o1", "objective": "Summarize"}),
        task_md: "# Task\n\nSummarize the input.\n".into(),
        state_json: json!({"status": "QUEUED"}),
        assignment: Some(json!({"task_id": "o1"})),
    };
    prepare(&wt.path, &files).expect("prepare");

    let order = read(&wt.path.join("order.json"));
    assert!(
        order.ends_with("}\n") && order.contains("\n  \"order_id\""),
        "{order}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&order).expect("json");
    assert_eq!(parsed, files.order_json);
    assert_eq!(read(&wt.path.join("task.md")), files.task_md);
    let state: serde_json::Value =
        serde_json::from_str(&read(&wt.path.join("state.json"))).expect("json");
    assert_eq!(state, files.state_json);
    let assignment: serde_json::Value =
        serde_json::from_str(&read(&wt.path.join("assignment.json"))).expect("json");
    assert_eq!(assignment, json!({"task_id": "o1"}));
    // No temporary files are left behind.
    let names: Vec<String> = fs::read_dir(&wt.path)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    let err = prepare(&fx.root.join("missing"), &files).expect_err("missing dir");
    assert_eq!(err.code(), "IO_ERROR");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn commit_all_commits_changes_and_returns_none_when_clean() {
    let fx = Fixture::new();
    let wt = fx
        .theater
        .create_worktree("o1", "order_o1")
        .expect("create");
    assert_eq!(commit_all(&wt.path, "nothing").expect("commit"), None);
    assert!(dirty_files(&wt.path).expect("status").is_empty());
    assert_eq!(commits_since(&wt.path, &wt.base_sha).expect("count"), 0);

    write(&wt.path.join("outputs/result.txt"), "done\n");
    write(&wt.path.join("README.md"), "changed\n");
    let mut dirty = dirty_files(&wt.path).expect("status");
    dirty.sort();
    assert_eq!(dirty, ["README.md", "outputs/result.txt"]);

    let sha = commit_all(&wt.path, "-m looks like an option").expect("commit");
    let sha = sha.expect("a commit");
    assert_eq!(sha, head_sha(&wt.path).expect("head"));
    assert_eq!(
        git(&wt.path, &["log", "-1", "--format=%s%n%an"]),
        "-m looks like an option\nGarrison"
    );
    assert_eq!(git(&wt.path, &["show", "HEAD:outputs/result.txt"]), "done");
    assert!(dirty_files(&wt.path).expect("status").is_empty());
    assert_eq!(commit_all(&wt.path, "again").expect("commit"), None);
    assert_eq!(commits_since(&wt.path, &wt.base_sha).expect("count"), 1);
    assert_eq!(commits_since(&wt.path, "main").expect("count"), 1);

    let committed = last_commit_unix(&wt.path).expect("time");
    let expected: i64 = git(&wt.path, &["log", "-1", "--format=%ct"])
        .parse()
        .expect("int");
    assert_eq!(committed, expected);

    // The theater's mainline is untouched by order commits.
    assert_eq!(fx.main_sha(), wt.base_sha);
}

#[test]
fn worktree_functions_refuse_paths_that_are_not_a_checkout_root() {
    let fx = Fixture::new();
    let wt = fx
        .theater
        .create_worktree("o1", "order_o1")
        .expect("create");
    let inside = wt.path.join("sub");
    fs::create_dir(&inside).expect("mkdir");
    write(&inside.join("f.txt"), "x\n");
    let err = commit_all(&inside, "wrong place").expect_err("subdir");
    assert_eq!(err.code(), "NOT_A_REPO", "{err}");
    assert_eq!(git(&wt.path, &["rev-list", "--count", "HEAD"]), "1");
    let plain = fx.root.join("plain");
    fs::create_dir(&plain).expect("mkdir");
    assert_eq!(dirty_files(&plain).expect_err("plain").code(), "NOT_A_REPO");
    assert_eq!(
        commits_since(&wt.path, "--all").expect_err("option").code(),
        "INVALID_ID"
    );
}

#[test]
fn promote_files_each_orders_records_apart() {
    let fx = Fixture::new();
    let a = record_files("a1", ("a.txt", "from a\n"));
    let b = record_files("b2", ("docs/b.txt", "from b\n"));
    fx.order("a1", &as_refs(&a));
    fx.order("b2", &as_refs(&b));

    let first = fx
        .theater
        .promote("a1", "Integrate order a1")
        .expect("promote a1");
    let Promotion::Merged { commit_sha, files } = first else {
        panic!("expected a merge, got {first:?}");
    };
    assert_eq!(commit_sha, fx.main_sha());
    let mut files = files;
    files.sort();
    assert_eq!(
        files,
        [
            ".garrison/orders/a1/aar.json",
            ".garrison/orders/a1/order.json",
            ".garrison/orders/a1/outputs/x.txt",
            "a.txt",
        ]
    );

    let second = fx
        .theater
        .promote("b2", "Integrate order b2")
        .expect("promote b2");
    assert!(matches!(second, Promotion::Merged { .. }), "{second:?}");

    let repo = fx.repo();
    assert_eq!(
        git(repo, &["show", "main:.garrison/orders/a1/aar.json"]),
        "{\"order_id\":\"a1\",\"status\":\"completed\"}"
    );
    assert_eq!(
        git(repo, &["show", "main:.garrison/orders/b2/aar.json"]),
        "{\"order_id\":\"b2\",\"status\":\"completed\"}"
    );
    assert_eq!(
        git(repo, &["show", "main:.garrison/orders/b2/outputs/x.txt"]),
        "output of b2"
    );
    assert_eq!(
        git(repo, &["show", "main:.garrison/orders/a1/order.json"]),
        "{\"order_id\":\"a1\"}"
    );
    assert_eq!(git(repo, &["show", "main:a.txt"]), "from a");
    assert_eq!(git(repo, &["show", "main:docs/b.txt"]), "from b");
    for root in ["order.json", "aar.json", "outputs/x.txt"] {
        assert!(
            git_fails(repo, &["cat-file", "-e", &format!("main:{root}")]),
            "{root} at root"
        );
    }
    // The mainline tip is a merge of the previous tip and the order's records.
    assert_eq!(
        git(repo, &["log", "-1", "--format=%s", "main"]),
        "Integrate order b2"
    );
    assert_eq!(
        git(repo, &["rev-list", "--parents", "-n1", "main"])
            .split(' ')
            .count(),
        3
    );
    // The order branches themselves are untouched.
    assert_eq!(
        git(repo, &["show", "order_a1:aar.json"]),
        "{\"order_id\":\"a1\",\"status\":\"completed\"}"
    );
}

#[test]
fn promote_fast_forwards_the_checked_out_mainline() {
    let fx = Fixture::new();
    fx.order("o1", &[("feature.txt", "new feature\n")]);
    let Promotion::Merged { commit_sha, .. } =
        fx.theater.promote("o1", "Integrate o1").expect("promote")
    else {
        panic!("expected a merge");
    };
    assert_eq!(read(&fx.repo().join("feature.txt")), "new feature\n");
    assert_eq!(git(fx.repo(), &["rev-parse", "HEAD"]), commit_sha);
    assert_eq!(git(fx.repo(), &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(git(fx.repo(), &["status", "--porcelain"]), "");
}

#[test]
fn promote_moves_the_ref_when_the_mainline_is_not_checked_out() {
    let fx = Fixture::new();
    git(fx.repo(), &["checkout", "-q", "-b", "elsewhere"]);
    fx.order("o1", &[("feature.txt", "new feature\n")]);
    let result = fx.theater.promote("o1", "Integrate o1").expect("promote");
    let Promotion::Merged { commit_sha, files } = result else {
        panic!("expected a merge");
    };
    assert_eq!(fx.main_sha(), commit_sha);
    assert_eq!(files, ["feature.txt"]);
    assert_eq!(git(fx.repo(), &["show", "main:feature.txt"]), "new feature");
    // The checkout on the other branch is left alone.
    assert!(!fx.repo().join("feature.txt").exists());
    assert_eq!(
        git(fx.repo(), &["symbolic-ref", "HEAD"]),
        "refs/heads/elsewhere"
    );
}

#[test]
fn promote_reports_a_conflict_and_changes_nothing() {
    let fx = Fixture::new();
    fx.commit_on_mainline(&[("shared.txt", "line one\nline two\n")]);
    fx.order("a1", &[("shared.txt", "line one by a\nline two\n")]);
    fx.order("b2", &[("shared.txt", "line one by b\nline two\n")]);

    let first = fx
        .theater
        .promote("a1", "Integrate a1")
        .expect("promote a1");
    assert!(matches!(first, Promotion::Merged { .. }), "{first:?}");
    let before = fx.main_sha();
    let objects_before = git(fx.repo(), &["for-each-ref"]);

    let second = fx
        .theater
        .promote("b2", "Integrate b2")
        .expect("promote b2");
    assert_eq!(
        second,
        Promotion::Conflict {
            paths: vec!["shared.txt".into()]
        }
    );
    assert_eq!(fx.main_sha(), before);
    assert_eq!(git(fx.repo(), &["for-each-ref"]), objects_before);
    assert_eq!(git(fx.repo(), &["status", "--porcelain"]), "");
    assert_eq!(
        read(&fx.repo().join("shared.txt")),
        "line one by a\nline two\n"
    );
    assert!(!fx.repo().join(".git/MERGE_HEAD").exists());
    let wt = fx.theater.worktree("b2").expect("worktree");
    assert!(dirty_files(&wt.path).expect("status").is_empty());
}

#[test]
fn promote_refuses_when_local_changes_block_the_fast_forward() {
    let fx = Fixture::new();
    fx.commit_on_mainline(&[("a.txt", "original\n")]);
    fx.order("o1", &[("a.txt", "changed by the order\n")]);
    write(&fx.repo().join("a.txt"), "edited by the user\n");
    let before = fx.main_sha();

    let err = fx.theater.promote("o1", "Integrate o1").expect_err("busy");
    assert!(matches!(err, VaultError::MainlineBusy(_)), "{err}");
    assert_eq!(err.code(), "MAINLINE_BUSY");
    assert_eq!(fx.main_sha(), before);
    assert_eq!(read(&fx.repo().join("a.txt")), "edited by the user\n");

    // Once the user's change is out of the way the same promotion goes through.
    git(fx.repo(), &["checkout", "--", "a.txt"]);
    let result = fx.theater.promote("o1", "Integrate o1").expect("promote");
    assert!(matches!(result, Promotion::Merged { .. }), "{result:?}");
    assert_eq!(read(&fx.repo().join("a.txt")), "changed by the order\n");
}

#[test]
fn promote_twice_leaves_the_mainline_as_it_is() {
    let fx = Fixture::new();
    fx.order("o1", &as_refs(&record_files("o1", ("a.txt", "a\n"))));
    let first = fx.theater.promote("o1", "Integrate o1").expect("promote");
    let tip = fx.main_sha();
    assert!(matches!(first, Promotion::Merged { .. }));
    let again = fx.theater.promote("o1", "Integrate o1").expect("again");
    assert_eq!(
        again,
        Promotion::Merged {
            commit_sha: tip.clone(),
            files: vec![]
        }
    );
    assert_eq!(fx.main_sha(), tip);
}

#[test]
fn promote_leaves_the_repositorys_own_record_named_files_in_place() {
    let fx = Fixture::new();
    fx.commit_on_mainline(&[
        ("outputs/keep.txt", "user data\n"),
        ("task.md", "user task\n"),
    ]);
    fx.order(
        "o1",
        &[
            ("outputs/new.txt", "order output\n"),
            ("task.md", "order task\n"),
        ],
    );
    let result = fx.theater.promote("o1", "Integrate o1").expect("promote");
    assert!(matches!(result, Promotion::Merged { .. }), "{result:?}");
    let repo = fx.repo();
    assert_eq!(git(repo, &["show", "main:outputs/keep.txt"]), "user data");
    assert_eq!(git(repo, &["show", "main:task.md"]), "user task");
    assert_eq!(
        git(repo, &["show", "main:.garrison/orders/o1/task.md"]),
        "order task"
    );
    assert_eq!(
        git(repo, &["show", "main:.garrison/orders/o1/outputs/new.txt"]),
        "order output"
    );
    assert!(git_fails(
        repo,
        &[
            "cat-file",
            "-e",
            "main:.garrison/orders/o1/outputs/keep.txt"
        ]
    ));
    assert!(git_fails(repo, &["cat-file", "-e", "main:outputs/new.txt"]));
}

#[test]
fn remove_worktree_refuses_a_dirty_worktree_unless_forced() {
    let fx = Fixture::new();
    let wt = fx.order("o1", &[("done.txt", "committed\n")]);
    write(&wt.path.join("scratch.txt"), "uncommitted\n");

    let err = fx.theater.remove_worktree("o1", false).expect_err("dirty");
    match &err {
        VaultError::Dirty { path, files } => {
            assert_eq!(path, &wt.path);
            assert_eq!(files, &["scratch.txt"]);
        }
        other => panic!("expected Dirty, got {other}"),
    }
    assert_eq!(err.code(), "WORKTREE_DIRTY");
    assert!(wt.path.join("scratch.txt").exists());

    fx.theater.remove_worktree("o1", true).expect("forced");
    assert!(!wt.path.exists());
    assert_eq!(
        fx.theater.worktree("o1").expect_err("gone").code(),
        "NOT_FOUND"
    );
    assert!(!git(fx.repo(), &["worktree", "list"]).contains("order_o1"));
    // The branch and its history stay.
    assert_eq!(git(fx.repo(), &["show", "order_o1:done.txt"]), "committed");
    assert_eq!(
        fx.theater
            .remove_worktree("o1", false)
            .expect_err("again")
            .code(),
        "NOT_FOUND"
    );

    // A clean worktree goes without force.
    let clean = fx
        .theater
        .create_worktree("o2", "order_o2")
        .expect("create");
    fx.theater
        .remove_worktree("o2", false)
        .expect("clean removal");
    assert!(!clean.path.exists());
}

#[test]
fn archive_tags_the_tip_and_removes_the_worktree() {
    let fx = Fixture::new();
    let wt = fx.order("o1", &[("result.json", "{}\n")]);
    let tip = head_sha(&wt.path).expect("head");

    write(&wt.path.join("late.txt"), "not committed\n");
    let err = fx.theater.archive("o1").expect_err("dirty");
    assert_eq!(err.code(), "WORKTREE_DIRTY");
    assert!(git_fails(
        fx.repo(),
        &["rev-parse", "-q", "--verify", "refs/tags/archive/order_o1"]
    ));
    fs::remove_file(wt.path.join("late.txt")).expect("rm");

    let archived = fx.theater.archive("o1").expect("archive");
    assert_eq!(archived.tag, "archive/order_o1");
    assert_eq!(archived.commit_sha, tip);
    assert_eq!(
        git(fx.repo(), &["rev-parse", "refs/tags/archive/order_o1"]),
        tip
    );
    assert!(!wt.path.exists());
    assert_eq!(
        fx.theater.worktree("o1").expect_err("gone").code(),
        "NOT_FOUND"
    );
    assert_eq!(fx.theater.archive("o1").expect("repeat"), archived);
    assert_eq!(
        fx.theater.archive("o9").expect_err("unknown").code(),
        "NOT_FOUND"
    );
}

#[test]
fn recreate_worktree_starts_over_from_the_mainline() {
    let fx = Fixture::new();
    let old = fx.order("o1", &[("half.txt", "half done\n")]);
    write(&old.path.join("scratch.txt"), "uncommitted\n");
    let new_main = fx.commit_on_mainline(&[("later.txt", "later\n")]);
    assert_ne!(new_main, old.base_sha);

    let wt = fx
        .theater
        .recreate_worktree("o1", "order_o1")
        .expect("recreate");
    assert_eq!(wt.path, old.path);
    assert_eq!(wt.branch, "order_o1");
    assert_eq!(wt.base_sha, new_main);
    assert_eq!(git(fx.repo(), &["rev-parse", "order_o1"]), new_main);
    assert!(!wt.path.join("half.txt").exists());
    assert!(!wt.path.join("scratch.txt").exists());
    assert!(wt.path.join("later.txt").exists());
    assert!(dirty_files(&wt.path).expect("status").is_empty());
    assert_eq!(fx.theater.worktree("o1").expect("lookup"), wt);

    // Without a previous worktree it simply creates one.
    let fresh = fx
        .theater
        .recreate_worktree("o2", "order_o2")
        .expect("fresh");
    assert_eq!(fresh.base_sha, new_main);
    let err = fx
        .theater
        .recreate_worktree("o3", "main")
        .expect_err("mainline");
    assert_eq!(err.code(), "INVALID_ID");
    assert_eq!(fx.main_sha(), new_main);
}

#[test]
fn bootstrap_copies_untracked_files_and_runs_setup() {
    let fx = Fixture::new();
    write(&fx.repo().join(".env"), "API_KEY=secret\n");
    write(&fx.repo().join("config/local.toml"), "debug = true\n");
    let wt = fx
        .theater
        .create_worktree("o1", "order_o1")
        .expect("create");

    let copy = vec![
        ".env".to_owned(),
        "config/local.toml".to_owned(),
        "absent.txt".to_owned(),
    ];
    let setup = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "cat .env > setup.out".to_owned(),
    ];
    let missing = fx
        .theater
        .bootstrap(&wt, &copy, Some(&setup))
        .expect("bootstrap");
    assert_eq!(missing, ["absent.txt"]);
    assert_eq!(read(&wt.path.join(".env")), "API_KEY=secret\n");
    assert_eq!(read(&wt.path.join("config/local.toml")), "debug = true\n");
    assert_eq!(read(&wt.path.join("setup.out")), "API_KEY=secret\n");

    // Copies are neither reported dirty nor committed.
    assert_eq!(dirty_files(&wt.path).expect("status"), ["setup.out"]);
    commit_all(&wt.path, "work").expect("commit");
    assert!(git_fails(&wt.path, &["cat-file", "-e", "HEAD:.env"]));
    assert!(git_fails(
        &wt.path,
        &["cat-file", "-e", "HEAD:config/local.toml"]
    ));
    assert_eq!(git(&wt.path, &["show", "HEAD:setup.out"]), "API_KEY=secret");

    let failing = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "echo boom-output; exit 3".to_owned(),
    ];
    let err = fx
        .theater
        .bootstrap(&wt, &[], Some(&failing))
        .expect_err("setup fails");
    assert!(err.to_string().contains("boom-output"), "{err}");

    for bad in ["../outside", "/etc/passwd", ".git/config"] {
        let err = fx
            .theater
            .bootstrap(&wt, &[bad.to_owned()], None)
            .expect_err(bad);
        assert_eq!(err.code(), "INVALID_ID", "{bad}: {err}");
    }
    let err = fx
        .theater
        .bootstrap(&wt, &["README.md".to_owned()], None)
        .expect_err("tracked");
    assert_eq!(err.code(), "INVALID_ID", "{err}");

    // The copies do not stop a normal removal, and the originals stay.
    fx.theater.remove_worktree("o1", false).expect("remove");
    assert!(!wt.path.exists());
    assert_eq!(read(&fx.repo().join(".env")), "API_KEY=secret\n");
}

#[test]
fn invalid_ids_are_rejected_before_touching_anything() {
    let fx = Fixture::new();
    let bad_ids = [
        "", "../x", "a/b", "-rf", ".hidden", "a b", "a..b", "x.lock", "é",
    ];
    for id in bad_ids {
        let code = |r: Result<(), VaultError>| r.expect_err(id).code();
        assert_eq!(
            code(fx.theater.create_worktree(id, "order_x").map(drop)),
            "INVALID_ID",
            "{id:?}"
        );
        assert_eq!(
            code(fx.theater.recreate_worktree(id, "order_x").map(drop)),
            "INVALID_ID"
        );
        assert_eq!(code(fx.theater.worktree(id).map(drop)), "INVALID_ID");
        assert_eq!(code(fx.theater.remove_worktree(id, true)), "INVALID_ID");
        assert_eq!(code(fx.theater.archive(id).map(drop)), "INVALID_ID");
        assert_eq!(code(fx.theater.promote(id, "m").map(drop)), "INVALID_ID");
        let other = fx.root.join("other");
        assert_eq!(
            code(Theater::open(id, &other, &fx.root.join("w")).map(drop)),
            "INVALID_ID"
        );
        assert!(!other.exists());
    }
    for branch in ["", "-b", "a b", "a..b", "../x", "a/", "HEAD^"] {
        let err = fx.theater.create_worktree("o1", branch).expect_err(branch);
        assert_eq!(err.code(), "INVALID_ID", "{branch:?}");
    }
    assert!(
        fs::read_dir(&fx.theater.worktrees)
            .expect("ls")
            .next()
            .is_none()
    );
    assert_eq!(git(fx.repo(), &["branch", "--list"]), "* main");
}

#[test]
fn changed_files_covers_committed_uncommitted_and_untracked_work() {
    let fx = Fixture::new();
    fx.commit_on_mainline(&[
        ("keep.txt", "keep\n"),
        ("gone.txt", "gone\n"),
        ("edit.txt", "v1\n"),
    ]);
    let wt = fx
        .theater
        .create_worktree("o1", "order_o1")
        .expect("create");
    write(&fx.repo().join(".env"), "SECRET=1\n");
    fx.theater
        .bootstrap(&wt, &[".env".to_owned()], None)
        .expect("bootstrap");
    assert!(
        changed_files(&wt.path, &wt.base_sha)
            .expect("diff")
            .is_empty()
    );

    write(&wt.path.join("committed.txt"), "c\n");
    fs::remove_file(wt.path.join("gone.txt")).expect("rm");
    commit_all(&wt.path, "first").expect("commit");
    write(&wt.path.join("edit.txt"), "v2\n");
    write(&wt.path.join("new/untracked.txt"), "u\n");
    let changed = changed_files(&wt.path, &wt.base_sha).expect("diff");
    assert_eq!(
        changed,
        ["committed.txt", "edit.txt", "gone.txt", "new/untracked.txt"]
    );
    assert_eq!(
        changed_files(&wt.path, "").expect_err("empty").code(),
        "INVALID_ID"
    );
    // Each path with how it changed; a tracked move is one rename.
    std::process::Command::new("git")
        .args(["mv", "keep.txt", "kept.txt"])
        .current_dir(&wt.path)
        .status()
        .expect("git mv");
    let kinds: Vec<(String, &str)> = changes(&wt.path, &wt.base_sha)
        .expect("changes")
        .iter()
        .map(|c| (c.path().to_owned(), c.action()))
        .collect();
    let want = [
        ("committed.txt", "added"),
        ("edit.txt", "modified"),
        ("gone.txt", "deleted"),
        ("kept.txt", "renamed"),
        ("new/untracked.txt", "added"),
    ];
    assert_eq!(kinds, want.map(|(p, a)| (p.to_owned(), a)).to_vec());
    assert!(
        changed_files(&wt.path, &wt.base_sha)
            .expect("diff")
            .contains(&"keep.txt".to_owned()),
        "both sides of a rename are changed paths"
    );
}
