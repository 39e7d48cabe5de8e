//! ApiVersions: what Runnel serves. An unsupported ApiVersions version is answered in v0 with
//! UNSUPPORTED_VERSION and the full list, so the client can retry with a version both sides know.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::api::SUPPORTED;
use crate::broker::Broker;
use crate::protocol::encode_response;
use crate::request::Reply;
use crate::request::RequestContext;

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, lo, hi)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*lo)
                .with_max_version(*hi)
        })
        .collect()
}

pub async fn handle(
    _broker: &Broker,
    _req: ApiVersionsRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<ApiVersionsResponse> {
    Some(ApiVersionsResponse::default().with_api_keys(api_list()))
}

pub fn unsupported(correlation_id: i32) -> Reply {
    let resp = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    match encode_response(ApiKey::ApiVersions, 0, correlation_id, &resp) {
        Ok(frame) => Reply::Frame(frame),
        Err(e) => Reply::Close(e.to_string()),
    }
}
