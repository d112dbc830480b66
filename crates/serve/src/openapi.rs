//! The OpenAPI 3.1 document of the API (`/openapi.json`), derived from the handlers'
//! own parameter, body and response types, and the Swagger UI at `/docs`, whose assets
//! are compiled into the binary (no CDN, no download at build time) so it works on
//! machines without internet access.

use newsrec_features::Window;
use utoipa::OpenApi;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::ErrorBody;
use crate::routes;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "newsrec",
        description = "Streaming news recommendations: live tier routing (anonymous → semi_logged → logged), live popularity and co-visitation, batch models per tier. Errors answer `{\"error\": {\"code\", \"message\"}}` with a stable `code`."
    ),
    paths(
        routes::recommend::recommendations,
        routes::popular::popular,
        routes::similar::similar,
        routes::events::publish,
        routes::model_versions::evaluations,
        routes::online::online,
        routes::experiments::experiments,
        routes::model_versions::current,
        routes::model_versions::reload,
        routes::meta::metrics,
        routes::health::live,
        routes::health::ready,
        routes::meta::openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// Declares the `bearer` scheme `POST /admin/reload` names.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document for an instance keeping these popularity windows: `window` of
/// `GET /popular` is one of their labels, which only the configuration knows.
pub fn document(windows: &[Window]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let labels: Vec<String> = windows.iter().map(|w| w.label()).collect();
    let window = doc
        .paths
        .paths
        .get_mut("/popular")
        .and_then(|item| item.get.as_mut())
        .and_then(|op| op.parameters.as_mut())
        .and_then(|ps| {
            ps.iter_mut()
                .find(|p| p.name == "window" && p.parameter_in == ParameterIn::Query)
        });
    if let Some(p) = window {
        p.schema = Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(labels))
                .into(),
        );
    }
    doc
}

/// `/docs`: Swagger UI reading [`DOCUMENT_PATH`] (served by its own handler, so the
/// document goes through the same middleware as every route); merged into the router.
pub fn docs() -> SwaggerUi {
    SwaggerUi::new("/docs").config(Config::new([DOCUMENT_PATH]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsrec_core::{ID_PATTERN, MAX_ID_LEN, time};
    use serde_json::{Value, json};

    use crate::config::MAX_K;
    use crate::query::DEFAULT_K;

    fn doc() -> Value {
        let windows = [Window::hours(1), Window::hours(6), Window::hours(24)];
        serde_json::to_value(document(&windows)).expect("serialises")
    }

    fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
    }

    /// The derive takes literals; these are the constants the handlers check.
    #[test]
    fn published_bounds_are_the_enforced_ones() {
        let doc = doc();
        for (path, method) in [
            ("/recommendations", "get"),
            ("/popular", "get"),
            ("/articles/{page}/similar", "get"),
        ] {
            let k = &param(&doc, path, method, "k")["schema"];
            assert_eq!(k["minimum"], 1, "{path}");
            assert_eq!(k["maximum"], MAX_K, "{path}");
            assert_eq!(k["default"], DEFAULT_K, "{path}");
            assert_eq!(k["type"], "integer", "{path}");
        }
        let num_recs = param(&doc, "/recommendations", "get", "num_recs");
        assert_eq!(num_recs["schema"]["maximum"], MAX_K);
        for id in [
            &param(&doc, "/recommendations", "get", "user_id")["schema"],
            &param(&doc, "/articles/{page}/similar", "get", "page")["schema"],
        ] {
            assert_eq!(id["minLength"], 1);
            assert_eq!(id["maxLength"], MAX_ID_LEN);
            assert_eq!(id["pattern"], ID_PATTERN);
        }
        assert_eq!(
            param(&doc, "/recommendations", "get", "user_id")["required"],
            true
        );
        assert_eq!(
            param(&doc, "/popular", "get", "window")["schema"]["enum"],
            json!(["1h", "6h", "24h"])
        );

        let event = &doc["components"]["schemas"]["ClickEvent"];
        let mut required: Vec<&str> = event["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["event_id", "page", "ts", "user_id", "user_type"]);
        let props = &event["properties"];
        assert_eq!(props["ts"]["minimum"], time::MIN_PLAUSIBLE_MS);
        assert_eq!(props["ts"]["exclusiveMaximum"], time::MAX_PLAUSIBLE_MS);
        assert_eq!(props["session_id"]["maxLength"], MAX_ID_LEN);
        assert_eq!(props["clicks"]["maximum"], u32::MAX);
        assert_eq!(props["page_visits"]["maximum"], u32::MAX);
        assert_eq!(props["time_on_page_ms"]["maximum"], u64::MAX);
        assert_eq!(props["scroll_pct"]["minimum"], 0);
        let ids = &doc["components"]["schemas"]["EventId"];
        assert_eq!(ids["maxLength"], MAX_ID_LEN);
        assert_eq!(
            doc["components"]["schemas"]["UserType"]["enum"],
            json!(["Logged", "Non-Logged"])
        );
    }

    #[test]
    fn every_route_is_documented() {
        let doc = doc();
        let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
        for p in [
            "/recommendations",
            "/popular",
            "/articles/{page}/similar",
            "/events",
            "/evaluation/metrics",
            "/evaluation/online",
            "/experiments",
            "/models/current",
            "/admin/reload",
            "/metrics",
            "/health/live",
            "/health/ready",
            DOCUMENT_PATH,
        ] {
            assert!(paths.iter().any(|x| *x == p), "{p} missing from {paths:?}");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
