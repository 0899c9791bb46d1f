//! 401 and 400.

use iterable_export_mock::MockServer;

use crate::{R, client, enc, get_all, json, small};

#[tokio::test]
async fn unauthorized_with_iterable_body() -> R {
    let mock = MockServer::start(small(5)).await?;
    for (path, key) in [
        ("/export/data.json", None),
        ("/export/data.csv", Some("wrong")),
        ("/export/data.json", Some("")),
    ] {
        let mut req = client().get(format!("{}{path}?dataTypeName=emailSend", mock.base_url()));
        if let Some(k) = key {
            req = req.header("Api-Key", k);
        }
        let resp = req.send().await?;
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(crate::content_type(&resp), "application/json");
        assert_eq!(
            resp.text().await?,
            format!(r#"{{"msg":"Invalid API key","code":"BadApiKey","params":{{"endpoint":"/api{path}"}}}}"#)
        );
    }
    // the other endpoints need the key too
    for path in [
        "/export/userEvents?email=a%40b.c",
        "/experiments/metrics?experimentId=1",
    ] {
        let resp = client().get(format!("{}{path}", mock.base_url())).send().await?;
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
    // the key in another header does not count
    let resp = client()
        .get(format!("{}/export/data.json?dataTypeName=emailSend", mock.base_url()))
        .header("Authorization", format!("Bearer {}", mock.api_key()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 401);
    Ok(())
}

#[tokio::test]
async fn unauthorized_without_body() -> R {
    let mock = MockServer::start(small(5).with_unauthorized_body(false).with_api_key("secret")).await?;
    assert_eq!(mock.api_key(), "secret");
    let resp = client()
        .get(format!("{}/export/data.json?dataTypeName=emailSend", mock.base_url()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.bytes().await?.len(), 0);
    let (status, _, _) = get_all(&mock, "/export/data.json?dataTypeName=emailSend").await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn bad_params_are_400_bad_params() -> R {
    let mock = MockServer::start(small(5)).await?;
    let d = |s: &str| enc(s);
    let cases = [
        "dataTypeName=emailSendd".to_owned(),
        "startDateTime=2024-01-01".to_owned(),
        format!(
            "dataTypeName=emailSend&startDateTime={}&endDateTime={}",
            d("2024-01-01 00:00:00"),
            d("not a date")
        ),
        format!(
            "dataTypeName=emailSend&startDateTime={}&endDateTime={}",
            d("2024-02-30 00:00:00"),
            d("2024-03-01 00:00:00")
        ),
        format!(
            "dataTypeName=emailSend&startDateTime={}&endDateTime={}",
            d("2024-01-02 00:00:00"),
            d("2024-01-01 00:00:00")
        ),
        format!(
            "dataTypeName=emailSend&startDateTime={}&endDateTime={}",
            d("2024-01-01 00:00:00"),
            d("2024-01-01T00:00:00Z")
        ),
        format!(
            "dataTypeName=emailSend&range=Today&startDateTime={}&endDateTime={}",
            d("2024-01-01 00:00:00"),
            d("2024-01-02 00:00:00")
        ),
        format!(
            "dataTypeName=emailSend&range=All&endDateTime={}",
            d("2024-01-02 00:00:00")
        ),
        format!("dataTypeName=emailSend&startDateTime={}", d("2024-01-01 00:00:00")),
        format!("dataTypeName=emailSend&endDateTime={}", d("2024-01-01 00:00:00")),
        "dataTypeName=emailSend&range=LastWeek".to_owned(),
        "dataTypeName=emailSend&onlyFields=email&omitFields=userId".to_owned(),
    ];
    for ext in ["json", "csv"] {
        for q in &cases {
            let (status, ct, body) = get_all(&mock, &format!("/export/data.{ext}?{q}")).await?;
            assert_eq!((status, ct.as_str()), (400, "application/json"), "{q}");
            let v = json(&body)?;
            assert_eq!(v["code"], "BadParams", "{q}");
            assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(v["params"], serde_json::json!({}));
        }
    }
    Ok(())
}
