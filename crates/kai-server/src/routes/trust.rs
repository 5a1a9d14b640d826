//! The trust core over HTTP: the vault's state and unlocking (admins), the node's public
//! identity, each user's secrets, and the audit log with its checkpoints and proofs.
//!
//! Everything that changes the vault or reads a secret's value is recorded in the audit log
//! before it is answered; if the entry cannot be written, the request fails.

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use kai_audit::{Actor, hex};
use kai_auth::Principal;
use kai_core::{Role, Scope};
use kai_proto::{
    AuditCheckpoint, AuditEntry, AuditPage, AuditQuery, ConsistencyProof, ConsistencyQuery,
    InclusionProof, InclusionQuery, NodeIdentity, Password, Problem, PutSecretRequest, SecretInfo,
    SecretScopeQuery, SecretWithValue, VaultPassphraseRequest, VaultStatus,
};
use kai_store::AuditFilter;
use kai_vault::{Owner, Passphrase, SecretValue, UnlockKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Auth, time_param};
use crate::state::AppState;

pub(crate) fn vault() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(vault_status))
        .routes(routes!(init_vault))
        .routes(routes!(unlock_vault))
        .routes(routes!(lock_vault))
}

pub(crate) fn identity() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(node_identity))
}

pub(crate) fn secrets() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets))
        .routes(routes!(get_secret, put_secret, delete_secret))
}

pub(crate) fn audit() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_entries))
        .routes(routes!(audit_checkpoints))
        .routes(routes!(inclusion_proof))
        .routes(routes!(consistency_proof))
}

fn actor(principal: &Principal) -> Actor {
    Actor::User(principal.user.id)
}

/// The vault's state. Any signed-in user may ask.
#[utoipa::path(get, path = "", tag = "vault", security(("bearer" = [])),
    responses((status = 200, description = "The vault's state", body = VaultStatus)))]
async fn vault_status(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<VaultStatus>, ApiError> {
    principal.require(Scope::Read)?;
    let status = state.vault().status().await?;
    Ok(Json(kai_trust::vault_status(status)))
}

/// Creates the vault with a passphrase, and a new node identity; the server holds it unlocked.
/// Admins only.
#[utoipa::path(post, path = "/init", tag = "vault", security(("bearer" = [])),
    request_body = VaultPassphraseRequest,
    responses(
        (status = 201, description = "Created and unlocked", body = NodeIdentity),
        (status = 409, description = "The vault exists already", body = Problem, content_type = "application/problem+json"),
    ))]
async fn init_vault(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<VaultPassphraseRequest>,
) -> Result<(StatusCode, Json<NodeIdentity>), ApiError> {
    principal.require_admin()?;
    let key = UnlockKey::Passphrase(Passphrase::new(request.passphrase.expose().to_owned()));
    let public = state.trust.init_vault(actor(&principal), &[key]).await?;
    Ok((StatusCode::CREATED, Json(kai_trust::node_identity(&public))))
}

/// Unlocks the vault with its passphrase. Admins only. Wrong passphrases are counted: after
/// five in a row each attempt must wait, doubling up to 15 minutes (429 with Retry-After).
#[utoipa::path(post, path = "/unlock", tag = "vault", security(("bearer" = [])),
    request_body = VaultPassphraseRequest,
    responses(
        (status = 204, description = "Unlocked"),
        (status = 403, description = "Wrong passphrase, or not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No vault yet", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passphrases lately", body = Problem, content_type = "application/problem+json"),
    ))]
async fn unlock_vault(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<VaultPassphraseRequest>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    let key = UnlockKey::Passphrase(Passphrase::new(request.passphrase.expose().to_owned()));
    state.trust.unlock_vault(actor(&principal), &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Locks the vault: the server forgets its keys until unlocked again. Admins only.
#[utoipa::path(post, path = "/lock", tag = "vault", security(("bearer" = [])),
    responses((status = 204, description = "Locked")))]
async fn lock_vault(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    state.trust.lock_vault(actor(&principal)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The node's public keys: its did:key, its KLP key id and its key-agreement key.
#[utoipa::path(get, path = "", tag = "vault", security(("bearer" = [])),
    responses(
        (status = 200, description = "The node's identity", body = NodeIdentity),
        (status = 409, description = "No vault yet, so no identity", body = Problem, content_type = "application/problem+json"),
    ))]
