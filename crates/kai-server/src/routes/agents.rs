//! Agents, their runs (with timelines, streamed while they run), the requests runs make of
//! their owner, and prompt templates. Another user's agent, run or template is not found.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use kai_agent::{AgentView, Agents, NewAgentSchedule, RunView, ScheduleView};
use kai_auth::Credential;
use kai_core::{RunId, RunRequestId, Scope};
use kai_events::wire;
use kai_proto::{
    Agent, AgentDefinition, AgentList, AgentRequest, ConsentGrant, DecideRequest, Problem, Prompt,
    PromptList, PromptQuery, PromptRequest, PromptVersionRequest, Run, RunEvents, RunEventsQuery,
    RunList, RunListQuery, RunRequest, RunRequestList, RunRequestQuery, RunUsage, Schedule,
    ScheduleList, ScheduleRequest, StartRunRequest,
};
use kai_store::PromptRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Auth, path_id};
use crate::sse::EventStream;
use crate::state::AppState;

/// How often a stream looks for events written by other processes.
const STREAM_POLL: Duration = Duration::from_secs(1);

pub(crate) fn agents() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(start_run))
        .routes(routes!(revoke_grant))
}

pub(crate) fn runs() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(stream_run))
        .routes(routes!(pause_run))
        .routes(routes!(resume_run))
        .routes(routes!(cancel_run))
}

pub(crate) fn requests() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_requests))
        .routes(routes!(decide))
}

pub(crate) fn schedules() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules, create_schedule))
        .routes(routes!(get_schedule, delete_schedule))
        .routes(routes!(enable_schedule))
        .routes(routes!(disable_schedule))
}

pub(crate) fn prompts() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_prompts, create_prompt))
        .routes(routes!(get_prompt, delete_prompt))
        .routes(routes!(prompt_versions, add_prompt_version))
}

fn definition_from_wire(wire: AgentDefinition) -> Result<kai_agent::AgentDefinition, ApiError> {
    let value = serde_json::to_value(wire).map_err(|err| ApiError::internal(&err))?;
    serde_json::from_value(value)
        .map_err(|err| ApiError::invalid_field("definition", err.to_string()))
}

fn agent_to_wire(view: AgentView) -> Result<Agent, ApiError> {
    let value = serde_json::to_value(&view.definition).map_err(|err| ApiError::internal(&err))?;
    let definition: AgentDefinition =
        serde_json::from_value(value).map_err(|err| ApiError::internal(&err))?;
    Ok(Agent {
        id: view.record.id.as_uuid(),
        name: view.record.name,
        definition,
        grants: view
            .grants
            .into_iter()
            .map(|(tool, allow)| ConsentGrant { tool, allow })
            .collect(),
        created_at: view.record.created_at,
        updated_at: view.record.updated_at,
    })
}

fn run_to_wire(view: &RunView) -> Run {
    let used = view.state.used;
    Run {
        id: view.record.id.as_uuid(),
        agent_id: view.record.agent_id.as_uuid(),
        goal: view.record.goal.clone(),
        status: wire::run_status(view.record.status),
        plan: view
            .state
            .plan
            .as_ref()
            .map(|plan| plan.steps.iter().map(|s| s.title.clone()).collect())
            .unwrap_or_default(),
        step: view.state.step + 1,
        answer: view.answer().map(str::to_owned),
        error: view.record.error.clone(),
        waiting_on: view
            .state
            .waiting
            .as_deref()
            .filter(|_| view.record.status == kai_store::RunStatus::Waiting)
            .and_then(|id| id.parse().ok()),
        usage: RunUsage {
            steps: used.steps,
            model_calls: used.model_calls,
            tool_calls: used.tool_calls,
            input_tokens: used.input_tokens,
            output_tokens: used.output_tokens,
            running_ms: used.running_ms,
            cost_usd: used.cost_micros as f64 / 1_000_000.0,
        },
        last_event: view.record.last_seq,
        created_at: view.record.created_at,
        updated_at: view.record.updated_at,
        finished_at: view.record.finished_at,
    }
}

