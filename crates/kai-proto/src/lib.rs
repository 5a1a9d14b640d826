//! The wire types of kai's HTTP API.
//!
//! Every type that crosses the API boundary, bodies and query strings alike, is defined here
//! and nowhere else: the server serialises them, the OpenAPI document is generated from them,
//! and clients (the TypeScript client, tests, the command line's `--json` output) deserialise
//! them. Domain types in `kai-core` stay free of serialisation; the `From` impls here are the
//! one place they meet the wire. Types of the services above (the vault's, the gateway's) are
//! converted where both are in view: in the service that shares the conversion between front
//! ends (`kai-trust`), or in `kai-server`.
//!
//! Request types and query strings refuse unknown fields, so a misspelt field is an error
//! rather than silently ignored.

mod accounts;
mod agents;
mod gateway;
mod knowledge;
mod local;
pub mod openai;
mod problem;
mod query;
mod realtime;
mod trust;

pub use accounts::{
    ApiKey, AuthMethod, ChangePasswordRequest, CreateApiKeyRequest, CreateUserRequest,
    CreatedApiKey, Credential, LoginRequest, LogoutRequest, Me, Password, RefreshRequest, Role,
    Scope, TokenResponse, UpdateUserRequest, User,
};
pub use agents::{
    Agent, AgentDefinition, AgentHook, AgentLimits, AgentList, AgentRequest, ConsentGrant,
    ConsentPolicy, DecideRequest, HookEvent, McpHook, Prompt, PromptList, PromptQuery,
    PromptRequest, PromptVersionRequest, RequestKind, RequestStatus, Run, RunEvent, RunEvents,
    RunEventsQuery, RunList, RunListQuery, RunRequest, RunRequestList, RunRequestQuery, RunStatus,
    RunUsage, Schedule, ScheduleList, ScheduleRequest, StartRunRequest, ToolCalling,
};
pub use gateway::{
    ConversationDetail, ConversationMessage, ConversationPage, ConversationReply,
    ConversationSummary, CreateConversationRequest, DeploymentDefinition, DeploymentStatus,
    KeyBudget, KeyBudgets, ModelDefinition, ModelInfo, Provider, ProviderDefinition,
    SendMessageRequest, UpdateConversationRequest, UsageGroupTotals, UsageRecord, UsageRecordPage,
    UsageReport, UsageTotals,
};
pub use knowledge::{
    Artifact, ArtifactListQuery, ArtifactPage, ArtifactVersion, ArtifactVersions, Backlink,
    Collection, CollectionList, ContentQuery, CreateCollectionRequest, CreateMemoryRequest,
    CreateNoteRequest, DiffQuery, FusionMethod, IndexState, KnowledgeOptions, KnowledgeSource,
    KnowledgeStatus, Memory, MemoryList, MemoryListQuery, MemorySource, Note, NoteLink, NoteList,
    NoteListQuery, NoteSummary, NoteVersion, NoteVersions, Passage, SearchHit, SearchMode,
    SearchRequest, SearchResponse, UpdateArtifactRequest, UpdateNoteRequest, UploadQuery,
};
pub use local::{LocalModel, LocalModelFile, PullLocalModelRequest};
pub use problem::{FieldError, PROBLEM_CONTENT_TYPE, Problem};
pub use query::{
    AuditQuery, ConsistencyQuery, ConversationPageQuery, InclusionQuery, SecretScopeQuery,
    UsageQuery, UsageRecordsQuery,
};
pub use realtime::{
    ChatFailed, ChatFinished, ChatStarted, ChatToken, ConsentDecided, ConversationChange,
    ConversationChanged, KnowledgeProgress, RunStatusChanged, WsClientMessage, WsEventData,
    WsServerMessage,
};
pub use trust::{
    AuditCheckpoint, AuditEntry, AuditPage, ConsistencyProof, InclusionProof, KdfParams,
    NodeIdentity, PutSecretRequest, SecretInfo, SecretWithValue, VaultPassphraseRequest,
    VaultStatus,
};

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /healthz`: the process is alive.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`: the process can serve requests.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready` (a node that is not ready answers with a problem instead).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The database backend: `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub database: &'static str,
}
