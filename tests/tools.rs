//! Says in plain `cargo test` output which outside tools are missing here, so the tests that need
//! them cannot pass silently; fails when `CONVOSYNC_REQUIRE_TOOLS` is set (as `.ci/run` does).

#[path = "common/tools.rs"]
#[allow(dead_code)]
mod tools;

fn main() {
    let missing = tools::missing();
    if missing.is_empty() {
        println!(
            "tools: every tool the tests use is here (Claude Code, Codex and Gemini CLI harnesses, sshd, python3, chromium)"
        );
        return;
    }
    println!("skipped: tests needing {} (not found here)", missing.join(", "));
    if tools::required() {
        eprintln!("{} is set: these tools must be installed", tools::REQUIRE);
        std::process::exit(1);
    }
}
