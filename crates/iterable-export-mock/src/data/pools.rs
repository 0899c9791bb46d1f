//! The values records pick from, with the characters that break careless parsers: accents,
//! CJK, emoji, quotes, commas, line breaks.

pub(super) const FIRST_NAMES: &[&str] = &[
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
pub(super) const LAST_NAMES: &[&str] = &[
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
pub(super) const PLACES: &[(&str, &str, &str)] = &[
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
pub(super) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17425; Pro)",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
];
pub(super) const DEVICES: &[&str] = &["Mobile", "Desktop", "Tablet", "Unknown"];
pub(super) const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "exämple.de",
    "example.co.jp",
];
pub(super) const EVENT_NAMES: &[&str] = &[
    "addToCart",
    "viewedProduct",
    "checkout_started",
    "app-open",
    "Réservation confirmée",
    "🎉 promo_claimed",
    "video.watched",
    "search, advanced",
];
pub(super) const COMMENTS: &[&str] = &[
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
pub(super) const SMS_TEXTS: &[&str] = &[
    "Your code is 123456",
    "Flash sale! 50% off today only 🛍️",
    "¿Vienes mañana? Reply YES, NO or STOP",
    "Order shipped.\nTrack: https://t.example.com/abc",
    "お買い上げありがとうございます",
];
pub(super) const PUSH_TEXTS: &[&str] = &[
    "Your cart misses you 🛒",
    "New drop: \"Summer, reimagined\"",
    "Bonjour ! Votre commande est prête.",
    "限时优惠",
];
pub(super) const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];
pub(super) const LANGS: &[&str] = &["en", "fr-CA", "pt-BR", "ja", "de", "zh-Hans"];
pub(super) const TAGS: &[&str] = &["vip", "beta", "newsletter", "früh", "🔥hot", "b2b"];
pub(super) const PRODUCTS: &[(&str, &str, u64)] = &[
    ("SKU-001", "Café au lait mug", 1299),
    ("SKU-002", "T-shirt \"Classic\", blue", 2450),
    ("SKU-003", "抹茶 green tea", 899),
    ("SKU-004", "Crème brûlée kit", 3999),
    ("SKU-005", "Running shoes 👟", 11900),
    ("SKU-006", "Notebook, A5\n(dotted)", 650),
];
pub(super) const STATUSES: &[&str] = &[
    "550 5.1.1 The email account that you tried to reach does not exist",
    "452 4.2.2 Mailbox full, try again later",
    "554 5.7.1 Message rejected: \"spam\" content",
];
pub(super) const UNKNOWN_FIELDS: &[&str] = &["newFieldFromIterable", "_experimental", "journeyStepName"];
/// Where users come from (`signupSource`).
pub(super) const SIGNUP_SOURCES: &[&str] = &["API", "Import", "WebForm", "iOSApp", "AndroidApp"];
/// A user's `locale` and `timeZone`, which go together.
pub(super) const LOCALES: &[(&str, &str)] = &[
    ("en_US", "America/New_York"),
    ("fr_CA", "America/Montreal"),
    ("pt_BR", "America/Sao_Paulo"),
    ("ja_JP", "Asia/Tokyo"),
    ("de_DE", "Europe/Berlin"),
    ("zh_Hans_CN", "Asia/Shanghai"),
];
/// How a user gave consent (a custom field's text: quotes, guillemets, an emoji).
pub(super) const CONSENT_SOURCES: &[&str] = &[
    "signup form",
    "«préférences» page 📬",
    "support call, \"verbal\"",
    "イベント",
];