fn prompt_to_wire(prompt: PromptRecord) -> Prompt {
    Prompt {
        id: prompt.id.as_uuid(),
        variables: serde_json::from_str(&prompt.variables).unwrap_or_default(),
        name: prompt.name,
        description: prompt.description,
        version: prompt.version,
        latest_version: prompt.latest_version,
        template: prompt.template,
        created_at: prompt.created_at,
        updated_at: prompt.updated_at,
    }
}

fn agents_of(state: &AppState) -> &Agents {
    &state.agents
}

/// The caller's agents, by name. Needs `read`.
#[utoipa::path(get, path = "", tag = "agents", security(("bearer" = [])),
    responses((status = 200, description = "The agents", body = AgentList)))]
async fn list_agents(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<AgentList>, ApiError> {
    principal.require(Scope::Read)?;
    let agents = agents_of(&state).agents(principal.user.id).await?;
    Ok(Json(AgentList {
        agents: agents
            .into_iter()
            .map(agent_to_wire)
            .collect::<Result<_, _>>()?,
    }))
}

/// Defines an agent. Its instructions (or the stored prompt it names) are checked: a template
/// that uses a variable it does not declare is refused, naming it. Needs `write`.
#[utoipa::path(post, path = "", tag = "agents", security(("bearer" = [])),
    request_body = AgentRequest,
    responses(
        (status = 201, description = "Defined", body = Agent,
            headers(("location" = String, description = "The agent's URL"))),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The definition is not valid", body = Problem, content_type = "application/problem+json")))]
async fn create_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<AgentRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let definition = definition_from_wire(request.definition)?;
    let view = agents_of(&state)
        .create(principal.user.id, &request.name, definition)
        .await?;
    let agent = agent_to_wire(view)?;
    let location = format!("/api/v1/agents/{}", agent.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(agent),
    )
        .into_response())
}

/// An agent, by id or name. Needs `read`.
#[utoipa::path(get, path = "/{agent}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path, description = "The agent's id or name")),
    responses(
        (status = 200, description = "The agent", body = Agent),
        (status = 404, description = "No such agent of this user", body = Problem, content_type = "application/problem+json")))]
async fn get_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(agent): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    principal.require(Scope::Read)?;
    Ok(Json(agent_to_wire(
        agents_of(&state).agent(principal.user.id, &agent).await?,
    )?))
}

/// Replaces an agent's name and definition; runs already started keep the definition they
/// started with. Needs `write`.
#[utoipa::path(put, path = "/{agent}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path, description = "The agent's id or name")),
    request_body = AgentRequest,
    responses(
        (status = 200, description = "Replaced", body = Agent),
        (status = 404, description = "No such agent of this user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The definition is not valid", body = Problem, content_type = "application/problem+json")))]
async fn update_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(agent): Path<String>,
    ApiJson(request): ApiJson<AgentRequest>,
) -> Result<Json<Agent>, ApiError> {
    principal.require(Scope::Write)?;
    let definition = definition_from_wire(request.definition)?;
    let view = agents_of(&state)
        .update(principal.user.id, &agent, &request.name, definition)
        .await?;
    Ok(Json(agent_to_wire(view)?))
}

/// Deletes an agent with its runs; refused while one of them is running. Needs `write`.
#[utoipa::path(delete, path = "/{agent}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path, description = "The agent's id or name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such agent of this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run of it is working", body = Problem, content_type = "application/problem+json")))]
async fn delete_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(agent): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    agents_of(&state).delete(principal.user.id, &agent).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets the owner's standing answer ("always") for one of the agent's tools. Needs
/// `write`.
#[utoipa::path(delete, path = "/{agent}/grants/{tool}", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path, description = "The agent's id or name"),
           ("tool" = String, Path, description = "The tool")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No such agent or answer", body = Problem, content_type = "application/problem+json")))]
