//! Every operator against a brute-force reference computed from the same per-batch input, and windows (plain
//! and incremental) against recomputation from scratch.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use runnel_processor::{BatchInfo, DStream, ProcessorError};

const INTERVAL: u64 = 1000;

/// The words of batch `id`: a deterministic pseudo-random mix, so a recomputed batch is the same.
fn words(id: u64) -> Vec<String> {
    let mut x = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..(id % 7 + 3))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("w{}", x % 5)
        })
        .collect()
}

fn batch(id: u64) -> BatchInfo {
    BatchInfo {
        id,
        time_ms: (id + 1) * INTERVAL,
        task: "s0-p0".to_string(),
        ranges: Vec::new(),
    }
}

fn source() -> DStream<String> {
    DStream::from_fn(INTERVAL, |b| words(b.id))
}

fn counts<'a>(ws: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for w in ws {
        *m.entry(w.clone()).or_insert(0) += 1;
    }
    m
}

#[test]
fn per_batch_operators_match_the_reference() {
    let s = source();
    let lens = s.map(|w| w.len());
    let short = s.filter(|w| w.ends_with('1') || w.ends_with('2'));
    let chars = s.flat_map(|w| w.chars().collect::<Vec<_>>());
    let n = s.count();
    let longest = s.reduce(|a, b| if b > a { b.clone() } else { a.clone() });
    let by_value = s.count_by_value();
    let pairs = s.map(|w| (w.clone(), 1u64));
    let summed = pairs.reduce_by_key(|a, b| a + b);
    let grouped = pairs.group_by_key();
    let table: Arc<HashMap<String, &'static str>> = Arc::new(
        [("w0".to_string(), "zero"), ("w3".to_string(), "three")]
            .into_iter()
            .collect(),
    );
    let joined = pairs.join(Arc::clone(&table));
    let left = pairs.left_join(table);
    let both = s.union(&short);
    let keyed = s.key_by(|w| w.len());
    let mapped = summed.map_values(|c| c * 10);
    let transformed = s.transform(|b, xs| vec![b.id * 100 + xs.len() as u64]);
    for id in 0..30 {
        let b = batch(id);
        let ws = words(id);
        assert_eq!(
            *lens.compute(&b),
            ws.iter().map(String::len).collect::<Vec<_>>()
        );
        let expect_short: Vec<String> = ws
            .iter()
            .filter(|w| w.ends_with('1') || w.ends_with('2'))
            .cloned()
            .collect();
        assert_eq!(*short.compute(&b), expect_short);
        assert_eq!(
            *chars.compute(&b),
            ws.iter().flat_map(|w| w.chars()).collect::<Vec<_>>()
        );
        assert_eq!(*n.compute(&b), vec![ws.len() as u64]);
        assert_eq!(
            *longest.compute(&b),
            vec![ws.iter().max().cloned().unwrap_or_default()]
        );
        let c = counts(&ws);
        assert_eq!(
            *by_value.compute(&b),
            c.clone().into_iter().collect::<Vec<_>>()
        );
        assert_eq!(
            *summed.compute(&b),
            c.clone().into_iter().collect::<Vec<_>>()
        );
        let g = grouped.compute(&b);
        assert!(g.iter().all(|(k, vs)| vs.len() as u64 == c[k]));
        assert_eq!(
            joined.compute(&b).len(),
            ws.iter().filter(|w| *w == "w0" || *w == "w3").count()
        );
        let l = left.compute(&b);
        assert_eq!(l.len(), ws.len());
        assert!(l
            .iter()
            .all(|(k, (_, w))| w.is_some() == (k == "w0" || k == "w3")));
        let mut expect_union = ws.clone();
        expect_union.extend(expect_short.iter().cloned());
        assert_eq!(*both.compute(&b), expect_union);
        assert!(keyed.compute(&b).iter().all(|(k, w)| *k == w.len()));
        assert!(mapped.compute(&b).iter().all(|(k, v)| *v == c[k] * 10));
        assert_eq!(*transformed.compute(&b), vec![id * 100 + ws.len() as u64]);
    }
}

#[test]
fn windows_and_incremental_windows_agree_with_recomputation() {
    for (length, slide) in [(3, 1), (3, 2), (4, 4), (5, 3)] {
        let s = source();
        let window = s
            .window(length * INTERVAL, slide * INTERVAL)
            .expect("valid window");
        let count = s
            .count_by_window(length * INTERVAL, slide * INTERVAL)
            .expect("valid");
        let by_value = s
            .count_by_value_and_window(length * INTERVAL, slide * INTERVAL)
            .expect("valid");
        let incremental = s
            .map(|w| (w.clone(), 1u64))
            .reduce_by_key_and_window_inv(
                |a, b| a + b,
                |a, b| a - b,
                |v| *v > 0,
                length * INTERVAL,
                slide * INTERVAL,
            )
            .expect("valid");
        for id in 0..40u64 {
            let b = batch(id);
            let emits = (id + 1) % slide == 0;
            let first = (id + 1).saturating_sub(length);
            let expect: Vec<String> = (first..=id).flat_map(words).collect();
            let w = window.compute(&b);
            let c = count.compute(&b);
            let v = by_value.compute(&b);
            let inc = incremental.compute(&b);
            if emits {
                assert_eq!(*w, expect, "window ({length},{slide}) at {id}");
                assert_eq!(*c, vec![expect.len() as u64]);
                let reference: Vec<(String, u64)> = counts(&expect).into_iter().collect();
                assert_eq!(
                    *v, reference,
                    "count_by_value_and_window ({length},{slide}) at {id}"
                );
                assert_eq!(
                    *inc, reference,
                    "incremental window ({length},{slide}) at {id}"
                );
            } else {
                assert!(
                    w.is_empty() && c.is_empty() && v.is_empty() && inc.is_empty(),
                    "no output between slides"
                );
            }
        }
    }
}

