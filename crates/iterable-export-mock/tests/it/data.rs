//! Data: completeness, byte-exactness, windows, date forms, ranges, field filters, record shapes.

use std::collections::HashSet;

use iterable_export_mock::{DataType, ExportRange, MockConfig, MockServer, RateLimit, expected_count};

use crate::{E, R, enc, expected_body, export_path, get_all, json, lines, small, t};

#[tokio::test]
async fn data_json_is_exactly_the_expected_lines() -> R {
    let mock = MockServer::start(small(50)).await?;
    let (s, e) = ("2024-01-01 00:00:00", "2024-01-03 00:00:00");
    let (status, ct, body) = get_all(&mock, &export_path("json", "emailSend", s, e)).await?;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/x-ndjson");
    let expected = expected_body(&mock, "emailSend", s, e)?;
    assert_eq!(lines(&expected).len(), 100);
    assert_eq!(body, expected);
    assert_eq!(mock.expected_count("emailSend", t(s)?, t(e)?)?, 100);
    assert_eq!(mock.expected_ndjson("emailSend", t(s)?, t(e)?)?.total(), 100);
    // a second request returns the same bytes (deterministic)
    let (_, _, again) = get_all(&mock, &export_path("json", "emailSend", s, e)).await?;
    assert_eq!(again, body);
    mock.shutdown().await;
    Ok(())
}

