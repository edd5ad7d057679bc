//! The small HTML pages the router answers with itself (unknown app, errors, maintenance).

use crate::logline::ErrorCode;

fn page(title: &str, heading: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family: sans-serif; text-align: center; margin-top: 4em\">\n\
         <h1>{heading}</h1>\n<p>{text}</p>\n</body>\n</html>\n"
    )
}

/// The page sent with a router error code.
pub(crate) fn error_page(code: ErrorCode) -> String {
    match code {
        ErrorCode::H80 => page(
            "Offline for Maintenance",
            "Offline for Maintenance",
            "This app is undergoing maintenance right now. Please check back later.",
        ),
        ErrorCode::H81 => page(
            "Welcome to your new app!",
            "Welcome to your new app!",
            "Nothing has been deployed to this app yet. Push some code to get started.",
        ),
        _ => page(
            "Application Error",
            "Application Error",
            "An error occurred in the application and your page could not be served. \
             If you are the application owner, check your logs for details.",
        ),
    }
}

/// 404 for a host no app answers to.
pub(crate) fn no_such_app() -> String {
    page(
        "No such app",
        "No such app",
        "There is no app configured at this hostname.",
    )
}

/// 400 for a request the router cannot route.
pub(crate) fn bad_request(reason: &str) -> String {
    page("Bad Request", "Bad Request", reason)
}
