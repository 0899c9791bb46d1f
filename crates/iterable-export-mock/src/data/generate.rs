//! One record's values: a pure function of `(seed, data type, day, index)`, written field by
//! field in the order of the data type's family. Also the events of one user for
//! `/export/userEvents`.
//!
//! (One `match` over the fields: over 400 lines, but each arm is one field's recipe, and the
//! arms share the record's random source in order — splitting them would scatter that order.)

use super::catalogue::{DataType, F};
use super::pools::*;
use super::random::{Rng, mix};
use super::record::Rec;
use super::stream::{DataParams, DayInfo, second_of_day};
use super::text::{push_hex, push_i64, push_json_str, push_money, push_u64};

/// Generates record `i` of `day` for `dt` into `rec`.
pub(super) fn generate(
    p: &DataParams,
    dt: DataType,
    day: &DayInfo,
    i: u64,
    email_override: Option<&str>,
    rec: &mut Rec,
) {
    rec.clear();
    let n = p.records_per_day.max(1);
    let sod = second_of_day(i, n);
    let mut rng = Rng::new(mix(
        p.seed ^ mix((dt.index() << 56) ^ (day.day as u64) ^ mix(i.wrapping_add(0x5eed)))
    ));
    let user = match email_override {
        Some(e) => {
            mix(e
                .bytes()
                .fold(0x811c_9dc5, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)))
                % 100_000
        }
        None => rng.below(100_000),
    };
    let user_rng_seed = mix(p.seed ^ user ^ 0x0005_e125);
    let mut urng = Rng::new(user_rng_seed);
    let domain = urng.pick(DOMAINS);
    let campaign = 100_000 + rng.below(500);
    let updated_sod = (sod + rng.below(600) as u32).min(86_399);

    let day_of_data = day.day - p.first_day;
    // the user table: a profile signed up before the data start (a day and second per user), and
    // was last updated at the record's time
    let signup = (dt == DataType::User).then(|| {
        let back = 1 + (mix(user ^ 0x51_9e) % 365) as i64;
        (DayInfo::new(p.first_day - back), (mix(user ^ 0x5ec) % 86_400) as u32)
    });
    for f in dt.field_ids_on(day_of_data) {
        use F::*;
        let key = f.name();
        match f {
            CreatedAt => rec.str_with(key, |b| day.push_time(b, sod)),
            Email => match email_override {
                Some(e) => rec.str(key, e),
                None => rec.str_with(key, |b| {
                    let local: &str = if user.is_multiple_of(13) { "zoë." } else { "user" };
                    b.extend_from_slice(local.as_bytes());
                    push_u64(b, user);
                    b.push(b'@');
                    b.extend_from_slice(domain.as_bytes());
                }),
            },
            UserId => rec.str_with(key, |b| {
                b.push(b'u');
                push_u64(b, user);
            }),
            CampaignId => {
                if !(matches!(dt, DataType::CustomEvent | DataType::Purchase | DataType::SmsReceived) && rng.pct(50)) {
                    rec.int(key, campaign as i64);
                }
            }
            TemplateId => {
                if !(matches!(dt, DataType::CustomEvent | DataType::Purchase) && rng.pct(50)) {
                    rec.int(key, (campaign * 3 + 7) as i64);
                }
            }
            MessageId => {
                let (a, c) = (rng.next_u64(), rng.next_u64());
                rec.str_with(key, |b| {
                    push_hex(b, a, 16);
                    push_hex(b, c, 16);
                });
            }
            MessageBusId => {
                let (a, c) = (rng.next_u64(), rng.next_u64());
                rec.str_with(key, |b| {
                    push_hex(b, a, 16);
                    push_hex(b, c, 8);
                });
            }
            MessageTypeId => rec.int(key, 1000 + rng.below(20) as i64),
            ContentId => {
                if rng.pct(90) {
                    rec.int(key, 200_000 + rng.below(10_000) as i64);
                }
            }
            ChannelId => rec.int(key, 10 + rng.below(5) as i64),
            CatalogCollectionCount => rec.int(key, rng.below(3) as i64),
            CatalogLookupCount => rec.int(key, rng.below(5) as i64),
            ProductRecommendationCount => rec.int(key, rng.below(4) as i64),
            TransactionalData => {
                let r = rng.below(10);
                let order = rng.below(1_000_000);
                let amount = rng.below(100_000);
                let note = rng.pick(COMMENTS);
                let write = |b: &mut Vec<u8>| {
                    b.extend_from_slice(b"{\"orderId\":\"A-");
                    push_u64(b, order);
                    b.extend_from_slice(b"\",\"amount\":");
                    push_money(b, amount);
                    b.extend_from_slice(b",\"note\":");
                    push_json_str(b, note.as_bytes());
                    b.extend_from_slice(b",\"items\":[1,2]}");
                };
                match r {
                    0..=3 => rec.raw_with(key, write),
                    4..=6 => rec.str_with(key, write),
                    _ => {}
                }
            }
            ItblInternal => rec.raw_with(key, |b| {
                b.extend_from_slice(b"{\"documentCreatedAt\":\"");
                day.push_time(b, sod);
                b.extend_from_slice(b"\",\"documentUpdatedAt\":\"");
                day.push_time(b, updated_sod);
                b.extend_from_slice(b"\"}");
            }),
            RecordId => rec.str_with(key, |b| {
                b.extend_from_slice(dt.as_str().as_bytes());
                b.push(b'-');
                push_i64(b, day.day);
                b.push(b'-');
                push_u64(b, i);
            }),
            City | Country | Region => {
                // the place is chosen once per record (the three fields are consecutive)
                let (city, region, country) = PLACES[(mix(user ^ day.day as u64) % PLACES.len() as u64) as usize];
                let value = match f {
                    City => city,
                    Country => country,
                    _ => region,
                };
                rec.str(key, value);
            }
            Ip => {
                let v = rng.next_u64();
                rec.str_with(key, |b| {
                    if v.is_multiple_of(5) {
                        b.extend_from_slice(b"2001:db8::");
                        push_hex(b, v >> 48, 4);
                    } else {
                        b.extend_from_slice(b"203.0.");
                        push_u64(b, (v >> 8) & 0xff);
                        b.push(b'.');
                        push_u64(b, v & 0xff);
                    }
                });
            }
            UserAgent => rec.str(key, rng.pick(USER_AGENTS)),
            UserAgentDevice => rec.str(key, rng.pick(DEVICES)),
            Url | ClickedUrl => {
                let v = rng.below(10_000);
                let base = if v.is_multiple_of(7) {
                    "https://example.com/café/menü?q=a,b&ref="
                } else {
                    "https://shop.example.com/p/"
                };
                rec.str_with(key, |b| {
                    b.extend_from_slice(base.as_bytes());
                    push_u64(b, v);
                    b.extend_from_slice(b"?utm_source=iterable&utm_medium=email");
                });
            }
            HrefIndex => rec.int(key, rng.below(12) as i64),
            RecipientState => rec.str(
                key,
                match dt {
                    DataType::EmailComplaint => "Complaint",
                    _ => rng.pick(&["HardBounce", "SoftBounce"]),
                },
            ),
            Status => rec.str(key, rng.pick(STATUSES)),
            UnsubSource => rec.str(key, rng.pick(&["EmailLink", "ListUnsubscribe", "Manual", "Complaint"])),
            EmailListIds => {
                let k = rng.below(4);
                let base = 5000 + rng.below(100);
                rec.raw_with(key, |b| {
                    b.push(b'[');
                    for x in 0..k {
                        if x > 0 {
                            b.push(b',');
                        }
                        push_u64(b, base + x * 3);
                    }
                    b.push(b']');
                });
            }
            PlatformEndpoint => rec.str(key, rng.pick(&["APNS", "GCM", "APNS_SANDBOX", "WebPush"])),
            PushMessage => rec.str(key, rng.pick(PUSH_TEXTS)),
            AppAlreadyRunning => rec.raw(key, if rng.pct(50) { "true" } else { "false" }),
            DeviceInfo => {
                let os = rng.pick(&["iOS", "Android"]);
                let v = 12 + rng.below(6);
                rec.raw_with(key, |b| {
                    b.extend_from_slice(b"{\"os\":\"");
                    b.extend_from_slice(os.as_bytes());
                    b.extend_from_slice(b"\",\"osVersion\":\"");
                    push_u64(b, v);
                    b.extend_from_slice(b".0\",\"appBuild\":null}");
                });
            }
            ToPhoneNumber | FromPhoneNumber | PhoneNumber => {
                let v = rng.below(10_000_000);
                rec.str_with(key, |b| {
                    b.extend_from_slice(b"+1555");
                    let s = b.len();
                    push_u64(b, 10_000_000 + v);
                    b.remove(s);
                });
            }
            SmsMessage => rec.str(key, rng.pick(SMS_TEXTS)),
            SmsProviderResponseCode => rec.int(key, 30_000 + rng.below(8) as i64),
            MessageContext => {
                let inbox = rng.pct(50);
                rec.raw_with(key, |b| {
                    b.extend_from_slice(b"{\"saveToInbox\":");
                    b.extend_from_slice(if inbox { b"true" } else { b"false" });
                    b.extend_from_slice(b",\"trigger\":\"immediate\",\"location\":\"in-app\"}");
                });
            }
            InboxSessionId => {
                let v = rng.next_u64();
                rec.str_with(key, |b| push_hex(b, v, 16));
            }
            Id => {
                let v = rng.next_u64();
                rec.str_with(key, |b| {
                    b.extend_from_slice(b"ord_");
                    push_hex(b, v, 12);
                });
            }
            Total | Items => {
                // purchase: items first decide the total; both are consecutive in the field list
                if f == Total {
                    continue;
                }
                let k = 1 + rng.below(3);
                let mut total = 0u64;
                let st = rec.begin();
                let b = &mut rec.vals;
                b.push(b'[');
                for x in 0..k {
                    let (sku, name, price) = rng.pick(PRODUCTS);
                    let qty = 1 + rng.below(3);
                    total += price * qty;
                    if x > 0 {
                        b.push(b',');
                    }
                    b.extend_from_slice(b"{\"id\":\"");
                    b.extend_from_slice(sku.as_bytes());
                    b.extend_from_slice(b"\",");
                    push_product_members(b, sku, name, price);
                    b.extend_from_slice(b",\"quantity\":");
                    push_u64(b, qty);
                    b.extend_from_slice(b",\"categories\":[\"shop\"]}");
                }
                b.push(b']');
                let items_end = b.len() as u32;
                // total is written after the items in the buffer but listed before them
                let tst = items_end;
                push_money(b, total);
                let tend = b.len() as u32;
                rec.raw_span(Total.name(), tst, tend);
                rec.raw_span(Items.name(), st, items_end);
            }
            DataFields => {
                let comment = rng.pick(COMMENTS);
                let score = rng.below(1000);
                let shape = rng.below(4);
                let flag = rng.pct(50);
                rec.raw_with(key, |b| {
                    b.extend_from_slice(b"{\"comment\":");
                    push_json_str(b, comment.as_bytes());
                    b.extend_from_slice(b",\"score\":");
                    push_u64(b, score);
                    match shape {
                        0 => b.extend_from_slice(b",\"nested\":{\"a\":{\"b\":[1,\"two\",null,true]}}"),
                        1 => b.extend_from_slice(b",\"list\":[\"x\",\"y, z\"]"),
                        2 => b.extend_from_slice(b",\"ratio\":0.25,\"missing\":null"),
                        _ => {}
                    }
                    b.extend_from_slice(b",\"flag\":");
                    b.extend_from_slice(if flag { b"true" } else { b"false" });
                    b.push(b'}');
                });
            }
            EventName => rec.str(key, rng.pick(EVENT_NAMES)),
            SignupDate => match &signup {
                Some((signup_day, signup_sod)) => rec.str_with(key, |b| signup_day.push_time(b, *signup_sod)),
                None => {
                    let signup_sod = if dt == DataType::UserNew { sod } else { sod / 2 };
                    rec.str_with(key, |b| day.push_time(b, signup_sod));
                }
            },
            ProfileUpdatedAt => rec.str_with(key, |b| day.push_time(b, sod)),
            ItblEmailDomain => rec.str(key, domain),
            ItblDocCreated => match &signup {
                Some((signup_day, signup_sod)) => rec.str_with(key, |b| signup_day.push_time(b, *signup_sod)),
                None => rec.str_with(key, |b| day.push_time(b, sod)),
            },
            ItblDocUpdated if dt == DataType::User => rec.str_with(key, |b| day.push_time(b, sod)),
            ItblDocUpdated => rec.str_with(key, |b| day.push_time(b, updated_sod)),
            FirstName => rec.str(key, urng.pick(FIRST_NAMES)),
            LastName => rec.str(key, urng.pick(LAST_NAMES)),
            AddressCity | AddressCountry => {
                let (city, _, country) = PLACES[(user % PLACES.len() as u64) as usize];
                rec.str(key, if f == AddressCity { city } else { country });
            }
            PrefLanguage => rec.str(key, urng.pick(LANGS)),
            LoyaltyTier => {
                if rng.pct(80) {
                    rec.str(key, rng.pick(TIERS));
                }
            }
            LoyaltyPoints => {
                if rng.pct(80) {
                    rec.int(key, rng.below(50_000) as i64);
                }
            }
            Tags => {
                let k = rng.below(4);
                let picks = [
                    rng.below(TAGS.len() as u64),
                    rng.below(TAGS.len() as u64),
                    rng.below(TAGS.len() as u64),
                ];
                rec.raw_with(key, |b| {
                    b.push(b'[');
                    for x in 0..k.min(3) as usize {
                        if x > 0 {
                            b.push(b',');
                        }
                        push_json_str(b, TAGS[picks[x] as usize].as_bytes());
                    }
                    b.push(b']');
                });
            }
            FavoriteProducts => {
                if rng.pct(40) {
                    let (sku, name, price) = rng.pick(PRODUCTS);
                    rec.raw_with(key, |b| {
                        b.extend_from_slice(b"[{");
                        push_product_members(b, sku, name, price);
                        b.extend_from_slice(b"}]");
                    });
                }
            }
            IsVip => rec.raw(key, if rng.pct(10) { "true" } else { "false" }),
            Score => {
                let v = rng.below(100_000);
                rec.raw_with(key, |b| {
                    push_u64(b, v / 1000);
                    b.push(b'.');
                    push_u64(b, v % 1000 + 1000);
                    let l = b.len();
                    b.remove(l - 4);
                });
            }
            Nickname => match rng.below(3) {
                0 => rec.raw(key, "null"),
                1 => rec.str(key, urng.pick(FIRST_NAMES)),
                _ => {}
            },
            Notes => {
                if rng.pct(60) {
                    rec.str(key, rng.pick(COMMENTS));
                }
            }
            ItblUserId => {
                let v = mix(user_rng_seed ^ 0x17b1);
                rec.str_with(key, |b| push_hex(b, v, 16));
            }
            SignupSource => rec.str(key, urng.pick(SIGNUP_SOURCES)),
            UserListIds => {
                let k = urng.below(3);
                let base = 7000 + urng.below(50);
                rec.raw_with(key, |b| {
                    b.push(b'[');
                    for x in 0..k {
                        if x > 0 {
                            b.push(b',');
                        }
                        push_u64(b, base + x * 11);
                    }
                    b.push(b']');
                });
            }
            Locale | TimeZone => {
                // locale and time zone belong together (the two fields are consecutive)
                let (locale, zone) = LOCALES[(user % LOCALES.len() as u64) as usize];
                rec.str(key, if f == Locale { locale } else { zone });
            }
            Consents => {
                let (marketing, sms) = (rng.pct(70), rng.below(3));
                let via = rng.pick(CONSENT_SOURCES);
                rec.raw_with(key, |b| {
                    b.extend_from_slice(b"{\"email\":{\"marketing\":");
                    b.extend_from_slice(if marketing { b"true" } else { b"false" });
                    b.extend_from_slice(b",\"transactional\":true},\"sms\":");
                    b.extend_from_slice(match sms {
                        0 => b"null".as_slice(),
                        1 => b"{\"marketing\":true}",
                        _ => b"{\"marketing\":false}",
                    });
                    b.extend_from_slice(b",\"via\":");
                    push_json_str(b, via.as_bytes());
                    b.push(b'}');
                });
            }
            Wishlist => {
                let k = rng.below(3);
                let picks = [rng.pick(PRODUCTS).1, rng.pick(TAGS)];
                rec.raw_with(key, |b| {
                    b.push(b'[');
                    for (x, item) in picks.iter().take(k as usize).enumerate() {
                        if x > 0 {
                            b.push(b',');
                        }
                        push_json_str(b, item.as_bytes());
                    }
                    b.push(b']');
                });
            }
        }
    }
    // occasional unknown fields
    if rng.pct(3) {
        let name = rng.pick(UNKNOWN_FIELDS);
        match rng.below(3) {
            0 => rec.str(name, "surprise ✨"),
            1 => rec.int(name, rng.below(1000) as i64),
            _ => rec.raw(name, "{\"k\":[1,{\"deep\":true}]}"),
        }
    }
}