async fn revoke_grant(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((agent, tool)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    agents_of(&state)
        .revoke_grant(principal.user.id, &agent, &tool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a run of the agent towards a goal; it is queued for a worker, and its timeline is at
/// `/api/v1/runs/{id}/events` (or streamed at `/stream`). Model calls made with an API key
/// count against that key's budgets. Needs `write`.
#[utoipa::path(post, path = "/{agent}/runs", tag = "agents", security(("bearer" = [])),
    params(("agent" = String, Path, description = "The agent's id or name")),
    request_body = StartRunRequest,
    responses(
        (status = 201, description = "Queued", body = Run,
            headers(("location" = String, description = "The run's URL"))),
        (status = 404, description = "No such agent of this user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The goal is empty or too long", body = Problem, content_type = "application/problem+json")))]
async fn start_run(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(agent): Path<String>,
    ApiJson(request): ApiJson<StartRunRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let api_key = match principal.credential {
        Credential::ApiKey(id) => Some(id),
        Credential::Session(_) => None,
    };
    let view = agents_of(&state)
        .start(principal.user.id, &agent, &request.goal, api_key)
        .await?;
    let run = run_to_wire(&view);
    let location = format!("/api/v1/runs/{}", run.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(run),
    )
        .into_response())
}

/// The caller's runs, newest first. Needs `read`.
#[utoipa::path(get, path = "", tag = "agents", security(("bearer" = [])),
    params(RunListQuery),
    responses(
        (status = 200, description = "The runs", body = RunList),
        (status = 404, description = "No such agent of this user", body = Problem, content_type = "application/problem+json")))]
async fn list_runs(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<RunListQuery>,
) -> Result<Json<RunList>, ApiError> {
    principal.require(Scope::Read)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 500"));
    }
    let runs = agents_of(&state)
        .runs(principal.user.id, query.agent.as_deref(), limit)
        .await?;
    Ok(Json(RunList {
        runs: runs.iter().map(run_to_wire).collect(),
    }))
}

/// A run. Needs `read`.
#[utoipa::path(get, path = "/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 404, description = "No such run of this user", body = Problem, content_type = "application/problem+json")))]
async fn get_run(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    principal.require(Scope::Read)?;
    let id: RunId = path_id(&id, "run")?;
    Ok(Json(run_to_wire(
        &agents_of(&state).run(principal.user.id, id).await?,
    )))
}

/// A run's timeline: plan, steps, model calls, tool calls and results, requests and
/// decisions, errors. Needs `read`.
#[utoipa::path(get, path = "/{id}/events", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The run's id"), RunEventsQuery),
    responses(
        (status = 200, description = "The events, in order", body = RunEvents),
        (status = 404, description = "No such run of this user", body = Problem, content_type = "application/problem+json")))]
async fn run_events(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RunEventsQuery>,
) -> Result<Json<RunEvents>, ApiError> {
    principal.require(Scope::Read)?;
    let id: RunId = path_id(&id, "run")?;
    let limit = query.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 1000"));
    }
    let events = agents_of(&state)
        .events(principal.user.id, id, query.after.unwrap_or(0), limit)
        .await?;
    Ok(Json(RunEvents {
        events: events.into_iter().map(wire::run_event).collect(),
    }))
}

/// A run's timeline as server-sent events (`id` the event's number, `event` its kind, `data`
/// the event as `/events` gives it), from after `after` (or the `Last-Event-ID` header) until
/// the run has ended. Needs `read`.
#[utoipa::path(get, path = "/{id}/stream", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The run's id"), RunEventsQuery),
    responses(
        (status = 200, description = "The events, as they happen", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such run of this user", body = Problem, content_type = "application/problem+json")))]
async fn stream_run(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<RunEventsQuery>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    let id: RunId = path_id(&id, "run")?;
    let owner = principal.user.id;
    let agents = agents_of(&state).clone();
    agents.run(owner, id).await?;
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("`Last-Event-ID` must be an event number"))?,
        None => query.after.unwrap_or(0),
    };
    struct Cursor {
        agents: Agents,
        changes: tokio::sync::watch::Receiver<u64>,
        after: u64,
    }
    let cursor = Cursor {
        changes: agents.changes(),
        agents,
        after,
    };
    let events = futures_util::stream::unfold(cursor, move |mut cursor| async move {
        loop {
            let batch = cursor.agents.events(owner, id, cursor.after, 200).await;
            let finished = cursor
                .agents
                .run(owner, id)
                .await
                .map(|run| run.record.status.is_finished())
                .unwrap_or(true);
            match batch {
                Ok(batch) if !batch.is_empty() => {
                    let mut out = String::new();
                    for event in batch {
                        cursor.after = event.seq;
                        let kind = event.kind.clone();
                        let seq = event.seq;
                        let data =
                            serde_json::to_string(&wire::run_event(event)).unwrap_or_default();
                        out.push_str(&format!("id: {seq}\nevent: {kind}\ndata: {data}\n\n"));
                    }
                    return Some((Bytes::from(out), cursor));
                }
                Ok(_) if !finished => {
                    // Woken by this process's changes, or after a while for other processes'.
                    let _ = tokio::time::timeout(STREAM_POLL, cursor.changes.changed()).await;
                }
                _ => return None,
            }
        }
    });
    Ok(EventStream::new(events).into_response())
}

