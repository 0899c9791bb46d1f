//! The catalogue: the fields records can carry, the families of data types (which fields, in
//! which order), and the data types themselves. Each fact has one table:
//!
//! - [`fields!`] names every field once (identifier and wire name);
//! - field groups and families are lists of those identifiers, joined at compile time;
//! - [`data_types!`] gives each data type its wire name and its family, one row each.

use std::fmt;
use std::str::FromStr;

use crate::MockError;

/// Defines [`F`] from one table: identifier, wire name (nested names are dotted, as in CSV
/// headers and `onlyFields`).
macro_rules! fields {
    ($($variant:ident => $name:literal,)*) => {
        /// Field identifiers (a jump table instead of string matching per field).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum F {
            $($variant,)*
        }

        impl F {
            /// The field's name in records, CSV headers and `onlyFields`/`omitFields`.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(F::$variant => $name,)*
                }
            }
        }
    };
}

fields! {
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
    ItblUserId => "itblUserId",
    SignupSource => "signupSource",
    UserListIds => "userListIds",
    Locale => "locale",
    TimeZone => "timeZone",
    Consents => "consents",
    Wishlist => "wishlist",
}

/// Custom fields a project adds to its users over time: each with the day of data (counted from
/// the first, [`MockConfig::data_start`](crate::MockConfig::data_start), as 0) from which user
/// records carry it. Records of earlier days lack it, and so does the CSV header of a window that
/// ends before that day: a CSV export over several windows meets new columns.
const LATER_FIELDS: &[(F, i64)] = &[(F::Consents, 1), (F::Wishlist, 2)];

impl F {
    /// The day of data (0 = the first) from which records carry this field.
    pub(crate) fn first_day(self) -> i64 {
        LATER_FIELDS.iter().find(|(f, _)| *f == self).map_or(0, |(_, day)| *day)
    }
}

/// The number of fields in `parts` together.
const fn joined_len(parts: &[&[F]]) -> usize {
    let (mut n, mut p) = (0, 0);
    while p < parts.len() {
        n += parts[p].len();
        p += 1;
    }
    n
}

/// `parts` one after the other (`N` is [`joined_len`] of `parts`).
const fn join<const N: usize>(parts: &[&[F]]) -> [F; N] {
    let mut out = [F::RecordId; N];
    let (mut n, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "join: N must be the joined length");
    out
}

/// A field list made of groups and single fields, in order, as a `&'static [F]`.
macro_rules! join {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[&[F]] = &[$($part),+];
        const JOINED: [F; joined_len(PARTS)] = join(PARTS);
        &JOINED
    }};
}

/// The families: the fields of each kind of record, in the order records carry them (the order
/// of the NDJSON keys and of the CSV header). A family is its groups joined.
mod family {
    use super::F::{self, *};
    use super::{join, joined_len};

    // Groups that several families share.
    /// Who and when: every record starts with these.
    const WHO: &[F] = &[CreatedAt, Email, UserId];
    /// The ids of an email message (with the message bus and the content).
    const EMAIL_MESSAGE: &[F] = &[
        CampaignId,
        TemplateId,
        MessageId,
        MessageBusId,
        MessageTypeId,
        ContentId,
        ChannelId,
    ];
    /// The ids of a message with content (push, SMS, in-app sends).
    const CONTENT_MESSAGE: &[F] = &[CampaignId, TemplateId, MessageId, MessageTypeId, ContentId, ChannelId];
    /// The ids of any other message event.
    const MESSAGE: &[F] = &[CampaignId, TemplateId, MessageId, MessageTypeId, ChannelId];
    /// Where a message was opened or clicked, and with what.
    const PLACE_AND_AGENT: &[F] = &[City, Country, Region, Ip, UserAgent, UserAgentDevice];
    const PHONES: &[F] = &[ToPhoneNumber, FromPhoneNumber];
    const IN_APP_CONTEXT: &[F] = &[MessageContext, InboxSessionId];
    /// Every event ends with these.
    const TAIL: &[F] = &[ItblInternal, RecordId];

