//! A real server on an ephemeral loopback port, over a disposable database of the backend the
//! environment selects, and a client for it.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // each test file uses a different part

use std::sync::Arc;
use std::time::Duration;

use kai_auth::Accounts;
use kai_config::Settings;
use kai_server::AppState;
use kai_store::testing::TestDatabase;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use utoipa_axum::router::OpenApiRouter;

/// The token-signing secret of every test server, so tests can forge tokens with it.
pub const TOKEN_SECRET: &str = "test-secret-test-secret-test-secret!";
pub const ADMIN: &str = "root";
pub const PASSWORD: &str = "correct horse battery";

/// The environment test servers resolve credential references in.
pub fn env() -> kai_config::Environment {
    [("UPSTREAM_KEY", "sk-upstream-test-key")]
        .into_iter()
        .collect()
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    /// The background indexing workers, stopped with the server.
    pub workers: Option<kai_jobs::WorkersHandle>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with default settings and an admin `root`.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}, OpenApiRouter::new()).await
    }

    /// A server whose settings `configure` adjusts, with `extra` routes next to the API's.
    pub async fn start_with(
        configure: impl FnOnce(&mut Settings),
        extra: OpenApiRouter<AppState>,
    ) -> TestServer {
        kai_providers::install_tls_provider();
        let db = TestDatabase::new().await;
        let mut settings = Settings::defaults(db.dir().to_owned());
        // OWASP's minimum: the tests derive vault keys often.
        settings.vault.kdf_memory = kai_config::ByteSize::mib(19);
        settings.vault.kdf_iterations = 2;
        settings.auth.token_secret = Some(kai_config::Secret::new(TOKEN_SECRET.into()));
        configure(&mut settings);
        let store = db.store().await;
        let accounts = Arc::new(
            Accounts::new(store.clone(), settings.auth.clone())
                .await
                .unwrap(),
        );
        let vault = kai_vault::Vault::new(store.clone(), &settings.vault);
        let gateway =
            kai_gateway::Gateway::new(store.clone(), &settings, env(), None, Some(vault.clone()))
                .await
                .unwrap();
        accounts
            .create_user(ADMIN, PASSWORD, kai_core::Role::Admin)
            .await
            .unwrap();
        let fetcher = kai_model_store::Fetcher::new(&settings.local, &env())
            .unwrap()
            .with_retries(3, Duration::from_millis(10));
        let audit = kai_audit::AuditLog::new(store.clone(), vault.clone(), &settings.audit);
        let trust = kai_trust::Trust::new(accounts, vault, audit, Some(gateway.clone()));
        let queue = kai_jobs::Queue::new(store.clone());
        let events = kai_events::Events::start(store.clone()).await.unwrap();
        let knowledge = kai_knowledge::Knowledge::open(
            &db.dir().join("knowledge"),
            store.clone(),
            trust.vault().clone(),
            queue.clone(),
            gateway.clone(),
            events.clone(),
            settings.knowledge.clone(),
            kai_knowledge::chunk::TokenSizer::estimate(),
        )
        .await
        .unwrap();
        let agents = kai_agent::Agents::new(
            store.clone(),
            gateway.clone(),
            queue.clone(),
            trust.audit().clone(),
            Some(knowledge.clone()),
            kai_mcp::McpServers::new(Vec::new()).unwrap(),
            events.clone(),
            settings.agents.clone(),
            db.dir().join("workspaces"),
        )
        .unwrap();
        let handler = knowledge.clone();
        let workers = kai_jobs::Workers::new(queue)
            .poll_interval(Duration::from_millis(100))
            .handle(
                kai_knowledge::INDEX_JOB,
                kai_jobs::KindSettings::default(),
                move |job: kai_jobs::JobContext| {
                    let knowledge = handler.clone();
                    async move { knowledge.run_index_job(job).await }
                },
            )
            .handle(
                kai_agent::RUN_JOB,
                kai_jobs::KindSettings::default(),
                agents.handler(),
            )
            .handle(
                kai_agent::SCHEDULED_RUN_JOB,
                kai_jobs::KindSettings::default(),
                agents.scheduled_run_handler(),
            )
            .start();
        let state = AppState::new(
            trust,
            gateway,
            knowledge,
            agents,
            events,
            settings.http.clone(),
            kai_model_store::ModelStore::new(&settings.local.models_dir),
            fetcher,
        );
        let app = kai_server::app_from(kai_server::routes().merge(extra), state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(kai_server::serve(
            listener,
            app,
            async move {
                stop.await.ok();
            },
            &settings.http,
        ));
        TestServer {
            base,
            client: reqwest::Client::new(),
            state,
            db,
            shutdown: Some(shutdown),
            workers: Some(workers),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts the graceful shutdown.
    pub fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Sends a request with an optional bearer credential and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Reply {
        self.send(Method::GET, path, Some(bearer), None).await
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, bearer, Some(body)).await
    }

    /// Logs in and returns the token response.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let reply = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.body);
        reply.body
    }

    /// An access token of the admin.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a user with role `user` and returns an access token of theirs.
    pub async fn user_token(&self, username: &str) -> String {
        let admin = self.admin_token().await;
        let reply = self
            .post(
                "/api/v1/users",
                Some(&admin),
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        self.login(username, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an API key with `scopes` using `bearer` and returns the whole response.
    pub async fn create_key(&self, bearer: &str, scopes: &[&str]) -> Value {
        let reply = self
            .post(
                "/api/v1/keys",
                Some(bearer),
                json!({"name": "test key", "scopes": scopes}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Asserts this is a problem document of `kind` with `status`, as every error must be.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, kind: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(
            self.body["type"],
            format!("urn:kai:problem:{kind}"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status.as_u16(), "{}", self.text);
        assert!(
            self.body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            self.text
        );
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            self.text
        );
        let request_id = self
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap();
        assert_eq!(self.body["request_id"], request_id, "{}", self.text);
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

/// Waits a little longer than `duration`, for tests of expiry.
pub async fn wait_past(duration: Duration) {
    tokio::time::sleep(duration + Duration::from_millis(100)).await;
}
