//! Printing checks as they complete: aligned lines for people, one JSON object per line for
//! scripts.

use std::io::Write;

use stagepass_core::doctor::{Check, Status};

use crate::error::{CommandError, Kind};

pub struct Report {
    json: bool,
    counts: [usize; 5],
}

fn index(status: Status) -> usize {
    match status {
        Status::Ok => 0,
        Status::Info => 1,
        Status::Skip => 2,
        Status::Warn => 3,
        Status::Fail => 4,
    }
}

impl Report {
    pub fn new(json: bool) -> Report {
        Report {
            json,
            counts: [0; 5],
        }
    }

    pub fn add(&mut self, check: Check) {
        self.counts[index(check.status)] += 1;
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not the doctor's problem; the exit code still tells.
        let _ = if self.json {
            serde_json::to_writer(&mut out, &check)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        } else {
            write_human(&mut out, &check)
        };
        let _ = out.flush();
    }

    /// The summary line, and the exit status: failing checks make the run fail.
    pub fn finish(self) -> Result<(), CommandError> {
        let [ok, info, skip, warn, fail] = self.counts;
        if !self.json {
            outln!();
            outln!("{ok} ok, {info} info, {skip} skipped, {warn} warnings, {fail} failed");
        }
        if fail > 0 {
            Err(CommandError::new(
                Kind::ChecksFailed,
                format!("doctor: {fail} failing check(s)"),
            ))
        } else {
            Ok(())
        }
    }
}

fn write_human(out: &mut impl Write, check: &Check) -> std::io::Result<()> {
    let profile = check
        .profile
        .as_deref()
        .map(|name| format!("[{name}] "))
        .unwrap_or_default();
    writeln!(
        out,
        "{:<4}  {:<18} {profile}{}",
        check.status.label(),
        check.check,
        check.summary
    )?;
    for line in &check.evidence {
        writeln!(out, "{:25}· {line}", "")?;
    }
    if let Some(fix) = &check.fix {
        writeln!(out, "{:25}fix: {fix}", "")?;
    }
    Ok(())
}
