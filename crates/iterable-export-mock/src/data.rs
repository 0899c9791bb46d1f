//! Deterministic synthetic records.
//!
//! Every record is a pure function of `(seed, data type, day, index)`. A day holds
//! [`MockConfig::records_per_day`](crate::MockConfig::records_per_day) records per data type whose
//! `createdAt` timestamps are spread evenly across the day (record `i` of `n` is at second
//! `((2i + 1) * 86400) / (2n)` of the day), so the records of any window can be found without
//! generating other days or other records. Within a response, the records of one day are sent in a
//! deterministic pseudo-random order (a stride permutation), days in ascending order.
//!
//! Records are written with a hand-rolled writer into reusable buffers: no `serde_json::Value`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::MockError;

const SECS_PER_DAY: i64 = 86_400;

/// Defines [`DataType`] from one table: variant, wire name. The order is part of the data: a
/// data type's position seeds its records, so new names go at the end.
macro_rules! data_types {
    ($($variant:ident => $name:literal,)*) => {
        /// A `dataTypeName` the mock serves: Iterable's 53 export data types (its Swagger, API
        /// 1.8; see `spec/overlays/10-all-data-types.yaml`) and the seed spec's `userNew` and
        /// `userUpdate`, which the real API rejects but the mock still serves (as user records).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum DataType {
            $($variant,)*
        }

        impl DataType {
            /// Every data type the mock serves: the seed spec's 21 first, then the others in the
            /// order of Iterable's Swagger.
            pub const ALL: [DataType; [$($name),*].len()] = [$(DataType::$variant),*];

            /// The name used in `dataTypeName` (e.g. `"emailSend"`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DataType::$variant => $name,)*
                }
            }
        }
    };
}

data_types! {
    EmailSend => "emailSend",
    EmailOpen => "emailOpen",
    EmailClick => "emailClick",
    EmailUnSubscribe => "emailUnSubscribe",
    EmailBounce => "emailBounce",
    EmailComplaint => "emailComplaint",
    PushSend => "pushSend",
    PushBounce => "pushBounce",
    PushOpen => "pushOpen",
    SmsSend => "smsSend",
    SmsBounce => "smsBounce",
    SmsReceived => "smsReceived",
    InAppSend => "inAppSend",
    InAppOpen => "inAppOpen",
    InAppClick => "inAppClick",
    WebPushSend => "webPushSend",
    Purchase => "purchase",
    CustomEvent => "customEvent",
    HostedUnsubscribeClick => "hostedUnsubscribeClick",
    UserNew => "userNew",
    UserUpdate => "userUpdate",
    EmailSendSkip => "emailSendSkip",
    PushUninstall => "pushUninstall",
    PushSendSkip => "pushSendSkip",
    InAppClose => "inAppClose",
    InAppDelete => "inAppDelete",
    InAppDelivery => "inAppDelivery",
    InAppSendSkip => "inAppSendSkip",
    InAppRecall => "inAppRecall",
    InboxSession => "inboxSession",
    InboxMessageImpression => "inboxMessageImpression",
    SmsClick => "smsClick",
    SmsSendSkip => "smsSendSkip",
    WebPushClick => "webPushClick",
    WebPushSendSkip => "webPushSendSkip",
    RcsSend => "rcsSend",
    RcsSendSkip => "rcsSendSkip",
    EmailSubscribe => "emailSubscribe",
    User => "user",
    SmsUsageInfo => "smsUsageInfo",
    EmbeddedSend => "embeddedSend",
    EmbeddedSendSkip => "embeddedSendSkip",
    EmbeddedClick => "embeddedClick",
    EmbeddedReceived => "embeddedReceived",
    EmbeddedImpression => "embeddedImpression",
    EmbeddedSession => "embeddedSession",
    UnknownSession => "unknownSession",
    JourneyExit => "journeyExit",
    WhatsAppBounce => "whatsAppBounce",
    WhatsAppClick => "whatsAppClick",
    WhatsAppReceived => "whatsAppReceived",
    WhatsAppSeen => "whatsAppSeen",
    WhatsAppSend => "whatsAppSend",
    WhatsAppSendSkip => "whatsAppSendSkip",
    WhatsAppUsageInfo => "whatsAppUsageInfo",
}

impl DataType {
    fn index(self) -> u64 {
        self as u64
    }

