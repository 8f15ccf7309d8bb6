//! Job states and the transitions between them.

use std::fmt;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting in the stream for a worker.
    Pending,
    /// Delivered to a worker, which holds a lease on it.
    Active,
    /// Acknowledged by its worker; its result is stored.
    Completed,
    /// Used all its attempts without completing.
    Dead,
}

/// What happens to a job; each event is legal from some states only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A worker fetched it.
    Fetch,
    /// Its worker acknowledged it.
    Ack,
    /// Its lease expired and another worker took it over.
    Reclaim,
    /// Its lease expired with no attempts left.
    Exhaust,
}

impl State {
    /// Every state, in documentation order.
    pub const ALL: [State; 4] = [State::Pending, State::Active, State::Completed, State::Dead];

    /// The state's name in replies and in the job record.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Completed => "completed",
            State::Dead => "dead",
        }
    }

    /// Reads a state name.
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The state after `event`, or `None` when the event is illegal in this state.
    pub fn after(self, event: Event) -> Option<State> {
        match (self, event) {
            (State::Pending, Event::Fetch) => Some(State::Active),
            (State::Active, Event::Ack) => Some(State::Completed),
            (State::Active, Event::Reclaim) => Some(State::Active),
            (State::Active, Event::Exhaust) => Some(State::Dead),
            _ => None,
        }
    }

    /// Whether the job has finished for good.
    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Dead)
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
            (Pending, Fetch, Active),
            (Active, Ack, Completed),
            (Active, Reclaim, Active),
            (Active, Exhaust, Dead),
        ];
        for state in State::ALL {
            for event in [Fetch, Ack, Reclaim, Exhaust] {
                let want = legal
                    .iter()
                    .find(|(s, e, _)| *s == state && *e == event)
                    .map(|(_, _, to)| *to);
                assert_eq!(state.after(event), want, "{state} on {event:?}");
            }
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
