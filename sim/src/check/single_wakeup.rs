//! single-wakeup: in signaled mode only the arbiter hands out connections and it hands out one
//! `ACCEPT:<socket>` per connection, so a worker it woke finds one. The one legitimate exception:
//! a worker that tried the accept of a dispatch and died before its answer (`ACCEPTED` or `EMPTY`)
//! reached the arbiter; the arbiter cannot know the accept was tried and hands the dispatch out
//! again (a spurious wakeup is the price of never losing one). Every other empty accept after `ACCEPT:<socket>`
//! means a connection woke more than one worker. (In auto mode workers also accept directly, so
//! empty accepts are legitimate there.)

use herd_protocol::arbiter::{AcceptMode, Config, WorkerId};
use herd_protocol::invariants::{Invariant, Violation};
use herd_protocol::message::ListenerId;

pub(super) struct SingleWakeup {
    /// Per listener: connections taken by workers that died before reporting them.
    spare: Vec<u32>,
}

impl SingleWakeup {
    pub(super) fn new(config: &Config) -> Self {
        SingleWakeup { spare: vec![0; usize::from(config.listeners)] }
    }

    pub(super) fn taken_by_the_dead(&mut self, s: ListenerId) {
        if let Some(n) = self.spare.get_mut(usize::from(s.0)) {
            *n += 1;
        }
    }

    pub(super) fn empty_accept(
        &mut self,
        id: WorkerId,
        mode: AcceptMode,
        told: Option<ListenerId>,
    ) -> Result<(), Violation> {
        let Some(s) = told else { return Ok(()) };
        if mode != AcceptMode::Signaled {
            return Ok(());
        }
        match self.spare.get_mut(usize::from(s.0)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(())
            }
            _ => Err(Violation::new(
                Invariant::SingleWakeup,
                format!("{id} was told ACCEPT:{s} and found nothing: a connection woke two workers"),
            )),
        }
    }
}