    /// The CSV header of this data type: every field its records can carry, in the order they are
    /// written (records may omit some of them; they may also carry unknown extra fields, which only
    /// appear in NDJSON).
    pub fn fields(self) -> Vec<&'static str> {
        self.field_ids().iter().map(|f| f.name()).collect()
    }

    fn field_ids(self) -> &'static [F] {
        use F::*;
        match self {
            DataType::EmailSend => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageBusId,
                MessageTypeId,
                ContentId,
                ChannelId,
                CatalogCollectionCount,
                CatalogLookupCount,
                ProductRecommendationCount,
                TransactionalData,
                ItblInternal,
                RecordId,
            ],
            DataType::EmailOpen => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageBusId,
                MessageTypeId,
                ContentId,
                ChannelId,
                City,
                Country,
                Region,
                Ip,
                UserAgent,
                UserAgentDevice,
                ItblInternal,
                RecordId,
            ],
            DataType::EmailClick => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageBusId,
                MessageTypeId,
                ContentId,
                ChannelId,
                City,
                Country,
                Region,
                Ip,
                UserAgent,
                UserAgentDevice,
                Url,
                HrefIndex,
                ItblInternal,
                RecordId,
            ],
            DataType::EmailUnSubscribe => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                UnsubSource,
                EmailListIds,
                ItblInternal,
                RecordId,
            ],
            DataType::EmailBounce => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageBusId,
                MessageTypeId,
                ContentId,
                ChannelId,
                RecipientState,
                Status,
                ItblInternal,
                RecordId,
            ],
            DataType::EmailComplaint => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                RecipientState,
                ItblInternal,
                RecordId,
            ],
            DataType::HostedUnsubscribeClick => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                City,
                Country,
                Region,
                Ip,
                UserAgent,
                UserAgentDevice,
                Url,
                ItblInternal,
                RecordId,
            ],
            DataType::PushSend | DataType::WebPushSend => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ContentId,
                ChannelId,
                PlatformEndpoint,
                PushMessage,
                TransactionalData,
                ItblInternal,
                RecordId,
            ],
            DataType::PushBounce => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                PlatformEndpoint,
                Status,
                ItblInternal,
                RecordId,
            ],
            DataType::PushOpen => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                PlatformEndpoint,
                AppAlreadyRunning,
                DeviceInfo,
                ItblInternal,
                RecordId,
            ],
            DataType::SmsSend => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ContentId,
                ChannelId,
                ToPhoneNumber,
                FromPhoneNumber,
                SmsMessage,
                TransactionalData,
                ItblInternal,
                RecordId,
            ],
            DataType::SmsBounce => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                ToPhoneNumber,
                FromPhoneNumber,
                SmsProviderResponseCode,
                Status,
                ItblInternal,
                RecordId,
            ],
            DataType::SmsReceived => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                ToPhoneNumber,
                FromPhoneNumber,
                SmsMessage,
                ItblInternal,
                RecordId,
            ],
            DataType::InAppSend | DataType::InAppOpen => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ContentId,
                ChannelId,
                MessageContext,
                InboxSessionId,
                ItblInternal,
                RecordId,
            ],
            DataType::InAppClick => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ContentId,
                ChannelId,
                MessageContext,
                InboxSessionId,
                ClickedUrl,
                ItblInternal,
                RecordId,
            ],
            DataType::Purchase => &[
                CreatedAt,
                Email,
                UserId,
                Id,
                CampaignId,
                TemplateId,
                Total,
                Items,
                DataFields,
                ItblInternal,
                RecordId,
            ],
            DataType::CustomEvent => &[
                CreatedAt,
                Email,
                UserId,
                EventName,
                CampaignId,
                TemplateId,
                DataFields,
                ItblInternal,
                RecordId,
            ],
            // The families of the data types beyond the seed spec: the common message fields
            // plus the family's channel fields. (Fields of their own per type are a later step.)
            DataType::EmailSendSkip | DataType::EmailSubscribe => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                EmailListIds,
                ItblInternal,
                RecordId,
            ],
            DataType::PushUninstall | DataType::PushSendSkip | DataType::WebPushClick | DataType::WebPushSendSkip => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                PlatformEndpoint,
                ItblInternal,
                RecordId,
            ],
            DataType::InAppClose
            | DataType::InAppDelete
            | DataType::InAppDelivery
            | DataType::InAppSendSkip
            | DataType::InAppRecall
            | DataType::InboxSession
            | DataType::InboxMessageImpression => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                MessageContext,
                InboxSessionId,
                ItblInternal,
                RecordId,
            ],
            DataType::SmsClick
            | DataType::SmsSendSkip
            | DataType::SmsUsageInfo
            | DataType::RcsSend
            | DataType::RcsSendSkip
            | DataType::WhatsAppBounce
            | DataType::WhatsAppClick
            | DataType::WhatsAppReceived
            | DataType::WhatsAppSeen
            | DataType::WhatsAppSend
            | DataType::WhatsAppSendSkip
            | DataType::WhatsAppUsageInfo => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                ToPhoneNumber,
                FromPhoneNumber,
                ItblInternal,
                RecordId,
            ],
            DataType::EmbeddedSend
            | DataType::EmbeddedSendSkip
            | DataType::EmbeddedClick
            | DataType::EmbeddedReceived
            | DataType::EmbeddedImpression
            | DataType::EmbeddedSession => &[
                CreatedAt,
                Email,
                UserId,
                CampaignId,
                TemplateId,
                MessageId,
                MessageTypeId,
                ChannelId,
                ItblInternal,
                RecordId,
            ],
            DataType::UnknownSession | DataType::JourneyExit => {
                &[CreatedAt, Email, UserId, CampaignId, ItblInternal, RecordId]
            }
            DataType::UserNew | DataType::UserUpdate | DataType::User => &[
                CreatedAt,
                Email,
                UserId,
                SignupDate,
                ProfileUpdatedAt,
                ItblEmailDomain,
                ItblDocCreated,
                ItblDocUpdated,
                FirstName,
                LastName,
                PhoneNumber,
                AddressCity,
                AddressCountry,
                PrefLanguage,
                LoyaltyTier,
                LoyaltyPoints,
                EmailListIds,
                Tags,
                FavoriteProducts,
                IsVip,
                Score,
                Nickname,
                Notes,
                RecordId,
            ],
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataType {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataType::ALL
            .iter()
            .copied()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| MockError::UnknownDataType(s.to_owned()))
    }
}

