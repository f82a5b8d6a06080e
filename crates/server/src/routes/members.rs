//! `/team/member_add`, `/team/member_update`, `/team/member_delete`: a team's members, kept
//! as LiteLLM keeps them — the team row's `members_with_roles` (with the denormalised
//! `admins` / `members` id lists), one `LiteLLM_TeamMembership` row per member (per-member
//! spend and an optional `LiteLLM_BudgetTable` row for `max_budget_in_team`), and the team id
//! in the user's `teams`. Proxy-admin only.
//!
//! Unknown users are created by `member_add` (LiteLLM), as `internal_user`. Memberships do
//! not take part in key resolution, so no auth-cache entry changes.

use axum::extract::State;
use axum::Json;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchyard_store::{BudgetRow, Page, Store, TeamMemberRow, TeamRow, UserFilter, UserRow};

use super::admin::{self, invalid, Audit};
use super::teams::{self, Member};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::roles::{self, Authorized};
use crate::state::Gateway;

/// The roles a team member may have.
const MEMBER_ROLES: [&str; 2] = ["admin", "user"];
const USERS: &str = "LiteLLM_UserTable";
const MEMBERSHIPS: &str = "LiteLLM_TeamMembership";

/// A member to add: `{"user_id"?, "user_email"?, "role"}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NewMember {
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub role: Option<String>,
}

/// `member`: one member or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(NewMember),
    Many(Vec<NewMember>),
}

fn check_role(role: Option<&str>, param: &str) -> Result<String, ApiError> {
    match role {
        Some(r) if MEMBER_ROLES.contains(&r) => Ok(r.to_owned()),
        other => Err(invalid(
            param,
            format!("member role must be 'admin' or 'user', got {other:?}"),
        )),
    }
}

fn check_budget(value: Option<f64>, param: &str) -> Result<(), ApiError> {
    if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
        return Err(invalid(
            param,
            format!("{param} must be a finite number >= 0"),
        ));
    }
    Ok(())
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|v| !v.is_empty())
}

/// A membership as `/team/info` and `member_add` show it: the row plus its
/// `litellm_budget_table` (or null).
pub(super) async fn membership_json(
    store: &Store,
    membership: &TeamMemberRow,
) -> Result<Value, ApiError> {
    let budget = match &membership.budget_id {
        Some(id) => store.get::<BudgetRow>(&[id]).await?,
        None => None,
    };
    let mut out = match serde_json::to_value(membership) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    out.insert("litellm_budget_table".into(), json!(budget));
    Ok(Value::Object(out))
}

/// The user `member` names, created (as `internal_user`) when unknown.
async fn find_or_create_user(
    store: &Store,
    user_id: Option<&str>,
    user_email: Option<&str>,
) -> Result<(UserRow, bool), ApiError> {
    if let Some(id) = user_id {
        if let Some(row) = store.get::<UserRow>(&[id]).await? {
            return Ok((row, false));
        }
    } else if let Some(email) = user_email {
        let filter = UserFilter {
            user_email: Some(email.to_owned()),
            ..UserFilter::default()
        };
        if let Some(row) = store
            .list::<UserRow>(&filter, Page::first(1))
            .await?
            .into_iter()
            .next()
        {
            return Ok((row, false));
        }
    }
    let row = UserRow {
        // Empty: the store assigns a UUID.
        user_id: user_id.unwrap_or_default().to_owned(),
        user_email: user_email.map(str::to_owned),
        user_role: Some("internal_user".into()),
        ..UserRow::default()
    };
    Ok((store.insert(&row).await?, true))
}