/// Writes `"sku":…,"name":…,"price":…`: the members a product has in `items` and in
/// `favoriteProducts`.
fn push_product_members(b: &mut Vec<u8>, sku: &str, name: &str, price: u64) {
    b.extend_from_slice(b"\"sku\":\"");
    b.extend_from_slice(sku.as_bytes());
    b.extend_from_slice(b"\",\"name\":");
    push_json_str(b, name.as_bytes());
    b.extend_from_slice(b",\"price\":");
    push_money(b, price);
}

/// Generates the events of one user for `/export/userEvents`: `(data type, record)` pairs.
pub(crate) fn user_events(p: &DataParams, email: &str, include_custom: bool, mut each: impl FnMut(DataType, &Rec)) {
    const TYPES: [DataType; 8] = [
        DataType::EmailSend,
        DataType::EmailOpen,
        DataType::EmailClick,
        DataType::EmailUnSubscribe,
        DataType::PushSend,
        DataType::Purchase,
        DataType::CustomEvent,
        DataType::SmsSend,
    ];
    let h = email.bytes().fold(p.seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let n = 3 + mix(h) % 8;
    let mut rec = Rec::default();
    for k in 0..n {
        let dt = TYPES[(mix(h ^ k) % TYPES.len() as u64) as usize];
        if dt == DataType::CustomEvent && !include_custom {
            continue;
        }
        let day = DayInfo::new(p.first_day + (mix(h.wrapping_add(k)) % 30) as i64);
        let i = mix(h ^ (k << 32)) % p.records_per_day.max(1);
        generate(p, dt, &day, i, Some(email), &mut rec);
        each(dt, &rec);
    }
}
