use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    convosync::init();
    let cli = convosync::cli::Cli::parse();
    match convosync::cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("convosync: {e:#}");
            ExitCode::FAILURE
        }
    }
}
