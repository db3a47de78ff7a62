//! Connected apps (`GET /account/apps`): the apps a person has allowed to use their account,
//! what each may do in plain words, since when, and a button to disconnect it
//! (`POST /account/apps/{grant}/revoke`). Disconnecting revokes the grant and its refresh
//! tokens at once, and access tokens issued under it stop being honoured
//! ([`super::grant_is_active`]). Both directions are audited.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use store::audit::AuditAction;

use super::authorize::app_audit;
use super::{describe, APPS_PATH};
use crate::client_ip::ClientIp;
use crate::session::CurrentUser;
use crate::signin::account::CsrfOnlyForm;
use crate::ui::{self, text, Text};
use crate::{csrf, AppState, WebError};

/// One connected app as the page shows it.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub name: String,
    pub connected_on: String,
    pub can: Vec<String>,
    pub revoke_action: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
pub struct AppsPage {
    pub layout: ui::Layout,
    pub t: &'static Text,
    pub notice: Option<&'static str>,
    pub apps: Vec<ConnectedApp>,
}

/// Where the disconnect button of grant `grant_id` posts.
pub fn revoke_path(grant_id: &str) -> String {
    format!("{APPS_PATH}/{grant_id}/revoke")
}

/// `GET /account/apps`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    RawQuery(query): RawQuery,
) -> Response {
    let revoked = query.as_deref() == Some("done=revoked");
    ui::respond(page(&state, &user, revoked).await)
}

async fn page(state: &AppState, user: &CurrentUser, revoked: bool) -> Result<Response, WebError> {
    let t = text::current();
    let accounts = state.store.accounts();
    let mut apps = Vec::new();
    for grant in accounts.active_grants(&user.account.account_id).await? {
        let name = accounts
            .smart_app(&grant.client_id)
            .await?
            .map(|a| a.name)
            .unwrap_or_else(|| t.smart.apps_unregistered.to_string());
        let revoke_action = revoke_path(&grant.grant_id);
        apps.push(ConnectedApp {
            name,
            connected_on: crate::ui::london::long_date(grant.created_at),
            can: describe::describe(&t.smart, &grant.scopes),
            csrf: user.csrf(&revoke_action),
            revoke_action,
        });
    }
    let page = AppsPage {
        layout: user.layout(t.smart.apps_title, false),
        t,
        notice: revoked.then_some(t.smart.apps_revoked),
        apps,
    };
    Ok(ui::page(StatusCode::OK, &page))
}

/// `POST /account/apps/{grant}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    ip: ClientIp,
    user: CurrentUser,
    Path(grant_id): Path<String>,
    Form(form): Form<CsrfOnlyForm>,
) -> Response {
    ui::respond(revoke_inner(&state, &ip, &user, &grant_id, &form).await)
}

async fn revoke_inner(
    state: &AppState,
    ip: &ClientIp,
    user: &CurrentUser,
    grant_id: &str,
    form: &CsrfOnlyForm,
) -> Result<Response, WebError> {
    csrf::check(
        &user.session.csrf_secret,
        &revoke_path(grant_id),
        &form.csrf,
    )?;
    let accounts = state.store.accounts();
    // Another account's grant is answered as one that does not exist.
    let grant = accounts
        .grant(grant_id)
        .await?
        .filter(|g| g.account_id == user.account.account_id)
        .ok_or_else(|| WebError::NotFound("no such connected app".into()))?;
    let now = state.now();
    let revoked = accounts.revoke_grant(&grant.grant_id, now).await?;
    accounts.revoke_refresh_tokens(&grant.grant_id, now).await?;
    if revoked {
        state
            .store
            .append_audit(vec![app_audit(
                &user.account,
                AuditAction::RevokeApp,
                &grant,
                now,
                ip,
            )])
            .await?;
    }
    Ok(ui::see_other(&format!("{APPS_PATH}?done=revoked")))
}
