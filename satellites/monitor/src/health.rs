//! Named health checks behind `/livez` and `/readyz`, in the manner of Kubernetes' API server.
//!
//! A check is registered once by name (`journal_recovered`, `gateway_listening`,
//! `satellites_caught_up`) and flipped from then on through a [`CheckHandle`]: one atomic store,
//! cheap enough for any thread. `/livez` answers from the liveness checks; `/readyz` from the
//! liveness and the readiness checks, since a process that is not alive is not ready either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::metrics::HEALTH_CHECK;
use crate::prometheus::{sample, write_header};

/// Checks a process may register; one more is refused.
pub const CHECKS_MAX: usize = 64;
/// Longest check name.
pub const CHECK_NAME_BYTES_MAX: usize = 48;

/// Which endpoint a check answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/livez` (and `/readyz`): failing means the process should be restarted.
    Live,
    /// `/readyz` only: failing means traffic should not be sent here yet.
    Ready,
}

impl Probe {
    /// The endpoint's name without the slash.
    pub fn endpoint(self) -> &'static str {
        match self {
            Probe::Live => "livez",
            Probe::Ready => "readyz",
        }
    }
}

#[derive(Debug)]
struct CheckState {
    name: String,
    probe: Probe,
    ok: AtomicBool,
}

/// Flips one check between passing and failing.
#[derive(Clone, Debug)]
pub struct CheckHandle(Arc<CheckState>);

impl CheckHandle {
    /// Sets whether the check passes.
    pub fn set(&self, ok: bool) {
        self.0.ok.store(ok, Ordering::Release);
    }

    /// Whether the check passes now.
    pub fn is_ok(&self) -> bool {
        self.0.ok.load(Ordering::Acquire)
    }
}

/// The set of checks; cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Health {
    // A mutex is fine here: registration happens at start-up and reads once per probe request;
    // no stage ever takes it (they hold `CheckHandle`s).
    checks: Arc<Mutex<Vec<Arc<CheckState>>>>,
}

/// Failures registering a check.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The name is empty, too long, or not `[a-z0-9_]`.
    #[error("health check name {0:?} must be 1..={CHECK_NAME_BYTES_MAX} bytes of [a-z0-9_]")]
    BadName(String),
    /// A check of that name exists.
    #[error("health check {0:?} registered twice")]
    Duplicate(String),
    /// [`CHECKS_MAX`] checks exist.
    #[error("more than {CHECKS_MAX} health checks")]
    Full,
}

/// One check's state in a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Its name.
    pub name: String,
    /// Its probe.
    pub probe: Probe,
    /// Whether it passed.
    pub ok: bool,
}

/// The answer to one probe.
#[derive(Clone, Debug)]
pub struct Report {
    /// The probe asked.
    pub probe: Probe,
    /// Every check that counts for it, in registration order.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True when every check passed (and so when there are none).
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The body Kubernetes-style probes answer: `ok` when passing and not verbose; otherwise
    /// a `[+]name ok` / `[-]name failed` line per check and a verdict line.
    pub fn text(&self, verbose: bool) -> String {
        if self.ok() && !verbose {
            return "ok\n".to_owned();
        }
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(if c.ok { "[+]" } else { "[-]" });
            out.push_str(&c.name);
            out.push_str(if c.ok { " ok\n" } else { " failed\n" });
        }
        out.push_str(self.probe.endpoint());
        out.push_str(if self.ok() { " check passed\n" } else { " check failed\n" });
        out
    }
}