/// Field identifiers (a jump table instead of string matching per field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F {
    CreatedAt,
    Email,
    UserId,
    CampaignId,
    TemplateId,
    MessageId,
    MessageBusId,
    MessageTypeId,
    ContentId,
    ChannelId,
    CatalogCollectionCount,
    CatalogLookupCount,
    ProductRecommendationCount,
    TransactionalData,
    ItblInternal,
    RecordId,
    City,
    Country,
    Region,
    Ip,
    UserAgent,
    UserAgentDevice,
    Url,
    HrefIndex,
    RecipientState,
    Status,
    UnsubSource,
    EmailListIds,
    PlatformEndpoint,
    PushMessage,
    AppAlreadyRunning,
    DeviceInfo,
    ToPhoneNumber,
    FromPhoneNumber,
    SmsMessage,
    SmsProviderResponseCode,
    MessageContext,
    InboxSessionId,
    ClickedUrl,
    Id,
    Total,
    Items,
    DataFields,
    EventName,
    SignupDate,
    ProfileUpdatedAt,
    ItblEmailDomain,
    ItblDocCreated,
    ItblDocUpdated,
    FirstName,
    LastName,
    PhoneNumber,
    AddressCity,
    AddressCountry,
    PrefLanguage,
    LoyaltyTier,
    LoyaltyPoints,
    Tags,
    FavoriteProducts,
    IsVip,
    Score,
    Nickname,
    Notes,
}

impl F {
    fn name(self) -> &'static str {
        use F::*;
        match self {
            CreatedAt => "createdAt",
            Email => "email",
            UserId => "userId",
            CampaignId => "campaignId",
            TemplateId => "templateId",
            MessageId => "messageId",
            MessageBusId => "messageBusId",
            MessageTypeId => "messageTypeId",
            ContentId => "contentId",
            ChannelId => "channelId",
            CatalogCollectionCount => "catalogCollectionCount",
            CatalogLookupCount => "catalogLookupCount",
            ProductRecommendationCount => "productRecommendationCount",
            TransactionalData => "transactionalData",
            ItblInternal => "itblInternal",
            RecordId => "recordId",
            City => "city",
            Country => "country",
            Region => "region",
            Ip => "ip",
            UserAgent => "userAgent",
            UserAgentDevice => "userAgentDevice",
            Url => "url",
            HrefIndex => "hrefIndex",
            RecipientState => "recipientState",
            Status => "status",
            UnsubSource => "unsubSource",
            EmailListIds => "emailListIds",
            PlatformEndpoint => "platformEndpoint",
            PushMessage => "pushMessage",
            AppAlreadyRunning => "appAlreadyRunning",
            DeviceInfo => "deviceInfo",
            ToPhoneNumber => "toPhoneNumber",
            FromPhoneNumber => "fromPhoneNumber",
            SmsMessage => "smsMessage",
            SmsProviderResponseCode => "smsProviderResponseCode",
            MessageContext => "messageContext",
            InboxSessionId => "inboxSessionId",
            ClickedUrl => "clickedUrl",
            Id => "id",
            Total => "total",
            Items => "items",
            DataFields => "dataFields",
            EventName => "eventName",
            SignupDate => "signupDate",
            ProfileUpdatedAt => "profileUpdatedAt",
            ItblEmailDomain => "itblInternal.emailDomain",
            ItblDocCreated => "itblInternal.documentCreatedAt",
            ItblDocUpdated => "itblInternal.documentUpdatedAt",
            FirstName => "firstName",
            LastName => "lastName",
            PhoneNumber => "phoneNumber",
            AddressCity => "address.city",
            AddressCountry => "address.country",
            PrefLanguage => "preferences.language",
            LoyaltyTier => "loyalty.tier",
            LoyaltyPoints => "loyalty.points",
            Tags => "tags",
            FavoriteProducts => "favoriteProducts",
            IsVip => "isVip",
            Score => "score",
            Nickname => "nickname",
            Notes => "notes",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG and hashing

/// SplitMix64 finaliser: a bijective mixer.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// wyrand: small, fast, good enough for synthetic data.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0).wrapping_mul(u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) ^ t) as u64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `pct` percent.
    pub(crate) fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Low-level writers

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

fn push_hex(buf: &mut Vec<u8>, v: u64, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for k in (0..digits).rev() {
        buf.push(HEX[((v >> (k * 4)) & 0xf) as usize]);
    }
}

/// Writes `cents` as a decimal number with two places (`1234` → `12.34`).
fn push_money(buf: &mut Vec<u8>, cents: u64) {
    push_u64(buf, cents / 100);
    buf.push(b'.');
    push_2(buf, (cents % 100) as u32);
}

/// Bytes that need escaping in a JSON string.
static JSON_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !JSON_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        buf.extend_from_slice(&s[start..i]);
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => {
                buf.extend_from_slice(b"\\u00");
                push_hex(buf, u64::from(b), 2);
            }
        }
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&s[start..]);
    buf.push(b'"');
}

