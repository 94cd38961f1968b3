//! Which entries to send now.
//!
//! Rules, in order:
//! - an entry is never sent before an earlier open entry of the same entity
//!   key, nor before the entries it depends on are done;
//! - an entry whose dependency (or earlier same-entity entry) failed, was
//!   cancelled or is itself blocked becomes `blocked`; when that cause goes
//!   away (the dependency was retried) it is unblocked;
//! - entries waiting for backoff or holding a live lease are skipped; an
//!   expired lease makes its entry eligible again;
//! - entries of a user other than the current one are held: never sent,
//!   blocked or unblocked, and they hold back no entry of another user (a
//!   user's entries keep their order among themselves; an explicit
//!   dependency on a held entry still waits for it);
//! - among eligible entries, higher priority first, then enqueue order, up
//!   to the number of free slots.

use crate::core::entry::{Entry, EntryId, Priority};
use crate::core::lifecycle::State;
use crate::core::sort::sort_by;
use std::collections::HashMap;

/// The scheduler's decisions for one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Entries to send now, in this order.
    pub send: Vec<EntryId>,
    /// Entries to mark `blocked`, with the entry that blocks each.
    pub block: Vec<(EntryId, EntryId)>,
    /// Blocked entries whose cause went away: back to `pending`.
    pub unblock: Vec<EntryId>,
    /// The earliest future time at which a waiting entry becomes eligible.
    pub next_wake_at: Option<u64>,
}

/// Options of one planning pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions<'a> {
    /// The current time, ms since the epoch.
    pub now: u64,
    /// How many more entries may be in flight.
    pub free_slots: usize,
    /// Send `pending` entries whose only wait is an offline backoff now (a
    /// sync, online or flush trigger says the network may be back).
    pub network_maybe_back: bool,
    /// The current user (`setUser`); entries of other users are held.
    pub user: Option<&'a str>,
}

enum Hold {
    /// Later entries wait.
    Wait,
    /// Later entries are blocked by this entry.
    Block(EntryId),
}

fn hold_of(entry: &Entry) -> Option<Hold> {
    match entry.state {
        State::Done | State::Cancelled | State::Superseded => None,
        State::Failed | State::Blocked => Some(Hold::Block(entry.id)),
        _ => Some(Hold::Wait),
    }
}

/// Plans what to send. `entries` may be in any order; ids give enqueue
/// order. Runs after every answer of a drain, so it makes one pass with few
/// allocations; entries in id order (as the queue gives them) are not sorted.
pub fn plan<'a>(entries: impl IntoIterator<Item = &'a Entry>, options: PlanOptions<'_>) -> Plan {
    let mut ordered: Vec<&Entry> = entries.into_iter().collect();
    if !ordered.windows(2).all(|pair| pair[0].id < pair[1].id) {
        sort_by(&mut ordered, |a, b| a.id < b.id);
    }
    let find = |id: EntryId| {
        ordered
            .binary_search_by_key(&id, |entry| entry.id)
            .ok()
            .map(|index| ordered[index])
    };
    let mut plan = Plan::default();
    // States this pass changed (blocked, unblocked), so that blocking
    // propagates through chains within one pass.
    let mut changed: HashMap<EntryId, State> = HashMap::new();
    let mut entity_hold: HashMap<&str, Hold> = HashMap::new();
    let mut eligible: Vec<(Priority, EntryId)> = Vec::new();

    for &entry in &ordered {
        let id = entry.id;
        if entry.state.is_final() || entry.held_for(options.user) {
            continue;
        }
        let mut wait = false;
        let mut blocked_by: Option<EntryId> = None;
        if let Some(entity) = entry.entity.as_deref() {
            match entity_hold.get(entity) {
                Some(Hold::Wait) => wait = true,
                Some(Hold::Block(by)) => blocked_by = Some(*by),
                None => {}
            }
        }
        for dependency in &entry.depends_on {
            // A dependency no longer in the queue was done and removed.
            let state = changed
                .get(dependency)
                .copied()
                .or_else(|| find(*dependency).map(|d| d.state));
            match state {
                None | Some(State::Done) | Some(State::Superseded) => {}
                Some(State::Failed | State::Cancelled | State::Blocked) => {
                    blocked_by.get_or_insert(*dependency);
                }
                Some(_) => wait = true,
            }
        }

        let mut state = entry.state;
        match (blocked_by, state) {
            (Some(by), State::Pending | State::WaitingRetry) => {
                plan.block.push((id, by));
                state = State::Blocked;
            }
            (None, State::Blocked) => {
                plan.unblock.push(id);
                state = State::Pending;
            }
            _ => {}
        }
        if state != entry.state {
            changed.insert(id, state);
        }

        if !wait && blocked_by.is_none() {
            if let Some(wake) = ready_at(entry, state, options) {
                if wake <= options.now {
                    eligible.push((entry.priority, id));
                } else {
                    plan.next_wake_at = Some(plan.next_wake_at.map_or(wake, |w| w.min(wake)));
                }
            }
        }

        if let Some(entity) = entry.entity.as_deref() {
            let hold = if state == State::Blocked {
                Hold::Block(id)
            } else {
                match hold_of(entry) {
                    Some(hold) => hold,
                    None => continue,
                }
            };
            // The first open entry decides; a later one cannot relax it.
            entity_hold.entry(entity).or_insert(hold);
        }
    }

    // `eligible` is in id order: each priority's entries in turn, the
    // highest first, are in priority order and then enqueue order.
    plan.send = Priority::ALL
        .iter()
        .rev()
        .flat_map(|&priority| {
            eligible
                .iter()
                .filter(move |(p, _)| *p == priority)
                .map(|&(_, id)| id)
        })
        .take(options.free_slots)
        .collect();
    plan
}

