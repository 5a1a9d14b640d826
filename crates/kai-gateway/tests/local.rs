//! The built-in `local` provider: every model in the local store is offered as `local/NAME`,
//! routed to the embedded runtime, and follows the store as models come and go.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use kai_config::{
    DeploymentSettings, Environment, LOCAL_PROVIDER, ModelSettings, ProviderKind, Settings,
};
use kai_core::UserId;
use kai_gateway::{Caller, Gateway, GatewayError, LocalModels, Source};
use kai_model_store::{LocalModelKind, Manifest, ModelFormat, ModelStore};
use kai_models::chat::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, Message, Role,
};
use kai_models::{ChatStream, Provider, ProviderError};
use kai_store::testing::TestDatabase;

/// Stands in for the embedded runtime: answers with the model it was asked for.
#[derive(Debug, Default)]
struct EchoRuntime {
    asked: Mutex<Vec<String>>,
}

impl Provider for EchoRuntime {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        self.asked.lock().unwrap().push(request.model.clone());
        Box::pin(async move {
            Ok(ChatResponse {
                id: None,
                message: Message::text(Role::Assistant, format!("from {}", request.model)),
                finish_reason: FinishReason::Stop,
                usage: None,
                system_fingerprint: None,
            })
        })
    }

    fn chat_stream<'a>(
        &'a self,
        _request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>> {
        Box::pin(async { Err(ProviderError::unsupported("not in this test")) })
    }

    fn embed<'a>(
        &'a self,
        _request: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>> {
        Box::pin(async { Err(ProviderError::unsupported("not in this test")) })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

fn install(store: &ModelStore, name: &str, kind: LocalModelKind) {
    let dir = store.root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = Manifest {
        name: name.into(),
        kind,
        format: match kind {
            LocalModelKind::Chat => ModelFormat::Gguf,
            LocalModelKind::Embedding => ModelFormat::BertSafetensors,
        },
        source: format!("/nowhere/{name}"),
        weights: "weights".into(),
        files: Vec::new(),
        pulled_at: time::OffsetDateTime::now_utc(),
    };
    std::fs::write(
        dir.join(kai_model_store::MANIFEST),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
}

fn names(gateway: &Gateway) -> Vec<String> {
    gateway
        .table()
        .models
        .iter()
        .map(|m| m.settings.name.clone())
        .collect()
}

#[tokio::test]
async fn the_local_store_is_served_as_local_models() {
    let db = TestDatabase::new().await;
    let store = ModelStore::new(db.dir().join("models"));
    install(&store, "aaa-embed", LocalModelKind::Embedding);
    install(&store, "zzz-chat", LocalModelKind::Chat);
    let runtime = Arc::new(EchoRuntime::default());
    let mut settings = Settings::defaults(db.dir().to_owned());
    // A configured model may route to the built-in provider too.
    settings.models.push(ModelSettings::new(
        "fast",
        vec![DeploymentSettings::new(LOCAL_PROVIDER, "zzz-chat")],
    ));
    let gateway = Gateway::new(
        db.store().await,
        &settings,
        Environment::default(),
        Some(LocalModels {
            provider: runtime.clone(),
            store: store.clone(),
        }),
        None,
    )
    .await
    .unwrap();

    // Chat models first, so that "the first model" chats.
    assert_eq!(
        names(&gateway),
        ["fast", "local/zzz-chat", "local/aaa-embed"]
    );
    let table = gateway.table();
    let provider = table.provider(LOCAL_PROVIDER).unwrap();
    assert_eq!(provider.settings.kind, ProviderKind::Local);
    assert_eq!(provider.source, Source::Local);
    assert!(provider.problem.is_none());

    let caller = Caller {
        user_id: UserId::new(),
        api_key_id: None,
        request_id: "test".into(),
    };
    let request = ChatRequest::new("ignored", vec![Message::text(Role::User, "hi")]);
    for model in ["local/zzz-chat", "fast"] {
        let answer = gateway.chat(&caller, model, &request).await.unwrap();
        assert_eq!(answer.value.message.joined_text(), "from zzz-chat");
        assert_eq!(answer.provider, LOCAL_PROVIDER);
    }
    assert_eq!(*runtime.asked.lock().unwrap(), ["zzz-chat", "zzz-chat"]);

    // Local models are managed through the store, not the catalog API.
    let err = gateway.delete_model("local/zzz-chat").await.unwrap_err();
    assert!(
        matches!(&err, GatewayError::Conflict(m) if m.contains("kai models")),
        "{err}"
    );

    // A model pulled or removed by another process shows up at the next refresh.
    install(&store, "new-chat", LocalModelKind::Chat);
    std::fs::remove_dir_all(store.root().join("aaa-embed")).unwrap();
    gateway.refresh().await.unwrap();
    assert_eq!(
        names(&gateway),
        ["fast", "local/new-chat", "local/zzz-chat"]
    );
}

#[tokio::test]
async fn with_local_models_off_the_provider_says_so() {
    let db = TestDatabase::new().await;
    let mut settings = Settings::defaults(db.dir().to_owned());
    settings.models.push(ModelSettings::new(
        "fast",
        vec![DeploymentSettings::new(LOCAL_PROVIDER, "smollm2")],
    ));
    let gateway = Gateway::new(
        db.store().await,
        &settings,
        Environment::default(),
        None,
        None,
    )
    .await
    .unwrap();
    let table = gateway.table();
    let problem = table.provider(LOCAL_PROVIDER).unwrap().problem.clone();
    assert!(
        problem.as_deref().unwrap().contains("local.enabled"),
        "{problem:?}"
    );
    let caller = Caller {
        user_id: UserId::new(),
        api_key_id: None,
        request_id: "test".into(),
    };
    let request = ChatRequest::new("ignored", vec![Message::text(Role::User, "hi")]);
    let err = gateway.chat(&caller, "fast", &request).await.unwrap_err();
    assert!(err.to_string().contains("local.enabled"), "{err}");
}
