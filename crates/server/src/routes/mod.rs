//! Every route the gateway serves, mounted in one table.
//!
//! - [`llm`] — the OpenAI-compatible calls (`/chat/completions`, `/completions`,
//!   `/embeddings`), each also under `/v1`, Azure's `/openai/deployments/{model}/...` and
//!   `/engines/{model}/...`.
//! - [`messages`] — the Anthropic Messages API inbound (`/v1/messages`,
//!   `/v1/messages/count_tokens`), served by any model.
//! - [`passthrough`] — endpoints relayed to OpenAI-compatible deployments as they are:
//!   `/responses` (and `/responses/{id}`), `/moderations`, `/images/generations`,
//!   `/audio/speech`, `/audio/transcriptions` (multipart).
//! - [`rerank`] — `/rerank` (Cohere's shape; also `/v1/rerank` and `/v2/rerank`).
//! - [`models`] — `/models`, `/models/{id}`, `/model/info`; [`model_admin`] — models
//!   stored in the database: `/model/new`, `/model/update`, `/model/{id}/update`,
//!   `/model/delete`, `/v2/model/info`.
//! - [`health`] — `/health/liveliness` (sic, as LiteLLM), `/health/liveness`,
//!   `/health/readiness` and `/`, public; `/health` (deployment probes), admin only.
//! - [`keys`] — `/key/*`, the virtual-key management API; [`teams`] — `/team/*` basics;
//!   [`members`] — `/team/member_*`; [`users`] — `/user/*`;
//!   [`spend`] — `/spend/*` and `/global/spend*` reports;
//!   [`organizations`] — `/organization/*`; [`customers`] — `/customer/*`;
//!   [`budgets`] — `/budget/*`; [`audit`] — `/audit`;
//!   [`admin`] holds what the management routes share (admin gate, audit log). Who may call
//!   which management route is one table: [`crate::roles::ROUTE_ACCESS`].

pub mod admin;
pub mod audit;
pub mod budgets;
pub mod cache;
pub mod customers;
pub mod health;
pub mod keys;
pub mod llm;
pub mod members;
pub mod messages;
pub mod model_admin;
pub mod models;
pub mod organizations;
pub mod passthrough;
pub mod rerank;
pub mod spend;
pub mod tags;
pub mod teams;
pub mod users;

use axum::routing::{delete, get, patch, post};
use axum::Router;
use switchyard::providers::passthrough::PassthroughOperation;
use switchyard_llm_types::ErrorKind;

use crate::error::ApiError;
use crate::state::Gateway;