async fn control(
    state: &AppState,
    principal: &kai_auth::Principal,
    id: &str,
    action: fn(
        &Agents,
        kai_core::UserId,
        RunId,
    ) -> futures_util::future::BoxFuture<'_, Result<RunView, kai_agent::AgentError>>,
) -> Result<Json<Run>, ApiError> {
    principal.require(Scope::Write)?;
    let id: RunId = path_id(id, "run")?;
    let view = action(agents_of(state), principal.user.id, id).await?;
    Ok(Json(run_to_wire(&view)))
}

/// Pauses a run: at once when it is queued or waiting, else at its next step. Needs `write`.
#[utoipa::path(post, path = "/{id}/pause", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 404, description = "No such run of this user", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Paused, or asked to pause", body = Run),
        (status = 409, description = "The run has ended or is paused", body = Problem, content_type = "application/problem+json")))]
async fn pause_run(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    control(&state, &principal, &id, |agents, owner, id| {
        Box::pin(agents.pause(owner, id))
    })
    .await
}

/// Resumes a paused run. Needs `write`.
#[utoipa::path(post, path = "/{id}/resume", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 404, description = "No such run of this user", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Queued again", body = Run),
        (status = 409, description = "The run is not paused", body = Problem, content_type = "application/problem+json")))]
async fn resume_run(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    control(&state, &principal, &id, |agents, owner, id| {
        Box::pin(agents.resume(owner, id))
    })
    .await
}

/// Cancels a run: at once when it is not working, else at once in this process (its model or
/// tool call in flight is abandoned) or at its next step in another. Needs `write`.
#[utoipa::path(post, path = "/{id}/cancel", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 404, description = "No such run of this user", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Cancelled, or asked to cancel", body = Run),
        (status = 409, description = "The run has ended", body = Problem, content_type = "application/problem+json")))]
async fn cancel_run(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    control(&state, &principal, &id, |agents, owner, id| {
        Box::pin(agents.cancel(owner, id))
    })
    .await
}

/// What runs asked the caller: consent for a call, a question, or what to do about a call of
/// unknown outcome. Pending ones only unless `pending=false`. Needs `read`.
#[utoipa::path(get, path = "", tag = "agents", security(("bearer" = [])),
    params(RunRequestQuery),
    responses((status = 200, description = "The requests, oldest first", body = RunRequestList)))]
async fn list_requests(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<RunRequestQuery>,
) -> Result<Json<RunRequestList>, ApiError> {
    principal.require(Scope::Read)?;
    let requests = agents_of(&state)
        .requests(
            principal.user.id,
            query.run.map(RunId::from),
            query.pending.unwrap_or(true),
        )
        .await?;
    Ok(Json(RunRequestList {
        requests: requests.into_iter().map(wire::run_request).collect(),
    }))
}

/// Answers a request: approve or deny (with `remember`, for this agent and tool from now on),
/// or approve a question with its `answer`. The run goes back to the queue. Needs `write`.
#[utoipa::path(post, path = "/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The request's id")),
    request_body = DecideRequest,
    responses(
        (status = 200, description = "Answered", body = RunRequest),
        (status = 404, description = "No such request of this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already answered, or expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A question without an answer, or `remember` on what is not consent", body = Problem, content_type = "application/problem+json")))]
