//! Reading `stagepass doctor --json`: each check by its id, with assertions on the named
//! diagnosis (status and wording), as tests/e2e/doctor.rs and tests/e2e/keycloak.rs use it.

use serde_json::Value;

use super::{Run, Sandbox};

/// Exit code of a doctor run with at least one failing check.
pub const CHECKS_FAILED: i32 = 10;

/// A port nothing listens on, so `proxy.port` does not depend on the machine.
pub fn free_port() -> String {
    super::proxy::free_port().to_string()
}

pub struct Doctor {
    pub run: Run,
    pub checks: Vec<Value>,
}

impl Doctor {
    pub fn new(run: Run) -> Doctor {
        let checks = run
            .stdout()
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
            })
            .collect::<Vec<_>>();
        for check in &checks {
            for key in ["check", "profile", "status", "summary", "evidence", "fix"] {
                assert!(check.get(key).is_some(), "no {key} in {check}");
            }
        }
        Doctor { run, checks }
    }

    #[track_caller]
    pub fn check(&self, id: &str) -> &Value {
        self.checks
            .iter()
            .find(|check| check["check"] == id)
            .unwrap_or_else(|| panic!("no {id} check in:\n{}", self.run.stdout()))
    }

    /// Asserts the check's status and that its summary says `wording`.
    #[track_caller]
    pub fn assert(&self, id: &str, status: &str, wording: &str) -> &Value {
        let check = self.check(id);
        assert_eq!(check["status"], status, "{check}");
        let summary = check["summary"].as_str().unwrap();
        assert!(
            summary.contains(wording),
            "{id}: expected {wording:?} in {summary:?}\n{check}"
        );
        check
    }

    #[track_caller]
    pub fn assert_evidence(&self, id: &str, needle: &str) {
        let check = self.check(id);
        assert!(
            check["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|line| line.as_str().unwrap().contains(needle)),
            "{id}: expected {needle:?} in the evidence of {check}"
        );
    }

    /// Asserts that the check's fix names each of `needles`.
    #[track_caller]
    pub fn assert_fix(&self, id: &str, needles: &[&str]) {
        let check = self.check(id);
        let fix = check["fix"].as_str().unwrap_or_default();
        for needle in needles {
            assert!(
                fix.contains(needle),
                "{id}: expected {needle:?} in the fix of {check}"
            );
        }
    }

    pub fn failing(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|check| check["status"] == "fail")
            .map(|check| check["check"].as_str().unwrap())
            .collect()
    }
}

pub fn doctor(sandbox: &Sandbox) -> Doctor {
    let port = free_port();
    Doctor::new(sandbox.run(&["doctor", "--json", "--proxy-port", &port]))
}
