//! `testrelay __supervise`: the hidden per-job supervisor process (see `jobs::supervisor`).

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::SuperviseArgs;
use crate::jobs::supervisor::{self, SuperviseArgs as Args};

pub fn run(a: SuperviseArgs) -> ExitCode {
    let mut command = a.command.into_iter();
    let Some(program) = command.next() else {
        return ExitCode::from(2);
    };
    let code = supervisor::supervise(Args {
        report: a.report,
        timeout: a.timeout_ms.map(Duration::from_millis),
        grace_int: Duration::from_millis(a.grace_int_ms),
        grace_term: Duration::from_millis(a.grace_term_ms),
        program,
        args: command.collect(),
    });
    ExitCode::from(code.clamp(0, 255) as u8)
}