#[test]
fn window_sizes_must_be_multiples_of_the_interval() {
    let s = source();
    assert_eq!(
        s.window(2500, 1000).err(),
        Some(ProcessorError::NotAMultiple {
            what: "window length",
            value_ms: 2500,
            interval_ms: 1000
        })
    );
    assert!(s.window(3000, 1500).is_err());
    assert!(s.window(0, 1000).is_err());
}

#[test]
fn a_stream_read_by_several_operators_is_computed_once_per_batch() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&calls);
    let s = DStream::from_fn(INTERVAL, move |b| {
        c.fetch_add(1, Ordering::SeqCst);
        words(b.id)
    });
    let a = s.count();
    let w = s.window(2 * INTERVAL, INTERVAL).expect("valid");
    for id in 0..10 {
        a.compute(&batch(id));
        w.compute(&batch(id));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 10);
}

#[test]
fn update_state_by_key_keeps_running_totals_and_drops_keys_on_none() {
    let totals =
        source()
            .map(|w| (w.clone(), 1u64))
            .update_state_by_key(|vs: &[u64], old: Option<&u64>| {
                let sum = old.copied().unwrap_or(0) + vs.iter().sum::<u64>();
                // Forget a word once it reached 20 occurrences.
                (sum < 20).then_some(sum)
            });
    let mut reference: BTreeMap<String, u64> = BTreeMap::new();
    for id in 0..40 {
        for w in words(id) {
            *reference.entry(w).or_insert(0) += 1;
        }
        reference.retain(|_, c| *c < 20);
        let got = totals.compute(&batch(id));
        assert_eq!(
            *got,
            reference.clone().into_iter().collect::<Vec<_>>(),
            "state after batch {id}"
        );
        // A forgotten word starts again from zero (brute force: restart its count).
    }
}

#[test]
fn map_with_state_emits_per_record_and_times_out_idle_keys() {
    // Key "a" appears in batches 0 and 1, "b" only in 0; a timeout of 2 batches.
    let s: DStream<(String, u64)> = DStream::from_fn(INTERVAL, |b| match b.id {
        0 => vec![("a".into(), 1), ("b".into(), 5)],
        1 => vec![("a".into(), 2)],
        _ => Vec::new(),
    });
    let mapped = s
        .map_with_state(
            Some(2 * INTERVAL),
            |k: &String, v: Option<&u64>, st: &mut Option<u64>, timing_out| {
                if timing_out {
                    return Some(format!("{k} timed out at {}", st.unwrap_or(0)));
                }
                let total = st.unwrap_or(0) + v.copied().unwrap_or(0);
                *st = Some(total);
                Some(format!("{k}={total}"))
            },
        )
        .expect("valid timeout");
    let out: Vec<Vec<String>> = (0..5)
        .map(|id| mapped.compute(&batch(id)).as_ref().clone())
        .collect();
    assert_eq!(out[0], vec!["a=1", "b=5"]);
    assert_eq!(out[1], vec!["a=3"]);
    assert_eq!(out[2], vec!["b timed out at 5"], "b idle since batch 0");
    assert_eq!(out[3], vec!["a timed out at 3"], "a idle since batch 1");
    assert!(out[4].is_empty());
    assert!(source()
        .map(|w| (w.clone(), 1u64))
        .map_with_state(Some(1500), |_, _, _: &mut Option<u64>, _| None::<u8>)
        .is_err());
}

#[test]
fn stream_joins_pair_values_of_the_same_batch_by_key() {
    let s = source();
    let left = s.map(|w| (w.clone(), w.len()));
    let right = s
        .filter(|w| !w.ends_with('4'))
        .map(|w| (w.clone(), format!("{w}!")));
    let inner = left.join_stream(&right);
    let outer = left.left_join_stream(&right);
    for id in 0..25 {
        let b = batch(id);
        let ws = words(id);
        let rs: Vec<(String, String)> = ws
            .iter()
            .filter(|w| !w.ends_with('4'))
            .map(|w| (w.clone(), format!("{w}!")))
            .collect();
        let mut expect_inner = Vec::new();
        let mut expect_outer = Vec::new();
        for w in &ws {
            let matches: Vec<&String> = rs.iter().filter(|(k, _)| k == w).map(|(_, v)| v).collect();
            for m in &matches {
                expect_inner.push((w.clone(), (w.len(), (*m).clone())));
                expect_outer.push((w.clone(), (w.len(), Some((*m).clone()))));
            }
            if matches.is_empty() {
                expect_outer.push((w.clone(), (w.len(), None)));
            }
        }
        assert_eq!(*inner.compute(&b), expect_inner, "batch {id}");
        assert_eq!(*outer.compute(&b), expect_outer, "batch {id}");
    }
}
