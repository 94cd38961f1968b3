//! The queue in memory: every entry not yet removed, by id, with the counts
//! that status and enqueue need kept up to date on each change, so neither
//! scans the queue. Open entries are also counted per user, so entries held
//! for a user who is not the current one are known without a scan.
//!
//! Each change goes through [`Queue::insert`], [`Queue::remove`] or
//! [`Queue::update_all`], which take the old entry out of the counts and put
//! the new one in.

use super::entry::{Entry, EntryId};
use super::lifecycle::State;
use std::collections::{BTreeMap, HashMap};

/// The entries, by id, with counts per state and open entries per entity
/// and user.
#[derive(Debug, Default)]
pub struct Queue {
    entries: BTreeMap<EntryId, Entry>,
    by_state: [usize; State::ALL.len()],
    /// Open entries per entity, per user (None: stored without a user).
    open_by_entity: HashMap<String, HashMap<Option<String>, usize>>,
    /// Open and sendable entries per user, for entries that have one.
    by_user: HashMap<String, UserCounts>,
    body_bytes: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct UserCounts {
    open: usize,
    sendable: usize,
}

/// States a drain may send from.
const SENDABLE: [State; 3] = [State::Pending, State::WaitingRetry, State::InFlight];

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
        for entry in self.entries.values_mut() {
            change(entry);
        }
        self.by_state = [0; State::ALL.len()];
        self.open_by_entity = HashMap::new();
        self.by_user = HashMap::new();
        self.body_bytes = 0;
        let entries = std::mem::take(&mut self.entries);
        for entry in entries.values() {
            self.count(entry, true);
        }
        self.entries = entries;
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
        SENDABLE.into_iter().map(|state| self.count_in(state)).sum()
    }

    /// How many entries a drain may send while `user` is the current user:
    /// those of other users are held.
    pub fn sendable_for(&self, user: Option<&str>) -> usize {
        self.sendable() - self.held_counts(user).sendable
    }

    /// How many open entries (not yet final) are held because they belong
    /// to a user other than `user`.
    pub fn held(&self, user: Option<&str>) -> usize {
        self.held_counts(user).open
    }

    fn held_counts(&self, user: Option<&str>) -> UserCounts {
        self.by_user
            .iter()
            .filter(|(name, _)| Some(name.as_str()) != user)
            .fold(UserCounts::default(), |sum, (_, counts)| UserCounts {
                open: sum.open + counts.open,
                sendable: sum.sendable + counts.sendable,
            })
    }

    /// True if an open entry (one not yet final) has this entity key.
    pub fn entity_is_open(&self, entity: &str) -> bool {
        self.open_by_entity.contains_key(entity)
    }

    /// True if an open entry that is not held while `user` is current has
    /// this entity key: a new request of that entity must queue behind it.
    pub fn entity_is_open_for(&self, entity: &str, user: Option<&str>) -> bool {
        self.open_by_entity.get(entity).is_some_and(|users| {
            users.contains_key(&None)
                || user.is_some_and(|u| users.contains_key(&Some(u.to_owned())))
        })
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
        if !entry.state.is_open() {
            return;
        }
        if let Some(user) = &entry.user {
            let sendable = usize::from(SENDABLE.contains(&entry.state));
            if add {
                let counts = self.by_user.entry(user.clone()).or_default();
                counts.open += 1;
                counts.sendable += sendable;
            } else if let Some(counts) = self.by_user.get_mut(user) {
                counts.open = counts.open.saturating_sub(1);
                counts.sendable = counts.sendable.saturating_sub(sendable);
                if counts.open == 0 {
                    self.by_user.remove(user);
                }
            }
        }
        let Some(entity) = entry.entity.as_ref() else {
            return;
        };
        if add {
            *self
                .open_by_entity
                .entry(entity.clone())
                .or_default()
                .entry(entry.user.clone())
                .or_default() += 1;
        } else if let Some(users) = self.open_by_entity.get_mut(entity) {
            if let Some(open) = users.get_mut(&entry.user) {
                *open -= 1;
                if *open == 0 {
                    users.remove(&entry.user);
                }
            }
            if users.is_empty() {
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

    const USERS: [Option<&str>; 3] = [None, Some("alice"), Some("bob")];

    type Counts = (Vec<usize>, Vec<(String, bool, bool, bool)>, u64, Vec<usize>);

    /// The counts recomputed by a scan, to compare with the kept ones.
    fn scanned(queue: &Queue) -> Counts {
        let by_state = State::ALL
            .iter()
            .map(|state| queue.values().filter(|e| e.state == *state).count())
            .collect();
        let mut entities: Vec<String> = queue.values().filter_map(|e| e.entity.clone()).collect();
        entities.sort();
        entities.dedup();
        let open_for = |entity: &str, user: Option<&str>| {
            queue.values().any(|e| {
                e.state.is_open() && e.entity.as_deref() == Some(entity) && !e.held_for(user)
            })
        };
        let open = entities
            .into_iter()
            .map(|entity| {
                let flags = USERS.map(|user| open_for(&entity, user));
                (entity, flags[0], flags[1], flags[2])
            })
            .filter(|(_, a, b, c)| *a || *b || *c)
            .collect();
        let held = USERS
            .iter()
            .flat_map(|user| {
                let held = queue
                    .values()
                    .filter(|e| e.state.is_open() && e.held_for(*user));
                let sendable = queue
                    .values()
                    .filter(|e| !e.held_for(*user) && SENDABLE.contains(&e.state));
                [held.count(), sendable.count()]
            })
            .collect();
        (
            by_state,
            open,
            queue.values().map(|e| e.body_bytes).sum(),
            held,
        )
    }

    fn kept(queue: &Queue) -> Counts {
        let by_state = State::ALL.iter().map(|s| queue.count_in(*s)).collect();
        let mut open: Vec<_> = queue
            .open_by_entity
            .keys()
            .map(|entity| {
                let flags = USERS.map(|user| queue.entity_is_open_for(entity, user));
                (entity.clone(), flags[0], flags[1], flags[2])
            })
            .filter(|(_, a, b, c)| *a || *b || *c)
            .collect();
        open.sort();
        let held = USERS
            .iter()
            .flat_map(|user| [queue.held(*user), queue.sendable_for(*user)])
            .collect();
        (by_state, open, queue.body_bytes(), held)
    }

    #[test]
    fn entries_of_other_users_are_counted_as_held() {
        let mut queue = Queue::new();
        let mut alice = entry(1, Some("/a"), State::Pending);
        alice.user = Some("alice".into());
        queue.insert(alice);
        queue.insert(entry(2, Some("/b"), State::WaitingRetry));
        let mut bob = entry(3, Some("/a"), State::Failed);
        bob.user = Some("bob".into());
        queue.insert(bob);
        assert_eq!(queue.held(Some("alice")), 1, "bob's failed entry");
        assert_eq!(queue.held(None), 2);
        assert_eq!(queue.sendable_for(Some("alice")), 2);
        assert_eq!(queue.sendable_for(Some("bob")), 1);
        assert_eq!(queue.sendable_for(None), 1, "only the entry without a user");
        assert!(queue.entity_is_open_for("/a", Some("alice")));
        assert!(
            !queue.entity_is_open_for("/a", Some("carol")),
            "held entries do not hold /a back"
        );
        assert!(
            queue.entity_is_open_for("/b", Some("carol")),
            "an entry without a user is never held"
        );
        queue.remove(1);
        assert_eq!(queue.held(Some("bob")), 0);
        assert!(queue.entity_is_open("/a"));
        assert!(!queue.entity_is_open_for("/a", Some("alice")));
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
            ops in prop::collection::vec((0u8..3, 1u64..20, 0usize..State::ALL.len(), prop::option::of(0u8..4), 0usize..3), 0..200)
        ) {
            let mut queue = Queue::new();
            for (op, id, state, entity, user) in ops {
                let entity = entity.map(|n| format!("/e/{n}"));
                match op {
                    0 => {
                        let mut new = entry(id, entity.as_deref(), State::ALL[state]);
                        new.user = USERS[user].map(String::from);
                        queue.insert(new);
                    }
                    1 => { queue.remove(id); }
                    _ => queue.update_all(|e| if e.id % 2 == id % 2 { e.state = State::ALL[state]; }),
                }
                prop_assert_eq!(kept(&queue), scanned(&queue));
            }
        }
    }
}
