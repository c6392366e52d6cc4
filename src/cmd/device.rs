//! `convosync device [show|set NAME]`

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{DeviceAction, Sub};
use crate::device;

pub fn run(args: Sub<DeviceAction>) -> Result<ExitCode> {
    match args.action.unwrap_or(DeviceAction::Show) {
        DeviceAction::Show => {
            println!("{}", device::current()?);
            eprintln!("(from {})", device::source());
        }
        DeviceAction::Set { name } => {
            let id = device::set(&name)?;
            println!("device name set to {id}");
            if let Some(note) = device::normalised_note(&name, &id) {
                eprintln!("note: {note}");
            }
            if std::env::var("CONVOSYNC_DEVICE").is_ok_and(|v| !v.trim().is_empty()) {
                eprintln!("note: CONVOSYNC_DEVICE is set in this environment and takes precedence");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
