//! Decoding throughput on a synthetic, realistic export of ~100 MB fed as 64 KiB chunks.
//!
//! `cargo bench -p iterable-export --bench decode -- --warm-up-time 1 --measurement-time 5`
//!
//! On a busy machine, set `DECODE_BENCH_CPU_TIME=1` to measure the thread's CPU time (from
//! `/proc/thread-self/schedstat`) instead of wall-clock time.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};
use futures::{StreamExt, executor::block_on, stream};
use iterable_export::{CsvRecords, DEFAULT_MAX_LINE_LENGTH, Event, Lines, Records};

const TARGET_BYTES: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// xorshift64*: deterministic and fast.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn hex(&mut self, out: &mut String, n: usize) {
        use std::fmt::Write;
        for _ in 0..n / 16 {
            let _ = write!(out, "{:016x}", self.next());
        }
    }
}

const CITIES: &[&str] = &[
    "San Francisco",
    "Paris",
    "Tokyo",
    "Berlin",
    "São Paulo",
    "New York",
    "Zürich",
];
const COUNTRIES: &[&str] = &["United States", "France", "Japan", "Germany", "Brazil", "Switzerland"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
];
const PRODUCTS: &[&str] = &[
    "Trail Runner 2",
    "Merino Sock (3-pack)",
    "Rain Shell \\\"Pro\\\"",
    "水筒 750ml",
    "Headlamp 🔦",
];
const EVENTS: &[&str] = &["addToCart", "viewedProduct", "appOpened", "subscriptionRenewed"];

