//! The router against loopback upstreams: strategies, retries, fail-over, cool-down and probing,
//! per-minute limits, fallbacks, and streams that fail before and after reaching the client.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kai_config::{ProviderKind, Strategy};
use kai_models::ErrorKind;
use kai_models::chat::{ChatEvent, ChatRequest, Message, Role};
use kai_models::router::{
    BreakerPolicy, Deployment, DeploymentState, Health, RetryPolicy, Route, RouteErrorKind, Router,
};
use kai_providers::ProviderSpec;
use kai_providers::testing::{MockUpstream, Reply, StreamEnd};
use serde_json::json;

const PATH: &str = "/v1/chat/completions";

fn policy() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(1),
        breaker: BreakerPolicy {
            failures: 3,
            cooldown: Duration::from_millis(300),
        },
    }
}

fn deployment(upstream: &MockUpstream, model: &str) -> Deployment {
    let spec = ProviderSpec {
        name: format!("up{}", upstream.addr().port()),
        kind: ProviderKind::OpenaiCompatible,
        base_url: upstream.url("/v1").parse().unwrap(),
        api_key: None,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        stream_idle_timeout: Duration::from_millis(500),
        headers: Default::default(),
        proxies: Default::default(),
    };
    let client = kai_providers::connect(&spec).unwrap();
    Deployment::new(
        spec.name,
        model,
        client,
        Arc::new(DeploymentState::default()),
    )
}

fn ok(text: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    )
}

fn failing(status: u16) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": format!("mock failure {status}")}}),
    )
}

/// The events of a streamed answer: role, `text`, " more", the finish reason, `[DONE]`.
fn stream_events(text: &str) -> Vec<String> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    vec![
        chunk(
            json!({"role": "assistant", "content": ""}),
            serde_json::Value::Null,
        ),
        chunk(json!({"content": text}), serde_json::Value::Null),
        chunk(json!({"content": " more"}), serde_json::Value::Null),
        chunk(json!({}), json!("stop")),
        "[DONE]".to_owned(),
    ]
}

/// The first `count` events of a streamed answer, then `end`.
fn stream_reply_part(text: &str, count: usize, end: StreamEnd) -> Reply {
    let data = stream_events(text);
    let data: Vec<&str> = data.iter().take(count).map(String::as_str).collect();
    Reply::sse(&data).then(end)
}

fn stream_reply(text: &str) -> Reply {
    stream_reply_part(text, 5, StreamEnd::Close)
}

fn request() -> ChatRequest {
    ChatRequest::new("ignored", vec![Message::text(Role::User, "Hi")])
}

fn route(name: &str, strategy: Strategy, deployments: Vec<Deployment>) -> Route {
    let mut route = Route::new(name, deployments);
    route.strategy = strategy;
    route
}

#[tokio::test]
async fn a_failing_deployment_is_failed_over_and_cooled_down() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, failing(503));
    b.always(PATH, ok("from b"));
    let first = deployment(&a, "model-a");
    let state_a = Arc::clone(first.state());
    let router = Router::new(
        vec![route(
            "smart",
            Strategy::Priority,
            vec![first, deployment(&b, "model-b")],
        )],
        policy(),
    );
    for _ in 0..6 {
        let routed = router.chat("smart", &request()).await.unwrap();
        assert_eq!(routed.value.message.joined_text(), "from b");
        assert_eq!(routed.upstream_model, "model-b");
    }
    // Three failures in a row cooled `a` down; later requests went straight to `b`.
    assert_eq!(a.requests().len(), 3);
    assert!(matches!(
        state_a.health(Instant::now()),
        Health::CoolingDown { .. }
    ));
    assert_eq!(b.requests().len(), 6);
    // What b received names b's model, not the client's.
    assert_eq!(b.last_request().json["model"], "model-b");
}

#[tokio::test]
async fn with_every_deployment_failing_the_client_gets_one_clear_error() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, failing(500));
    b.always(PATH, failing(503));
    let router = Router::new(
        vec![route(
            "smart",
            Strategy::Priority,
            vec![deployment(&a, "model-a"), deployment(&b, "model-b")],
        )],
        policy(),
    );
    let err = router.chat("smart", &request()).await.unwrap_err();
    // a, then b, then a again: the last failure names the kind.
    assert_eq!(err.kind, RouteErrorKind::Failed(ErrorKind::Server));
    assert_eq!(err.attempts.len(), 3, "retries + 1 attempts: {err:?}");
    let port_a = a.addr().port();
    assert!(
        err.message.contains(&format!(
            "up{port_a}/model-a: HTTP 500: mock failure 500 (2 attempts)"
        )),
        "{err}"
    );
    assert!(
        err.message.contains("model-b: HTTP 503: mock failure 503"),
        "{err}"
    );
    assert!(err.message.contains("every attempt failed"), "{err}");
}

