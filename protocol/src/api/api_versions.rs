//! ApiVersions (key 0): which api keys and versions the broker speaks.
//!
//! A client sends it first; any version of this request is answered with
//! version 0 of the response, so negotiation never fails.
//!
//! ```text
//! request  = (empty)
//! response = apis: array< api_key: u16 | min_version: u16 | max_version: u16 >
//! ```

use bytes::{BufMut, BytesMut};

use super::{ApiKey, Body, Request, empty_body};
use crate::error::Result;
use crate::wire::{WireReader, put_array_len};

/// ApiVersions request: no fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest;

empty_body!(ApiVersionsRequest);

impl Request for ApiVersionsRequest {
    const API_KEY: ApiKey = ApiKey::ApiVersions;
    type Response = ApiVersionsResponse;
}

/// One supported api key and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    pub api_key: u16,
    pub min_version: u16,
    pub max_version: u16,
}

/// ApiVersions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsResponse {
    pub apis: Vec<ApiVersionRange>,
}

impl ApiVersionsResponse {
    /// What this build supports.
    pub fn supported() -> Self {
        ApiVersionsResponse {
            apis: ApiKey::SUPPORTED
                .iter()
                .map(|(k, min, max)| ApiVersionRange {
                    api_key: *k as u16,
                    min_version: *min,
                    max_version: *max,
                })
                .collect(),
        }
    }
}

impl Body for ApiVersionsResponse {
    fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        put_array_len(dst, self.apis.len());
        for a in &self.apis {
            dst.put_u16(a.api_key);
            dst.put_u16(a.min_version);
            dst.put_u16(a.max_version);
        }
        Ok(())
    }

    fn read(r: &mut WireReader) -> Result<Self> {
        let n = r.array_len("apis", 6)?;
        let mut apis = Vec::with_capacity(n);
        for _ in 0..n {
            apis.push(ApiVersionRange {
                api_key: r.u16("api_key")?,
                min_version: r.u16("min_version")?,
                max_version: r.u16("max_version")?,
            });
        }
        Ok(ApiVersionsResponse { apis })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::round_trip;

    #[test]
    fn round_trips() {
        round_trip(&ApiVersionsResponse::supported());
        round_trip(&ApiVersionsRequest);
    }
}
