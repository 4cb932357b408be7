//! The adoption example, run as a test so it cannot rot: a program's own two systems, one
//! request each, a verified shutdown with no socket left open.

#[allow(dead_code)]
#[path = "../examples/adopt.rs"]
mod adopt;

use singularis_engine::lifecycle::ShutdownEvent;

#[tokio::test]
async fn a_foreign_program_adopts_the_engine_alone() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (answers, report) = adopt::run(Some(tx)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answers, ["weather: sunny", "news: sunny"]);
    // A system stops using the systems it uses before they start closing: news releases
    // weather first. (Which one's sockets are checked last is not an order.)
    let mut steps = Vec::new();
    while let Ok(e) = rx.try_recv() {
        match e {
            ShutdownEvent::Closing(id) => steps.push(format!("closing {id}")),
            ShutdownEvent::Released(id) => steps.push(format!("released {id}")),
            _ => {}
        }
    }
    assert_eq!(
        steps,
        [
            "closing news",
            "released news",
            "closing weather",
            "released weather"
        ]
    );
    let mut closed: Vec<&str> = report.systems.iter().map(|s| s.name.name()).collect();
    closed.sort_unstable();
    assert_eq!(closed, ["news", "weather"]);
    assert_eq!((report.closed, report.forced, report.errors), (2, 0, 0));
    if std::env::var_os("SINGULARIS_TESTS_REQUIRE_ALL").is_some() || report.verified {
        assert!(report.verified, "{:?}", report.unverified_reason);
        assert_eq!(report.sockets_open_after, Some(0));
    }
}
