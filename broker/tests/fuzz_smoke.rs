//! The fuzz smoke run: 10^5 mutated client frames through the request path and the record decoders, with
//! no panic (an abort would end the test process). `scripts/fuzz` runs the long version.

use std::path::Path;

#[test]
fn a_hundred_thousand_mutated_frames_cause_no_panic() {
    let seeds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/seeds");
    let seeds = runnel_broker::fuzz::load_seeds(&seeds_dir).expect("seed frames");
    assert!(seeds.len() >= 30, "the seeds cover the common APIs");
    let report =
        runnel_broker::fuzz::run(&seeds, 100_000, 42, None, |_| {}).expect("fuzz run starts");
    assert_eq!(report.inputs, 100_000);
    assert_eq!(report.panics, 0, "{report:?}");
    assert!(
        report.answered > 1_000,
        "mutations still reach the handlers: {report:?}"
    );
    assert!(
        report.closed > 1_000,
        "and malformed ones are refused: {report:?}"
    );
}