/// Adds one user to `team` (the caller saves the team row): membership row, optional
/// budget row, the team id in the user's `teams`. 400 when the user is already a member.
pub(super) async fn add_member(
    store: &Store,
    caller: &Caller,
    team: &mut TeamRow,
    member: &NewMember,
    max_budget_in_team: Option<f64>,
) -> Result<(UserRow, Value), ApiError> {
    let role = check_role(member.role.as_deref(), "member")?;
    let user_id = non_empty(member.user_id.as_ref());
    let user_email = non_empty(member.user_email.as_ref());
    if user_id.is_none() && user_email.is_none() {
        return Err(invalid(
            "member",
            "each member needs a user_id or a user_email",
        ));
    }
    let (mut user, _created) = find_or_create_user(store, user_id, user_email).await?;
    let mut members = teams::members_of(team);
    let key = [user.user_id.as_str(), team.team_id.as_str()];
    if members
        .iter()
        .any(|m| m.user_id.as_deref() == Some(user.user_id.as_str()))
        || store.get::<TeamMemberRow>(&key).await?.is_some()
    {
        return Err(invalid(
            "member",
            format!(
                "User={} already in team. team_id={}",
                user.user_id, team.team_id
            ),
        ));
    }
    let budget_id = match max_budget_in_team {
        Some(max_budget) => Some(
            store
                .insert(&BudgetRow {
                    max_budget: Some(max_budget),
                    created_by: caller.user_id.clone().unwrap_or_default(),
                    updated_by: caller.user_id.clone().unwrap_or_default(),
                    ..BudgetRow::default()
                })
                .await?
                .budget_id,
        ),
        None => None,
    };
    let membership = store
        .insert(&TeamMemberRow {
            user_id: user.user_id.clone(),
            team_id: team.team_id.clone(),
            spend: 0.0,
            budget_id,
        })
        .await?;
    if !user.teams.contains(&team.team_id) {
        user.teams.push(team.team_id.clone());
        user = store.update(&user).await?;
    }
    members.push(Member {
        role,
        user_id: Some(user.user_id.clone()),
        user_email: user.user_email.clone(),
    });
    teams::set_members(team, &members);
    Ok((user, membership_json(store, &membership).await?))
}

/// Removes `user_id` from `team` (the caller saves the team row): its membership row and
/// budget, and the team from the user's `teams`. False when the user was not a member.
pub(super) async fn remove_member(
    store: &Store,
    team: &mut TeamRow,
    user_id: &str,
) -> Result<bool, ApiError> {
    let mut members = teams::members_of(team);
    let before = members.len();
    members.retain(|m| m.user_id.as_deref() != Some(user_id));
    let listed = members.len() != before;
    let key = [user_id, team.team_id.as_str()];
    let membership = store.get::<TeamMemberRow>(&key).await?;
    if let Some(row) = &membership {
        store.delete::<TeamMemberRow>(&key).await?;
        if let Some(budget_id) = &row.budget_id {
            store.delete::<BudgetRow>(&[budget_id]).await?;
        }
    }
    if let Some(mut user) = store.get::<UserRow>(&[user_id]).await? {
        if user.teams.contains(&team.team_id) {
            user.teams.retain(|t| t != &team.team_id);
            store.update(&user).await?;
        }
    }
    teams::set_members(team, &members);
    Ok(listed || membership.is_some())
}

/// The member's user id: `user_id`, else the member with `user_email`.
fn member_id(
    team: &TeamRow,
    user_id: Option<&String>,
    user_email: Option<&String>,
) -> Result<String, ApiError> {
    if let Some(id) = non_empty(user_id) {
        return Ok(id.to_owned());
    }
    let email = non_empty(user_email)
        .ok_or_else(|| invalid("user_id", "user_id or user_email is required"))?;
    teams::members_of(team)
        .into_iter()
        .find(|m| m.user_email.as_deref() == Some(email))
        .and_then(|m| m.user_id)
        .ok_or_else(|| not_member(email, &team.team_id))
}

fn not_member(user: &str, team_id: &str) -> ApiError {
    invalid(
        "user_id",
        format!("User={user} is not a member of team_id={team_id}"),
    )
}

async fn save_team(
    gateway: &Gateway,
    store: &Store,
    headers: &HeaderMap,
    caller: &Caller,
    before: &TeamRow,
    row: &TeamRow,
) -> Result<TeamRow, ApiError> {
    let row = store.update(row).await?;
    admin::audit(
        gateway,
        headers,
        caller,
        Audit {
            action: "updated",
            table_name: teams::TABLE,
            object_id: &row.team_id,
            before: Some(teams::to_value(before)),
            after: Some(teams::to_value(&row)),
        },
    )
    .await;
    Ok(row)
}

