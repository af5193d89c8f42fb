//! Persistent FIX sessions across connections: one slot per account holds the session's
//! durable store and, while no connection is logged on, a [`Session::detached`] that numbers and
//! keeps every report sent to the account (fills of resting orders, expiries, cancels at a
//! restart), so the next Logon gets them through a ResendRequest. Owned by the gateway thread;
//! no locks.

use engine::AccountId;

use fix::session::{Session, SessionConfig, SessionState};
use fix::session_store::{session_day, SessionStore, SessionStoreError};

/// One account's persistent session.
#[derive(Debug)]
struct Parked {
    comp_id: String,
    store: SessionStore,
    /// The session while no connection has it.
    detached: Option<Session>,
    /// The connection (session id) that has it.
    connection: Option<u64>,
    /// Highest engine event seq reported to it.
    last_event_seq: u64,
}

/// The persistent sessions of every account; accounts without one (no store configured) get
/// a fresh session at each Logon.
#[derive(Debug)]
pub struct Parking {
    config: SessionConfig,
    slots: Vec<Option<Parked>>,
    /// Seconds after midnight UTC at which a new session day starts.
    reset_offset_s: u32,
    /// Store write failures, reported once each by the gateway.
    errors: Vec<SessionStoreError>,
    /// The session day of the last [`Parking::day_changed`] call.
    day: Option<i64>,
}

/// An account's session store as opened at start-up.
#[derive(Debug)]
pub struct OpenedSession {
    /// The account.
    pub account: AccountId,
    /// Its CompID.
    pub comp_id: String,
    /// The store.
    pub store: SessionStore,
    /// Its numbers and messages.
    pub state: SessionState,
}

impl Parking {
    /// No persistence: every Logon starts a fresh session (tests, tools).
    pub fn none(config: SessionConfig) -> Parking {
        Parking { config, slots: Vec::new(), reset_offset_s: 0, errors: Vec::new(), day: None }
    }

    /// The sessions opened at start-up.
    pub fn new(
        config: SessionConfig,
        opened: Vec<OpenedSession>,
        reset_offset_s: u32,
        now_ns: u64,
    ) -> Parking {
        let mut slots: Vec<Option<Parked>> = Vec::new();
        for o in opened {
            let index = o.account.index();
            if slots.len() <= index {
                slots.resize_with(index + 1, || None);
            }
            let last_event_seq = o.store.meta().last_event_seq;
            let detached = Session::detached(config.clone(), &o.comp_id, o.state, now_ns);
            slots[index] = Some(Parked {
                comp_id: o.comp_id,
                store: o.store,
                detached: Some(detached),
                connection: None,
                last_event_seq,
            });
        }
        let day = Some(session_day(now_ns, reset_offset_s));
        Parking { config, slots, reset_offset_s, errors: Vec::new(), day }
    }

    fn slot(&mut self, account: AccountId) -> Option<&mut Parked> {
        self.slots.get_mut(account.index()).and_then(Option::as_mut)
    }

    /// A connection logged on as `account`: its session continues the persisted one (a new
    /// session day starts it again from 1).
    pub fn resume(&mut self, account: AccountId, connection: u64, now_ns: u64) -> SessionState {
        let day = session_day(now_ns, self.reset_offset_s);
        let config = self.config.clone();
        let Some(slot) = self.slots.get_mut(account.index()).and_then(Option::as_mut) else {
            return SessionState::new(&config);
        };
        let mut state = match slot.detached.take() {
            Some(mut session) => session.take_state(),
            None => SessionState::new(&config),
        };
        if slot.store.meta().session_day != day {
            if let Err(e) = slot.store.reset(day) {
                self.errors.push(e);
            }
            state = SessionState::new(&config);
        }
        slot.connection = Some(connection);
        state
    }

    /// The connection of `account`'s session ended: its state is parked for the next one.
    pub fn park(&mut self, account: AccountId, connection: u64, session: &mut Session, now_ns: u64) {
        let config = self.config.clone();
        let Some(slot) = self.slot(account) else { return };
        if slot.connection != Some(connection) {
            return;
        }
        slot.connection = None;
        let state = session.take_state();
        let result = slot.store.persist(
            (state.in_seq_next, state.out_seq_next, &state.store),
            slot.last_event_seq,
            false,
        );
        slot.detached = Some(Session::detached(config, &slot.comp_id.clone(), state, now_ns));
        if let Err(e) = result {
            self.errors.push(e);
        }
    }