#[tokio::test]
async fn retry_after_is_honoured_and_too_long_a_wait_is_not_sat_out() {
    let a = MockUpstream::start().await;
    a.push(PATH, failing(429).header("retry-after", "0.3"));
    a.push(PATH, ok("after waiting"));
    let router = Router::new(
        vec![route("m", Strategy::Priority, vec![deployment(&a, "x")])],
        policy(),
    );
    let started = Instant::now();
    let routed = router.chat("m", &request()).await.unwrap();
    assert_eq!(routed.value.message.joined_text(), "after waiting");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(routed.attempts.len(), 2);

    // A wait longer than the policy's longest is reported, not waited out.
    a.push(PATH, failing(429).header("retry-after", "120"));
    let err = router.chat("m", &request()).await.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(a.requests().len(), 3);
}

#[tokio::test]
async fn a_request_the_provider_refuses_is_not_retried() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, failing(400));
    b.always(PATH, ok("b"));
    let router = Router::new(
        vec![route(
            "m",
            Strategy::Priority,
            vec![deployment(&a, "x"), deployment(&b, "y")],
        )],
        policy(),
    );
    let err = router.chat("m", &request()).await.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::Rejected(ErrorKind::BadRequest));
    assert_eq!(err.upstream_status, Some(400));
    assert_eq!((a.requests().len(), b.requests().len()), (1, 0));
}

#[tokio::test]
async fn fallbacks_catch_long_prompts_and_failed_models() {
    let (small, big, spare) = (
        MockUpstream::start().await,
        MockUpstream::start().await,
        MockUpstream::start().await,
    );
    small.always(
        PATH,
        Reply::json(
            400,
            json!({"error": {"message": "This model's maximum context length is 4096 tokens"}}),
        ),
    );
    big.always(PATH, ok("big answered"));
    spare.always(PATH, ok("spare answered"));
    let mut small_route = route("small", Strategy::Priority, vec![deployment(&small, "s")]);
    small_route.context_window_fallbacks = vec!["big".into()];
    let broken = MockUpstream::start().await;
    broken.always(PATH, failing(502));
    let mut broken_route = route("broken", Strategy::Priority, vec![deployment(&broken, "b")]);
    broken_route.fallbacks = vec!["spare".into()];
    let router = Router::new(
        vec![
            small_route,
            route("big", Strategy::Priority, vec![deployment(&big, "g")]),
            broken_route,
            route("spare", Strategy::Priority, vec![deployment(&spare, "p")]),
        ],
        policy(),
    );
    let routed = router.chat("small", &request()).await.unwrap();
    assert_eq!(routed.model, "big");
    assert_eq!(routed.value.message.joined_text(), "big answered");
    assert_eq!(routed.attempts.len(), 2);

    let routed = router.chat("broken", &request()).await.unwrap();
    assert_eq!(routed.model, "spare");
    assert_eq!(broken.requests().len(), 3);
}

#[tokio::test]
async fn a_stream_fails_over_until_its_first_event_and_not_after() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    // `a` breaks before sending anything; `b` answers.
    a.push(PATH, stream_reply("never").cut_after(0, StreamEnd::Reset));
    b.push(PATH, stream_reply("Hello"));
    let router = Router::new(
        vec![route(
            "m",
            Strategy::Priority,
            vec![deployment(&a, "x"), deployment(&b, "y")],
        )],
        policy(),
    );
    let routed = router.chat_stream("m", &request()).await.unwrap();
    assert_eq!(routed.upstream_model, "y");
    let events: Vec<_> = routed.value.collect().await;
    assert_eq!(events[0], Ok(ChatEvent::Text("Hello".into())));
    assert!(events.iter().all(Result::is_ok));

    // Once an event went out, a failure ends the stream; nothing is retried.
    a.push(PATH, stream_reply_part("partial", 2, StreamEnd::Reset));
    let (before_a, before_b) = (a.requests().len(), b.requests().len());
    let routed = router.chat_stream("m", &request()).await.unwrap();
    assert_eq!(routed.upstream_model, "x");
    let events: Vec<_> = routed.value.collect().await;
    assert_eq!(events[0], Ok(ChatEvent::Text("partial".into())));
    assert_eq!(
        events.last().unwrap().as_ref().unwrap_err().kind,
        ErrorKind::Interrupted
    );
    assert_eq!(
        (a.requests().len(), b.requests().len()),
        (before_a + 1, before_b)
    );
}

#[tokio::test]
async fn a_cooled_down_deployment_is_probed_back_in() {
    let a = MockUpstream::start().await;
    for _ in 0..3 {
        a.push(PATH, failing(500));
    }
    a.always(PATH, ok("recovered"));
    let only = deployment(&a, "x");
    let state = Arc::clone(only.state());
    let mut single = route("m", Strategy::Priority, vec![only]);
    single.retries = 0;
    let router = Router::new(vec![single], policy());
    for _ in 0..3 {
        router.chat("m", &request()).await.unwrap_err();
    }
    // Cooling down: refused at once, without calling upstream, saying when to come back.
    let err = router.chat("m", &request()).await.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::Unavailable);
    assert!(err.retry_after.is_some());
    assert!(err.message.contains("cooling down"), "{err}");
    assert_eq!(a.requests().len(), 3);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let routed = router.chat("m", &request()).await.unwrap();
    assert_eq!(routed.value.message.joined_text(), "recovered");
    assert_eq!(state.health(Instant::now()), Health::Healthy);
}