    // The seed spec's data types, each with its own fields.
    pub(super) const EMAIL_SEND: &[F] = join!(
        WHO,
        EMAIL_MESSAGE,
        &[
            CatalogCollectionCount,
            CatalogLookupCount,
            ProductRecommendationCount,
            TransactionalData
        ],
        TAIL,
    );
    pub(super) const EMAIL_OPEN: &[F] = join!(WHO, EMAIL_MESSAGE, PLACE_AND_AGENT, TAIL);
    pub(super) const EMAIL_CLICK: &[F] = join!(WHO, EMAIL_MESSAGE, PLACE_AND_AGENT, &[Url, HrefIndex], TAIL);
    pub(super) const EMAIL_UNSUBSCRIBE: &[F] = join!(WHO, MESSAGE, &[UnsubSource, EmailListIds], TAIL);
    pub(super) const EMAIL_BOUNCE: &[F] = join!(WHO, EMAIL_MESSAGE, &[RecipientState, Status], TAIL);
    pub(super) const EMAIL_COMPLAINT: &[F] = join!(WHO, MESSAGE, &[RecipientState], TAIL);
    pub(super) const HOSTED_UNSUBSCRIBE_CLICK: &[F] = join!(WHO, MESSAGE, PLACE_AND_AGENT, &[Url], TAIL);
    pub(super) const PUSH_SEND: &[F] = join!(
        WHO,
        CONTENT_MESSAGE,
        &[PlatformEndpoint, PushMessage, TransactionalData],
        TAIL
    );
    pub(super) const PUSH_BOUNCE: &[F] = join!(WHO, MESSAGE, &[PlatformEndpoint, Status], TAIL);
    pub(super) const PUSH_OPEN: &[F] = join!(WHO, MESSAGE, &[PlatformEndpoint, AppAlreadyRunning, DeviceInfo], TAIL);
    pub(super) const SMS_SEND: &[F] = join!(WHO, CONTENT_MESSAGE, PHONES, &[SmsMessage, TransactionalData], TAIL);
    pub(super) const SMS_BOUNCE: &[F] = join!(WHO, MESSAGE, PHONES, &[SmsProviderResponseCode, Status], TAIL);
    pub(super) const SMS_RECEIVED: &[F] = join!(WHO, &[CampaignId], PHONES, &[SmsMessage], TAIL);
    pub(super) const IN_APP_SEND: &[F] = join!(WHO, CONTENT_MESSAGE, IN_APP_CONTEXT, TAIL);
    pub(super) const IN_APP_CLICK: &[F] = join!(WHO, CONTENT_MESSAGE, IN_APP_CONTEXT, &[ClickedUrl], TAIL);
    pub(super) const PURCHASE: &[F] = join!(WHO, &[Id, CampaignId, TemplateId, Total, Items, DataFields], TAIL);
    pub(super) const CUSTOM_EVENT: &[F] = join!(WHO, &[EventName, CampaignId, TemplateId, DataFields], TAIL);

    // The data types beyond the seed spec: the common message fields plus the family's channel
    // fields. (Fields of their own per type are a later step.)
    pub(super) const EMAIL_LIST: &[F] = join!(WHO, MESSAGE, &[EmailListIds], TAIL);
    pub(super) const PUSH: &[F] = join!(WHO, MESSAGE, &[PlatformEndpoint], TAIL);
    pub(super) const IN_APP: &[F] = join!(WHO, MESSAGE, IN_APP_CONTEXT, TAIL);
    pub(super) const SMS: &[F] = join!(WHO, MESSAGE, PHONES, TAIL);
    pub(super) const EMBEDDED: &[F] = join!(WHO, MESSAGE, TAIL);
    pub(super) const SESSION: &[F] = join!(WHO, &[CampaignId], TAIL);

    /// The seed spec's `userNew`/`userUpdate` profiles: no `itblInternal` object but its dotted
    /// fields, like the other nested profile fields.
    pub(super) const USER: &[F] = join!(
        WHO,
        &[
            SignupDate,
            ProfileUpdatedAt,
            ItblEmailDomain,
            ItblDocCreated,
            ItblDocUpdated
        ],
        &[
            FirstName,
            LastName,
            PhoneNumber,
            AddressCity,
            AddressCountry,
            PrefLanguage
        ],
        &[
            LoyaltyTier,
            LoyaltyPoints,
            EmailListIds,
            Tags,
            FavoriteProducts,
            IsVip,
            Score,
            Nickname,
            Notes
        ],
        &[RecordId],
    );

    /// The user table (`user`): a profile has no `createdAt`; it is windowed by
    /// `profileUpdatedAt`. Iterable's managed fields, the dotted `itblInternal` fields, then the
    /// project's custom fields (nested objects, arrays, unicode), the last of which a project
    /// adds on later days (see `LATER_FIELDS`).
    pub(super) const USER_TABLE: &[F] = join!(
        &[
            Email,
            UserId,
            ItblUserId,
            SignupDate,
            SignupSource,
            ProfileUpdatedAt,
            EmailListIds,
            UserListIds,
            PhoneNumber,
            Locale,
            TimeZone
        ],
        &[ItblEmailDomain, ItblDocCreated, ItblDocUpdated],
        &[
            FirstName,
            LastName,
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
            Consents,
            Wishlist
        ],
        &[RecordId],
    );
}

/// Defines [`DataType`] from one table: variant, wire name, family (its fields). The order is
/// part of the data: a data type's position seeds its records, so new names go at the end.
macro_rules! data_types {
    ($($variant:ident => $name:literal, $family:ident;)*) => {
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

            /// The fields its records can carry, in the order they are written.
            pub(crate) fn field_ids(self) -> &'static [F] {
                match self {
                    $(DataType::$variant => family::$family,)*
                }
            }
        }
    };
}

