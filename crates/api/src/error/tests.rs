//! How core errors read over HTTP: each kind keeps its status and Heroku error id.

use axum::http::StatusCode;
use slipway_core::CoreError;

use super::*;

#[test]
fn core_errors_map_to_heroku_statuses() {
    for (error, status, id, message) in [
        (
            CoreError::NotFound {
                resource: "app",
                id: "x".into(),
            },
            StatusCode::NOT_FOUND,
            "not_found",
            "Couldn't find that app.",
        ),
        (
            CoreError::NameTaken {
                name: "demo".into(),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_params",
            "Name demo is already taken. Choose another name for your app.",
        ),
        (
            CoreError::Invalid {
                message: "Unknown dyno size huge.".into(),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_params",
            "Unknown dyno size huge.",
        ),
        (
            CoreError::Conflict {
                message: "try again".into(),
            },
            StatusCode::CONFLICT,
            "conflict",
            "try again",
        ),
        (
            CoreError::Unauthorized,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid credentials provided.",
        ),
        (
            CoreError::Forbidden { app: "demo".into() },
            StatusCode::FORBIDDEN,
            "forbidden",
            "You do not have access to the app demo.",
        ),
    ] {
        let api = ApiError::from(error);
        assert_eq!(
            (api.status, api.id, api.message.as_str()),
            (status, id, message)
        );
    }
}

#[test]
fn unauthorized_answers_carry_a_challenge() {
    let response = ApiError::unauthorized().into_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"Slipway\""
    );
    let response = ApiError::not_found("Couldn't find that app.").into_response();
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
}

#[test]
fn bare_statuses_get_herokus_ids() {
    for (status, id) in [
        (StatusCode::NOT_FOUND, "not_found"),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
        (StatusCode::BAD_GATEWAY, "internal_server_error"),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_request"),
    ] {
        let error = ApiError::for_status(status);
        assert_eq!((error.status, error.id), (status, id));
        assert!(!error.message.is_empty());
    }
}
