//! `GET /experiments/metrics`: a CSV of made-up metrics per experiment variant.

use crate::MockConfig;
use crate::data::{self, push_csv_cell, push_csv_header, push_i64, push_u64};
use crate::server::response::{CT_CSV, Small};

/// The columns of `/experiments/metrics`.
const METRICS_COLUMNS: &[&str] = &[
    "experimentId",
    "campaignId",
    "templateId",
    "variantName",
    "isControl",
    "totalSends",
    "uniqueOpens",
    "uniqueClicks",
    "purchases",
    "revenue",
    "unsubscribes",
    "openRate",
];

const VARIANT_NAMES: &[&str] = &[
    "Subject: \"Hola, amigo\" 🎉",
    "Variant B\n(short copy)",
    "Émoji test ✨",
    "Plain",
];

/// Synthetic metrics per variant of the experiments named by `experimentId` and of those of
/// each `campaignId`.
pub(in crate::server) fn metrics(config: &MockConfig, params: &[(String, String)]) -> Small {
    let mut experiments = Vec::new();
    let mut campaigns = Vec::new();
    for (k, v) in params {
        let target = match k.as_str() {
            "experimentId" => &mut experiments,
            "campaignId" => &mut campaigns,
            _ => continue,
        };
        match v.trim().parse::<i64>() {
            Ok(id) => target.push(id),
            Err(_) => return Small::bad_params(&format!("Invalid {k}: {v}")),
        }
    }
    let total = experiments.len() + campaigns.len();
    if total > 200 {
        return Small::bad_params(&format!(
            "Too many ids: {total} (at most 200 experimentId and campaignId values per request)"
        ));
    }
    let mut out = Vec::new();
    push_csv_header(&mut out, METRICS_COLUMNS);
    let rows = experiments
        .iter()
        .map(|&e| (e, 100_000 + e.rem_euclid(500)))
        .chain(campaigns.iter().map(|&c| (c.saturating_mul(10).saturating_add(1), c)));
    for (exp, campaign) in rows {
        let h = data::mix(config.seed ^ data::mix(exp as u64));
        let variants = 2 + h % 3;
        for v in 0..variants {
            let mut rng = data::Rng::new(h ^ v);
            let sends = 1000 + rng.below(100_000);
            let opens = rng.below(sends / 2 + 1);
            let clicks = rng.below(opens / 3 + 1);
            let purchases = rng.below(clicks / 2 + 1);
            let revenue = purchases * (1000 + rng.below(9000));
            let unsubs = rng.below(sends / 100 + 1);
            push_i64(&mut out, exp);
            out.push(b',');
            push_i64(&mut out, campaign);
            out.push(b',');
            push_i64(&mut out, campaign.saturating_mul(3).saturating_add(7));
            out.push(b',');
            let name = if v == 0 { "Control" } else { rng.pick(VARIANT_NAMES) };
            push_csv_cell(&mut out, name.as_bytes());
            out.push(b',');
            out.extend_from_slice(if v == 0 { b"true" } else { b"false" });
            for n in [sends, opens, clicks, purchases] {
                out.push(b',');
                push_u64(&mut out, n);
            }
            out.push(b',');
            push_u64(&mut out, revenue / 100);
            out.push(b'.');
            push_u64(&mut out, revenue % 100 / 10);
            push_u64(&mut out, revenue % 10);
            out.push(b',');
            push_u64(&mut out, unsubs);
            out.push(b',');
            let rate = opens * 10_000 / sends;
            push_u64(&mut out, rate / 10_000);
            out.push(b'.');
            let frac = rate % 10_000 + 10_000;
            let s = out.len();
            push_u64(&mut out, frac);
            out.remove(s);
            out.push(b'\n');
        }
    }
    Small::new(200, CT_CSV, out)
}