async fn decide(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<DecideRequest>,
) -> Result<Json<RunRequest>, ApiError> {
    principal.require(Scope::Write)?;
    let id: RunRequestId = path_id(&id, "request")?;
    let decided = agents_of(&state)
        .decide(
            principal.user.id,
            id,
            request.approve,
            request.answer.as_deref(),
            request.remember,
        )
        .await?;
    Ok(Json(wire::run_request(decided)))
}

/// The caller's prompt templates at their newest versions. Needs `read`.
#[utoipa::path(get, path = "", tag = "agents", security(("bearer" = [])),
    responses((status = 200, description = "The templates, by name", body = PromptList)))]
async fn list_prompts(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<PromptList>, ApiError> {
    principal.require(Scope::Read)?;
    let prompts = agents_of(&state).prompts(principal.user.id).await?;
    Ok(Json(PromptList {
        prompts: prompts.into_iter().map(prompt_to_wire).collect(),
    }))
}

/// Stores a prompt template as version 1. A template that uses a variable it does not
/// declare (besides `goal`, `agent`, `date`, `now` and `tools`) is refused, naming it.
/// Needs `write`.
#[utoipa::path(post, path = "", tag = "agents", security(("bearer" = [])),
    request_body = PromptRequest,
    responses(
        (status = 201, description = "Stored", body = Prompt,
            headers(("location" = String, description = "The template's URL"))),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The template is not valid", body = Problem, content_type = "application/problem+json")))]
async fn create_prompt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<PromptRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let prompt = agents_of(&state)
        .create_prompt(
            principal.user.id,
            &request.name,
            &request.description,
            &request.template,
            request.variables,
        )
        .await?;
    let location = format!("/api/v1/prompts/{}", prompt.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(prompt_to_wire(prompt)),
    )
        .into_response())
}

/// A template by name, at `version` or its newest. Needs `read`.
#[utoipa::path(get, path = "/{name}", tag = "agents", security(("bearer" = [])),
    params(("name" = String, Path, description = "The template's name"), PromptQuery),
    responses(
        (status = 200, description = "The template", body = Prompt),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json")))]
async fn get_prompt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<PromptQuery>,
) -> Result<Json<Prompt>, ApiError> {
    principal.require(Scope::Read)?;
    let prompt = agents_of(&state)
        .prompt(principal.user.id, &name, query.version)
        .await?;
    Ok(Json(prompt_to_wire(prompt)))
}

/// Deletes a template with all its versions; agents that name it fail to start runs until
/// changed. Needs `write`.
#[utoipa::path(delete, path = "/{name}", tag = "agents", security(("bearer" = [])),
    params(("name" = String, Path, description = "The template's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json")))]
async fn delete_prompt(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    agents_of(&state)
        .delete_prompt(principal.user.id, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a template, oldest first. Needs `read`.
#[utoipa::path(get, path = "/{name}/versions", tag = "agents", security(("bearer" = [])),
    params(("name" = String, Path, description = "The template's name")),
    responses(
        (status = 200, description = "The versions", body = PromptList),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json")))]
async fn prompt_versions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<PromptList>, ApiError> {
    principal.require(Scope::Read)?;
    let versions = agents_of(&state)
        .prompt_versions(principal.user.id, &name)
        .await?;
    Ok(Json(PromptList {
        prompts: versions.into_iter().map(prompt_to_wire).collect(),
    }))
}

/// Stores a new version of a template; earlier versions stay as they were. Needs `write`.
#[utoipa::path(post, path = "/{name}/versions", tag = "agents", security(("bearer" = [])),
    params(("name" = String, Path, description = "The template's name")),
    request_body = PromptVersionRequest,
    responses(
        (status = 201, description = "Stored", body = Prompt),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The template is not valid", body = Problem, content_type = "application/problem+json")))]
async fn add_prompt_version(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PromptVersionRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let prompt = agents_of(&state)
        .add_prompt_version(
            principal.user.id,
            &name,
            request.description.as_deref(),
            &request.template,
            request.variables,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(prompt_to_wire(prompt))).into_response())
}

fn schedule_to_wire(view: ScheduleView) -> Schedule {
    Schedule {
        id: view.record.id.as_uuid(),
        name: view.record.name,
        agent_id: view.agent.as_uuid(),
        goal: view.goal,
        spec: view.record.spec,
        time_zone: view.record.time_zone,
        missed: view.record.missed.as_str().into(),
        enabled: view.record.enabled,
        upcoming: view.upcoming,
        last_fire_at: view.record.last_fire_at,
        created_at: view.record.created_at,
    }
}

/// The caller's schedules, by name. Needs `read`.
#[utoipa::path(get, path = "", tag = "agents", security(("bearer" = [])),
    responses((status = 200, description = "The schedules", body = ScheduleList)))]
async fn list_schedules(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<ScheduleList>, ApiError> {
    principal.require(Scope::Read)?;
    let schedules = agents_of(&state).schedules(principal.user.id).await?;
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(schedule_to_wire).collect(),
    }))
}

