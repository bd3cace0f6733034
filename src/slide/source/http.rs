//! HTTP Range reading, the same logic natively and in the browser: the transport (ureq, or the
//! browser's `fetch`) only performs one GET; this module decides what the answer means.
//!
//! Opening asks for the first block with a Range header. A `206` gives the file length (from
//! Content-Range) and the first block, kept as read-ahead for the header and first IFD. A `200`
//! means the server ignores Range: the body is the whole file, kept in memory when it is at most
//! [`MAX_WHOLE_BODY`], otherwise a clear [`Error::NoRangeSupport`]. Network failures and 408, 429
//! and 5xx answers are retried with exponential backoff; other statuses fail at once.

use super::{Bytes, check_range};
use crate::slide::{Error, Result};
use std::ops::Range;

/// Largest file used from a server that ignores Range (answers 200 with the whole body).
pub const MAX_WHOLE_BODY: u64 = 64 << 20;
/// The first request's length: header, first IFD and often more.
pub(crate) const HEAD_BLOCK: u64 = 64 * 1024;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Wait before the first retry, doubled each time, in milliseconds.
    pub backoff_ms: u32,
    /// Seconds to wait for a response's headers (and twice that for its body) before giving up
    /// on the attempt with a "timed out" error (natively by ureq, in a browser by aborting the `fetch`).
    pub timeout_s: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { retries: 4, backoff_ms: 250, timeout_s: 30 }
    }
}

/// What one GET returned.
pub(crate) struct Answer {
    pub status: u16,
    /// The Content-Range header, if the transport could read it.
    pub content_range: Option<String>,
    pub body: Bytes,
    /// The body was longer than the limit asked for (and was not read).
    pub too_long: bool,
}

/// One GET, optionally with a Range header; the body is read up to `limit` bytes (a longer body
/// is reported with `too_long` and not read).
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub(crate) trait Transport: super::MaybeSendSync {
    async fn get(&self, url: &str, range: Option<Range<u64>>, limit: u64) -> Result<Answer>;
    async fn sleep(&self, ms: u32);
}

/// Parses `bytes START-END/TOTAL` (TOTAL may be `*`).
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

fn transient(error: &Error) -> bool {
    match error {
        Error::Network(_) => true,
        Error::Http { status } => matches!(status, 408 | 429 | 500..=599),
        _ => false,
    }
}

/// A remote file read by Range requests over some transport.
pub(crate) struct RangeClient<T> {
    transport: T,
    url: String,
    policy: RetryPolicy,
    len: u64,
    /// The first block (206), or the whole file when the server ignores Range (200).
    head: Bytes,
}

impl<T: Transport> RangeClient<T> {
    pub async fn open(transport: T, url: &str, policy: RetryPolicy) -> Result<Self> {
        let answer = Self::get_with_retry(&transport, url, policy, Some(0..HEAD_BLOCK), MAX_WHOLE_BODY).await.map_err(|e| e.at(url))?;
        let located = |e: Error| e.at(url);
        match answer.status {
            206 => {
                let range = answer.content_range.as_deref().and_then(parse_content_range);
                let Some((0, end, Some(total))) = range else {
                    return Err(located(Error::BadResponse(format!(
                        "206 without a usable Content-Range ({:?}); if this is a browser, the server must expose Content-Range (Access-Control-Expose-Headers)",
                        answer.content_range
                    ))));
                };
                let expected = HEAD_BLOCK.min(total);
                if end + 1 != expected || answer.body.len() as u64 != expected {
                    return Err(located(Error::BadResponse(format!(
                        "asked for bytes 0-{} and got Content-Range {:?} with {} bytes",
                        expected.saturating_sub(1),
                        answer.content_range,
                        answer.body.len()
                    ))));
                }
                Ok(Self { transport, url: url.to_string(), policy, len: total, head: answer.body })
            }
            200 => {
                if answer.too_long || answer.body.len() as u64 > MAX_WHOLE_BODY {
                    return Err(located(Error::NoRangeSupport { max_mib: MAX_WHOLE_BODY >> 20 }));
                }
                let len = answer.body.len() as u64;
                Ok(Self { transport, url: url.to_string(), policy, len, head: answer.body })
            }
            // An empty file answers 416 to any range.
            416 => Err(located(Error::Truncated { start: 0, end: 8, len: 0 })),
            status => Err(located(Error::Http { status })),
        }
    }

