//! Job states and the transitions between them: the one definition of the state machine.

use std::fmt;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Enqueued `AFTER` parents that have not all completed yet.
    Waiting,
    /// Enqueued with a delay (`DELAY`/`AT`) that has not passed yet.
    Scheduled,
    /// Waiting in its stream for a worker.
    Pending,
    /// Delivered to a worker, which holds a lease on it.
    Active,
    /// Failed with attempts left; waiting for its retry time.
    Retrying,
    /// Acknowledged by its worker; its result is stored.
    Completed,
    /// Used all its attempts without completing.
    Dead,
    /// Cancelled before it could complete.
    Cancelled,
}

/// What happens to a job; each event is legal from some states only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Its last unfinished parent completed (or failed under `ONPARENTFAIL run`).
    Release,
    /// Its due time came (scheduled or retrying).
    Promote,
    /// A worker fetched it.
    Fetch,
    /// Its worker acknowledged it.
    Ack,
    /// Its worker reported a failure and attempts are left.
    Retry,
    /// Its worker reported a failure and no attempts are left.
    Bury,
    /// Its lease expired and another worker took it over.
    Reclaim,
    /// Its lease expired with no attempts left.
    Exhaust,
    /// Its lease expired with attempts left and the server's timer put it back in its stream.
    Expire,
    /// Its worker gave it back unfinished (`ZRQ.RELEASE`, at shutdown): it waits for a worker
    /// again, without having used up an attempt.
    GiveBack,
    /// A cancellation of a job that is not running.
    Cancel,
    /// A running job whose cancellation was requested reported back (ACK or FAIL).
    Abandon,
    /// An operator put a dead job back.
    Requeue,
}

impl State {
    /// Every state, in documentation order.
    pub const ALL: [State; 8] = [
        State::Waiting,
        State::Scheduled,
        State::Pending,
        State::Active,
        State::Retrying,
        State::Completed,
        State::Dead,
        State::Cancelled,
    ];

    /// The state's name in replies and in the job record.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Scheduled => "scheduled",
            State::Pending => "pending",
            State::Active => "active",
            State::Retrying => "retrying",
            State::Completed => "completed",
            State::Dead => "dead",
            State::Cancelled => "cancelled",
        }
    }

    /// Reads a state name.
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The state after `event`, or `None` when the event is illegal in this state.
    pub fn after(self, event: Event) -> Option<State> {
        use Event::*;
        use State::*;
        match (self, event) {
            (Waiting, Release) => Some(Pending),
            (Scheduled | Retrying, Promote) => Some(Pending),
            (Pending, Fetch) => Some(Active),
            (Active, Ack) => Some(Completed),
            (Active, Retry) => Some(Retrying),
            (Active, Bury | Exhaust) => Some(Dead),
            (Active, Reclaim) => Some(Active),
            (Active, Expire | GiveBack) => Some(Pending),
            (Active, Abandon) => Some(Cancelled),
            (Waiting | Scheduled | Pending | Retrying, Cancel) => Some(Cancelled),
            (Dead, Requeue) => Some(Pending),
            _ => None,
        }
    }

    /// Whether the job has finished for good (RESULT answers, retention applies).
    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Dead | State::Cancelled)
    }

    /// The final states whose jobs may be kept for the queue's retention in a records hash and
    /// its log (`QueueKeys::records`, `QueueKeys::log`), in the order readers look.
    pub const KEPT: [State; 2] = [State::Completed, State::Cancelled];

    /// Whether jobs ending in this state may be kept in a records hash ([`State::KEPT`]).
    pub fn is_kept(self) -> bool {
        State::KEPT.contains(&self)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_table() {
        use Event::*;
        use State::*;
        let legal = [
            (Waiting, Release, Pending),
            (Waiting, Cancel, Cancelled),
            (Scheduled, Promote, Pending),
            (Retrying, Promote, Pending),
            (Pending, Fetch, Active),
            (Active, Ack, Completed),
            (Active, Retry, Retrying),
            (Active, Bury, Dead),
            (Active, Reclaim, Active),
            (Active, Exhaust, Dead),
            (Active, Expire, Pending),
            (Active, GiveBack, Pending),
            (Active, Abandon, Cancelled),
            (Scheduled, Cancel, Cancelled),
            (Pending, Cancel, Cancelled),
            (Retrying, Cancel, Cancelled),
            (Dead, Requeue, Pending),
        ];
        let events = [
            Release, Promote, Fetch, Ack, Retry, Bury, Reclaim, Exhaust, Expire, GiveBack, Cancel,
            Abandon, Requeue,
        ];
        for state in State::ALL {
            for event in events {
                let want = legal
                    .iter()
                    .find(|(s, e, _)| *s == state && *e == event)
                    .map(|(_, _, to)| *to);
                assert_eq!(state.after(event), want, "{state} on {event:?}");
            }
        }
    }

    #[test]
    fn final_states_have_no_way_out_but_requeue() {
        for state in State::ALL.into_iter().filter(|s| s.is_final()) {
            let exits = [Event::Requeue]
                .into_iter()
                .filter(|e| state.after(*e).is_some())
                .count();
            assert_eq!(exits, usize::from(state == State::Dead), "{state}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("Pending"), None);
    }
}