pub fn router(gateway: Gateway) -> Router {
    let mut router = Router::new();
    for prefix in ["", "/v1"] {
        router = router
            .route(&format!("{prefix}/chat/completions"), post(llm::chat))
            .route(&format!("{prefix}/completions"), post(llm::completion))
            .route(&format!("{prefix}/embeddings"), post(llm::embeddings))
            .route(&format!("{prefix}/rerank"), post(rerank::rerank))
            .route(&format!("{prefix}/messages"), post(messages::create))
            .route(
                &format!("{prefix}/messages/count_tokens"),
                post(messages::count_tokens),
            )
            .route(
                &format!("{prefix}/responses"),
                passthrough::json_body_route(PassthroughOperation::CreateResponse),
            )
            .route(
                &format!("{prefix}/responses/{{id}}"),
                get(passthrough::response_by_id).delete(passthrough::response_by_id),
            )
            .route(
                &format!("{prefix}/responses/{{id}}/input_items"),
                get(passthrough::response_input_items),
            )
            .route(
                &format!("{prefix}/moderations"),
                passthrough::json_body_route(PassthroughOperation::Moderations),
            )
            .route(
                &format!("{prefix}/images/generations"),
                passthrough::json_body_route(PassthroughOperation::ImageGenerations),
            )
            .route(
                &format!("{prefix}/audio/speech"),
                passthrough::json_body_route(PassthroughOperation::AudioSpeech),
            )
            .route(
                &format!("{prefix}/audio/transcriptions"),
                post(passthrough::audio_transcriptions),
            )
            .route(&format!("{prefix}/models"), get(models::list))
            .route(&format!("{prefix}/models/{{*id}}"), get(models::one))
            .route(&format!("{prefix}/model/info"), get(models::info));
    }
    router = router.route("/v2/rerank", post(rerank::rerank));
    for prefix in ["/openai/deployments/{model}", "/engines/{model}"] {
        router = router
            .route(
                &format!("{prefix}/chat/completions"),
                post(llm::chat_for_path_model),
            )
            .route(
                &format!("{prefix}/completions"),
                post(llm::completion_for_path_model),
            )
            .route(
                &format!("{prefix}/embeddings"),
                post(llm::embeddings_for_path_model),
            );
    }
    router
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/list", get(keys::list))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/team/new", post(teams::new))
        .route("/team/info", get(teams::info))
        .route("/team/update", post(teams::update))
        .route("/team/delete", post(teams::delete))
        .route("/team/list", get(teams::list))
        .route("/team/block", post(teams::block))
        .route("/team/unblock", post(teams::unblock))
        .route("/team/model/add", post(teams::model_add))
        .route("/team/model/delete", post(teams::model_delete))
        .route("/team/member_add", post(members::add))
        .route("/team/member_update", post(members::update))
        .route("/team/member_delete", post(members::delete))
        .route("/user/new", post(users::new))
        .route("/user/info", get(users::info))
        .route("/user/update", post(users::update))
        .route("/user/delete", post(users::delete))
        .route("/user/list", get(users::list))
        .route("/spend/logs", get(spend::logs))
        .route("/spend/keys", get(spend::keys))
        .route("/spend/users", get(spend::users))
        .route("/spend/tags", get(spend::tags))
        .route("/global/spend", get(spend::global))
        .route("/global/spend/logs", get(spend::global_logs))
        .route("/global/spend/report", get(spend::report))
        .route("/global/spend/reset", post(spend::reset))
        .route("/tag/new", post(tags::new))
        .route("/tag/update", post(tags::update))
        .route("/tag/delete", post(tags::delete))
        .route("/tag/info", post(tags::info))
        .route("/tag/list", get(tags::list))
        .route("/organization/new", post(organizations::new))
        .route(
            "/organization/update",
            patch(organizations::update).post(organizations::update),
        )
        .route(
            "/organization/delete",
            delete(organizations::delete).post(organizations::delete),
        )
        .route("/organization/info", get(organizations::info))
        .route("/organization/list", get(organizations::list))
        .route("/organization/member_add", post(organizations::member_add))
        .route(
            "/organization/member_update",
            patch(organizations::member_update).post(organizations::member_update),
        )
        .route(
            "/organization/member_delete",
            delete(organizations::member_delete).post(organizations::member_delete),
        )
        .route("/customer/new", post(customers::new))
        .route("/customer/info", get(customers::info))
        .route("/customer/update", post(customers::update))
        .route("/customer/delete", post(customers::delete))
        .route("/customer/list", get(customers::list))
        .route("/customer/block", post(customers::block))
        .route("/customer/unblock", post(customers::unblock))
        .route("/budget/new", post(budgets::new))
        .route("/budget/update", post(budgets::update))
        .route("/budget/delete", post(budgets::delete))
        .route("/budget/info", post(budgets::info))
        .route("/budget/list", get(budgets::list))
        .route("/budget/settings", get(budgets::settings))
        .route("/model/new", post(model_admin::new))
        .route("/model/update", post(model_admin::update))
        .route("/model/{model_id}/update", patch(model_admin::update_path))
        .route("/model/delete", post(model_admin::delete))
        .route("/v2/model/info", get(model_admin::info_v2))
        .route("/audit", get(audit::list))
        .route("/audit/{id}", get(audit::one))
        .route("/cache/ping", get(cache::ping))
        .route("/cache/delete", post(cache::delete))
        .route("/cache/flushall", post(cache::flush_all))
        .route("/health", get(health::deployments))
        .route("/health/liveliness", get(health::liveness))
        .route("/health/liveness", get(health::liveness))
        .route("/health/readiness", get(health::readiness))
        .route("/health/spend_writer", get(health::spend_writer))
        .route("/", get(health::root))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway)
}

async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("Route {} not found", uri.path()),
        None,
    )
}

async fn method_not_allowed(
    method: http::Method,
    uri: http::Uri,
) -> impl axum::response::IntoResponse {
    let error = ApiError::new(
        ErrorKind::BadRequest,
        format!("Method {method} not allowed on {}", uri.path()),
        None,
    );
    (
        http::StatusCode::METHOD_NOT_ALLOWED,
        error.to_json_bytes_response(),
    )
}

impl ApiError {
    fn to_json_bytes_response(&self) -> ([(http::HeaderName, &'static str); 1], bytes::Bytes) {
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            self.to_json_bytes(),
        )
    }
}
