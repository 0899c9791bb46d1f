//! `Event`: byte-faithful round trips, typed fields, times, lenient types, schema.

use chrono::{TimeZone, Utc};
use iterable_export::Event;
use serde_json::value::RawValue;

const EMAIL_SEND: &str = r#"{"email":"zoë@example.com","userId":"u-123","createdAt":"2021-04-14 16:25:55 +00:00","campaignId":1234567,"templateId":2345678,"messageId":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","messageBusId":"5f1e2d3c4b5a6978","messageTypeId":12345,"contentId":345678,"channelId":23456,"catalogCollectionCount":0,"catalogLookupCount":0,"productRecommendationCount":2,"transactionalData":{"orderId":"ORD-1","items":[{"sku":"SKU-1","name":"水筒 750ml","price":12.50,"quantity":2},{"sku":"SKU-2","name":"Rain Shell \"Pro\"","price":1e2,"quantity":1}],"shipping":{"method":"ground","city":"Zürich"}},"itblInternal":{"documentCreatedAt":"2021-04-14 16:25:55 +00:00","documentUpdatedAt":"2021-04-14 16:25:56 +00:00","emailDomain":"example.com"},"workflowId":77}"#;
const EMAIL_OPEN: &str = r#"{"createdAt":"2021-04-14 16:30:00 +00:00","email":"a@example.com","campaignId":1234567,"templateId":2345678,"messageId":"0f1e","city":"San Francisco","country":"United States","region":"CA","ip":"203.0.113.7","userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148","userAgentDevice":"Mobile","contentId":345678,"channelId":23456,"messageTypeId":12345,"itblInternal":{"documentCreatedAt":"2021-04-14 16:30:00 +00:00"}}"#;
const CUSTOM_EVENT: &str = r#"{"email":"b@example.com","eventName":"viewedProduct 🔦","createdAt":"2021-04-14T16:25:55.123Z","campaignId":null,"dataFields":{"screen":"home","durationMs":1520,"tags":["a","b","新"],"nested":{"x":1,"y":null,"ok":true}},"eventUpdatedAt":"2021-04-14 16:25:55 +00:00","id":"e-1"}"#;
const USER_UPDATE: &str = r#"{"email":"c@example.com","userId":"42","signupDate":"2020-01-01 00:00:00 +00:00","itblInternal.emailDomain":"example.com","profile.tier":"gold","profile.points":1200,"emailListIds":[1,2],"shoppingCartItems":[{"id":"p1","price":9.99}],"createdAt":1618417555000,"profileUpdatedAt":"2021-04-14 16:25:55 +00:00","custom.anything":{"deep":[[],{}]}}"#;
const USER_EVENT: &str = r#"{"_type":"emailUnSubscribe","email":"d@example.com","createdAt":"2021-04-14 18:25:55 +02:00","campaignId":"99","channelIds":[1],"emailListIds":[],"unsubSource":"EmailLink"}"#;

fn round_trip(json: &str) -> Event {
    let event: Event = serde_json::from_str(json).expect("deserializes");
    assert_eq!(serde_json::to_string(&event).expect("serializes"), json);
    // The same through from_slice, from_reader and from_value (the last normalises raw values).
    assert_eq!(
        serde_json::from_slice::<Event>(json.as_bytes()).expect("from_slice"),
        event
    );
    assert_eq!(
        serde_json::from_reader::<_, Event>(json.as_bytes()).expect("from_reader"),
        event
    );
    let value: serde_json::Value = serde_json::from_str(json).expect("value");
    let from_value: Event = serde_json::from_value(value.clone()).expect("from_value");
    assert_eq!(serde_json::to_value(&from_value).expect("to_value"), value);
    event
}

