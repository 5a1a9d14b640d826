//! Stored records in the API's shape: what events carry, and what `kai-server` answers with,
//! so that an event's data and the HTTP API's answer are one shape.

use kai_proto::{IndexState, RequestKind, RequestStatus, RunEvent, RunRequest, RunStatus};
use kai_store::{RunEventRecord, RunRequestKind, RunRequestRecord, RunRequestStatus};

/// A run's status.
#[must_use]
pub fn run_status(status: kai_store::RunStatus) -> RunStatus {
    match status {
        kai_store::RunStatus::Queued => RunStatus::Queued,
        kai_store::RunStatus::Running => RunStatus::Running,
        kai_store::RunStatus::Waiting => RunStatus::Waiting,
        kai_store::RunStatus::Paused => RunStatus::Paused,
        kai_store::RunStatus::Succeeded => RunStatus::Succeeded,
        kai_store::RunStatus::Failed => RunStatus::Failed,
        kai_store::RunStatus::Cancelled => RunStatus::Cancelled,
    }
}

/// A run's timeline event, as `/api/v1/runs/{id}/events` gives it.
#[must_use]
pub fn run_event(event: RunEventRecord) -> RunEvent {
    RunEvent {
        seq: event.seq,
        at: event.at,
        kind: event.kind,
        data: serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null),
    }
}

/// Where a request stands.
#[must_use]
pub fn request_status(status: RunRequestStatus) -> RequestStatus {
    match status {
        RunRequestStatus::Pending => RequestStatus::Pending,
        RunRequestStatus::Approved => RequestStatus::Approved,
        RunRequestStatus::Denied => RequestStatus::Denied,
        RunRequestStatus::Expired => RequestStatus::Expired,
    }
}

/// A request a run made, as `/api/v1/requests` gives it.
#[must_use]
pub fn run_request(request: RunRequestRecord) -> RunRequest {
    RunRequest {
        id: request.id.as_uuid(),
        run_id: request.run_id.as_uuid(),
        agent_id: request.agent_id.as_uuid(),
        kind: match request.kind {
            RunRequestKind::Consent => RequestKind::Consent,
            RunRequestKind::Question => RequestKind::Question,
            RunRequestKind::Outcome => RequestKind::Outcome,
        },
        tool: request.tool,
        details: serde_json::from_str(&request.details).unwrap_or(serde_json::Value::Null),
        status: request_status(request.status),
        answer: request.answer,
        remember: request.remember,
        expires_at: request.expires_at,
        created_at: request.created_at,
    }
}

/// How far indexing an item's version has come.
#[must_use]
pub fn index_state(state: kai_store::IndexState) -> IndexState {
    match state {
        kai_store::IndexState::Pending => IndexState::Pending,
        kai_store::IndexState::KeywordOnly => IndexState::KeywordOnly,
        kai_store::IndexState::Indexed => IndexState::Indexed,
        kai_store::IndexState::Failed => IndexState::Failed,
        kai_store::IndexState::Skipped => IndexState::Skipped,
        kai_store::IndexState::Superseded => IndexState::Superseded,
    }
}
