//! The adoption example, run as a test so it cannot rot: a program's own two systems, one
//! request each, a verified shutdown with no socket left open.

#[allow(dead_code)]
#[path = "../examples/adopt.rs"]
mod adopt;

#[tokio::test]
async fn a_foreign_program_adopts_the_engine_alone() {
    let (answers, report) = adopt::run().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answers, ["weather: sunny", "news: sunny"]);
    // A system closes before the systems it uses: news first.
    let order: Vec<&str> = report.systems.iter().map(|s| s.name.name()).collect();
    assert_eq!(order, ["news", "weather"]);
    assert_eq!((report.closed, report.forced, report.errors), (2, 0, 0));
    if std::env::var_os("SINGULARIS_TESTS_REQUIRE_ALL").is_some() || report.verified {
        assert!(report.verified, "{:?}", report.unverified_reason);
        assert_eq!(report.sockets_open_after, Some(0));
    }
}
