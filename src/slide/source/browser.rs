//! Browser sources: a `File`/`Blob` read by slices (nothing is loaded whole), and a URL read with
//! `fetch` Range requests. Both work in the page and in a Web Worker.

use super::http::{Answer, RangeClient, RetryPolicy, Transport};
use super::{ByteSource, Bytes, check_range};
use crate::slide::{Error, Result};
use std::ops::Range;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A user's `File` (from a picker or a drop) or any `Blob`.
pub struct BlobSource {
    blob: web_sys::Blob,
    name: String,
}

impl BlobSource {
    /// Wraps a Blob; `name` (the file name) appears in messages.
    pub fn new(blob: web_sys::Blob, name: &str) -> Self {
        Self { blob, name: name.to_string() }
    }
}

/// A readable message from a rejected promise or thrown value.
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

#[async_trait::async_trait(?Send)]
impl ByteSource for BlobSource {
    fn len(&self) -> u64 {
        self.blob.size() as u64
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        check_range(&range, self.len())?;
        let read_error = |e: JsValue| Error::Io(js_message(&e)).at(&self.name);
        let slice = self.blob.slice_with_f64_and_f64(range.start as f64, range.end as f64).map_err(read_error)?;
        let buffer = JsFuture::from(slice.array_buffer()).await.map_err(read_error)?;
        let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
        if bytes.len() as u64 != range.end - range.start {
            return Err(Error::Io(format!("asked for {} bytes, the Blob gave {}", range.end - range.start, bytes.len())).at(&self.name));
        }
        Ok(bytes.into())
    }
}

/// A slide on a web server, read with Range requests through the browser's `fetch`. The server must
/// allow the page's origin (CORS) and expose `Content-Range`.
pub struct FetchSource {
    client: RangeClient<Fetch>,
}

impl FetchSource {
    /// Reads the first block and learns the length.
    pub async fn open(url: &str, policy: RetryPolicy) -> Result<Self> {
        Ok(Self { client: RangeClient::open(Fetch { timeout_s: policy.timeout_s.max(1) }, url, policy).await? })
    }
}

/// One `fetch` per request, aborted (an `AbortController`) when headers and body have not both
/// arrived within `timeout_s`: a server that stops answering becomes a "timed out" error, as natively.
pub(crate) struct Fetch {
    timeout_s: u32,
}

/// `setTimeout(f, ms)` in a page or a worker; the timer's id, for [`clear_timer`].
fn set_timer(f: &JsValue, ms: u32) -> Option<JsValue> {
    let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
    set_timeout.call2(&JsValue::NULL, f, &JsValue::from(ms)).ok()
}

fn clear_timer(id: &JsValue) {
    if let Some(clear) =
        js_sys::Reflect::get(&js_sys::global(), &"clearTimeout".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    {
        let _ = clear.call1(&JsValue::NULL, id);
    }
}

fn global_fetch(request: &web_sys::Request) -> Result<js_sys::Promise> {
    let global = js_sys::global();
    if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        return Ok(window.fetch_with_request(request));
    }
    if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        return Ok(worker.fetch_with_request(request));
    }
    Err(Error::Network("no fetch in this JavaScript context".into()))
}

#[async_trait::async_trait(?Send)]
impl Transport for Fetch {
    async fn get(&self, url: &str, range: Option<Range<u64>>, limit: u64) -> Result<Answer> {
        let controller = web_sys::AbortController::new().map_err(|e| Error::Network(js_message(&e)))?;
        let signal = controller.signal();
        // `controller.abort` bound in JS: no Rust closure to leak when the timer is cleared.
        let abort = js_sys::Reflect::get(&controller, &"abort".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .map(|f| f.bind0(&controller));
        let timer = abort.and_then(|f| set_timer(&f, self.timeout_s.saturating_mul(1000)));
        let answer = self.get_once(url, range, limit, &signal).await;
        if let Some(id) = &timer {
            clear_timer(id);
        }
        match answer {
            Err(_) if signal.aborted() => Err(Error::Network(format!("timed out: no complete answer within {} s", self.timeout_s))),
            other => other,
        }
    }

    async fn sleep(&self, ms: u32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if set_timer(&resolve, ms).is_none() {
                let _ = resolve.call0(&JsValue::NULL);
            }
        });
        let _ = JsFuture::from(promise).await;
    }
}

impl Fetch {
    async fn get_once(&self, url: &str, range: Option<Range<u64>>, limit: u64, signal: &web_sys::AbortSignal) -> Result<Answer> {
        let js = |e: JsValue| Error::Network(js_message(&e));
        let init = web_sys::RequestInit::new();
        init.set_signal(Some(signal));
        init.set_method("GET");
        // The slide is the user's: no cookies to other origins, no cached partial answers.
        init.set_cache(web_sys::RequestCache::NoStore);
        let headers = web_sys::Headers::new().map_err(js)?;
        if let Some(r) = &range {
            headers.set("Range", &format!("bytes={}-{}", r.start, r.end.saturating_sub(1))).map_err(js)?;
        }
        init.set_headers(&headers);
        let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(js)?;
        let response = JsFuture::from(global_fetch(&request)?).await.map_err(|e| {
            Error::Network(format!("{} (the server is unreachable or does not allow this page's origin: CORS)", js_message(&e)))
        })?;
        let response: web_sys::Response = response.dyn_into().map_err(js)?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let content_range = header("content-range");
        let declared: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
        if declared.is_some_and(|n| n > limit) {
            if let Some(body) = response.body() {
                let _ = body.cancel();
            }
            return Ok(Answer { status, content_range, body: Bytes::new(), too_long: true });
        }
        let buffer = JsFuture::from(response.array_buffer().map_err(js)?)
            .await
            .map_err(|e| Error::Network(format!("reading the body: {}", js_message(&e))))?;
        let body = js_sys::Uint8Array::new(&buffer).to_vec();
        let too_long = body.len() as u64 > limit;
        Ok(Answer { status, content_range, body: if too_long { Bytes::new() } else { body.into() }, too_long })
    }
}

#[async_trait::async_trait(?Send)]
impl ByteSource for FetchSource {
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
