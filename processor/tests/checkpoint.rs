//! Stateful operators checkpoint through their stores: a graph restored from the changes taken after each
//! batch (the changelog, latest value per key) goes on exactly as the graph that never stopped.
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use runnel_processor::{BatchInfo, DStream};

const INTERVAL: u64 = 100;

fn words(id: u64) -> Vec<String> {
    let mut x = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..(id % 5 + 2))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("w{}", x % 6)
        })
        .collect()
}

fn batch(id: u64) -> BatchInfo {
    BatchInfo {
        id,
        time_ms: id * INTERVAL,
        task: "s0-p0".into(),
        ranges: Vec::new(),
    }
}

type Outputs = Box<dyn Fn(&BatchInfo) -> Vec<String>>;

/// A job with every kind of state: a window, an incremental keyed window, update_state_by_key and
/// map_with_state with a timeout. Returns its outputs (rendered) and the graph's root stream.
fn job() -> (Outputs, DStream<String>) {
    let src = DStream::from_fn(INTERVAL, |b| words(b.id));
    let pairs = src.map(|w| (w.clone(), 1u64));
    let window = src.window(400, 200).expect("window");
    let inc = pairs
        .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, |n| *n > 0, 500, 100)
        .expect("incremental window");
    let totals = pairs.update_state_by_key(|vs: &[u64], old: Option<&u64>| {
        Some(old.copied().unwrap_or(0) + vs.iter().sum::<u64>())
    });
    let sessions = pairs
        .map_with_state(
            Some(300),
            |k: &String, v, st: &mut Option<u64>, timed_out| {
                if timed_out {
                    return Some(format!("{k} closed at {}", st.unwrap_or(0)));
                }
                *st = Some(st.unwrap_or(0) + v.copied().unwrap_or(0));
                None
            },
        )
        .expect("map_with_state");
    let out: Outputs = Box::new(move |b| {
        vec![
            format!("{:?}", window.compute(b)),
            format!("{:?}", inc.compute(b)),
            format!("{:?}", totals.compute(b)),
            format!("{:?}", sessions.compute(b)),
        ]
    });
    (out, src)
}

type Changelog = HashMap<(usize, Vec<u8>), Vec<u8>>;

fn take_changes(root: &DStream<String>, log: &mut Changelog) {
    for (i, store) in root.graph().stores().iter().enumerate() {
        for (k, v) in store.take_changes().expect("changes") {
            match v {
                Some(v) => log.insert((i, k), v),
                None => log.remove(&(i, k)),
            };
        }
    }
}

#[test]
fn a_restored_graph_continues_exactly_like_the_one_that_never_stopped() {
    let (reference, _) = job();
    let expected: Vec<Vec<String>> = (0..60).map(|id| reference(&batch(id))).collect();
    for stop_after in [1u64, 3, 7, 12, 29, 44] {
        let (first, root) = job();
        let mut log = Changelog::new();
        for id in 0..stop_after {
            assert_eq!(first(&batch(id)), expected[id as usize]);
            take_changes(&root, &mut log);
        }
        // A new process: a fresh graph, restored from the changelog.
        let (second, root2) = job();
        let stores = root2.graph().stores();
        assert_eq!(stores.len(), 4, "one store per stateful operator");
        for (i, store) in stores.iter().enumerate() {
            let entries: Vec<(Vec<u8>, Vec<u8>)> = log
                .iter()
                .filter(|((s, _), _)| *s == i)
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            store.restore(entries).expect("restore");
        }
        for id in stop_after..60 {
            assert_eq!(
                second(&batch(id)),
                expected[id as usize],
                "batch {id} after a restore at {stop_after}"
            );
        }
    }
}

#[test]
fn the_changelog_stays_bounded_by_the_state() {
    let (run, root) = job();
    let mut log = Changelog::new();
    for id in 0..500 {
        run(&batch(id));
        take_changes(&root, &mut log);
    }
    // Window slots are reused (4 + 5 slots), keys are few (6 words in two keyed stores).
    assert!(
        log.len() <= 4 + 5 + 6 + 6,
        "changelog holds {} keys",
        log.len()
    );
}