impl Health {
    /// No checks yet: both probes pass.
    pub fn new() -> Health {
        Health::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<CheckState>>> {
        // A panic while holding the lock cannot leave the Vec half-changed (push is the only
        // write), so a poisoned lock is still good to use.
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a check, passing or failing from the start as `ok` says.
    pub fn register(&self, probe: Probe, name: &str, ok: bool) -> Result<CheckHandle, HealthError> {
        let valid = !name.is_empty()
            && name.len() <= CHECK_NAME_BYTES_MAX
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(HealthError::BadName(name.to_owned()));
        }
        let mut checks = self.lock();
        if checks.iter().any(|c| c.name == name) {
            return Err(HealthError::Duplicate(name.to_owned()));
        }
        if checks.len() == CHECKS_MAX {
            return Err(HealthError::Full);
        }
        let state = Arc::new(CheckState { name: name.to_owned(), probe, ok: AtomicBool::new(ok) });
        checks.push(Arc::clone(&state));
        Ok(CheckHandle(state))
    }

    /// The checks that count for `probe`, as they stand.
    pub fn report(&self, probe: Probe) -> Report {
        let checks = self
            .lock()
            .iter()
            .filter(|c| probe == Probe::Ready || c.probe == Probe::Live)
            .map(|c| CheckResult { name: c.name.clone(), probe: c.probe, ok: c.ok.load(Ordering::Acquire) })
            .collect();
        Report { probe, checks }
    }

    /// Appends `exchange_health_check{check,probe}` (1 passing, 0 failing) for the alert rules.
    pub fn render(&self, out: &mut String) {
        let checks = self.lock();
        if checks.is_empty() {
            return;
        }
        write_header(out, HEALTH_CHECK, "1 while a health check passes [check, probe].", "gauge");
        for c in checks.iter() {
            let labels = format!("check=\"{}\",probe=\"{}\"", c.name, c.probe.endpoint());
            let ok = u8::from(c.ok.load(Ordering::Acquire));
            sample(out, HEALTH_CHECK, "", &labels, "", |o| {
                o.push(char::from(b'0' + ok));
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_check_liveness_only_its_own() {
        let health = Health::new();
        assert!(health.report(Probe::Ready).ok());
        let alive = health.register(Probe::Live, "engine_thread", true).unwrap();
        let recovered = health.register(Probe::Ready, "journal_recovered", false).unwrap();
        assert!(health.report(Probe::Live).ok());
        let ready = health.report(Probe::Ready);
        assert!(!ready.ok());
        assert_eq!(
            ready.text(false),
            "[+]engine_thread ok\n[-]journal_recovered failed\nreadyz check failed\n"
        );
        recovered.set(true);
        assert_eq!(health.report(Probe::Ready).text(false), "ok\n");
        assert_eq!(
            health.report(Probe::Ready).text(true),
            "[+]engine_thread ok\n[+]journal_recovered ok\nreadyz check passed\n"
        );
        alive.set(false);
        assert!(!health.report(Probe::Live).ok());
        assert!(!health.report(Probe::Ready).ok());
        assert_eq!(health.report(Probe::Live).text(true), "[-]engine_thread failed\nlivez check failed\n");
    }

    #[test]
    fn names_are_checked_and_bounded() {
        let health = Health::new();
        assert!(matches!(health.register(Probe::Ready, "Bad-Name", true), Err(HealthError::BadName(_))));
        assert!(matches!(health.register(Probe::Ready, "", true), Err(HealthError::BadName(_))));
        health.register(Probe::Ready, "a", true).unwrap();
        assert!(matches!(health.register(Probe::Live, "a", true), Err(HealthError::Duplicate(_))));
        for i in 1..CHECKS_MAX {
            health.register(Probe::Ready, &format!("c{i}"), true).unwrap();
        }
        assert!(matches!(health.register(Probe::Ready, "last", true), Err(HealthError::Full)));
    }

    #[test]
    fn renders_a_gauge_per_check() {
        let health = Health::new();
        let mut out = String::new();
        health.render(&mut out);
        assert!(out.is_empty());
        health.register(Probe::Ready, "gateway_listening", false).unwrap();
        health.register(Probe::Live, "engine_thread", true).unwrap();
        health.render(&mut out);
        assert!(out.ends_with(
            "exchange_health_check{check=\"gateway_listening\",probe=\"readyz\"} 0\n\
             exchange_health_check{check=\"engine_thread\",probe=\"livez\"} 1\n"
        ));
    }
}