#[test]
fn realistic_records_round_trip_byte_for_byte() {
    let send = round_trip(EMAIL_SEND);
    assert_eq!(send.email.as_deref(), Some("zoë@example.com"));
    assert_eq!(send.user_id.as_deref(), Some("u-123"));
    assert_eq!(
        send.created_at,
        Some(Utc.with_ymd_and_hms(2021, 4, 14, 16, 25, 55).unwrap())
    );
    assert_eq!((send.campaign_id, send.template_id), (Some(1_234_567), Some(2_345_678)));
    assert_eq!(send.message_id.as_deref(), Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
    assert_eq!(
        (send.message_type_id, send.content_id, send.channel_id),
        (Some(12345), Some(345_678), Some(23456))
    );
    assert_eq!(send.workflow_id, Some(77));
    assert_eq!(
        send.get("messageBusId").map(RawValue::get),
        Some(r#""5f1e2d3c4b5a6978""#)
    );
    assert_eq!(send.get("productRecommendationCount").map(RawValue::get), Some("2"));

    let open = round_trip(EMAIL_OPEN);
    assert_eq!(open.get("city").map(RawValue::get), Some(r#""San Francisco""#));
    let names: Vec<&str> = open.fields().map(|(name, _)| name).collect();
    assert_eq!(names[..3], ["createdAt", "email", "campaignId"]);

    let custom = round_trip(CUSTOM_EVENT);
    assert_eq!(custom.event_name.as_deref(), Some("viewedProduct 🔦"));
    assert_eq!(custom.campaign_id, None);
    assert_eq!(custom.get("campaignId").map(RawValue::get), Some("null"));
    assert_eq!(custom.created_at.map(|t| t.timestamp_millis()), Some(1_618_417_555_123));

    let user = round_trip(USER_UPDATE);
    assert_eq!(
        user.get("itblInternal.emailDomain").map(RawValue::get),
        Some(r#""example.com""#)
    );
    assert_eq!(
        user.get("custom.anything").map(RawValue::get),
        Some(r#"{"deep":[[],{}]}"#)
    );
    assert_eq!(user.other_fields().count(), 8);

    let unsub = round_trip(USER_EVENT);
    assert_eq!(unsub.event_type.as_deref(), Some("emailUnSubscribe"));
    assert_eq!(unsub.campaign_id, Some(99));
}

#[test]
fn created_at_in_all_three_forms() {
    let expected = Utc.with_ymd_and_hms(2021, 4, 14, 16, 25, 55).unwrap();
    for (json, written) in [
        (
            r#"{"createdAt":"2021-04-14 16:25:55 +00:00"}"#,
            "2021-04-14 16:25:55 +00:00",
        ),
        (
            r#"{"createdAt":"2021-04-14 12:25:55 -04:00"}"#,
            "2021-04-14 16:25:55 +00:00",
        ),
        (r#"{"createdAt":"2021-04-14T16:25:55Z"}"#, "2021-04-14 16:25:55 +00:00"),
        (
            r#"{"createdAt":"2021-04-14T18:25:55+02:00"}"#,
            "2021-04-14 16:25:55 +00:00",
        ),
        (r#"{"createdAt":1618417555000}"#, "2021-04-14 16:25:55 +00:00"),
    ] {
        let mut event = round_trip(json);
        assert_eq!(event.created_at, Some(expected), "{json}");
        // Once changed in code, the time is written in Iterable's form, in UTC.
        event.created_at = Some(expected + chrono::TimeDelta::hours(1));
        let out = serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            out,
            format!(r#"{{"createdAt":"{}"}}"#, written.replace("16:25", "17:25"))
        );
    }
    // Not a time: kept, not fatal.
    let event = round_trip(r#"{"createdAt":"last tuesday","email":"a"}"#);
    assert_eq!(event.created_at, None);
    assert_eq!(event.get("createdAt").map(RawValue::get), Some(r#""last tuesday""#));
}

#[test]
fn wrong_types_do_not_fail_the_record() {
    let event =
        round_trip(r#"{"campaignId":"123","templateId":"x","userId":42,"email":true,"messageId":[1],"contentId":1.0}"#);
    assert_eq!(event.campaign_id, Some(123));
    assert_eq!(event.template_id, None);
    assert_eq!(event.user_id.as_deref(), Some("42"));
    assert_eq!(event.email, None);
    assert_eq!(event.get("email").map(RawValue::get), Some("true"));
    assert_eq!(event.message_id, None);
    assert_eq!(event.content_id, Some(1));
    // A record that is not an object, or not JSON, is an error.
    assert!(serde_json::from_str::<Event>("[1]").is_err());
    assert!(serde_json::from_str::<Event>(r#"{"a":}"#).is_err());
}

#[test]
fn transactional_data_as_object_or_string() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Order {
        #[serde(rename = "orderId")]
        order_id: String,
    }
    let object: Event = serde_json::from_str(r#"{"transactionalData":{"orderId":"A1"}}"#).unwrap();
    let string: Event = serde_json::from_str(r#"{"transactionalData":"{\"orderId\":\"A1\"}"}"#).unwrap();
    let text: Event = serde_json::from_str(r#"{"transactionalData":"plain"}"#).unwrap();
    assert_eq!(
        object.transactional_data_as::<Order>().unwrap().unwrap(),
        Order { order_id: "A1".into() }
    );
    assert_eq!(
        string.transactional_data_as::<Order>().unwrap().unwrap(),
        Order { order_id: "A1".into() }
    );
    assert_eq!(text.transactional_data().unwrap().get(), r#""plain""#);
    assert!(Event::new().transactional_data().is_none());
}

#[test]
fn edits_keep_positions() {
    let mut event: Event = serde_json::from_str(EMAIL_OPEN).unwrap();
    event.email = Some("new@example.com".into());
    event.event_name = Some("added".into());
    event.insert("city", RawValue::from_string(r#""Paris""#.into()).unwrap());
    event.remove("region");
    let out: serde_json::Value = serde_json::to_value(&event).unwrap();
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys[1], "email");
    assert_eq!(out["email"], "new@example.com");
    assert_eq!(out["city"], "Paris");
    assert!(out.get("region").is_none());
    assert_eq!(keys.last().unwrap().as_str(), "eventName");
}

#[test]
fn json_schema_generation_works() {
    let schema = schemars::schema_for!(Event);
    let value = serde_json::to_value(&schema).unwrap();
    assert_eq!(value["type"], "object");
    assert_eq!(value["additionalProperties"], true);
    assert_eq!(
        value["properties"]["campaignId"]["type"],
        serde_json::json!(["integer", "null"])
    );
    assert!(
        value["properties"]["createdAt"]["type"]
            .as_array()
            .unwrap()
            .contains(&"integer".into())
    );
    assert!(value["properties"].get("_type").is_some());
}