/// Appends `s` as one CSV cell, quoted (RFC 4180) when it contains a comma, quote, CR or LF.
pub(crate) fn push_csv_cell(buf: &mut Vec<u8>, s: &[u8]) {
    if s.iter().any(|&b| b == b',' || b == b'"' || b == b'\n' || b == b'\r') {
        buf.push(b'"');
        let mut start = 0;
        for (i, &b) in s.iter().enumerate() {
            if b == b'"' {
                buf.extend_from_slice(&s[start..=i]);
                buf.push(b'"');
                start = i + 1;
            }
        }
        buf.extend_from_slice(&s[start..]);
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Record buffer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Raw text, to be JSON-escaped (NDJSON) or CSV-quoted (CSV).
    Str,
    /// JSON text (number, bool, null, object, array), written as is.
    Raw,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    kind: Kind,
    start: u32,
    end: u32,
}

/// One generated record: field names and their values, in a reusable buffer.
#[derive(Debug, Default)]
pub(crate) struct Rec {
    vals: Vec<u8>,
    fields: Vec<Field>,
}

impl Rec {
    fn clear(&mut self) {
        self.vals.clear();
        self.fields.clear();
    }

    fn begin(&mut self) -> u32 {
        self.vals.len() as u32
    }

    fn end(&mut self, name: &'static str, kind: Kind, start: u32) {
        let end = self.vals.len() as u32;
        self.fields.push(Field { name, kind, start, end });
    }

    fn str(&mut self, name: &'static str, s: &str) {
        let st = self.begin();
        self.vals.extend_from_slice(s.as_bytes());
        self.end(name, Kind::Str, st);
    }

    fn str_with(&mut self, name: &'static str, f: impl FnOnce(&mut Vec<u8>)) {
        let st = self.begin();
        f(&mut self.vals);
        self.end(name, Kind::Str, st);
    }

    fn raw_with(&mut self, name: &'static str, f: impl FnOnce(&mut Vec<u8>)) {
        let st = self.begin();
        f(&mut self.vals);
        self.end(name, Kind::Raw, st);
    }

    fn int(&mut self, name: &'static str, v: i64) {
        self.raw_with(name, |b| push_i64(b, v));
    }

    fn raw(&mut self, name: &'static str, s: &str) {
        self.raw_with(name, |b| b.extend_from_slice(s.as_bytes()));
    }

    fn value(&self, f: &Field) -> &[u8] {
        &self.vals[f.start as usize..f.end as usize]
    }

    /// Writes the record as one NDJSON line (with the trailing `\n`).
    pub(crate) fn write_ndjson(&self, out: &mut Vec<u8>, filter: &FieldFilter, type_field: Option<&str>) {
        out.push(b'{');
        let mut first = true;
        if let Some(t) = type_field {
            out.extend_from_slice(b"\"_type\":");
            push_json_str(out, t.as_bytes());
            first = false;
        }
        for f in &self.fields {
            if !filter.keeps(f.name) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(b"\":");
            let v = self.value(f);
            match f.kind {
                Kind::Str => push_json_str(out, v),
                Kind::Raw => out.extend_from_slice(v),
            }
        }
        out.extend_from_slice(b"}\n");
    }

    /// Writes the record as one CSV row for `columns` (with the trailing `\n`).
    pub(crate) fn write_csv(&self, out: &mut Vec<u8>, columns: &[&'static str]) {
        let mut k = 0;
        for (c, col) in columns.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            let found = if k < self.fields.len() && self.fields[k].name == *col {
                Some(k)
            } else {
                self.fields.iter().position(|f| f.name == *col)
            };
            if let Some(p) = found {
                push_csv_cell(out, self.value(&self.fields[p]));
                k = p + 1;
            }
        }
        out.push(b'\n');
    }
}

/// `onlyFields` / `omitFields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum FieldFilter {
    #[default]
    All,
    Only(Vec<String>),
    Omit(Vec<String>),
}

impl FieldFilter {
    pub(crate) fn keeps(&self, name: &str) -> bool {
        match self {
            FieldFilter::All => true,
            FieldFilter::Only(v) => v.iter().any(|n| n == name),
            FieldFilter::Omit(v) => !v.iter().any(|n| n == name),
        }
    }

