//! HTTP(S) Range reading natively, with ureq (rustls). Blocking calls inside async functions: the
//! native reader runs them on its own threads, never on a shared executor.

use super::http::{Answer, RangeClient, RetryPolicy, Transport};
use super::{ByteSource, Bytes};
use crate::slide::{Error, Result};
use std::io::Read;
use std::ops::Range;
use std::time::Duration;

/// A slide on a web server that answers Range requests (or a small one that does not).
pub struct HttpSource {
    client: RangeClient<Ureq>,
}

impl HttpSource {
    /// Connects, reads the first block and learns the length.
    pub async fn open(url: &str, policy: RetryPolicy) -> Result<Self> {
        Ok(Self { client: RangeClient::open(Ureq::new(policy.timeout_s), url, policy).await? })
    }
}

struct Ureq {
    agent: ureq::Agent,
}

impl Ureq {
    fn new(timeout_s: u32) -> Self {
        let t = timeout_s.max(1) as u64;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(t.min(15))))
            .timeout_recv_response(Some(Duration::from_secs(t)))
            .timeout_recv_body(Some(Duration::from_secs(2 * t)))
            .build();
        Self { agent: config.into() }
    }
}

#[async_trait::async_trait]
impl Transport for Ureq {
    async fn get(&self, url: &str, range: Option<Range<u64>>, limit: u64) -> Result<Answer> {
        let mut request = self.agent.get(url).header("Accept-Encoding", "identity");
        if let Some(r) = &range {
            request = request.header("Range", format!("bytes={}-{}", r.start, r.end.saturating_sub(1)));
        }
        let mut response = request.call().map_err(|e| match e {
            ureq::Error::StatusCode(status) => Error::Http { status },
            other => Error::Network(other.to_string()),
        })?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_range = header("content-range");
        let declared: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
        if declared.is_some_and(|n| n > limit) {
            return Ok(Answer { status, content_range, body: Bytes::new(), too_long: true });
        }
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::Network(format!("reading the body: {e}")))?;
        let too_long = body.len() as u64 > limit;
        Ok(Answer { status, content_range, body: if too_long { Bytes::new() } else { body.into() }, too_long })
    }

    async fn sleep(&self, ms: u32) {
        std::thread::sleep(Duration::from_millis(ms.into()));
    }
}

#[async_trait::async_trait]
impl ByteSource for HttpSource {
    fn len(&self) -> u64 {
        self.client.len()
    }

    fn name(&self) -> &str {
        self.client.url()
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        self.client.read_range(range).await
    }
}
