//! Logon checks off the gateway thread. Verifying an Argon2 password hash takes tens of
//! milliseconds by design; on the gateway thread, which also matches orders, every logon would
//! stall every session for that long. So a session whose Logon arrives hands it to this worker
//! and stays logon-pending (its later messages wait in its buffer); the gateway thread applies
//! the verdict when the worker wakes it.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::router::SessionId;
use crate::venue::{LogonRefused, Venue};
use engine::AccountId;
use fix::session::LogonRequest;

/// Most logons waiting for the worker; past it a Logon is refused at once ("retry").
pub const LOGONS_PENDING_MAX: usize = 1024;

/// A Logon's fields, owned, for the worker.
#[derive(Debug)]
struct Job {
    session: SessionId,
    sender_comp_id: String,
    username: Option<String>,
    password: Option<String>,
}

/// The worker's answer for one session: the account claimed, or why not.
pub type Verdict = (SessionId, Result<AccountId, LogonRefused>);

/// The sessions' side: where Logons go.
#[derive(Clone, Debug)]
pub struct Authenticator {
    jobs: Sender<Job>,
}

impl Authenticator {
    /// Starts the worker thread; `wake` is called after each verdict is sent to `verdicts`.
    pub fn start(
        venue: Arc<Venue>,
        wake: impl Fn() + Send + 'static,
    ) -> std::io::Result<(Authenticator, Receiver<Verdict>, JoinHandle<()>)> {
        let (jobs, job_rx) = crossbeam_channel::bounded::<Job>(LOGONS_PENDING_MAX);
        // Never full: at most LOGONS_PENDING_MAX jobs exist, and each makes one verdict.
        let (verdict_tx, verdicts) = crossbeam_channel::bounded(2 * LOGONS_PENDING_MAX);
        let thread = std::thread::Builder::new().name("logon".into()).spawn(move || {
            for job in job_rx {
                let request = LogonRequest {
                    sender_comp_id: &job.sender_comp_id,
                    username: job.username.as_deref(),
                    password: job.password.as_deref(),
                    heartbeat_s: 0,
                    reset_seq_num: false,
                };
                let verdict = venue.accounts.authenticate(&request);
                if verdict_tx.send((job.session, verdict)).is_err() {
                    break;
                }
                wake();
            }
        })?;
        Ok((Authenticator { jobs }, verdicts, thread))
    }

    /// Queues a Logon; `Err` with the refusal text when too many are waiting or the worker
    /// has stopped.
    pub fn submit(&self, session: SessionId, request: &LogonRequest<'_>) -> Result<(), LogonRefused> {
        let job = Job {
            session,
            sender_comp_id: request.sender_comp_id.to_owned(),
            username: request.username.map(str::to_owned),
            password: request.password.map(str::to_owned),
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(LogonRefused::Busy),
            Err(TrySendError::Disconnected(_)) => Err(LogonRefused::ShuttingDown),
        }
    }
}