/// When an entry in `state` may be sent, or None if it is not waiting to be sent.
fn ready_at(entry: &Entry, state: State, options: PlanOptions<'_>) -> Option<u64> {
    match state {
        State::Pending => {
            if options.network_maybe_back {
                Some(0)
            } else {
                Some(entry.next_attempt_at.unwrap_or(0))
            }
        }
        State::WaitingRetry => Some(entry.next_attempt_at.unwrap_or(0)),
        State::InFlight => Some(entry.lease_until.unwrap_or(0)),
        _ => None,
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: EntryId, entity: &str) -> Entry {
        let mut e = Entry::new("POST", "http://x/a", "k", 0, id);
        e.id = id;
        if !entity.is_empty() {
            e.entity = Some(entity.to_owned());
        }
        e
    }

    fn options(now: u64, free_slots: usize) -> PlanOptions<'static> {
        PlanOptions {
            now,
            free_slots,
            network_maybe_back: false,
            user: None,
        }
    }

    fn of(user: &str, mut entry: Entry) -> Entry {
        entry.user = Some(user.to_owned());
        entry
    }

    #[test]
    fn entries_of_another_user_are_held_and_hold_nothing_back() {
        let entries = [
            of("alice", entry(1, "a")),
            entry(2, "b"),
            of("bob", entry(3, "a")),
            of("alice", entry(4, "a")),
        ];
        let as_user = |user| PlanOptions {
            user,
            ..options(0, 10)
        };
        // Alice's entries go in order; bob's /a edit waits for none of them.
        assert_eq!(plan(&entries, as_user(Some("alice"))).send, vec![1, 2]);
        assert_eq!(plan(&entries, as_user(Some("bob"))).send, vec![2, 3]);
        // With no user (logged out) only entries stored without one go.
        assert_eq!(plan(&entries, as_user(None)).send, vec![2]);
    }

    #[test]
    fn a_held_entry_is_neither_blocked_nor_unblocked() {
        let mut entries = vec![entry(1, "a"), of("bob", entry(2, "a"))];
        entries[0].state = State::Failed;
        let as_alice = PlanOptions {
            user: Some("alice"),
            ..options(0, 10)
        };
        assert_eq!(plan(&entries, as_alice), Plan::default());
        entries[1].state = State::Blocked;
        entries[0].state = State::Cancelled;
        assert_eq!(plan(&entries, as_alice), Plan::default());
        // Back as bob, the entry is unblocked and sent.
        let as_bob = PlanOptions {
            user: Some("bob"),
            ..options(0, 10)
        };
        let back = plan(&entries, as_bob);
        assert_eq!((back.unblock, back.send), (vec![2], vec![2]));
    }

    #[test]
    fn a_dependency_on_a_held_entry_waits() {
        let mut entries = vec![of("bob", entry(1, "a")), of("alice", entry(2, "b"))];
        entries[1].depends_on = vec![1];
        let as_alice = PlanOptions {
            user: Some("alice"),
            ..options(0, 10)
        };
        assert!(plan(&entries, as_alice).send.is_empty());
    }

    #[test]
    fn same_entity_goes_one_at_a_time_in_order() {
        let entries = [entry(1, "a"), entry(2, "a"), entry(3, "b")];
        let plan = plan(&entries, options(0, 10));
        assert_eq!(plan.send, vec![1, 3]);
    }

    #[test]
    fn priority_first_then_fifo() {
        let mut entries = vec![entry(1, "a"), entry(2, "b"), entry(3, "c"), entry(4, "d")];
        entries[2].priority = Priority::Critical;
        entries[3].priority = Priority::High;
        entries[0].priority = Priority::Low;
        assert_eq!(plan(&entries, options(0, 10)).send, vec![3, 4, 2, 1]);
        assert_eq!(plan(&entries, options(0, 2)).send, vec![3, 4]);
    }

    #[test]
    fn priority_never_overtakes_the_same_entity() {
        let mut entries = vec![entry(1, "a"), entry(2, "a")];
        entries[1].priority = Priority::Critical;
        assert_eq!(plan(&entries, options(0, 10)).send, vec![1]);
    }

    #[test]
    fn dependencies_hold_until_done() {
        let mut entries = vec![entry(1, "a"), entry(2, "b")];
        entries[1].depends_on = vec![1];
        assert_eq!(plan(&entries, options(0, 10)).send, vec![1]);
        entries[0].state = State::InFlight;
        entries[0].lease_until = Some(100);
        assert_eq!(plan(&entries, options(0, 10)).send, Vec::<EntryId>::new());
        entries[0].state = State::Done;
        assert_eq!(plan(&entries, options(0, 10)).send, vec![2]);
        // A dependency gone from the queue was done.
        assert_eq!(plan(&entries[1..], options(0, 10)).send, vec![2]);
    }

    #[test]
    fn a_failed_dependency_blocks_and_a_retry_unblocks() {
        let mut entries = vec![entry(1, "a"), entry(2, "b"), entry(3, "c")];
        entries[0].state = State::Failed;
        entries[1].depends_on = vec![1];
        entries[2].depends_on = vec![2];
        let first = plan(&entries, options(0, 10));
        assert_eq!(first.block, vec![(2, 1), (3, 2)]);
        assert!(first.send.is_empty());

        entries[1].state = State::Blocked;
        entries[2].state = State::Blocked;
        entries[0].state = State::Pending;
        let second = plan(&entries, options(0, 10));
        assert_eq!(second.unblock, vec![2, 3]);
        assert_eq!(second.send, vec![1]);
    }

    #[test]
    fn a_cancelled_dependency_blocks_but_a_cancelled_earlier_edit_does_not() {
        let mut entries = vec![entry(1, "a"), entry(2, "a"), entry(3, "b")];
        entries[0].state = State::Cancelled;
        entries[2].depends_on = vec![1];
        let plan = plan(&entries, options(0, 10));
        assert_eq!(plan.send, vec![2]);
        assert_eq!(plan.block, vec![(3, 1)]);
    }

    #[test]
    fn a_failed_earlier_edit_blocks_later_edits_of_its_entity() {
        let mut entries = vec![entry(1, "a"), entry(2, "a")];
        entries[0].state = State::Failed;
        assert_eq!(plan(&entries, options(0, 10)).block, vec![(2, 1)]);
    }

    #[test]
    fn conflicts_and_paused_entries_hold_their_entity() {
        for state in [State::Conflict, State::PausedAuth] {
            let mut entries = vec![entry(1, "a"), entry(2, "a")];
            entries[0].state = state;
            let plan = plan(&entries, options(0, 10));
            assert!(plan.send.is_empty() && plan.block.is_empty(), "{state}");
        }
    }

    #[test]
    fn backoff_is_waited_and_reported_as_wake_time() {
        let mut entries = vec![entry(1, "a"), entry(2, "b")];
        entries[0].state = State::WaitingRetry;
        entries[0].next_attempt_at = Some(500);
        let early = plan(&entries, options(100, 10));
        assert_eq!(early.send, vec![2]);
        assert_eq!(early.next_wake_at, Some(500));
        assert_eq!(plan(&entries, options(500, 10)).send, vec![1, 2]);
    }

    #[test]
    fn offline_backoff_is_skipped_when_the_network_may_be_back() {
        let mut entries = vec![entry(1, "a")];
        entries[0].next_attempt_at = Some(10_000);
        assert!(plan(&entries, options(0, 10)).send.is_empty());
        let mut back = options(0, 10);
        back.network_maybe_back = true;
        assert_eq!(plan(&entries, back).send, vec![1]);
        // A server's Retry-After is honoured even then.
        entries[0].state = State::WaitingRetry;
        assert!(plan(&entries, back).send.is_empty());
    }

    #[test]
    fn an_expired_lease_is_eligible_again() {
        let mut entries = vec![entry(1, "a")];
        entries[0].state = State::InFlight;
        entries[0].lease_until = Some(1_000);
        assert!(plan(&entries, options(999, 10)).send.is_empty());
        assert_eq!(plan(&entries, options(1_000, 10)).send, vec![1]);
    }

    #[test]
    fn entries_without_entity_are_independent() {
        let entries = [entry(1, ""), entry(2, "")];
        assert_eq!(plan(&entries, options(0, 10)).send, vec![1, 2]);
    }

    fn arbitrary_queue() -> impl Strategy<Value = Vec<Entry>> {
        let states = prop::sample::select(vec![
            State::Pending,
            State::InFlight,
            State::WaitingRetry,
            State::Failed,
            State::Blocked,
            State::Conflict,
            State::Done,
            State::Cancelled,
        ]);
        prop::collection::vec(
            (
                0u8..4,
                states,
                0usize..4,
                prop::collection::vec(1u64..30, 0..2),
                0u64..3,
            ),
            1..30,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(index, (entity, state, priority, deps, wait))| {
                    let id = index as u64 + 1;
                    let mut e = entry(id, &format!("e{entity}"));
                    e.state = state;
                    e.priority = Priority::ALL[priority];
                    e.depends_on = deps.into_iter().filter(|d| *d < id).collect();
                    e.next_attempt_at = Some(wait * 100);
                    e.lease_until = Some(wait * 100);
                    e
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_order_entries_come_in_does_not_change_the_plan(
            entries in arbitrary_queue(), now in 0u64..400, slots in 1usize..8, seed in any::<u64>(),
        ) {
            let mut shuffled: Vec<&Entry> = entries.iter().collect();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for index in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(index, (state % (index as u64 + 1)) as usize);
            }
            prop_assert_eq!(plan(shuffled, options(now, slots)), plan(&entries, options(now, slots)));
        }

        #[test]
        fn never_ahead_of_an_open_earlier_entry_or_an_unfinished_dependency(
            entries in arbitrary_queue(), now in 0u64..400, slots in 1usize..8,
        ) {
            let plan = plan(&entries, options(now, slots));
            prop_assert!(plan.send.len() <= slots);
            let by_id: HashMap<EntryId, &Entry> = entries.iter().map(|e| (e.id, e)).collect();
            for id in &plan.send {
                let sent = by_id[id];
                prop_assert!(matches!(sent.state, State::Pending | State::WaitingRetry | State::InFlight | State::Blocked));
                for earlier in entries.iter().filter(|e| e.id < *id && e.entity == sent.entity) {
                    prop_assert!(earlier.state.is_final(), "{} sent before open {}", id, earlier.id);
                }
                for dependency in &sent.depends_on {
                    prop_assert!(matches!(by_id[dependency].state, State::Done), "{} sent before dependency {}", id, dependency);
                }
            }
            // Priority order among what was sent, FIFO within a priority.
            for pair in plan.send.windows(2) {
                let (a, b) = (by_id[&pair[0]], by_id[&pair[1]]);
                prop_assert!(a.priority > b.priority || (a.priority == b.priority && a.id < b.id));
            }
            // Nothing eligible that was left out outranks what was sent.
            if plan.send.len() < slots {
                let again = super::plan(&entries, options(now, 1000));
                prop_assert_eq!(again.send.len(), plan.send.len());
            }
        }
    }
}