async fn node_identity(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<NodeIdentity>, ApiError> {
    principal.require(Scope::Read)?;
    let public = state
        .vault()
        .public_identity()
        .await?
        .ok_or(kai_vault::VaultError::NotInitialized)?;
    Ok(Json(kai_trust::node_identity(&public)))
}

fn owner(principal: &Principal, scope: &SecretScopeQuery) -> Result<Owner, ApiError> {
    match scope.scope.as_deref() {
        None | Some("user") => Ok(Owner::User(principal.user.id)),
        Some("node") => {
            principal.require_admin()?;
            principal.require(Scope::Admin)?;
            Ok(Owner::Node)
        }
        Some(other) => Err(ApiError::invalid_request(
            Some("scope".into()),
            format!("`scope` must be `user` or `node`, not {other:?}"),
        )),
    }
}

/// The caller's secrets (or the node's), names and metadata only. Works while the vault is
/// locked.
#[utoipa::path(get, path = "", tag = "secrets", security(("bearer" = [])), params(SecretScopeQuery),
    responses((status = 200, description = "The secrets, by name", body = Vec<SecretInfo>)))]
async fn list_secrets(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(scope): ApiQuery<SecretScopeQuery>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    principal.require(Scope::Read)?;
    let owner = owner(&principal, &scope)?;
    let secrets = state.vault().list_secrets(owner).await?;
    Ok(Json(
        secrets.into_iter().map(kai_trust::secret_info).collect(),
    ))
}

