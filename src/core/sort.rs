//! An in-place heapsort for the few lists the core sorts.
//!
//! The standard library's sorts are tuned for speed, and each element type
//! they sort brings about 4 KB of their code into the wasm (17 KB for the
//! four types the core sorted). This one is a few hundred bytes per type
//! and needs no allocation. It is not stable: it is used where no two items
//! compare equal (entry ids) or where equal items are the same (strings).

/// Sorts `items` so that no item is `less` than the one before it.
pub fn sort_by<T>(items: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let len = items.len();
    // A max-heap first; then its top goes to the end, one item at a time.
    for root in (0..len / 2).rev() {
        sift_down(items, root, len, &mut less);
    }
    for end in (1..len).rev() {
        items.swap(0, end);
        sift_down(items, 0, end, &mut less);
    }
}

/// Moves `items[root]` down until neither child within `..end` is greater.
fn sift_down<T>(
    items: &mut [T],
    mut root: usize,
    end: usize,
    less: &mut impl FnMut(&T, &T) -> bool,
) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && less(&items[child], &items[child + 1]) {
            child += 1;
        }
        if !less(&items[root], &items[child]) {
            return;
        }
        items.swap(root, child);
        root = child;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::sort_by;
    use proptest::prelude::*;

    #[test]
    fn sorts_small_lists() {
        let mut empty: Vec<u32> = Vec::new();
        sort_by(&mut empty, |a, b| a < b);
        assert!(empty.is_empty());
        let mut one = vec![7];
        sort_by(&mut one, |a, b| a < b);
        assert_eq!(one, [7]);
        let mut three = vec![3, 1, 2];
        sort_by(&mut three, |a, b| a < b);
        assert_eq!(three, [1, 2, 3]);
        let mut descending = vec![1, 3, 2];
        sort_by(&mut descending, |a, b| a > b);
        assert_eq!(descending, [3, 2, 1]);
    }

    proptest! {
        #[test]
        fn sorts_as_the_standard_library_does(mut numbers in prop::collection::vec(0u32..50, 0..300)) {
            let mut expected = numbers.clone();
            expected.sort();
            sort_by(&mut numbers, |a, b| a < b);
            prop_assert_eq!(numbers, expected);
        }

        #[test]
        fn sorts_strings(mut strings in prop::collection::vec("[a-c/~0-1]{0,4}", 0..60)) {
            let mut expected = strings.clone();
            expected.sort();
            sort_by(&mut strings, |a, b| a < b);
            prop_assert_eq!(strings, expected);
        }
    }
}
