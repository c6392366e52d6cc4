//! `convosync template [show | init [--user] [--force]]`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::{Sub, TemplateAction};
use crate::handoff::template::{Origin, Template, REPO_TEMPLATE};
use crate::repo::Repo;

pub fn run(dir: &Path, args: Sub<TemplateAction>) -> Result<ExitCode> {
    let repo = Repo::open(dir)?;
    let workdir = repo.workdir().map(Path::to_path_buf);
    let user_dir = crate::device::config_dir();
    match args.action.unwrap_or(TemplateAction::Show) {
        TemplateAction::Show => {
            let t = Template::load_reporting(workdir.as_deref(), user_dir.as_deref(), &mut |why| {
                eprintln!("convosync: {}", crate::untrusted::line(why))
            })?;
            let from = match t.origin {
                Origin::Repository => workdir.as_deref().map(|w| w.join(REPO_TEMPLATE)),
                Origin::User => user_dir.as_ref().map(|d| d.join("template.md")),
                Origin::Builtin => None,
            }
            .map_or_else(|| "built-in default".to_string(), |p| p.display().to_string());
            println!("<!-- template from {from} -->");
            print!("{}", t.render_template_file());
        }
        TemplateAction::Init { user, force } => {
            let path = if user {
                user_dir
                    .context("no config directory (set HOME)")?
                    .join("template.md")
            } else {
                workdir
                    .context("bare repository: use --user")?
                    .join(REPO_TEMPLATE)
            };
            if path.exists() && !force {
                bail!("{} already exists (use --force to overwrite)", path.display());
            }
            let text = format!(
                "Write a short handoff note for the next session on another machine. Be concise; no secrets.\n\n{}",
                Template::default().render_template_file()
            );
            crate::fsutil::atomic_write(&path, text.as_bytes())?;
            println!(
                "wrote {}; edit its sections (a title ending in (required) must be filled in)",
                path.display()
            );
            if !user {
                println!("commit it to share it with everyone who works on this repository");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
