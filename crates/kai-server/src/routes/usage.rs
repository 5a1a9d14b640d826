//! Usage of the model gateway: totals (optionally grouped) and the records behind them. Users
//! see their own; admins may ask for anyone's, or everyone's.

use axum::Json;
use axum::extract::State;
use kai_auth::Principal;
use kai_core::{ApiKeyId, Role, Scope, UsageFilter, UsageGroup, UsageId, UserId};
use kai_proto::{
    Problem, UsageGroupTotals, UsageQuery, UsageRecord, UsageRecordPage, UsageRecordsQuery,
    UsageReport,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiQuery, Auth, time_param};
use crate::state::AppState;

/// The most records one page holds.
const MAX_PAGE: u32 = 1000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(usage))
        .routes(routes!(records))
}

fn filter(principal: &Principal, query: &UsageQuery) -> Result<UsageFilter, ApiError> {
    let user_id = match query.user.as_deref() {
        None => Some(principal.user.id),
        Some(_)
            if principal.user.role != Role::Admin || principal.require(Scope::Admin).is_err() =>
        {
            return Err(ApiError::new(
                http::StatusCode::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "only an admin may ask for another user's usage; leave out `user` for your own",
            ));
        }
        Some("all") => None,
        Some(id) => Some(id.parse::<UserId>().map_err(|_| {
            ApiError::bad_request(format!("`user` must be a user id or `all`, not `{id}`"))
        })?),
    };
    let from = time_param("from", query.from.as_deref())?;
    let to = time_param("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    Ok(UsageFilter {
        user_id,
        api_key_id: query
            .key_id
            .as_deref()
            .map(|id| {
                id.parse::<ApiKeyId>()
                    .map_err(|_| ApiError::bad_request(format!("`key_id` `{id}` is not a key id")))
            })
            .transpose()?,
        model: query.model.clone(),
        from,
        to,
    })
}

/// Totals of model requests (count, failures, tokens, cost) in a window, optionally per model,
/// provider, key, user or UTC day. Needs `read`.
#[utoipa::path(get, path = "", tag = "usage", security(("bearer" = [])),
    params(UsageQuery),
    responses(
        (status = 200, description = "The totals", body = UsageReport),
        (status = 403, description = "Another user's usage, asked by a non-admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    principal.require(Scope::Read)?;
    let filter = filter(&principal, &query)?;
    let group = match query.group_by.as_deref() {
        None => None,
        Some("model") => Some(UsageGroup::Model),
        Some("provider") => Some(UsageGroup::Provider),
        Some("key") => Some(UsageGroup::ApiKey),
        Some("user") => Some(UsageGroup::User),
        Some("day") => Some(UsageGroup::Day),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`group_by` `{other}` is not model, provider, key, user or day"
            )));
        }
    };
    let all = state.gateway.usage_totals(&filter).await?;
    let groups = match group {
        Some(by) => Some(
            state
                .gateway
                .usage_grouped(&filter, by)
                .await?
                .into_iter()
                .map(|(key, group)| UsageGroupTotals {
                    key,
                    totals: group.into(),
                })
                .collect(),
        ),
        None => None,
    };
    Ok(Json(UsageReport {
        from: filter.from,
        to: filter.to,
        totals: all.into(),
        groups,
    }))
}

/// The requests themselves, newest first, a page at a time. Needs `read`.
#[utoipa::path(get, path = "/records", tag = "usage", security(("bearer" = [])),
    params(UsageRecordsQuery),
    responses(
        (status = 200, description = "A page of records", body = UsageRecordPage),
        (status = 403, description = "Another user's usage, asked by a non-admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn records(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<UsageRecordsQuery>,
) -> Result<Json<UsageRecordPage>, ApiError> {
    principal.require(Scope::Read)?;
    let filter = filter(&principal, &query.window())?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        )));
    }
    let before = query
        .before
        .as_deref()
        .map(|id| {
            id.parse::<UsageId>()
                .map_err(|_| ApiError::bad_request(format!("`before` `{id}` is not a record id")))
        })
        .transpose()?;
    let found = state.gateway.usage_records(&filter, limit, before).await?;
    let next_before = (found.len() == limit as usize)
        .then(|| found.last().map(|r| r.id.as_uuid()))
        .flatten();
    Ok(Json(UsageRecordPage {
        records: found.into_iter().map(UsageRecord::from).collect(),
        next_before,
    }))
}
