//! The queue in memory: every entry not yet removed, by id, with the counts
//! that status and enqueue need kept up to date on each change, so neither
//! scans the queue.
//!
//! Each change goes through [`Queue::insert`], [`Queue::remove`] or
//! [`Queue::update_all`], which take the old entry out of the counts and put
//! the new one in.

use super::entry::{Entry, EntryId};
use super::lifecycle::State;
use std::collections::{BTreeMap, HashMap};

/// The entries, by id, with counts per state and open entries per entity.
#[derive(Debug, Default)]
pub struct Queue {
    entries: BTreeMap<EntryId, Entry>,
    by_state: [usize; State::ALL.len()],
    open_by_entity: HashMap<String, usize>,
    body_bytes: u64,
}

fn state_index(state: State) -> usize {
    State::ALL
        .iter()
        .position(|candidate| *candidate == state)
        .unwrap_or(0)
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Self {
        Queue::default()
    }

    /// Adds an entry, or replaces the one with the same id; gives the old one.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.count(&entry, true);
        let old = self.entries.insert(entry.id, entry);
        if let Some(old) = &old {
            self.count(old, false);
        }
        old
    }

    /// Removes an entry; gives it back if it was there.
    pub fn remove(&mut self, id: EntryId) -> Option<Entry> {
        let old = self.entries.remove(&id)?;
        self.count(&old, false);
        Some(old)
    }

    /// Changes every entry with `change`, keeping the counts right.
    pub fn update_all(&mut self, mut change: impl FnMut(&mut Entry)) {
        let mut by_state = [0; State::ALL.len()];
        let mut open_by_entity: HashMap<String, usize> = HashMap::new();
        let mut body_bytes = 0;
        for entry in self.entries.values_mut() {
            change(entry);
            by_state[state_index(entry.state)] += 1;
            body_bytes += entry.body_bytes;
            if let (true, Some(entity)) = (entry.state.is_open(), &entry.entity) {
                *open_by_entity.entry(entity.clone()).or_default() += 1;
            }
        }
        self.by_state = by_state;
        self.open_by_entity = open_by_entity;
        self.body_bytes = body_bytes;
    }

    /// The entry with this id.
    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Every entry, oldest (lowest id) first.
    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries are in `state`.
    pub fn count_in(&self, state: State) -> usize {
        self.by_state[state_index(state)]
    }

    /// The body bytes of every entry (their bodies stay stored until removed).
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// How many entries a drain may send: pending, waiting to retry, or in
    /// flight (left by a worker that died mid-attempt).
    pub fn sendable(&self) -> usize {
        [State::Pending, State::WaitingRetry, State::InFlight]
            .into_iter()
            .map(|state| self.count_in(state))
            .sum()
    }

    /// True if an open entry (one not yet final) has this entity key.
    pub fn entity_is_open(&self, entity: &str) -> bool {
        self.open_by_entity.contains_key(entity)
    }

    fn count(&mut self, entry: &Entry, add: bool) {
        let slot = &mut self.by_state[state_index(entry.state)];
        *slot = if add {
            *slot + 1
        } else {
            slot.saturating_sub(1)
        };
        self.body_bytes = if add {
            self.body_bytes + entry.body_bytes
        } else {
            self.body_bytes.saturating_sub(entry.body_bytes)
        };
        let Some(entity) = entry.entity.as_ref().filter(|_| entry.state.is_open()) else {
            return;
        };
        if add {
            *self.open_by_entity.entry(entity.clone()).or_default() += 1;
        } else if let Some(open) = self.open_by_entity.get_mut(entity) {
            *open -= 1;
            if *open == 0 {
                self.open_by_entity.remove(entity);
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: EntryId, entity: Option<&str>, state: State) -> Entry {
        let mut entry = Entry::new("PUT", "http://127.0.0.1/api/x", "k", 0, 1);
        entry.id = id;
        entry.body_bytes = id * 10;
        entry.entity = entity.map(String::from);
        entry.state = state;
        entry
    }

    /// The counts recomputed by a scan, to compare with the kept ones.
    fn scanned(queue: &Queue) -> (Vec<usize>, Vec<(String, usize)>, u64) {
        let by_state = State::ALL
            .iter()
            .map(|state| queue.values().filter(|e| e.state == *state).count())
            .collect();
        let mut open: HashMap<String, usize> = HashMap::new();
        for e in queue.values().filter(|e| e.state.is_open()) {
            if let Some(entity) = &e.entity {
                *open.entry(entity.clone()).or_default() += 1;
            }
        }
        let mut open: Vec<_> = open.into_iter().collect();
        open.sort();
        (by_state, open, queue.values().map(|e| e.body_bytes).sum())
    }

    fn kept(queue: &Queue) -> (Vec<usize>, Vec<(String, usize)>, u64) {
        let by_state = State::ALL.iter().map(|s| queue.count_in(*s)).collect();
        let mut open: Vec<_> = queue
            .open_by_entity
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        open.sort();
        (by_state, open, queue.body_bytes())
    }

    #[test]
    fn counts_follow_inserts_replacements_and_removals() {
        let mut queue = Queue::new();
        queue.insert(entry(1, Some("/a"), State::Pending));
        queue.insert(entry(2, Some("/a"), State::WaitingRetry));
        queue.insert(entry(3, None, State::Pending));
        assert_eq!(queue.count_in(State::Pending), 2);
        assert!(queue.entity_is_open("/a"));
        assert_eq!(queue.sendable(), 3);
        // Replacing entry 1 with a final state moves its count.
        let old = queue.insert(entry(1, Some("/a"), State::Superseded));
        assert_eq!(old.map(|e| e.state), Some(State::Pending));
        assert_eq!(queue.count_in(State::Pending), 1);
        assert_eq!(queue.count_in(State::Superseded), 1);
        assert!(queue.entity_is_open("/a"), "entry 2 is still open");
        queue.remove(2);
        assert!(!queue.entity_is_open("/a"));
        assert_eq!(queue.remove(2), None);
        queue.update_all(|e| e.state = State::Cancelled);
        assert_eq!(queue.sendable(), 0);
        assert_eq!(queue.count_in(State::Cancelled), 2);
        assert_eq!(queue.len(), 2);
    }

    proptest! {
        #[test]
        fn kept_counts_equal_a_scan_after_any_changes(
            ops in prop::collection::vec((0u8..3, 1u64..20, 0usize..State::ALL.len(), prop::option::of(0u8..4)), 0..200)
        ) {
            let mut queue = Queue::new();
            for (op, id, state, entity) in ops {
                let entity = entity.map(|n| format!("/e/{n}"));
                match op {
                    0 => { queue.insert(entry(id, entity.as_deref(), State::ALL[state])); }
                    1 => { queue.remove(id); }
                    _ => queue.update_all(|e| if e.id % 2 == id % 2 { e.state = State::ALL[state]; }),
                }
                prop_assert_eq!(kept(&queue), scanned(&queue));
            }
        }
    }
}