    async fn get_with_retry(transport: &T, url: &str, policy: RetryPolicy, range: Option<Range<u64>>, limit: u64) -> Result<Answer> {
        let mut attempt = 0;
        loop {
            let result = transport.get(url, range.clone(), limit).await;
            let result = match result {
                Ok(answer) if !(200..300).contains(&answer.status) && answer.status != 416 => Err(Error::Http { status: answer.status }),
                other => other,
            };
            match result {
                Err(e) if transient(&e) && attempt < policy.retries => {
                    transport.sleep(policy.backoff_ms.saturating_mul(1 << attempt.min(10))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        check_range(&range, self.len)?;
        if range.end <= self.head.len() as u64 {
            return Ok(self.head.slice(range.start as usize..range.end as usize));
        }
        if range.start == range.end {
            return Ok(Bytes::new());
        }
        let want = range.end - range.start;
        let answer =
            Self::get_with_retry(&self.transport, &self.url, self.policy, Some(range.clone()), want).await.map_err(|e| e.at(&self.url))?;
        let bad = |why: String| Error::BadResponse(why).at(&self.url);
        if answer.status != 206 {
            return Err(bad(format!("asked for bytes {}-{} and got status {} instead of 206", range.start, range.end - 1, answer.status)));
        }
        if let Some(value) = &answer.content_range {
            match parse_content_range(value) {
                Some((s, e, total)) if s == range.start && e + 1 == range.end && total.is_none_or(|t| t == self.len) => {}
                _ => return Err(bad(format!("asked for bytes {}-{} and got Content-Range {value:?}", range.start, range.end - 1))),
            }
        }
        if answer.too_long || answer.body.len() as u64 != want {
            return Err(bad(format!("asked for {want} bytes and got {} (connection dropped?)", answer.body.len())));
        }
        Ok(answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn content_range_parses() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, Some(1000))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
    }

    /// A scripted server: answers in order, then serves `file` correctly.
    struct Script {
        file: Vec<u8>,
        honour_range: bool,
        failures: Mutex<Vec<Result<u16>>>,
        calls: Mutex<u32>,
    }

    #[async_trait::async_trait]
    impl Transport for Script {
        async fn get(&self, _url: &str, range: Option<Range<u64>>, _limit: u64) -> Result<Answer> {
            *self.calls.lock().unwrap() += 1;
            if let Some(next) = self.failures.lock().unwrap().pop() {
                let status = next?;
                return Ok(Answer { status, content_range: None, body: Bytes::new(), too_long: false });
            }
            let len = self.file.len() as u64;
            match range {
                Some(r) if self.honour_range => {
                    let end = r.end.min(len);
                    Ok(Answer {
                        status: 206,
                        content_range: Some(format!("bytes {}-{}/{len}", r.start, end - 1)),
                        body: Bytes::copy_from_slice(&self.file[r.start as usize..end as usize]),
                        too_long: false,
                    })
                }
                _ => Ok(Answer { status: 200, content_range: None, body: Bytes::from(self.file.clone()), too_long: false }),
            }
        }
        async fn sleep(&self, _ms: u32) {}
    }

    fn script(len: usize, honour_range: bool, failures: Vec<Result<u16>>) -> Script {
        Script { file: (0..len).map(|i| (i % 251) as u8).collect(), honour_range, failures: Mutex::new(failures), calls: Mutex::new(0) }
    }

    fn open(s: Script) -> Result<RangeClient<Script>> {
        futures_lite::future::block_on(RangeClient::open(s, "http://x/slide.tif", RetryPolicy::default()))
    }

    #[test]
    fn range_server_reads_ranges_and_serves_the_head_from_memory() {
        let client = open(script(200_000, true, vec![])).unwrap();
        assert_eq!(client.len(), 200_000);
        let got = futures_lite::future::block_on(client.read_range(150_000..150_010)).unwrap();
        assert_eq!(got[0], (150_000 % 251) as u8);
        let calls = *client.transport.calls.lock().unwrap();
        futures_lite::future::block_on(client.read_range(10..20)).unwrap();
        assert_eq!(*client.transport.calls.lock().unwrap(), calls, "the first block is read-ahead");
    }

    #[test]
    fn transient_failures_are_retried_and_others_are_not() {
        let client = open(script(1000, true, vec![Ok(503), Err(Error::Network("reset".into()))])).unwrap();
        assert_eq!(client.len(), 1000);
        let err = open(script(1000, true, vec![Ok(404)])).err().unwrap();
        assert!(matches!(err.kind(), Error::Http { status: 404 }));
        assert!(err.to_string().ends_with("http://x/slide.tif"), "{err}");
        let five: Vec<_> = (0..5).map(|_| Ok(500)).collect();
        assert!(matches!(open(script(1000, true, five)).err().unwrap().kind(), Error::Http { status: 500 }));
    }

    #[test]
    fn servers_without_range_support_work_only_for_small_files() {
        let client = open(script(1000, false, vec![])).unwrap();
        assert_eq!(futures_lite::future::block_on(client.read_range(990..1000)).unwrap().len(), 10);
        let err = open(script(MAX_WHOLE_BODY as usize + 1, false, vec![])).err().unwrap();
        assert!(matches!(err.kind(), Error::NoRangeSupport { .. }), "{err}");
    }
}