/// One of the caller's secrets with its value. Another user's secret is not found. Every read
/// is recorded in the audit log.
#[utoipa::path(get, path = "/{name}", tag = "secrets", security(("bearer" = [])),
    params(("name" = String, Path, description = "The secret's name"), SecretScopeQuery),
    responses(
        (status = 200, description = "The secret and its value", body = SecretWithValue),
        (status = 404, description = "No such secret of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The vault is locked", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_secret(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiQuery(scope): ApiQuery<SecretScopeQuery>,
) -> Result<Json<SecretWithValue>, ApiError> {
    principal.require(Scope::Read)?;
    let owner = owner(&principal, &scope)?;
    let (info, value) = state
        .trust
        .read_secret(actor(&principal), owner, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("secret"))?;
    Ok(Json(SecretWithValue {
        info: kai_trust::secret_info(info),
        value: Password::from(value.expose().to_owned()),
    }))
}

/// Stores one of the caller's secrets, or replaces its value. Recorded in the audit log.
#[utoipa::path(put, path = "/{name}", tag = "secrets", security(("bearer" = [])),
    params(("name" = String, Path, description = "The secret's name"), SecretScopeQuery),
    request_body = PutSecretRequest,
    responses(
        (status = 200, description = "Stored", body = SecretInfo),
        (status = 503, description = "The vault is locked", body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_secret(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiQuery(scope): ApiQuery<SecretScopeQuery>,
    ApiJson(request): ApiJson<PutSecretRequest>,
) -> Result<Json<SecretInfo>, ApiError> {
    principal.require(Scope::Write)?;
    let owner = owner(&principal, &scope)?;
    let value = SecretValue::new(request.value.expose().to_owned());
    let info = state
        .trust
        .write_secret(actor(&principal), owner, &name, &value, request.description)
        .await?;
    Ok(Json(kai_trust::secret_info(info)))
}

/// Deletes one of the caller's secrets. Works while the vault is locked. Recorded in the audit
/// log.
#[utoipa::path(delete, path = "/{name}", tag = "secrets", security(("bearer" = [])),
    params(("name" = String, Path, description = "The secret's name"), SecretScopeQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such secret of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_secret(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiQuery(scope): ApiQuery<SecretScopeQuery>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let owner = owner(&principal, &scope)?;
    if !state
        .trust
        .delete_secret(actor(&principal), owner, &name)
        .await?
    {
        return Err(ApiError::not_found("secret"));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn is_admin(principal: &Principal) -> bool {
    principal.user.role == Role::Admin && principal.require(Scope::Admin).is_ok()
}

/// Audit entries, oldest first. Admins see every entry; users see those they are the actor of.
#[utoipa::path(get, path = "", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "A page of entries", body = AuditPage)))]
async fn audit_entries(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    principal.require(Scope::Read)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_request(
            Some("limit".into()),
            "`limit` must be from 1 to 1000",
        ));
    }
    let own = actor(&principal).to_string();
    let actor = if is_admin(&principal) {
        query.actor
    } else {
        match query.actor {
            Some(asked) if asked != own => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Forbidden",
                    "only an admin may read other actors' entries; leave out `actor` for your own",
                ));
            }
            _ => Some(own),
        }
    };
    if query.after.is_some_and(|after| after > i64::MAX as u64) {
        return Err(ApiError::invalid_request(
            Some("after".into()),
            format!("`after` must be at most {}", i64::MAX),
        ));
    }
    let filter = AuditFilter {
        actor,
        action: query.action,
        since: time_param("since", query.since.as_deref())?,
        until: time_param("until", query.until.as_deref())?,
        after_seq: query.after,
        limit,
    };
    let rows = state.audit().entries(&filter).await?;
    let next_after = (rows.len() == limit as usize)
        .then(|| rows.last().map(|row| row.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries: rows
            .into_iter()
            .map(|row| AuditEntry {
                seq: row.seq,
                hash: hex(&row.hash),
                signature: row.signature.map(|signature| STANDARD.encode(signature)),
                entry: row.entry,
            })
            .collect(),
        next_after,
    }))
}

/// The signed checkpoints, oldest first: each commits to the Merkle root of the log's first
/// `size` entries. Any signed-in user may read them.
#[utoipa::path(get, path = "/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "The checkpoints", body = Vec<AuditCheckpoint>)))]
async fn audit_checkpoints(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<AuditCheckpoint>>, ApiError> {
    principal.require(Scope::Read)?;
    let checkpoints = state.audit().checkpoints().await?;
    Ok(Json(
        checkpoints
            .into_iter()
            .map(|checkpoint| AuditCheckpoint {
                size: checkpoint.size,
                root: hex(&checkpoint.root),
                body: checkpoint.body,
                signature: STANDARD.encode(&checkpoint.signature),
            })
            .collect(),
    ))
}

/// Proves entry `seq` is in the tree of the first `size` entries. Users may ask only about
/// entries they are the actor of.
#[utoipa::path(get, path = "/proofs/inclusion", tag = "audit", security(("bearer" = [])),
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 404, description = "No such entry of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
async fn inclusion_proof(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    principal.require(Scope::Read)?;
    let entry = state
        .audit()
        .entries(&AuditFilter {
            after_seq: query.seq.checked_sub(1),
            limit: 1,
            ..AuditFilter::default()
        })
        .await?
        .into_iter()
        .next()
        .filter(|row| row.seq == query.seq)
        .filter(|row| is_admin(&principal) || row.actor == actor(&principal).to_string())
        .ok_or_else(|| ApiError::not_found("audit entry"))?;
    let size = match query.size {
        Some(size) => size,
        None => state.audit().size().await?,
    };
    let (proof, root) = state.audit().inclusion_proof(entry.seq, size).await?;
    Ok(Json(InclusionProof {
        seq: entry.seq,
        size,
        root: hex(&root),
        proof: proof.iter().map(|hash| hex(hash)).collect(),
    }))
}

/// Proves the tree of the first `to` entries extends the tree of the first `from`: nothing
/// before `from` was changed. Any signed-in user may ask.
#[utoipa::path(get, path = "/proofs/consistency", tag = "audit", security(("bearer" = [])),
    params(ConsistencyQuery),
    responses((status = 200, description = "The proof", body = ConsistencyProof)))]
async fn consistency_proof(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    principal.require(Scope::Read)?;
    let to = match query.to {
        Some(to) => to,
        None => state.audit().size().await?,
    };
    let (proof, from_root, to_root) = state.audit().consistency_proof(query.from, to).await?;
    Ok(Json(ConsistencyProof {
        from: query.from,
        to,
        from_root: hex(&from_root),
        to_root: hex(&to_root),
        proof: proof.iter().map(|hash| hex(hash)).collect(),
    }))
}