    /// The connection that has `account`'s session, if one does.
    pub fn connection(&self, account: AccountId) -> Option<u64> {
        self.slots.get(account.index()).and_then(Option::as_ref).and_then(|s| s.connection)
    }

    /// Notes that the report of engine event `event_seq` is being sent to `account`.
    pub fn note_event(&mut self, account: AccountId, event_seq: u64) {
        if let Some(slot) = self.slot(account) {
            slot.last_event_seq = slot.last_event_seq.max(event_seq);
        }
    }

    /// The detached session of `account`, to send to while it has no connection.
    pub fn detached(&mut self, account: AccountId) -> Option<&mut Session> {
        self.slot(account).and_then(|s| s.detached.as_mut())
    }

    /// Writes `account`'s detached session to its store.
    pub fn persist_detached(&mut self, account: AccountId) {
        let Some(slot) = self.slot(account) else { return };
        let Some(session) = slot.detached.as_ref() else { return };
        if let Err(e) = slot.store.persist(session.state_view(), slot.last_event_seq, false) {
            self.errors.push(e);
        }
    }

    /// Writes a connected session's numbers and new messages to its store: call before its
    /// bytes go to the transport.
    pub fn persist(&mut self, account: AccountId, connection: u64, session: &Session) {
        let Some(slot) = self.slot(account) else { return };
        if slot.connection != Some(connection) {
            return;
        }
        let active = session.is_active();
        if let Err(e) = slot.store.persist(session.state_view(), slot.last_event_seq, active) {
            self.errors.push(e);
        }
    }

    /// True once when a new session day starts (persistent sessions only): connected sessions
    /// are then logged out, and each starts again from 1 at its next Logon.
    pub fn day_changed(&mut self, now_ns: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let day = session_day(now_ns, self.reset_offset_s);
        let changed = self.day.is_some_and(|d| d != day);
        self.day = Some(day);
        changed
    }

    /// Store failures since the last call.
    pub fn take_errors(&mut self) -> Vec<SessionStoreError> {
        std::mem::take(&mut self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fix::session_store::SessionMeta;

    const DAY_NS: u64 = 86_400_000_000_000;

    #[test]
    fn a_new_session_day_starts_the_numbers_again_and_logs_sessions_out_once() {
        let dir = std::env::temp_dir().join(format!("exchange-parking-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = SessionConfig::default();
        let now = 10 * DAY_NS + 5;
        let fresh = SessionMeta {
            in_seq_next: 1,
            out_seq_next: 1,
            last_event_seq: 0,
            session_day: session_day(now, 0),
            connected: false,
        };
        let mut o = SessionStore::open(&dir, "alice", fresh, 100).unwrap();
        o.state.in_seq_next = 7;
        o.state.out_seq_next = 9;
        o.store.persist((7, 9, &o.state.store), 0, false).unwrap();
        let opened = vec![OpenedSession {
            account: AccountId(0),
            comp_id: "alice".into(),
            store: o.store,
            state: o.state,
        }];
        let mut parking = Parking::new(config.clone(), opened, 0, now);
        // The same day: the numbers go on.
        let state = parking.resume(AccountId(0), 1, now + 1);
        assert_eq!((state.in_seq_next, state.out_seq_next), (7, 9));
        let mut session = Session::detached(config.clone(), "alice", state, now);
        parking.park(AccountId(0), 1, &mut session, now + 2);
        assert!(!parking.day_changed(now + 3));
        assert!(parking.day_changed(now + DAY_NS), "once, when the day turns");
        assert!(!parking.day_changed(now + DAY_NS + 1));
        // The next day: from 1.
        let state = parking.resume(AccountId(0), 2, now + DAY_NS);
        assert_eq!((state.in_seq_next, state.out_seq_next), (1, 1));
        assert_eq!(parking.connection(AccountId(0)), Some(2));
        assert!(
            Parking::none(config).resume(AccountId(3), 1, now).store.is_empty(),
            "no store: a fresh session"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