#[tokio::test]
async fn weights_share_the_traffic() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, ok("a"));
    b.always(PATH, ok("b"));
    let router = Router::new(
        vec![route(
            "m",
            Strategy::Weighted,
            vec![
                deployment(&a, "x").with_weight(3),
                deployment(&b, "y").with_weight(1),
            ],
        )],
        policy(),
    );
    for _ in 0..200 {
        router.chat("m", &request()).await.unwrap();
    }
    // 150 expected; the bounds are many standard deviations wide.
    let heavy = a.requests().len();
    assert!(
        (110..=185).contains(&heavy),
        "{heavy} of 200 went to the weight-3 deployment"
    );
}

#[tokio::test]
async fn least_busy_avoids_the_deployment_with_requests_in_flight() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, ok("a"));
    b.always(PATH, ok("b"));
    let router = Router::new(
        vec![route(
            "m",
            Strategy::LeastBusy,
            vec![deployment(&a, "x"), deployment(&b, "y")],
        )],
        policy(),
    );
    // Two requests in flight on `a` (held by another caller of the same deployment).
    let state_a = Arc::clone(router.route("m").unwrap().deployments[0].state());
    let held = [
        state_a.admit(Instant::now(), 0),
        state_a.admit(Instant::now(), 0),
    ];
    for _ in 0..5 {
        assert_eq!(
            router.chat("m", &request()).await.unwrap().upstream_model,
            "y"
        );
    }
    assert_eq!((a.requests().len(), b.requests().len()), (0, 5));
    // Idle again, the two share the load.
    drop(held);
    for _ in 0..40 {
        router.chat("m", &request()).await.unwrap();
    }
    assert!(a.requests().len() >= 5, "{}", a.requests().len());
}

#[tokio::test]
async fn latency_prefers_the_faster_deployment_once_both_are_measured() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, ok("slow").after(Duration::from_millis(150)));
    b.always(PATH, ok("fast"));
    let router = Router::new(
        vec![route(
            "m",
            Strategy::Latency,
            vec![deployment(&a, "x"), deployment(&b, "y")],
        )],
        policy(),
    );
    // The first two measure one each (the unmeasured go first).
    router.chat("m", &request()).await.unwrap();
    router.chat("m", &request()).await.unwrap();
    assert_eq!((a.requests().len(), b.requests().len()), (1, 1));
    for _ in 0..5 {
        assert_eq!(
            router.chat("m", &request()).await.unwrap().upstream_model,
            "y"
        );
    }
}

#[tokio::test]
async fn per_minute_limits_send_traffic_elsewhere_then_refuse() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    a.always(PATH, ok("a"));
    b.always(PATH, ok("b"));
    let router = Router::new(
        vec![route(
            "m",
            Strategy::Priority,
            vec![
                deployment(&a, "x").with_limits(Some(2), None),
                deployment(&b, "y").with_limits(Some(1), None),
            ],
        )],
        RetryPolicy {
            // Shorter than a minute: a full window is reported, not waited out.
            max_delay: Duration::from_millis(100),
            ..policy()
        },
    );
    let served: Vec<String> = {
        let mut served = Vec::new();
        for _ in 0..3 {
            served.push(router.chat("m", &request()).await.unwrap().upstream_model);
        }
        served
    };
    assert_eq!(served, ["x", "x", "y"]);
    let err = router.chat("m", &request()).await.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::RateLimited);
    assert!(err.retry_after.unwrap() > Duration::from_secs(50));
    assert!(err.message.contains("per-minute limit"), "{err}");
}

#[tokio::test]
async fn an_unknown_model_names_the_known_ones() {
    let router = Router::new(
        vec![Route::new("alpha", vec![]), Route::new("beta", vec![])],
        policy(),
    );
    let err = router.chat("gamma", &request()).await.unwrap_err();
    assert_eq!(err.kind, RouteErrorKind::UnknownModel);
    assert!(err.message.contains("alpha, beta"), "{err}");
}

#[tokio::test]
async fn a_stream_dropped_by_its_reader_frees_its_place() {
    let a = MockUpstream::start().await;
    a.push(PATH, stream_reply_part("Hello", 2, StreamEnd::Stall));
    let only = deployment(&a, "x");
    let state = Arc::clone(only.state());
    let router = Router::new(vec![route("m", Strategy::Priority, vec![only])], policy());
    let mut routed = router.chat_stream("m", &request()).await.unwrap();
    assert_eq!(
        routed.value.next().await,
        Some(Ok(ChatEvent::Text("Hello".into())))
    );
    assert_eq!(state.in_flight(), 1);
    drop(routed);
    assert_eq!(state.in_flight(), 0);
    assert_eq!(state.consecutive_failures(), 0);
}