    pub(crate) fn parse_list(s: &str) -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Pools

const FIRST_NAMES: &[&str] = &[
    "Ana",
    "José",
    "Zoë",
    "Björn",
    "Łukasz",
    "María José",
    "Søren",
    "Chloé",
    "李",
    "さくら",
    "Dmitrï",
    "John",
    "Emma",
    "Noah",
    "Amélie",
    "Дмитрий",
    "Olúwásẹ̀un",
    "Liam",
    "Mia",
    "Jürgen",
];
const LAST_NAMES: &[&str] = &[
    "García",
    "Müller",
    "O'Brien",
    "Nakamura",
    "王",
    "Smith",
    "Dubois",
    "Kowalski",
    "Ng",
    "da Silva",
    "Østergård",
    "Nguyễn",
    "Brown, Jr.",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("San Francisco", "CA", "US"),
    ("São Paulo", "SP", "BR"),
    ("Zürich", "ZH", "CH"),
    ("東京", "Tokyo", "JP"),
    ("Kraków", "Lesser Poland", "PL"),
    ("Montréal", "QC", "CA"),
    ("München", "Bavaria", "DE"),
    ("Reykjavík", "Capital Region", "IS"),
    ("Ciudad de México", "CDMX", "MX"),
    ("서울", "Seoul", "KR"),
    ("Paris", "Île-de-France", "FR"),
    ("London", "England", "GB"),
    ("New York", "NY", "US"),
    ("Austin", "TX", "US"),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17425; Pro)",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
];
const DEVICES: &[&str] = &["Mobile", "Desktop", "Tablet", "Unknown"];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "exämple.de",
    "example.co.jp",
];
const EVENT_NAMES: &[&str] = &[
    "addToCart",
    "viewedProduct",
    "checkout_started",
    "app-open",
    "Réservation confirmée",
    "🎉 promo_claimed",
    "video.watched",
    "search, advanced",
];
const COMMENTS: &[&str] = &[
    "Great product!",
    "He said \"wow\", then left",
    "Line one\nline two",
    "Emoji 😀🚀 and CJK 漢字かな",
    "Comma, separated, values",
    "Tabs\tand \\ backslashes",
    "Ünïcödé ñ — “smart quotes”",
    "CRLF\r\nline",
    "",
];
const SMS_TEXTS: &[&str] = &[
    "Your code is 123456",
    "Flash sale! 50% off today only 🛍️",
    "¿Vienes mañana? Reply YES, NO or STOP",
    "Order shipped.\nTrack: https://t.example.com/abc",
    "お買い上げありがとうございます",
];
const PUSH_TEXTS: &[&str] = &[
    "Your cart misses you 🛒",
    "New drop: \"Summer, reimagined\"",
    "Bonjour ! Votre commande est prête.",
    "限时优惠",
];
const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];
const LANGS: &[&str] = &["en", "fr-CA", "pt-BR", "ja", "de", "zh-Hans"];
const TAGS: &[&str] = &["vip", "beta", "newsletter", "früh", "🔥hot", "b2b"];
const PRODUCTS: &[(&str, &str, u64)] = &[
    ("SKU-001", "Café au lait mug", 1299),
    ("SKU-002", "T-shirt \"Classic\", blue", 2450),
    ("SKU-003", "抹茶 green tea", 899),
    ("SKU-004", "Crème brûlée kit", 3999),
    ("SKU-005", "Running shoes 👟", 11900),
    ("SKU-006", "Notebook, A5\n(dotted)", 650),
];
const STATUSES: &[&str] = &[
    "550 5.1.1 The email account that you tried to reach does not exist",
    "452 4.2.2 Mailbox full, try again later",
    "554 5.7.1 Message rejected: \"spam\" content",
];
const UNKNOWN_FIELDS: &[&str] = &["newFieldFromIterable", "_experimental", "journeyStepName"];

// ---------------------------------------------------------------------------------------------
// Generation

/// What the generator needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataParams {
    pub(crate) seed: u64,
    pub(crate) records_per_day: u64,
    /// First day (days since the Unix epoch) with data.
    pub(crate) first_day: i64,
}

/// Per-day constants.
#[derive(Debug, Clone)]
struct DayInfo {
    day: i64,
    /// `YYYY-MM-DD ` of the day.
    prefix: [u8; 11],
}

impl DayInfo {
    fn new(day: i64) -> Self {
        let date = DateTime::<Utc>::from_timestamp(day * SECS_PER_DAY, 0)
            .map(|d| d.date_naive())
            .unwrap_or(NaiveDate::MIN);
        let mut v = Vec::with_capacity(11);
        let y = date.year().clamp(0, 9999) as u64;
        push_2(&mut v, (y / 100) as u32);
        push_2(&mut v, (y % 100) as u32);
        v.push(b'-');
        push_2(&mut v, date.month());
        v.push(b'-');
        push_2(&mut v, date.day());
        v.push(b' ');
        let mut prefix = [0u8; 11];
        prefix.copy_from_slice(&v);
        DayInfo { day, prefix }
    }

    /// Writes `YYYY-MM-DD HH:MM:SS +00:00` for second `sod` of the day.
    fn push_time(&self, buf: &mut Vec<u8>, sod: u32) {
        buf.extend_from_slice(&self.prefix);
        push_2(buf, sod / 3600);
        buf.push(b':');
        push_2(buf, (sod / 60) % 60);
        buf.push(b':');
        push_2(buf, sod % 60);
        buf.extend_from_slice(b" +00:00");
    }
}

/// Second of the day of record `i` of `n`.
fn second_of_day(i: u64, n: u64) -> u32 {
    ((u128::from(2 * i + 1) * SECS_PER_DAY as u128) / (2 * u128::from(n))) as u32
}