fn time(rng: &mut Rng) -> String {
    format!(
        "2024-{:02}-{:02} {:02}:{:02}:{:02} +00:00",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

/// One NDJSON record: emailSend (half), emailOpen, customEvent or userUpdate (`email_send_only`: emailSend).
fn record(rng: &mut Rng, out: &mut String, email_send_only: bool) {
    use std::fmt::Write;
    let user = rng.below(5_000_000);
    let created = time(rng);
    let kind = if email_send_only { rng.below(4) } else { rng.below(8) };
    let _ = write!(
        out,
        r#"{{"email":"user{user}@example.com","userId":"u{user}","createdAt":"{created}""#
    );
    match kind {
        0..=5 => {
            let _ = write!(
                out,
                r#","campaignId":{},"templateId":{},"messageId":""#,
                1_000_000 + rng.below(9_000_000),
                2_000_000 + rng.below(9_000_000)
            );
            rng.hex(out, 32);
            out.push_str(r#"","messageBusId":""#);
            rng.hex(out, 16);
            let _ = write!(
                out,
                r#"","messageTypeId":{},"contentId":{},"channelId":{}"#,
                10_000 + rng.below(90_000),
                rng.below(1_000_000),
                20_000 + rng.below(9_000)
            );
            if kind >= 4 {
                let _ = write!(
                    out,
                    r#","city":"{}","country":"{}","region":"CA","ip":"203.0.113.{}","userAgent":"{}","userAgentDevice":"Mobile""#,
                    rng.pick(CITIES),
                    rng.pick(COUNTRIES),
                    rng.below(255),
                    rng.pick(AGENTS)
                );
            } else {
                out.push_str(r#","catalogCollectionCount":0,"catalogLookupCount":0,"productRecommendationCount":2"#);
                let _ = write!(
                    out,
                    r#","transactionalData":{{"orderId":"ORD-{}","items":["#,
                    rng.below(1 << 40)
                );
                for i in 0..1 + rng.below(3) {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(
                        out,
                        r#"{{"sku":"SKU-{}","name":"{}","price":{}.{:02},"quantity":{}}}"#,
                        rng.below(100_000),
                        rng.pick(PRODUCTS),
                        rng.below(300),
                        rng.below(100),
                        1 + rng.below(4)
                    );
                }
                let _ = write!(
                    out,
                    r#"],"shipping":{{"method":"ground","city":"{}"}}}}"#,
                    rng.pick(CITIES)
                );
            }
            let _ = write!(
                out,
                r#","itblInternal":{{"documentCreatedAt":"{created}","documentUpdatedAt":"{created}","emailDomain":"example.com"}}}}"#
            );
        }
        6 => {
            let _ = write!(
                out,
                r#","eventName":"{}","campaignId":{},"dataFields":{{"screen":"home","durationMs":{},"tags":["a","b","新"],"nested":{{"x":{},"y":null,"ok":true}}}},"itblInternal":{{"documentCreatedAt":"{created}","documentUpdatedAt":"{created}","emailDomain":"example.com"}}}}"#,
                rng.pick(EVENTS),
                rng.below(10_000_000),
                rng.below(100_000),
                rng.below(1000)
            );
        }
        _ => {
            let _ = write!(
                out,
                r#","signupDate":"{created}","firstName":"Zoë","lastName":"O'Brien","phoneNumber":"+1415555{:04}","itblInternal.emailDomain":"example.com","profile.tier":"gold","profile.points":{},"emailListIds":[{},{}],"shoppingCartItems":[{{"id":"{}","price":9.99}}],"profileUpdatedAt":"{created}"}}"#,
                rng.below(10_000),
                rng.below(100_000),
                rng.below(1000),
                rng.below(1000),
                rng.below(1_000_000)
            );
        }
    }
}

fn ndjson_corpus(target: usize, email_send_only: bool) -> (Bytes, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = String::with_capacity(target + 4096);
    let mut n = 0;
    while out.len() < target {
        record(&mut rng, &mut out, email_send_only);
        out.push('\n');
        n += 1;
    }
    (Bytes::from(out), n)
}

/// The same kind of data as CSV (the shape of `/export/data.csv`), with quoted JSON and commas in fields.
fn csv_corpus() -> (Bytes, usize) {
    use std::fmt::Write;
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut out = String::with_capacity(TARGET_BYTES + 4096);
    out.push_str("email,userId,createdAt,campaignId,templateId,messageId,city,userAgent,transactionalData\r\n");
    let mut n = 0;
    while out.len() < TARGET_BYTES {
        let user = rng.below(5_000_000);
        let created = time(&mut rng);
        let _ = write!(
            out,
            "user{user}@example.com,u{user},{created},{},{},",
            rng.below(10_000_000),
            rng.below(10_000_000)
        );
        rng.hex(&mut out, 32);
        let _ = write!(
            out,
            ",\"{}, {}\",\"{}\",\"{{\"\"orderId\"\":\"\"ORD-{}\"\",\"\"total\"\":{}.{:02}}}\"\r\n",
            rng.pick(CITIES),
            rng.pick(COUNTRIES),
            rng.pick(AGENTS),
            rng.below(1 << 40),
            rng.below(1000),
            rng.below(100)
        );
        n += 1;
    }
    (Bytes::from(out), n)
}

fn chunks(body: &Bytes) -> Vec<Bytes> {
    (0..body.len())
        .step_by(CHUNK)
        .map(|i| body.slice(i..(i + CHUNK).min(body.len())))
        .collect()
}

fn body(chunks: &[Bytes]) -> impl futures::Stream<Item = iterable_export::Result<Bytes>> + Send + 'static {
    let owned: Vec<Bytes> = chunks.to_vec();
    stream::iter(owned.into_iter().map(Ok))
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let (ndjson, ndjson_records) = ndjson_corpus(TARGET_BYTES, false);
    let (sends, sends_records) = ndjson_corpus(TARGET_BYTES / 2, true);
    let (csv, csv_records) = csv_corpus();
    eprintln!(
        "corpus: NDJSON {} bytes, {ndjson_records} records ({} bytes/record); CSV {} bytes, {csv_records} records",
        ndjson.len(),
        ndjson.len() / ndjson_records,
        csv.len()
    );
    eprintln!(
        "emailSend corpus: {} bytes, {sends_records} records ({} bytes/record)",
        sends.len(),
        sends.len() / sends_records
    );
    let ndjson_chunks = chunks(&ndjson);
    let csv_chunks = chunks(&csv);
    let sends_chunks = chunks(&sends);

    let mut group = c.benchmark_group("decode");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));

    group.throughput(Throughput::Bytes(ndjson.len() as u64));
    group.bench_function("lines", |b| {
        b.iter(|| {
            let n = block_on(
                Lines::from_stream(body(&ndjson_chunks), DEFAULT_MAX_LINE_LENGTH).fold(0usize, |n, l| {
                    black_box(l.expect("line"));
                    async move { n + 1 }
                }),
            );
            assert_eq!(n, ndjson_records);
        });
    });
    group.bench_function("records_event", |b| {
        b.iter(|| {
            let records = Records::<Event>::from_stream(body(&ndjson_chunks), DEFAULT_MAX_LINE_LENGTH);
            let n = block_on(records.fold(0usize, |n, e| {
                black_box(e.expect("event"));
                async move { n + 1 }
            }));
            assert_eq!(n, ndjson_records);
        });
    });
    group.throughput(Throughput::Bytes(sends.len() as u64));
    group.bench_function("records_event_email_send", |b| {
        b.iter(|| {
            let records = Records::<Event>::from_stream(body(&sends_chunks), DEFAULT_MAX_LINE_LENGTH);
            let n = block_on(records.fold(0usize, |n, e| {
                black_box(e.expect("event"));
                async move { n + 1 }
            }));
            assert_eq!(n, sends_records);
        });
    });
    group.bench_function("baseline_typed_raw_email_send", |b| {
        // Reference point: a derived struct with the typed fields and two nested values kept raw, dropping the rest.
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Baseline {
            email: Option<String>,
            #[serde(rename = "userId")]
            user_id: Option<String>,
            #[serde(rename = "createdAt")]
            created_at: Option<String>,
            #[serde(rename = "campaignId")]
            campaign_id: Option<i64>,
            #[serde(rename = "templateId")]
            template_id: Option<i64>,
            #[serde(rename = "messageId")]
            message_id: Option<String>,
            #[serde(rename = "transactionalData")]
            transactional_data: Option<Box<serde_json::value::RawValue>>,
            #[serde(rename = "itblInternal")]
            itbl_internal: Option<Box<serde_json::value::RawValue>>,
        }
        b.iter(|| {
            let records = Records::<Baseline>::from_stream(body(&sends_chunks), DEFAULT_MAX_LINE_LENGTH);
            let n = block_on(records.fold(0usize, |n, e| {
                black_box(e.expect("baseline"));
                async move { n + 1 }
            }));
            assert_eq!(n, sends_records);
        });
    });
    group.throughput(Throughput::Bytes(ndjson.len() as u64));
    group.bench_function("records_value", |b| {
        b.iter(|| {
            let records = Records::<serde_json::Value>::from_stream(body(&ndjson_chunks), DEFAULT_MAX_LINE_LENGTH);
            let n = block_on(records.fold(0usize, |n, e| {
                black_box(e.expect("value"));
                async move { n + 1 }
            }));
            assert_eq!(n, ndjson_records);
        });
    });

    group.throughput(Throughput::Bytes(csv.len() as u64));
    group.bench_function("csv_records", |b| {
        b.iter(|| {
            block_on(async {
                let records = CsvRecords::from_stream(body(&csv_chunks), DEFAULT_MAX_LINE_LENGTH)
                    .await
                    .expect("header");
                let n = records
                    .fold(0usize, |n, r| {
                        black_box(r.expect("record"));
                        async move { n + 1 }
                    })
                    .await;
                assert_eq!(n, csv_records);
            });
        });
    });
    group.finish();
}

/// CPU time of the current thread, in nanoseconds (Linux).
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat runtime")
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns() - start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WallTime.formatter()
    }
}

fn main() {
    if std::env::var_os("DECODE_BENCH_CPU_TIME").is_some() {
        let mut c = Criterion::default().with_measurement(CpuTime).configure_from_args();
        bench(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c);
        c.final_summary();
    }
}
