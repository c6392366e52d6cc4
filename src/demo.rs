//! `convosync demo`: a complete two-device round trip on throwaway repositories.
//!
//! It builds a bare "remote" and two clones, "desktop" and "laptop", then runs this very binary
//! in each the way a user (or Claude Code's hooks) would: the desktop writes a handoff that
//! mentions the user's favourite pizza, it is committed to the handoff ref and pushed, and the
//! laptop's next session receives it. Git runs with no global or system config so the user's own
//! settings (signing, hooks) cannot interfere, and nothing outside the temp dir is touched. With
//! `-C DIR` the temp dir is made inside DIR.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const DRAFT: &str = "### Current Task
Implementing OAuth 2.0 login with refresh-token support

### Progress So Far
- ✅ Login, logout and callback routes in src/auth.ts
- ⏳ Refresh-token storage

### Key Decisions Made
- JWT access tokens with a 7-day expiry
- Refresh tokens in Redis for fast lookup

### Important Context
- The user's favourite pizza is Margherita (they mentioned it while we worked)
- TypeScript + Express; tests come after the core flow

### Next Steps
1. Finish the token refresh endpoint
2. Handle OAuth provider errors

### Files Modified
- src/auth.ts: OAuth routes
";

struct Demo {
    root: PathBuf,
    exe: PathBuf,
}

/// Run the demo in a new temp dir: inside `parent` when given (`convosync -C DIR demo`, which
/// must exist, as with git), else in the system's temp dir.
pub fn run(parent: Option<&Path>, keep: bool) -> Result<ExitCode> {
    let parent = match parent {
        Some(p) if !p.is_dir() => bail!("cannot run the demo in {}: not a directory", p.display()),
        Some(p) => std::path::absolute(p)?,
        None => std::env::temp_dir(),
    };
    let tmp = tempfile::Builder::new()
        .prefix("convosync-demo-")
        .tempdir_in(&parent)
        .with_context(|| format!("could not create a temp dir in {}", parent.display()))?;
    let demo = Demo {
        root: tmp.path().to_path_buf(),
        exe: std::env::current_exe().context("could not find the convosync binary")?,
    };
    demo.play()?;
    if keep {
        let kept = tmp.keep();
        println!("\nKept the demo repositories in {}", kept.display());
    } else {
        println!("\nRemoved the demo repositories (use --keep to look around).");
    }
    Ok(ExitCode::SUCCESS)
}

impl Demo {
    fn play(&self) -> Result<()> {
        let desktop = self.root.join("desktop");
        let laptop = self.root.join("laptop");
        self.clones(&desktop, &laptop)?;
        self.desktop_hands_off(&desktop)?;
        self.laptop_receives(&laptop)
    }

    /// Step 1: the bare remote with one commit, cloned as `desktop` and `laptop`.
    fn clones(&self, desktop: &Path, laptop: &Path) -> Result<()> {
        let remote = self.root.join("remote.git");
        println!("\n1. A shared remote and two clones of it, one per device");
        self.git(&self.root, &["init", "-q", "--bare", "-b", "main", "remote.git"])?;
        let url = format!("file://{}", remote.display());
        self.git(&self.root, &["clone", "-q", &url, "desktop"])?;
        std::fs::write(desktop.join("README.md"), "# demo project\n")?;
        self.git(desktop, &["add", "README.md"])?;
        self.git(desktop, &["commit", "-q", "-m", "initial commit"])?;
        self.git(desktop, &["push", "-q", "origin", "HEAD:main"])?;
        self.git(&self.root, &["clone", "-q", &url, "laptop"])?;
        println!(
            "   remote:  {}\n   desktop: {}\n   laptop:  {}",
            remote.display(),
            desktop.display(),
            laptop.display()
        );
        Ok(())
    }

