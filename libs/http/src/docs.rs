//! What the OpenAPI document says alike of many operations, so that each
//! route's annotation need say only what is its own: the bearer scheme that
//! `security(("bearer" = []))` names, and the answers that the kit's
//! extractors and layers give whatever the route (401 from [`Auth`] and
//! [`MaybeAuth`], 400, 413, 415 and 422 from [`ApiJson`], 422 from
//! [`ApiQuery`], 500, and 503 from the timeout layer or a backend that does
//! not answer), ids spelled out as a pattern; and what utoipa's attributes
//! cannot say ([`EmptyMeansAbsent`], [`Bytes`]).
//!
//! [`Auth`]: crate::Auth
//! [`MaybeAuth`]: crate::MaybeAuth
//! [`ApiJson`]: crate::ApiJson
//! [`ApiQuery`]: crate::ApiQuery

use std::marker::PhantomData;

use utoipa::IntoParams;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder,
};

use crate::ErrorBody;

/// The name of the security scheme of `Authorization: Bearer` access
/// tokens: `security(("bearer" = []))` on a route that needs one,
/// `security((), ("bearer" = []))` on one that takes one when given.
pub const BEARER: &str = "bearer";

/// A shared response: its status and what it says.
struct Shared {
    status: &'static str,
    name: &'static str,
    description: &'static str,
}

const UNAUTHORIZED: Shared = Shared {
    status: "401",
    name: "Unauthorized",
    description: "No access token where one is needed (`unauthorized`), or one that is \
        expired, revoked or not ours (`invalid-token`); `WWW-Authenticate: Bearer` says which",
};

const JSON_BODY: [Shared; 3] = [
    Shared {
        status: "400",
        name: "InvalidJson",
        description: "The body is not JSON (`invalid-json`)",
    },
    Shared {
        status: "413",
        name: "BodyTooLarge",
        description: "The JSON body is over 2 MiB (`invalid-body`)",
    },
    Shared {
        status: "415",
        name: "NotJson",
        description: "The body is not sent as `Content-Type: application/json` \
            (`unsupported-media-type`)",
    },
];

const INVALID: Shared = Shared {
    status: "422",
    name: "Invalid",
    description: "A field of the body or a query parameter is missing or not as described, \
        named in `fields` (`validation-failed`)",
};

const EVERYWHERE: [Shared; 2] = [
    Shared {
        status: "500",
        name: "Internal",
        description: "Our failure, logged with the request id; the body says nothing \
            more (`internal`)",
    },
    Shared {
        status: "503",
        name: "Unavailable",
        description: "A backend or another role this request needs is not answering \
            (`unavailable`, `role-unavailable`; `Retry-After` when it is only busy), or the \
            request took longer than 60 s (`request-timeout`): try again shortly",
    },
];

fn error_response(description: &str, www_authenticate: bool) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if www_authenticate {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "`Bearer`, with `error=\"invalid_token\"` for a bad token",
                ))
                .build(),
        );
    }
    response.build()
}

fn link(shared: &Shared) -> RefOr<Response> {
    RefOr::Ref(Ref::new(format!("#/components/responses/{}", shared.name)))
}

fn add(operation: &mut Operation, shared: &Shared) {
    operation
        .responses
        .responses
        .entry(shared.status.to_owned())
        .or_insert_with(|| link(shared));
}

/// Whether `operation` names a security requirement with a scheme in it
/// (the empty requirement, `()`, is anonymous access).
fn takes_token(operation: &Operation) -> bool {
    operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement)
            .ok()
            .and_then(|v| v.as_object().map(|o| !o.is_empty()))
            .unwrap_or(false)
    })
}

fn takes_query(operation: &Operation) -> bool {
    operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query)
}

fn takes_json(operation: &Operation) -> bool {
    operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"))
}

/// How an id is written: what a `format: uuid` string matches, said as a
/// pattern too (formats only annotate in JSON Schema 2020-12).
const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// `doc` as served: with the bearer scheme and, on each operation, the
/// shared answers it lacks (401 where a token is taken, 400, 413, 415 and
/// 422 where the body is JSON, 422 where there are query parameters, 500
/// and 503 everywhere), and ids spelled out as a pattern too.
pub fn complete(mut doc: OpenApi) -> serde_json::Value {
    add_shared(&mut doc);
    let mut json = serde_json::to_value(&doc).unwrap_or_default();
    spell_uuids(&mut json);
    json
}

fn spell_uuids(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("format").and_then(serde_json::Value::as_str) == Some("uuid") {
                map.entry("pattern").or_insert_with(|| UUID_PATTERN.into());
            }
            map.values_mut().for_each(spell_uuids);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(spell_uuids),
        _ => {}
    }
}

fn add_shared(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("pha_…".to_owned());
    bearer.description = Some(
        "An access token from `POST /api/v1/sessions` (1 hour; renewed with \
         `POST /api/v1/sessions/refresh`)"
            .to_owned(),
    );
    components
        .security_schemes
        .insert(BEARER.to_owned(), SecurityScheme::Http(bearer));
    components
        .schemas
        .entry("ErrorBody".to_owned())
        .or_insert_with(<ErrorBody as utoipa::PartialSchema>::schema);
    for shared in JSON_BODY.iter().chain([&INVALID]).chain(&EVERYWHERE) {
        components.responses.insert(
            shared.name.to_owned(),
            error_response(shared.description, false).into(),
        );
    }
    components.responses.insert(
        UNAUTHORIZED.name.to_owned(),
        error_response(UNAUTHORIZED.description, true).into(),
    );
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            if takes_token(operation) {
                add(operation, &UNAUTHORIZED);
            }
            if takes_json(operation) {
                for shared in JSON_BODY.iter().chain([&INVALID]) {
                    add(operation, shared);
                }
            }
            if takes_query(operation) {
                add(operation, &INVALID);
            }
            for shared in &EVERYWHERE {
                add(operation, shared);
            }
        }
    }
}

/// Bytes as a body, `content = pinhole_http::docs::Bytes` (utoipa shows
/// `Vec<u8>` as an array of numbers).
pub struct Bytes;

impl utoipa::PartialSchema for Bytes {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Bytes {}

/// The parameters of `P` with each optional one marked `allowEmptyValue`,
/// for handlers that take an empty value as none (HTML forms send every
/// field, filled or not): `params(EmptyMeansAbsent<P>)`.
pub struct EmptyMeansAbsent<P>(PhantomData<P>);

impl<P: IntoParams> IntoParams for EmptyMeansAbsent<P> {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        P::into_params(parameter_in)
            .into_iter()
            .map(|mut p| {
                if p.required == Required::False {
                    // utoipa has no field for it (deprecated in OpenAPI
                    // 3.1, yet still its way to say so): an extension
                    // named as the field is.
                    p.extensions
                        .get_or_insert_with(Extensions::default)
                        .merge([("allowEmptyValue", true)].into_iter().collect());
                }
                p
            })
            .collect()
    }
}