/// Smallest `i` in `0..=n` with `second_of_day(i) >= sod` (monotone).
fn first_index_at_or_after(sod: i64, n: u64) -> u64 {
    if sod <= 0 {
        return 0;
    }
    if sod >= SECS_PER_DAY {
        return n;
    }
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if i64::from(second_of_day(mid, n)) < sod {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A stride that is coprime with `len`.
fn stride_for(len: u64) -> u64 {
    const PRIMES: [u64; 6] = [1_000_003, 999_983, 104_729, 7_919, 613, 31];
    PRIMES.iter().copied().find(|p| !len.is_multiple_of(*p)).unwrap_or(1)
}

struct DayCursor {
    info: DayInfo,
    lo: u64,
    len: u64,
    k: u64,
    stride: u64,
    offset: u64,
}

/// Produces the records of `[start, end)` for one data type, in response order.
pub(crate) struct RecordStream {
    params: DataParams,
    dt: DataType,
    start: i64,
    end: i64,
    next_day: i64,
    last_day: i64,
    cur: Option<DayCursor>,
    pub(crate) rec: Rec,
}

impl fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordStream")
            .field("dt", &self.dt)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Rounds a timestamp up to whole seconds (records have whole-second timestamps, so
/// `t >= start` ⇔ `t >= ceil(start)` and `t < end` ⇔ `t < ceil(end)`).
pub(crate) fn ceil_secs(t: DateTime<Utc>) -> i64 {
    let s = t.timestamp();
    if t.timestamp_subsec_nanos() > 0 { s + 1 } else { s }
}

impl RecordStream {
    pub(crate) fn new(params: DataParams, dt: DataType, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        let start = ceil_secs(start).max(params.first_day.saturating_mul(SECS_PER_DAY));
        let end = ceil_secs(end);
        let (next_day, last_day) = if params.records_per_day == 0 || end <= start {
            (1, 0)
        } else {
            (start.div_euclid(SECS_PER_DAY), (end - 1).div_euclid(SECS_PER_DAY))
        };
        RecordStream {
            params,
            dt,
            start,
            end,
            next_day,
            last_day,
            cur: None,
            rec: Rec::default(),
        }
    }

    /// Number of records the stream yields in total (cheap: no generation).
    pub(crate) fn total(&self) -> u64 {
        let mut n = 0;
        let mut d = self.next_day;
        while d <= self.last_day {
            let (_, len) = self.day_range(d);
            n += len;
            d += 1;
        }
        n
    }

    fn day_range(&self, day: i64) -> (u64, u64) {
        let n = self.params.records_per_day;
        let base = day * SECS_PER_DAY;
        let lo = first_index_at_or_after(self.start - base, n);
        let hi = first_index_at_or_after(self.end - base, n);
        (lo, hi.saturating_sub(lo))
    }

    /// Generates the next record into `self.rec`; false at the end.
    pub(crate) fn advance(&mut self) -> bool {
        loop {
            if let Some(c) = &mut self.cur {
                if c.k < c.len {
                    let j =
                        ((u128::from(c.k) * u128::from(c.stride) + u128::from(c.offset)) % u128::from(c.len)) as u64;
                    let i = c.lo + j;
                    c.k += 1;
                    let info = c.info.clone();
                    generate(&self.params, self.dt, &info, i, None, &mut self.rec);
                    return true;
                }
                self.cur = None;
            }
            if self.next_day > self.last_day {
                return false;
            }
            let day = self.next_day;
            self.next_day += 1;
            let (lo, len) = self.day_range(day);
            if len == 0 {
                continue;
            }
            let offset = mix(self.params.seed ^ mix(day as u64 ^ (self.dt.index() << 56))) % len;
            self.cur = Some(DayCursor {
                info: DayInfo::new(day),
                lo,
                len,
                k: 0,
                stride: stride_for(len),
                offset,
            });
        }
    }
}

/// Generates record `i` of `day` for `dt` into `rec`.
fn generate(p: &DataParams, dt: DataType, day: &DayInfo, i: u64, email_override: Option<&str>, rec: &mut Rec) {
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

    for &f in dt.field_ids() {
        use F::*;
        match f {
            CreatedAt => rec.str_with("createdAt", |b| day.push_time(b, sod)),
            Email => match email_override {
                Some(e) => rec.str("email", e),
                None => rec.str_with("email", |b| {
                    if user.is_multiple_of(13) {
                        b.extend_from_slice("zoë.".as_bytes());
                    } else {
                        b.extend_from_slice(b"user");
                    }
                    push_u64(b, user);
                    b.push(b'@');
                    b.extend_from_slice(domain.as_bytes());
                }),
            },
            UserId => rec.str_with("userId", |b| {
                b.push(b'u');
                push_u64(b, user);
            }),
            CampaignId => {
                if !(matches!(dt, DataType::CustomEvent | DataType::Purchase | DataType::SmsReceived) && rng.pct(50)) {
                    rec.int("campaignId", campaign as i64);
                }
            }
            TemplateId => {
                if !(matches!(dt, DataType::CustomEvent | DataType::Purchase) && rng.pct(50)) {
                    rec.int("templateId", (campaign * 3 + 7) as i64);
                }
            }
            MessageId => {
                let (a, c) = (rng.next_u64(), rng.next_u64());
                rec.str_with("messageId", |b| {
                    push_hex(b, a, 16);
                    push_hex(b, c, 16);
                });
            }
            MessageBusId => {
                let (a, c) = (rng.next_u64(), rng.next_u64());
                rec.str_with("messageBusId", |b| {
                    push_hex(b, a, 16);
                    push_hex(b, c, 8);
                });
            }
            MessageTypeId => rec.int("messageTypeId", 1000 + rng.below(20) as i64),
            ContentId => {
                if rng.pct(90) {
                    rec.int("contentId", 200_000 + rng.below(10_000) as i64);
                }
            }
            ChannelId => rec.int("channelId", 10 + rng.below(5) as i64),
            CatalogCollectionCount => rec.int("catalogCollectionCount", rng.below(3) as i64),
            CatalogLookupCount => rec.int("catalogLookupCount", rng.below(5) as i64),
            ProductRecommendationCount => rec.int("productRecommendationCount", rng.below(4) as i64),
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
                    0..=3 => rec.raw_with("transactionalData", write),
                    4..=6 => rec.str_with("transactionalData", write),
                    _ => {}
                }
            }
            ItblInternal => rec.raw_with("itblInternal", |b| {
                b.extend_from_slice(b"{\"documentCreatedAt\":\"");
                day.push_time(b, sod);
                b.extend_from_slice(b"\",\"documentUpdatedAt\":\"");
                day.push_time(b, updated_sod);
                b.extend_from_slice(b"\"}");
            }),
            RecordId => rec.str_with("recordId", |b| {
                b.extend_from_slice(dt.as_str().as_bytes());
                b.push(b'-');
                push_i64(b, day.day);
                b.push(b'-');
                push_u64(b, i);
            }),
            City | Country | Region => {
                // the place is chosen once per record (the three fields are consecutive)
                let (city, region, country) = PLACES[(mix(user ^ day.day as u64) % PLACES.len() as u64) as usize];
                match f {
                    City => rec.str("city", city),
                    Country => rec.str("country", country),
                    _ => rec.str("region", region),
                }
            }
            Ip => {
                let v = rng.next_u64();
                rec.str_with("ip", |b| {
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
            UserAgent => rec.str("userAgent", rng.pick(USER_AGENTS)),
            UserAgentDevice => rec.str("userAgentDevice", rng.pick(DEVICES)),
            Url | ClickedUrl => {
                let v = rng.below(10_000);
                let name = if f == Url { "url" } else { "clickedUrl" };
                rec.str_with(name, |b| {
                    if v.is_multiple_of(7) {
                        b.extend_from_slice("https://example.com/café/menü?q=a,b&ref=".as_bytes());
                    } else {
                        b.extend_from_slice(b"https://shop.example.com/p/");
                    }
                    push_u64(b, v);
                    b.extend_from_slice(b"?utm_source=iterable&utm_medium=email");
                });
            }
            HrefIndex => rec.int("hrefIndex", rng.below(12) as i64),
            RecipientState => rec.str(
                "recipientState",
                match dt {
                    DataType::EmailComplaint => "Complaint",
                    _ => rng.pick(&["HardBounce", "SoftBounce"]),
                },
            ),
            Status => rec.str("status", rng.pick(STATUSES)),
            UnsubSource => rec.str(
                "unsubSource",
                rng.pick(&["EmailLink", "ListUnsubscribe", "Manual", "Complaint"]),
            ),
            EmailListIds => {
                let k = rng.below(4);
                let base = 5000 + rng.below(100);
                rec.raw_with("emailListIds", |b| {
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
            PlatformEndpoint => rec.str(
                "platformEndpoint",
                rng.pick(&["APNS", "GCM", "APNS_SANDBOX", "WebPush"]),
            ),
            PushMessage => rec.str("pushMessage", rng.pick(PUSH_TEXTS)),
            AppAlreadyRunning => rec.raw("appAlreadyRunning", if rng.pct(50) { "true" } else { "false" }),
            DeviceInfo => {
                let os = rng.pick(&["iOS", "Android"]);
                let v = 12 + rng.below(6);
                rec.raw_with("deviceInfo", |b| {
                    b.extend_from_slice(b"{\"os\":\"");
                    b.extend_from_slice(os.as_bytes());
                    b.extend_from_slice(b"\",\"osVersion\":\"");
                    push_u64(b, v);
                    b.extend_from_slice(b".0\",\"appBuild\":null}");
                });
            }
            ToPhoneNumber | FromPhoneNumber | PhoneNumber => {
                let v = rng.below(10_000_000);
                rec.str_with(f.name(), |b| {
                    b.extend_from_slice(b"+1555");
                    let s = b.len();
                    push_u64(b, 10_000_000 + v);
                    b.remove(s);
                });
            }
            SmsMessage => rec.str("smsMessage", rng.pick(SMS_TEXTS)),
            SmsProviderResponseCode => rec.int("smsProviderResponseCode", 30_000 + rng.below(8) as i64),
            MessageContext => {
                let inbox = rng.pct(50);
                rec.raw_with("messageContext", |b| {
                    b.extend_from_slice(b"{\"saveToInbox\":");
                    b.extend_from_slice(if inbox { b"true" } else { b"false" });
                    b.extend_from_slice(b",\"trigger\":\"immediate\",\"location\":\"in-app\"}");
                });
            }
            InboxSessionId => {
                let v = rng.next_u64();
                rec.str_with("inboxSessionId", |b| push_hex(b, v, 16));
            }
            Id => {
                let v = rng.next_u64();
                rec.str_with("id", |b| {
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
                    b.extend_from_slice(b"\",\"sku\":\"");
                    b.extend_from_slice(sku.as_bytes());
                    b.extend_from_slice(b"\",\"name\":");
                    push_json_str(b, name.as_bytes());
                    b.extend_from_slice(b",\"price\":");
                    push_money(b, price);
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
                rec.fields.push(Field {
                    name: "total",
                    kind: Kind::Raw,
                    start: tst,
                    end: tend,
                });
                rec.fields.push(Field {
                    name: "items",
                    kind: Kind::Raw,
                    start: st,
                    end: items_end,
                });
            }
            DataFields => {
                let comment = rng.pick(COMMENTS);
                let score = rng.below(1000);
                let shape = rng.below(4);
                let flag = rng.pct(50);
                rec.raw_with("dataFields", |b| {
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
            EventName => rec.str("eventName", rng.pick(EVENT_NAMES)),
            SignupDate => {
                let signup_sod = if dt == DataType::UserNew { sod } else { sod / 2 };
                rec.str_with("signupDate", |b| day.push_time(b, signup_sod));
            }
            ProfileUpdatedAt => rec.str_with("profileUpdatedAt", |b| day.push_time(b, sod)),
            ItblEmailDomain => rec.str("itblInternal.emailDomain", domain),
            ItblDocCreated => rec.str_with("itblInternal.documentCreatedAt", |b| day.push_time(b, sod)),
            ItblDocUpdated => rec.str_with("itblInternal.documentUpdatedAt", |b| day.push_time(b, updated_sod)),
            FirstName => rec.str("firstName", urng.pick(FIRST_NAMES)),
            LastName => rec.str("lastName", urng.pick(LAST_NAMES)),
            AddressCity | AddressCountry => {
                let (city, _, country) = PLACES[(user % PLACES.len() as u64) as usize];
                rec.str(f.name(), if f == AddressCity { city } else { country });
            }
            PrefLanguage => rec.str("preferences.language", urng.pick(LANGS)),
            LoyaltyTier => {
                if rng.pct(80) {
                    rec.str("loyalty.tier", rng.pick(TIERS));
                }
            }
            LoyaltyPoints => {
                if rng.pct(80) {
                    rec.int("loyalty.points", rng.below(50_000) as i64);
                }
            }
            Tags => {
                let k = rng.below(4);
                let picks = [
                    rng.below(TAGS.len() as u64),
                    rng.below(TAGS.len() as u64),
                    rng.below(TAGS.len() as u64),
                ];
                rec.raw_with("tags", |b| {
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
                    rec.raw_with("favoriteProducts", |b| {
                        b.extend_from_slice(b"[{\"sku\":\"");
                        b.extend_from_slice(sku.as_bytes());
                        b.extend_from_slice(b"\",\"name\":");
                        push_json_str(b, name.as_bytes());
                        b.extend_from_slice(b",\"price\":");
                        push_money(b, price);
                        b.extend_from_slice(b"}]");
                    });
                }
            }
            IsVip => rec.raw("isVip", if rng.pct(10) { "true" } else { "false" }),
            Score => {
                let v = rng.below(100_000);
                rec.raw_with("score", |b| {
                    push_u64(b, v / 1000);
                    b.push(b'.');
                    push_u64(b, v % 1000 + 1000);
                    let l = b.len();
                    b.remove(l - 4);
                });
            }
            Nickname => match rng.below(3) {
                0 => rec.raw("nickname", "null"),
                1 => rec.str("nickname", urng.pick(FIRST_NAMES)),
                _ => {}
            },
            Notes => {
                if rng.pct(60) {
                    rec.str("notes", rng.pick(COMMENTS));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping() {
        let mut b = Vec::new();
        push_json_str(&mut b, "a\"b\\c\nd\u{1}é😀".as_bytes());
        assert_eq!(String::from_utf8_lossy(&b), "\"a\\\"b\\\\c\\nd\\u0001é😀\"");
    }

    #[test]
    fn csv_quoting() {
        let mut b = Vec::new();
        push_csv_cell(&mut b, b"plain");
        b.push(b'|');
        push_csv_cell(&mut b, b"a,\"b\"\nc");
        assert_eq!(b, b"plain|\"a,\"\"b\"\"\nc\"");
    }

    #[test]
    fn index_search_matches_timestamps() {
        for n in [1u64, 2, 3, 7, 100, 86_400, 200_000] {
            for sod in [0i64, 1, 59, 3600, 43_200, 86_399] {
                let i = first_index_at_or_after(sod, n);
                if i < n {
                    assert!(i64::from(second_of_day(i, n)) >= sod);
                }
                if i > 0 {
                    assert!(i64::from(second_of_day(i - 1, n)) < sod);
                }
            }
        }
    }

    #[test]
    fn stride_is_a_permutation() {
        for len in [1u64, 2, 31, 613, 1000, 7919 * 31] {
            let s = stride_for(len);
            let mut seen = vec![false; len as usize];
            for k in 0..len {
                let j = ((u128::from(k) * u128::from(s) + 5) % u128::from(len)) as usize;
                assert!(!seen[j]);
                seen[j] = true;
            }
        }
    }
}
