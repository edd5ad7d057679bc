//! Property test: whatever bytes a client sends, the router neither panics nor hangs; it answers
//! with a 4xx or closes the connection.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use slipway_router::RouterConfig;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: TestRouter,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let router = runtime.block_on(async {
            let web = backend("web.1").await;
            TestRouter::start(
                demo(web),
                RouterConfig {
                    header_read_timeout: Duration::from_millis(500),
                    request_timeout: Duration::from_millis(500),
                    ..RouterConfig::default()
                },
            )
            .await
        });
        Fixture { runtime, router }
    })
}

fn check(request: &[u8]) -> Result<(), TestCaseError> {
    let fixture = fixture();
    let answer = fixture
        .runtime
        .block_on(raw_exchange(fixture.router.addr, request, true));
    let text = String::from_utf8_lossy(&answer);
    prop_assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.0 4"),
        "unexpected answer {:?} to {:?}",
        text,
        String::from_utf8_lossy(request)
    );
    // The router is still alive and routing.
    let reply = fixture.runtime.block_on(async {
        let mut client = Client::connect(fixture.router.addr).await;
        client.get("demo.localhost", "/").await
    });
    prop_assert_eq!(reply.status, 200);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_get_4xx_or_close(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check(&bytes)?;
    }

    #[test]
    fn mangled_request_heads_get_4xx_or_close(
        method in "[A-Z]{0,8}|[\\x00-\\xff]{1,4}",
        target in "[ -~]{0,40}",
        header in "[\\x00-\\xff]{0,200}",
    ) {
        let request = format!("{method} /{target} HTTP/1.1\r\nHost: nowhere.localhost\r\n{header}\r\n\r\n");
        check(request.as_bytes())?;
    }
}