#[derive(Debug, Deserialize)]
pub struct AddRequest {
    #[serde(default)]
    team_id: Option<String>,
    member: OneOrMany,
    #[serde(default)]
    max_budget_in_team: Option<f64>,
}

/// `POST /team/member_add` `{"team_id", "member": {..} | [{..}], "max_budget_in_team"?}` →
/// the team row plus `updated_users` and `updated_team_memberships`. Nothing is added when
/// one member is invalid or already in the team.
pub async fn add(
    State(gateway): State<Gateway>,
    Authorized(caller): Authorized,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AddRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = admin::store(&gateway)?;
    let team_id = teams::required(request.team_id.as_deref(), "team_id")?;
    roles::require_team_admin(store, &caller, Some(&team_id)).await?;
    check_budget(request.max_budget_in_team, "max_budget_in_team")?;
    let new: Vec<NewMember> = match request.member {
        OneOrMany::One(m) => vec![m],
        OneOrMany::Many(list) => list,
    };
    if new.is_empty() {
        return Err(invalid("member", "member is required"));
    }
    // Validate everything before the first write.
    let mut seen = Vec::new();
    for m in &new {
        check_role(m.role.as_deref(), "member")?;
        let who = non_empty(m.user_id.as_ref())
            .or(non_empty(m.user_email.as_ref()))
            .ok_or_else(|| invalid("member", "each member needs a user_id or a user_email"))?;
        if seen.contains(&who) {
            return Err(invalid("member", format!("User={who} is listed twice")));
        }
        seen.push(who);
    }
    let before = teams::existing(store, &team_id).await?;
    let present = teams::members_of(&before);
    for m in &new {
        let dup = present.iter().any(|p| {
            (non_empty(m.user_id.as_ref()).is_some() && p.user_id == m.user_id)
                || (m.user_id.is_none()
                    && non_empty(m.user_email.as_ref()).is_some()
                    && p.user_email == m.user_email)
        });
        if dup {
            let who = m
                .user_id
                .as_ref()
                .or(m.user_email.as_ref())
                .map_or("", |s| s);
            return Err(invalid(
                "member",
                format!("User={who} already in team. team_id={team_id}"),
            ));
        }
    }
    let mut team = before.clone();
    let mut users = Vec::new();
    let mut memberships = Vec::new();
    for m in &new {
        let (user, membership) =
            add_member(store, &caller, &mut team, m, request.max_budget_in_team).await?;
        users.push(user);
        memberships.push(membership);
    }
    let team = save_team(&gateway, store, &headers, &caller, &before, &team).await?;
    for user in &users {
        admin::audit(
            &gateway,
            &headers,
            &caller,
            Audit {
                action: "updated",
                table_name: USERS,
                object_id: &user.user_id,
                before: None,
                after: Some(json!(user)),
            },
        )
        .await;
    }
    let mut out = match teams::to_value(&team) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    out.insert("updated_users".into(), json!(users));
    out.insert("updated_team_memberships".into(), json!(memberships));
    Ok(Json(Value::Object(out)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    team_id: Option<String>,
    user_id: Option<String>,
    user_email: Option<String>,
    role: Option<String>,
    max_budget_in_team: Option<f64>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
}

/// `POST /team/member_update` `{"team_id", "user_id"|"user_email", "role"?,
/// "max_budget_in_team"?, "tpm_limit"?, "rpm_limit"?}` → LiteLLM's
/// `{"team_id", "user_id", "user_email", "role", "max_budget_in_team", "tpm_limit", "rpm_limit"}`.
pub async fn update(
    State(gateway): State<Gateway>,
    Authorized(caller): Authorized,
    headers: HeaderMap,
    JsonBody(request): JsonBody<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = admin::store(&gateway)?;
    let team_id = teams::required(request.team_id.as_deref(), "team_id")?;
    roles::require_team_admin(store, &caller, Some(&team_id)).await?;
    let role = match &request.role {
        Some(r) => Some(check_role(Some(r), "role")?),
        None => None,
    };
    check_budget(request.max_budget_in_team, "max_budget_in_team")?;
    admin::check_limits(&[
        ("tpm_limit", request.tpm_limit),
        ("rpm_limit", request.rpm_limit),
    ])?;
    let before = teams::existing(store, &team_id).await?;
    let user_id = member_id(
        &before,
        request.user_id.as_ref(),
        request.user_email.as_ref(),
    )?;
    let mut members = teams::members_of(&before);
    let Some(member) = members
        .iter_mut()
        .find(|m| m.user_id.as_deref() == Some(user_id.as_str()))
    else {
        return Err(not_member(&user_id, &team_id));
    };
    if let Some(role) = &role {
        member.role.clone_from(role);
    }
    let shown_role = member.role.clone();
    let user_email = member.user_email.clone();
    let mut team = before.clone();
    teams::set_members(&mut team, &members);

    // The membership's budget row (created on first need).
    let key = [user_id.as_str(), team_id.as_str()];
    let mut membership = match store.get::<TeamMemberRow>(&key).await? {
        Some(row) => row,
        None => {
            store
                .insert(&TeamMemberRow {
                    user_id: user_id.clone(),
                    team_id: team_id.clone(),
                    ..TeamMemberRow::default()
                })
                .await?
        }
    };
    let wants_budget = request.max_budget_in_team.is_some()
        || request.tpm_limit.is_some()
        || request.rpm_limit.is_some();
    let mut budget = match &membership.budget_id {
        Some(id) => store.get::<BudgetRow>(&[id]).await?,
        None => None,
    };
    if wants_budget {
        let mut row = budget.clone().unwrap_or_else(|| BudgetRow {
            created_by: caller.user_id.clone().unwrap_or_default(),
            ..BudgetRow::default()
        });
        if request.max_budget_in_team.is_some() {
            row.max_budget = request.max_budget_in_team;
        }
        if request.tpm_limit.is_some() {
            row.tpm_limit = request.tpm_limit;
        }
        if request.rpm_limit.is_some() {
            row.rpm_limit = request.rpm_limit;
        }
        row.updated_by = caller.user_id.clone().unwrap_or_default();
        let saved = if budget.is_some() {
            store.update(&row).await?
        } else {
            let saved = store.insert(&row).await?;
            membership.budget_id = Some(saved.budget_id.clone());
            membership = store.update(&membership).await?;
            saved
        };
        budget = Some(saved);
        admin::audit(
            &gateway,
            &headers,
            &caller,
            Audit {
                action: "updated",
                table_name: MEMBERSHIPS,
                object_id: &format!("{user_id}:{team_id}"),
                before: None,
                after: Some(json!(membership)),
            },
        )
        .await;
    }
    save_team(&gateway, store, &headers, &caller, &before, &team).await?;
    Ok(Json(json!({
        "team_id": team_id,
        "user_id": user_id,
        "user_email": user_email,
        "role": shown_role,
        "max_budget_in_team": budget.as_ref().and_then(|b| b.max_budget),
        "tpm_limit": budget.as_ref().and_then(|b| b.tpm_limit),
        "rpm_limit": budget.as_ref().and_then(|b| b.rpm_limit),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteRequest {
    team_id: Option<String>,
    user_id: Option<String>,
    user_email: Option<String>,
}

/// `POST /team/member_delete` `{"team_id", "user_id"|"user_email"}` → the team row.
pub async fn delete(
    State(gateway): State<Gateway>,
    Authorized(caller): Authorized,
    headers: HeaderMap,
    JsonBody(request): JsonBody<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = admin::store(&gateway)?;
    let team_id = teams::required(request.team_id.as_deref(), "team_id")?;
    roles::require_team_admin(store, &caller, Some(&team_id)).await?;
    let before = teams::existing(store, &team_id).await?;
    let user_id = member_id(
        &before,
        request.user_id.as_ref(),
        request.user_email.as_ref(),
    )?;
    let mut team = before.clone();
    if !remove_member(store, &mut team, &user_id).await? {
        return Err(not_member(&user_id, &team_id));
    }
    let team = save_team(&gateway, store, &headers, &caller, &before, &team).await?;
    Ok(Json(teams::to_value(&team)))
}