data_types! {
    EmailSend => "emailSend", EMAIL_SEND;
    EmailOpen => "emailOpen", EMAIL_OPEN;
    EmailClick => "emailClick", EMAIL_CLICK;
    EmailUnSubscribe => "emailUnSubscribe", EMAIL_UNSUBSCRIBE;
    EmailBounce => "emailBounce", EMAIL_BOUNCE;
    EmailComplaint => "emailComplaint", EMAIL_COMPLAINT;
    PushSend => "pushSend", PUSH_SEND;
    PushBounce => "pushBounce", PUSH_BOUNCE;
    PushOpen => "pushOpen", PUSH_OPEN;
    SmsSend => "smsSend", SMS_SEND;
    SmsBounce => "smsBounce", SMS_BOUNCE;
    SmsReceived => "smsReceived", SMS_RECEIVED;
    InAppSend => "inAppSend", IN_APP_SEND;
    InAppOpen => "inAppOpen", IN_APP_SEND;
    InAppClick => "inAppClick", IN_APP_CLICK;
    WebPushSend => "webPushSend", PUSH_SEND;
    Purchase => "purchase", PURCHASE;
    CustomEvent => "customEvent", CUSTOM_EVENT;
    HostedUnsubscribeClick => "hostedUnsubscribeClick", HOSTED_UNSUBSCRIBE_CLICK;
    UserNew => "userNew", USER;
    UserUpdate => "userUpdate", USER;
    EmailSendSkip => "emailSendSkip", EMAIL_LIST;
    PushUninstall => "pushUninstall", PUSH;
    PushSendSkip => "pushSendSkip", PUSH;
    InAppClose => "inAppClose", IN_APP;
    InAppDelete => "inAppDelete", IN_APP;
    InAppDelivery => "inAppDelivery", IN_APP;
    InAppSendSkip => "inAppSendSkip", IN_APP;
    InAppRecall => "inAppRecall", IN_APP;
    InboxSession => "inboxSession", IN_APP;
    InboxMessageImpression => "inboxMessageImpression", IN_APP;
    SmsClick => "smsClick", SMS;
    SmsSendSkip => "smsSendSkip", SMS;
    WebPushClick => "webPushClick", PUSH;
    WebPushSendSkip => "webPushSendSkip", PUSH;
    RcsSend => "rcsSend", SMS;
    RcsSendSkip => "rcsSendSkip", SMS;
    EmailSubscribe => "emailSubscribe", EMAIL_LIST;
    User => "user", USER_TABLE;
    SmsUsageInfo => "smsUsageInfo", SMS;
    EmbeddedSend => "embeddedSend", EMBEDDED;
    EmbeddedSendSkip => "embeddedSendSkip", EMBEDDED;
    EmbeddedClick => "embeddedClick", EMBEDDED;
    EmbeddedReceived => "embeddedReceived", EMBEDDED;
    EmbeddedImpression => "embeddedImpression", EMBEDDED;
    EmbeddedSession => "embeddedSession", EMBEDDED;
    UnknownSession => "unknownSession", SESSION;
    JourneyExit => "journeyExit", SESSION;
    WhatsAppBounce => "whatsAppBounce", SMS;
    WhatsAppClick => "whatsAppClick", SMS;
    WhatsAppReceived => "whatsAppReceived", SMS;
    WhatsAppSeen => "whatsAppSeen", SMS;
    WhatsAppSend => "whatsAppSend", SMS;
    WhatsAppSendSkip => "whatsAppSendSkip", SMS;
    WhatsAppUsageInfo => "whatsAppUsageInfo", SMS;
}

impl DataType {
    /// The position in [`DataType::ALL`]: it seeds the type's records.
    pub(crate) fn index(self) -> u64 {
        self as u64
    }

    /// Every field its records can carry, in the order they are written: the CSV header of a
    /// window that reaches the day on which the last of them appears (records may omit some of
    /// them; they may also carry unknown extra fields, which only appear in NDJSON). Only `user`
    /// gains fields over time (custom fields from the second and the third day of data on): the
    /// header of a window is [`expected_csv_header_between`](crate::expected_csv_header_between).
    pub fn fields(self) -> Vec<&'static str> {
        self.field_ids().iter().map(|f| f.name()).collect()
    }

    /// The fields records of day `day` of data (0 = the first) can carry, in the order they are
    /// written; the union over days `..=day`, since fields only ever appear.
    pub(crate) fn field_ids_on(self, day: i64) -> impl Iterator<Item = F> {
        self.field_ids().iter().copied().filter(move |f| f.first_day() <= day)
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