/// Schedules runs of an agent: each fire starts a run towards the goal. A spec or time zone
/// kai does not read is refused with a valid example. Needs `write`.
#[utoipa::path(post, path = "", tag = "agents", security(("bearer" = [])),
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Scheduled", body = Schedule,
            headers(("location" = String, description = "The schedule's URL"))),
        (status = 404, description = "No such agent of this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The spec, time zone or policy is not valid", body = Problem, content_type = "application/problem+json")))]
async fn create_schedule(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<ScheduleRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let view = agents_of(&state)
        .add_schedule(
            principal.user.id,
            NewAgentSchedule {
                name: &request.name,
                agent: &request.agent,
                goal: &request.goal,
                spec: &request.spec,
                time_zone: request.time_zone.as_deref().unwrap_or("UTC"),
                missed: request.missed.as_deref().unwrap_or("skip"),
                enabled: request.enabled.unwrap_or(true),
            },
        )
        .await?;
    let schedule = schedule_to_wire(view);
    let location = format!("/api/v1/schedules/{}", schedule.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(schedule),
    )
        .into_response())
}

/// A schedule, by id or name. Needs `read`.
#[utoipa::path(get, path = "/{schedule}", tag = "agents", security(("bearer" = [])),
    params(("schedule" = String, Path, description = "The schedule's id or name")),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 404, description = "No such schedule of this user", body = Problem, content_type = "application/problem+json")))]
async fn get_schedule(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(schedule): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    principal.require(Scope::Read)?;
    let view = agents_of(&state)
        .schedule(principal.user.id, &schedule)
        .await?;
    Ok(Json(schedule_to_wire(view)))
}

/// Removes a schedule; runs it started go on. Needs `write`.
#[utoipa::path(delete, path = "/{schedule}", tag = "agents", security(("bearer" = [])),
    params(("schedule" = String, Path, description = "The schedule's id or name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such schedule of this user", body = Problem, content_type = "application/problem+json")))]
async fn delete_schedule(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(schedule): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    agents_of(&state)
        .remove_schedule(principal.user.id, &schedule)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a schedule from now on: fires passed while it was disabled are not run. Needs
/// `write`.
#[utoipa::path(post, path = "/{schedule}/enable", tag = "agents", security(("bearer" = [])),
    params(("schedule" = String, Path, description = "The schedule's id or name")),
    responses(
        (status = 200, description = "Enabled", body = Schedule),
        (status = 404, description = "No such schedule of this user", body = Problem, content_type = "application/problem+json")))]
async fn enable_schedule(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(schedule): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    principal.require(Scope::Write)?;
    let view = agents_of(&state)
        .enable_schedule(principal.user.id, &schedule, true)
        .await?;
    Ok(Json(schedule_to_wire(view)))
}

/// Disables a schedule. Needs `write`.
#[utoipa::path(post, path = "/{schedule}/disable", tag = "agents", security(("bearer" = [])),
    params(("schedule" = String, Path, description = "The schedule's id or name")),
    responses(
        (status = 200, description = "Disabled", body = Schedule),
        (status = 404, description = "No such schedule of this user", body = Problem, content_type = "application/problem+json")))]
async fn disable_schedule(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(schedule): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    principal.require(Scope::Write)?;
    let view = agents_of(&state)
        .enable_schedule(principal.user.id, &schedule, false)
        .await?;
    Ok(Json(schedule_to_wire(view)))
}