    /// Steps 2 to 4: the desktop's session writes a handoff, which is committed and pushed.
    fn desktop_hands_off(&self, desktop: &Path) -> Result<()> {
        println!("\n2. Desktop: Claude asks where and how to write the handoff");
        let out = self.convosync(desktop, "desktop", &["generate-handoff"], "")?;
        println!(
            "{}",
            indent(out.lines().take(4).collect::<Vec<_>>().join("\n").as_str())
        );
        println!("   …");

        println!("\n3. Desktop: Claude writes the draft (it mentions the user's favourite pizza)");
        let draft = desktop.join(crate::repo::DRAFT_PATH);
        crate::fsutil::atomic_write(&draft, DRAFT.as_bytes())?;
        println!("   wrote {}", draft.display());

        println!("\n4. Desktop: the draft becomes a handoff on its own ref and is pushed");
        let out = self.convosync(
            desktop,
            "desktop",
            &["save-handoff", "--session", "demo-session-1"],
            "",
        )?;
        println!("{}", indent(&out));
        let status = self.git(desktop, &["status", "--porcelain"])?;
        if !status.is_empty() {
            bail!("the demo left changes in the desktop worktree:\n{status}");
        }
        println!("   desktop's branch and worktree untouched: `git status` is clean");
        Ok(())
    }

    /// Steps 5 and 6: the laptop's next session receives the handoff.
    fn laptop_receives(&self, laptop: &Path) -> Result<()> {
        // Run the laptop's hook for `event` (`name` in the input, with one field of its own).
        let hook = |event: &str, name: &str, (key, value): (&str, &str)| {
            let mut input = serde_json::json!({
                "session_id": "demo-session-2", "cwd": laptop, "hook_event_name": name,
            });
            input[key] = value.into();
            self.convosync(laptop, "laptop", &["hook", event], &input.to_string())
        };
        println!("\n5. Laptop: a Claude Code session opens; the SessionStart hook runs");
        // The session opens at once from the laptop's local copy (it has no note yet) while the
        // hook fetches in the background; what arrives reaches Claude with the first prompt.
        let out = hook("session-start", "SessionStart", ("source", "startup"))?;
        if out.is_empty() {
            println!(
                "   nothing local yet: the session opens at once, the note is fetched in the background"
            );
        } else {
            println!("   the hook answered from the local copy: {out}");
        }
        println!("\n6. Laptop: the user types the first prompt; the UserPromptSubmit hook runs");
        let out = hook(
            "user-prompt-submit",
            "UserPromptSubmit",
            ("prompt", "What is my favourite pizza?"),
        )?;
        let reply: serde_json::Value = serde_json::from_str(&out)
            .with_context(|| format!("the hook printed something that is not JSON: {out:?}"))?;
        let context = reply["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .unwrap_or_default();
        let seen = reply["systemMessage"].as_str().unwrap_or_default();
        println!("   the user sees: {seen}");
        println!("   Claude's context receives:\n");
        println!("{}", indent(context));
        if !context.contains("Margherita") {
            bail!("the laptop did not receive the desktop's handoff");
        }
        println!("\nThe pizza test passes: the laptop knows the favourite pizza is Margherita.");
        Ok(())
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let mut cmd = self.env(Command::new("git"));
        let out = cmd.current_dir(dir).args(args).output();
        stdout_of("git", args, out.context("could not run git (is it installed?)")?)
    }

    /// Run convosync as `device` in `dir`, with `input` on stdin (a hook's event JSON, as Claude
    /// Code gives it).
    fn convosync(&self, dir: &Path, device: &str, args: &[&str], input: &str) -> Result<String> {
        use std::io::Write;
        let mut child = self
            .env(Command::new(&self.exe))
            .current_dir(dir)
            .env("CONVOSYNC_DEVICE", device)
            .env("NO_COLOR", "1")
            // The default start, whatever this shell says: answer at once, fetch behind.
            .env("CONVOSYNC_START", "async")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("could not run convosync")?;
        child
            .stdin
            .take()
            .context("no stdin")?
            .write_all(input.as_bytes())?;
        stdout_of("convosync", args, child.wait_with_output()?)
    }

    /// No user or system git config; a fixed identity; convosync state inside the temp dir.
    fn env(&self, mut cmd: Command) -> Command {
        cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Demo User")
            .env("GIT_AUTHOR_EMAIL", "demo@example.com")
            .env("GIT_COMMITTER_NAME", "Demo User")
            .env("GIT_COMMITTER_EMAIL", "demo@example.com")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("CONVOSYNC_CONFIG_DIR", self.root.join("config"))
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        cmd
    }
}

/// What a successful run of `name args…` printed, or an error with what it said on stderr.
fn stdout_of(name: &str, args: &[&str], out: std::process::Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{name} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
