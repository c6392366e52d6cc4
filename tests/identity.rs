//! Who is "me": one person on two machines with two git emails, aliases, and real teammates,
//! seen alike by the SessionStart hook and every command.

use crate::common::{err, out, Device, TestEnv};
use crate::core::write_draft;
use crate::hooks::{context, start};

fn identity(d: &Device, name: &str, email: &str) {
    d.git(&["config", "user.name", name]);
    d.git(&["config", "user.email", email]);
}

fn saved(d: &Device, body: &str) {
    write_draft(d, body);
    d.convosync().arg("save-handoff").assert().success();
}

fn stdout(d: &Device, args: &[&str]) -> String {
    let out = d.convosync().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PIZZA: &str = "### Current Task\nThe pizza menu\n\n### Important Context\n- The user's favourite pizza is Quattro Formaggi\n";

#[test]
fn same_name_on_two_machines_is_one_person_everywhere() {
    let env = TestEnv::new();
    let work = env.device("work");
    let home = env.device("home");
    let grace = env.device("grace");
    identity(&work, "Ada Lovelace", "ada@work.example");
    identity(&home, " ada   LOVELACE", "ada@home.example");
    identity(&grace, "Grace Hopper", "grace@navy.example");
    saved(&work, PIZZA);
    let recorded = work.git(&["show", "refs/convosync/handoffs:devices/work.md"]);
    assert!(
        recorded.contains("**Author:** Ada Lovelace <ada@work.example>"),
        "{recorded}"
    );

    // The home machine: the work machine's note in full, as the user's own.
    let v = start(&home, "s1").expect("context");
    let ctx = context(&v);
    assert!(
        ctx.contains("## From work") && ctx.contains("Quattro Formaggi"),
        "{ctx}"
    );
    assert!(!ctx.contains("# Teammates"), "{ctx}");
    let msg = v["systemMessage"].as_str().unwrap();
    assert!(msg.contains("resumed from work"), "{msg}");

    // Every command agrees.
    let resume = stdout(&home, &["resume", "--offline"]);
    assert!(
        resume.contains("## From work") && resume.contains("Quattro Formaggi"),
        "{resume}"
    );
    assert!(!resume.contains("Teammates"), "{resume}");
    let devices = stdout(&home, &["devices"]);
    assert!(
        devices.contains("work") && !devices.contains("teammate"),
        "{devices}"
    );
    let status = stdout(&home, &["status"]);
    assert!(
        status.contains("you:       ada LOVELACE <ada@home.example>"),
        "{status}"
    );
    assert!(status.contains("git config --add convosync.me"), "{status}");

    // A real teammate: only teammates' notes, and the message says so.
    grace.git(&["fetch", "-q", "origin", "+refs/convosync/*:refs/convosync/*"]);
    let v = start(&grace, "s2").expect("teammates block");
    let ctx = context(&v);
    assert!(
        !ctx.contains("Quattro Formaggi"),
        "a teammate sees one line: {ctx}"
    );
    assert!(ctx.contains("- Ada Lovelace (work, "), "{ctx}");
    let msg = v["systemMessage"].as_str().unwrap();
    assert!(
        msg.starts_with("convosync: teammates' notes loaded: Ada Lovelace (work)")
            && !msg.contains("resumed"),
        "{msg}"
    );
    let devices = stdout(&grace, &["devices"]);
    assert!(devices.contains("teammate: Ada Lovelace"), "{devices}");
    let resume = stdout(&grace, &["resume", "--offline"]);
    assert!(
        resume.contains("No handoffs from your other devices yet"),
        "{resume}"
    );
    assert!(
        resume.contains("- Ada Lovelace (work, ") && !resume.contains("Quattro"),
        "{resume}"
    );

    // An alias makes the teammate's note hers after all.
    grace.git(&["config", "--add", "convosync.me", "ada@work.example"]);
    let v = start(&grace, "s3").expect("context");
    assert!(context(&v).contains("Quattro Formaggi"));
    assert!(stdout(&grace, &["status"]).contains("also you: ada@work.example (git config convosync.me)"));
}

#[test]
fn one_persons_machines_share_a_device_name_without_renaming() {
    let env = TestEnv::new();
    let a = env.device("laptop");
    let b_clone = env.device("b-clone");
    let b = Device {
        name: "laptop".into(),
        dir: b_clone.dir.clone(),
        home: b_clone.home.clone(),
    };
    identity(&a, "Ada Lovelace", "ada@work.example");
    identity(&b, "ada lovelace", "ada@home.example");
    saved(&a, "### Current Task\nfirst\n");
    saved(&b, "### Current Task\nsecond\n");
    let files = b.git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
    assert_eq!(files, "devices/laptop.md", "not renamed to laptop-ada");
    // A teammate with the same device name still gets a file of their own.
    let c_clone = env.device("c-clone");
    let c = Device {
        name: "laptop".into(),
        dir: c_clone.dir.clone(),
        home: c_clone.home.clone(),
    };
    identity(&c, "Grace Hopper", "grace@navy.example");
    saved(&c, "### Current Task\nthird\n");
    let files = c.git(&["ls-tree", "-r", "--name-only", "refs/convosync/handoffs"]);
    assert_eq!(files, "devices/laptop-grace.md\ndevices/laptop.md");
}

#[test]
fn email_only_authors_of_older_handoffs_still_match() {
    let env = TestEnv::new();
    let a = env.device("a");
    let b = env.device("b");
    a.git(&["config", "user.email", "ada@work.example"]);
    saved(&a, PIZZA);
    assert!(a
        .git(&["show", "refs/convosync/handoffs:devices/a.md"])
        .contains("**Author:** ada@work.example\n"));
    identity(&b, "Ada Lovelace", "ADA@work.example");
    assert!(context(&start(&b, "s").unwrap()).contains("Quattro Formaggi"));
    identity(&b, "Ada Lovelace", "ada@home.example");
    let v = start(&b, "s2").unwrap();
    assert!(
        !context(&v).contains("Quattro"),
        "another email and no name: a teammate"
    );
    b.git(&["config", "--add", "convosync.me", "ada@work.example"]);
    assert!(context(&start(&b, "s3").unwrap()).contains("Quattro Formaggi"));
}

#[test]
fn device_names_follow_one_rule_from_set_and_from_the_environment() {
    let env = TestEnv::new();
    let a = env.device("a");
    let o = a
        .convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .args(["device", "set", "Laptop"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("device name set to laptop"), "{}", out(&o));
    assert!(
        err(&o).contains("\"Laptop\" is used as \"laptop\""),
        "{}",
        err(&o)
    );
    let o = a
        .convosync()
        .env("CONVOSYNC_DEVICE", "my laptop")
        .args(["device", "show"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "my-laptop");
    assert_eq!(
        err(&o).matches("\"my laptop\" is used as \"my-laptop\"").count(),
        1,
        "{}",
        err(&o)
    );
    // Nothing usable: both refuse.
    let set = a
        .convosync()
        .env_remove("CONVOSYNC_DEVICE")
        .args(["device", "set", "!!!"])
        .output()
        .unwrap();
    let envd = a
        .convosync()
        .env("CONVOSYNC_DEVICE", "!!!")
        .args(["device", "show"])
        .output()
        .unwrap();
    assert!(!set.status.success() && !envd.status.success());
}