/// Proves: `expected_csv_header_between` and `expected_csv` describe the data.csv body byte for
/// byte, for every data type (and `expected_csv_header` is the same header, except for `user`,
/// whose window ends before its last custom column appears).
#[tokio::test]
async fn data_csv_is_exactly_the_expected_header_and_rows() -> R {
    let mock = MockServer::start(small(30)).await?;
    let (s, e) = ("2024-01-01 00:00:00", "2024-01-02 12:00:00");
    for dt in DataType::ALL {
        let name = dt.as_str();
        let (status, ct, body) = get_all(&mock, &export_path("csv", name, s, e)).await?;
        assert_eq!((status, ct.as_str()), (200, "text/csv"), "{name}");
        let mut expected = iterable_export_mock::expected_csv_header_between(&mock.config(), name, t(s)?, t(e)?)?;
        assert_eq!(
            expected == iterable_export_mock::expected_csv_header(name)?,
            dt != DataType::User,
            "{name}"
        );
        expected.push(b'\n');
        let rows = iterable_export_mock::expected_csv(&mock.config(), name, t(s)?, t(e)?)?;
        assert_eq!(rows.total(), 45, "{name}");
        let mut count = 0;
        for row in rows {
            expected.extend_from_slice(&row);
            expected.push(b'\n');
            count += 1;
        }
        assert_eq!(count, 45, "{name}");
        assert_eq!(String::from_utf8(body)?, String::from_utf8(expected)?, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn larger_export_streams_in_many_chunks() -> R {
    let mock = MockServer::start(small(20_000).with_chunk_size(16 * 1024)).await?;
    let (s, e) = ("2024-02-01 00:00:00", "2024-02-02 00:00:00");
    let resp = crate::get(&mock, &export_path("json", "emailOpen", s, e)).await?;
    assert_eq!(
        resp.headers().get("transfer-encoding").and_then(|v| v.to_str().ok()),
        Some("chunked")
    );
    let body = resp.bytes().await?;
    let expected = expected_body(&mock, "emailOpen", s, e)?;
    assert_eq!(lines(&body).len(), 20_000);
    assert!(body.len() > 10_000_000, "{}", body.len());
    assert!(body == expected, "bodies differ");
    Ok(())
}

/// 24 records a day: record i is at i:30:00.
#[tokio::test]
async fn window_start_inclusive_end_exclusive_in_both_forms() -> R {
    let mock = MockServer::start(small(24)).await?;
    let created = |body: &[u8]| -> Result<Vec<String>, E> {
        let mut v = Vec::new();
        for l in lines(body) {
            v.push(json(l)?["createdAt"].as_str().unwrap_or("").to_owned());
        }
        v.sort();
        Ok(v)
    };
    for (s, e) in [
        ("2024-01-01 01:30:00", "2024-01-01 03:30:00"),
        ("2024-01-01T01:30:00Z", "2024-01-01T03:30:00Z"),
        ("2024-01-01 01:30:00 +00:00", "2024-01-01 03:30:00 +00:00"),
        ("2024-01-01 02:30:00 +01:00", "2024-01-01T04:30:00+01:00"),
        ("2024-01-01T01:30:00", "2024-01-01 03:30:00Z"),
    ] {
        let (status, _, body) = get_all(&mock, &export_path("json", "emailSend", s, e)).await?;
        assert_eq!(status, 200, "{s}");
        assert_eq!(
            created(&body)?,
            ["2024-01-01 01:30:00 +00:00", "2024-01-01 02:30:00 +00:00"],
            "{s} .. {e}"
        );
    }
    // a fraction of a second after a record excludes it
    let (_, _, body) = get_all(
        &mock,
        &export_path(
            "json",
            "emailSend",
            "2024-01-01T01:30:00.001Z",
            "2024-01-01T03:30:00.001Z",
        ),
    )
    .await?;
    assert_eq!(
        created(&body)?,
        ["2024-01-01 02:30:00 +00:00", "2024-01-01 03:30:00 +00:00"]
    );
    // a window that cuts two days in half
    let (s, e) = ("2024-01-01 12:00:00", "2024-01-02 12:00:00");
    let (_, _, body) = get_all(&mock, &export_path("json", "emailSend", s, e)).await?;
    let c = created(&body)?;
    assert_eq!(c.len(), 24);
    assert_eq!(c.first().map(String::as_str), Some("2024-01-01 12:30:00 +00:00"));
    assert_eq!(c.last().map(String::as_str), Some("2024-01-02 11:30:00 +00:00"));
    assert_eq!(body, expected_body(&mock, "emailSend", s, e)?);
    // the halves add up to the whole day, record for record
    let whole: HashSet<Vec<u8>> = mock
        .expected_ndjson("emailSend", t("2024-01-01 00:00:00")?, t("2024-01-02 00:00:00")?)?
        .collect();
    let mut halves: HashSet<Vec<u8>> = mock
        .expected_ndjson("emailSend", t("2024-01-01 00:00:00")?, t("2024-01-01 12:00:00")?)?
        .collect();
    halves.extend(mock.expected_ndjson("emailSend", t("2024-01-01 12:00:00")?, t("2024-01-02 00:00:00")?)?);
    assert_eq!(whole.len(), 24);
    assert_eq!(whole, halves);
    // before the first day with data: nothing
    let (status, _, body) = get_all(
        &mock,
        &export_path("json", "emailSend", "2023-12-01 00:00:00", "2024-01-01 00:00:00"),
    )
    .await?;
    assert_eq!((status, body.len()), (200, 0));
    Ok(())
}

#[tokio::test]
async fn ranges_follow_the_configured_clock() -> R {
    let now = t("2024-01-10 12:00:00")?;
    let mock = MockServer::start(small(24).with_now(now)).await?;
    for (range, n) in [
        ("Today", 12usize),
        ("Yesterday", 24),
        ("BeforeToday", 9 * 24),
        ("All", 9 * 24 + 12),
    ] {
        let (status, _, body) =
            get_all(&mock, &format!("/export/data.json?dataTypeName=purchase&range={range}")).await?;
        assert_eq!(status, 200);
        assert_eq!(lines(&body).len(), n, "{range}");
        let r: ExportRange = range.parse()?;
        let (s, e) = mock.range_window(r);
        let mut expected = Vec::new();
        for l in mock.expected_ndjson("purchase", s, e)? {
            expected.extend_from_slice(&l);
            expected.push(b'\n');
        }
        assert_eq!(body, expected, "{range}");
    }
    // default range: Today
    let (_, _, body) = get_all(&mock, "/export/data.json?dataTypeName=purchase").await?;
    assert_eq!(lines(&body).len(), 12);
    // the clock can move
    mock.set_now(t("2024-01-10 18:00:00")?);
    let (_, _, body) = get_all(&mock, "/export/data.csv?dataTypeName=purchase&range=Today").await?;
    assert_eq!(lines(&body).len(), 1 + 18);
    Ok(())
}

#[tokio::test]
async fn only_and_omit_fields_on_ndjson_and_csv() -> R {
    let mock = MockServer::start(small(30)).await?;
    let (s, e) = ("2024-01-01 00:00:00", "2024-01-02 00:00:00");
    let base = export_path("json", "emailClick", s, e);
    let (_, _, body) = get_all(&mock, &format!("{base}&onlyFields={}", enc("recordId,createdAt,url"))).await?;
    assert_eq!(lines(&body).len(), 30);
    for l in lines(&body) {
        let v = json(l)?;
        let keys: Vec<&String> = v.as_object().ok_or("not an object")?.keys().collect();
        assert_eq!(keys, ["createdAt", "url", "recordId"]);
    }
    let (_, _, body) = get_all(
        &mock,
        &format!("{base}&omitFields={}", enc("itblInternal,userAgent,ip")),
    )
    .await?;
    for l in lines(&body) {
        let v = json(l)?;
        let o = v.as_object().ok_or("not an object")?;
        assert!(!o.contains_key("itblInternal") && !o.contains_key("userAgent") && !o.contains_key("ip"));
        assert!(o.contains_key("recordId") && o.contains_key("city"));
    }
    let csv = export_path("csv", "emailClick", s, e);
    let (status, ct, body) = get_all(&mock, &format!("{csv}&onlyFields=recordId,createdAt")).await?;
    assert_eq!((status, ct.as_str()), (200, "text/csv"));
    let text = String::from_utf8(body)?;
    let mut it = text.lines();
    assert_eq!(it.next(), Some("createdAt,recordId"));
    assert_eq!(it.count(), 30);
    let (_, _, body) = get_all(&mock, &format!("{csv}&omitFields=itblInternal,userAgent")).await?;
    let header = String::from_utf8(body)?.lines().next().unwrap_or("").to_owned();
    let mut expected: Vec<&str> = DataType::EmailClick.fields();
    expected.retain(|f| *f != "itblInternal" && *f != "userAgent");
    assert_eq!(header, expected.join(","));
    Ok(())
}

#[tokio::test]
async fn every_data_type_has_realistic_unique_records() -> R {
    let config = small(40);
    let mock = MockServer::start(config.clone()).await?;
    let (s, e) = ("2024-03-01 00:00:00", "2024-03-03 00:00:00");
    let mut ids = HashSet::new();
    let mut unknown_fields = 0;
    let (mut object_td, mut string_td) = (0, 0);
    let mut non_ascii = false;
    for dt in DataType::ALL {
        assert_eq!(expected_count(&config, dt.as_str(), t(s)?, t(e)?)?, 80);
        let (status, _, body) = get_all(&mock, &export_path("json", dt.as_str(), s, e)).await?;
        assert_eq!(status, 200);
        assert_eq!(body, expected_body(&mock, dt.as_str(), s, e)?, "{dt}");
        let fields = dt.fields();
        let mut created = Vec::new();
        for l in lines(&body) {
            non_ascii |= l.iter().any(|b| *b >= 0x80);
            let v = json(l)?;
            let o = v.as_object().ok_or("not an object")?;
            let id = o.get("recordId").and_then(|v| v.as_str()).ok_or("no recordId")?;
            assert!(id.starts_with(&format!("{dt}-")), "{id}");
            assert!(ids.insert(id.to_owned()), "duplicate {id}");
            // events are windowed by createdAt, the user table by profileUpdatedAt (and has no
            // createdAt)
            let time_field = if dt == DataType::User {
                "profileUpdatedAt"
            } else {
                "createdAt"
            };
            assert_eq!(o.contains_key("createdAt"), dt != DataType::User, "{dt}");
            let c = o.get(time_field).and_then(|v| v.as_str()).ok_or("no time field")?;
            assert_eq!(c.len(), 26, "{c}");
            assert!(c.ends_with(" +00:00") && c.as_bytes()[10] == b' ', "{c}");
            assert!(("2024-03-01 00:00:00".."2024-03-03 00:00:00").contains(&c), "{c}");
            created.push(c.to_owned());
            for k in o.keys() {
                if !fields.contains(&k.as_str()) {
                    unknown_fields += 1;
                }
            }
            match o.get("transactionalData") {
                Some(serde_json::Value::Object(_)) => object_td += 1,
                Some(serde_json::Value::String(s)) => {
                    serde_json::from_str::<serde_json::Value>(s)?;
                    string_td += 1;
                }
                _ => {}
            }
        }
        assert_eq!(created.len(), 80);
        let mut sorted = created.clone();
        sorted.sort();
        assert_ne!(created, sorted, "{dt}: records should not be sorted");
        for must in required_fields(dt) {
            assert!(fields.contains(must), "{dt} lacks {must}");
        }
    }
    assert_eq!(ids.len(), DataType::ALL.len() * 80);
    assert!(unknown_fields > 0);
    assert!(object_td > 0 && string_td > 0, "{object_td} {string_td}");
    assert!(non_ascii);
    Ok(())
}

/// Proves: the user table is windowed by `profileUpdatedAt` (start inclusive, end exclusive), its
/// records have no `createdAt`, and they gain custom columns on later days of data (`consents`
/// from the second, `wishlist` from the third), so the CSV header depends on the window.
#[tokio::test]
async fn user_table_is_windowed_by_profile_updates_and_gains_columns() -> R {
    // 4 records a day: at 03:00, 09:00, 15:00 and 21:00
    let mock = MockServer::start(small(4)).await?;
    let (s, e) = ("2024-01-01 09:00:00", "2024-01-01 21:00:00");
    let (_, _, body) = get_all(&mock, &export_path("json", "user", s, e)).await?;
    assert_eq!(body, expected_body(&mock, "user", s, e)?);
    let mut updated = Vec::new();
    for l in lines(&body) {
        let v = json(l)?;
        let o = v.as_object().ok_or("not an object")?;
        assert!(!o.contains_key("createdAt"), "{v}");
        let at = |k: &str| {
            o.get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or(format!("no {k}"))
        };
        let (signup, profile) = (at("signupDate")?, at("profileUpdatedAt")?);
        assert!(signup < profile, "{v}");
        assert_eq!(at("itblInternal.documentCreatedAt")?, signup);
        assert_eq!(at("itblInternal.documentUpdatedAt")?, profile);
        assert!(!o.contains_key("consents") && !o.contains_key("wishlist"), "day 0: {v}");
        updated.push(profile);
    }
    updated.sort();
    assert_eq!(updated, ["2024-01-01 09:00:00 +00:00", "2024-01-01 15:00:00 +00:00"]);

    let header = |s: &str, e: &str| -> Result<String, E> {
        let bytes = iterable_export_mock::expected_csv_header_between(&mock.config(), "user", t(s)?, t(e)?)?;
        Ok(String::from_utf8(bytes)?)
    };
    let base = "email,userId,itblUserId,signupDate,signupSource,profileUpdatedAt,emailListIds,userListIds,\
                phoneNumber,locale,timeZone,itblInternal.emailDomain,itblInternal.documentCreatedAt,\
                itblInternal.documentUpdatedAt,firstName,lastName,address.city,address.country,\
                preferences.language,loyalty.tier,loyalty.points,tags,favoriteProducts,isVip,score,nickname,notes";
    let days = [
        ("2024-01-01 00:00:00", "2024-01-02 00:00:00", format!("{base},recordId")),
        (
            "2024-01-02 00:00:00",
            "2024-01-03 00:00:00",
            format!("{base},consents,recordId"),
        ),
        (
            "2024-01-03 00:00:00",
            "2024-01-04 00:00:00",
            format!("{base},consents,wishlist,recordId"),
        ),
    ];
    for (day, (s, e, expected)) in days.iter().enumerate() {
        assert_eq!(&header(s, e)?, expected, "day {day}");
        let (status, _, body) = get_all(&mock, &export_path("csv", "user", s, e)).await?;
        assert_eq!(status, 200);
        let text = String::from_utf8(body)?;
        assert_eq!(text.lines().next(), Some(expected.as_str()), "day {day}");
        for l in lines(&expected_body(&mock, "user", s, e)?) {
            let v = json(l)?;
            assert_eq!(v.get("consents").is_some_and(|c| c.is_object()), day >= 1, "{v}");
            assert_eq!(v.get("wishlist").is_some_and(|w| w.is_array()), day >= 2, "{v}");
        }
    }
    // a window over the three days has the last day's columns, which are all of them
    assert_eq!(header("2024-01-01 00:00:00", "2024-01-04 00:00:00")?, days[2].2);
    assert_eq!(iterable_export_mock::expected_csv_header("user")?, days[2].2.as_bytes());
    // the seed spec's user types are unchanged: windowed by createdAt, which they carry
    for l in lines(&expected_body(&mock, "userUpdate", s, e)?) {
        assert!(json(l)?.get("createdAt").is_some());
    }
    Ok(())
}

fn required_fields(dt: DataType) -> &'static [&'static str] {
    match dt {
        DataType::EmailSend => &[
            "email",
            "userId",
            "createdAt",
            "campaignId",
            "templateId",
            "messageId",
            "messageBusId",
            "messageTypeId",
            "contentId",
            "channelId",
            "catalogCollectionCount",
            "catalogLookupCount",
            "productRecommendationCount",
            "transactionalData",
            "itblInternal",
        ],
        DataType::EmailOpen => &["city", "country", "region", "ip", "userAgent", "userAgentDevice"],
        DataType::EmailClick => &[
            "city",
            "country",
            "region",
            "ip",
            "userAgent",
            "userAgentDevice",
            "url",
            "hrefIndex",
        ],
        DataType::EmailBounce => &["recipientState", "status"],
        DataType::CustomEvent => &["eventName", "dataFields"],
        DataType::Purchase => &["id", "total", "items"],
        DataType::UserNew | DataType::UserUpdate => &["email", "itblInternal.emailDomain", "address.city"],
        DataType::User => &[
            "email",
            "userId",
            "itblUserId",
            "signupDate",
            "signupSource",
            "profileUpdatedAt",
            "emailListIds",
            "userListIds",
            "phoneNumber",
            "locale",
            "timeZone",
            "itblInternal.emailDomain",
            "itblInternal.documentCreatedAt",
            "itblInternal.documentUpdatedAt",
            "consents",
            "wishlist",
        ],
        _ => &["email", "createdAt", "recordId"],
    }
}

#[tokio::test]
async fn seeds_change_the_data_and_windows_are_cheap() -> R {
    let a = MockConfig::default().with_records_per_day(5).with_seed(1);
    let b = a.clone().with_seed(2);
    let (s, e) = (t("2024-01-01 00:00:00")?, t("2024-01-02 00:00:00")?);
    let la: Vec<Vec<u8>> = iterable_export_mock::expected_ndjson(&a, "emailSend", s, e)?.collect();
    let lb: Vec<Vec<u8>> = iterable_export_mock::expected_ndjson(&b, "emailSend", s, e)?.collect();
    assert_eq!(la.len(), 5);
    assert_ne!(la, lb);
    // a window years away with a huge volume is counted without generating anything
    let big = MockConfig::default()
        .with_records_per_day(10_000_000)
        .with_rate_limit(RateLimit::unlimited());
    assert_eq!(
        expected_count(&big, "emailSend", t("2030-01-01 00:00:00")?, t("2030-01-01 00:00:01")?)?,
        116
    );
    let first: Vec<Vec<u8>> =
        iterable_export_mock::expected_ndjson(&big, "emailSend", t("2030-01-01 00:00:00")?, t("2030-01-01 00:00:01")?)?
            .take(1)
            .collect();
    assert_eq!(first.len(), 1);
    assert!(iterable_export_mock::expected_ndjson(&a, "nope", s, e).is_err());
    Ok(())
}
