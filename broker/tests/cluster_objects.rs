//! The object store client against a real S3 server (SeaweedFS): objects written under fresh names, ranged
//! reads, deletes, and a start-up probe that names what is wrong (bad credentials, missing bucket).
// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use bytes::Bytes;
use runnel_broker::cluster::objects::{ObjectStorage, ObjectStorageError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_written_once_read_by_range_and_a_bad_setup_fails_the_probe() {
    let s3 = engines::SeaweedFs::start();
    let url = format!("s3://{}/cluster-a", s3.bucket);
    let store = ObjectStorage::open(&url, &s3.settings()).expect("open");
    // The gateway may answer its port before it serves the bucket: the probe is the readiness check.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Err(e) = store.probe().await {
        assert!(std::time::Instant::now() < deadline, "probe: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let data = Bytes::from(
        (0..10_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let a = store.put_new(data.clone()).await.expect("put");
    let b = store.put_new(data.clone()).await.expect("put again");
    assert_ne!(a, b, "every upload gets a name of its own");
    let part = store.get_range(&a, 400..800).await.expect("range");
    assert_eq!(part, data.slice(400..800));
    store.delete(&a).await.expect("delete");
    assert!(
        store.get_range(&a, 0..4).await.is_err(),
        "a deleted object is gone"
    );
    assert_eq!(
        store.get_range(&b, 0..4).await.expect("b"),
        data.slice(0..4)
    );

    let mut wrong = s3.settings();
    for (k, v) in &mut wrong {
        if k == "aws_secret_access_key" {
            *v = "not-the-secret".into();
        }
    }
    let bad = ObjectStorage::open(&url, &wrong).expect("open");
    assert!(
        matches!(bad.probe().await, Err(ObjectStorageError::Probe { .. })),
        "a wrong secret fails the probe"
    );
    let no_bucket = ObjectStorage::open("s3://no-such-bucket/x", &s3.settings()).expect("open");
    assert!(
        no_bucket.probe().await.is_err(),
        "a missing bucket fails the probe"
    );
    assert!(matches!(
        ObjectStorage::open("http://x", &[]),
        Err(ObjectStorageError::BadUrl(_))
    ));
}
