//! [`User`]: one record of the user table (`dataTypeName=user`), declared by the same table macro as
//! [`Event`](super::Event).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::record;
use super::table::typed_record;

typed_record! {
    /// One record of Iterable's user table: what `client.export(DataType::User)` returns, one user profile per
    /// record.
    ///
    /// Iterable windows user exports by **`profileUpdatedAt`** (when the profile last changed), not by a creation
    /// time: a user record has no `createdAt`, and an export of `[start, end)` holds the users whose profile was
    /// updated in that span (the same user again in a later span when it changed again). Windows, look-back and
    /// incremental sync therefore work for users exactly as for events.
    ///
    /// The fields most programs need are typed (see the table below); **every** other field is kept, in order, with
    /// its JSON value as it arrived ([`RawValue`]): the fields Iterable manages (`itblUserId`, `signupSource`,
    /// `emailListIds`, `userListIds`, `phoneNumber`, `locale`, `timeZone`, …), Iterable's internal fields, which the
    /// export flattens into dotted names (`itblInternal.emailDomain`, `itblInternal.documentCreatedAt`), and the
    /// project's custom fields of any JSON type (nested objects and arrays included). Serializing a `User` with
    /// `serde_json` writes all fields back with their wire names, in their original positions: a compact record
    /// round-trips byte for byte, unicode included.
    ///
    /// # Example
    ///
    /// ```
    /// use iterable_export::User;
    ///
    /// let line = r#"{"email":"zoë@example.com","userId":"u42","signupDate":"2016-08-02 18:53:45 +00:00","profileUpdatedAt":"2024-01-02 06:00:00 +00:00","itblInternal.emailDomain":"example.com","consents":{"email":{"marketing":true}},"tags":["früh","🔥hot"]}"#;
    /// let user: User = serde_json::from_str(line)?;
    /// assert_eq!(user.email.as_deref(), Some("zoë@example.com"));
    /// assert_eq!(user.user_id.as_deref(), Some("u42"));
    /// assert_eq!(user.signup_date.unwrap().to_rfc3339(), "2016-08-02T18:53:45+00:00");
    /// assert_eq!(user.profile_updated_at.unwrap().to_rfc3339(), "2024-01-02T06:00:00+00:00");
    /// assert_eq!(user.get("itblInternal.emailDomain").unwrap().get(), r#""example.com""#);
    /// assert_eq!(user.get("consents").unwrap().get(), r#"{"email":{"marketing":true}}"#);
    /// assert_eq!(serde_json::to_string(&user)?, line); // byte-faithful
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    ///
    /// Streamed from an export with [`Export::users`](crate::Export::users) (or
    /// [`Export::ndjson_as::<User>`](crate::Export::ndjson_as)):
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// use iterable_export::{Client, DataType, User};
    ///
    /// # async fn demo(client: Client, start: chrono::DateTime<chrono::Utc>, end: chrono::DateTime<chrono::Utc>)
    /// # -> iterable_export::Result<()> {
    /// let mut users = client.export(DataType::User).between(start, end).users().await?;
    /// while let Some(user) = users.try_next().await? {
    ///     println!("{:?} updated at {:?}", user.email, user.profile_updated_at);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Times and values of the wrong type
    ///
    /// As for [`Event`](crate::Event): `signupDate` and `profileUpdatedAt` are read in Iterable's form
    /// (`2016-08-02 18:53:45 +00:00`), as RFC 3339, without a zone (UTC) and as epoch milliseconds; a time set in
    /// code is written in Iterable's form. A typed field whose value does not fit never makes the record fail: it is
    /// `None` and its original JSON is kept, written back, and available from [`get`](Self::get).
    pub struct User("an Iterable user") {
        email:              String        = "email",            "the user's email address";
        user_id:            String        = "userId",           "the user's ID";
        signup_date:        DateTime<Utc> = "signupDate",       "when the user signed up";
        profile_updated_at: DateTime<Utc> = "profileUpdatedAt", "when the profile last changed (user exports are windowed by it)";
    }
    field enum UserField;
    time field profile_updated_at;
    other names [
        "itblUserId": Str, "signupSource": Str, "emailListIds": Json, "userListIds": Json,
        "subscribedMessageTypeIds": Json, "unsubscribedChannelIds": Json, "unsubscribedMessageTypeIds": Json,
        "phoneNumber": Str, "whatsAppPhoneNumber": Str, "devices": Json, "locale": Str, "timeZone": Str, "city": Str,
        "region": Str, "country": Str, "ip": Str, "firstName": Str, "lastName": Str, "itblInternal.emailDomain": Str,
        "itblInternal.documentCreatedAt": Time, "itblInternal.documentUpdatedAt": Time,
        "itblDS.predictiveGoals": Json,
    ];
}

impl User {
    /// A user without fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw JSON value of a field that has no typed field (or of a typed field whose value did not fit its type).
    /// Dotted names are single fields: `user.get("itblInternal.emailDomain")`.
    ///
    /// ```
    /// let user: iterable_export::User = serde_json::from_str(r#"{"email":"a@b.c","locale":"fr_CA"}"#)?;
    /// assert_eq!(user.get("locale").map(|v| v.get()), Some(r#""fr_CA""#));
    /// assert!(user.get("email").is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<&RawValue> {
        record::get(self, name)
    }

    /// The JSON value of any field, typed ones included, as it would be serialized.
    pub fn field(&self, name: &str) -> Option<Cow<'_, RawValue>> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All fields in wire order (the order in which they are serialized), with their JSON values.
    pub fn fields(&self) -> impl Iterator<Item = (&str, Cow<'_, RawValue>)> + '_ {
        record::fields(self)
    }

    /// The fields without a typed field, in wire order: Iterable's other fields and the project's custom fields.
    pub fn other_fields(&self) -> impl Iterator<Item = (&str, &RawValue)> + '_ {
        record::other_fields(self)
    }

    /// Sets a field from JSON, keeping its position if it exists and appending it otherwise. A typed field is parsed
    /// into its typed value (leniently, as when deserializing).
    pub fn insert(&mut self, name: &str, value: Box<RawValue>) {
        record::insert(self, name, &value);
    }

    /// Removes a field (typed or not) and returns its JSON value.
    pub fn remove(&mut self, name: &str) -> Option<Box<RawValue>> {
        record::remove(self, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fields_lenient_and_faithful() {
        let line = r#"{"email":"a@b.c","userId":42,"signupDate":1470163425000,"profileUpdatedAt":"not a time","itblInternal.documentCreatedAt":"2016-08-02 18:53:45 +00:00","x":{"y":[1,"ü",null]}}"#;
        let user: User = serde_json::from_str(line).expect("a user");
        assert_eq!(user.user_id.as_deref(), Some("42"));
        assert_eq!(user.signup_date.map(|t| t.timestamp()), Some(1_470_163_425));
        assert_eq!(user.profile_updated_at, None);
        assert_eq!(user.get("profileUpdatedAt").map(RawValue::get), Some(r#""not a time""#));
        let others: Vec<&str> = user.other_fields().map(|(n, _)| n).collect();
        assert_eq!(others, ["itblInternal.documentCreatedAt", "x"]);
        assert_eq!(serde_json::to_string(&user).expect("serializes"), line);
        let err = serde_json::from_str::<User>("[]").expect_err("not an object");
        assert!(
            err.to_string().contains("expected an Iterable user (a JSON object)"),
            "{err}"
        );
    }

    #[test]
    fn edits_write_times_in_iterable_form() {
        let mut user: User =
            serde_json::from_str(r#"{"email":"a@b.c","profileUpdatedAt":"2024-01-02T06:00:00Z"}"#).expect("a user");
        user.profile_updated_at = user.profile_updated_at.map(|t| t + chrono::TimeDelta::hours(1));
        user.insert("locale", RawValue::from_string(r#""de_DE""#.into()).expect("JSON"));
        assert_eq!(
            serde_json::to_string(&user).expect("serializes"),
            r#"{"email":"a@b.c","profileUpdatedAt":"2024-01-02 07:00:00 +00:00","locale":"de_DE"}"#
        );
        assert_eq!(
            user.remove("email").map(|v| v.get().to_owned()).as_deref(),
            Some(r#""a@b.c""#)
        );
    }

    #[test]
    fn json_schema_lists_the_typed_fields() {
        let schema = serde_json::to_value(schemars::schema_for!(User)).expect("schema");
        let properties: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
        assert_eq!(properties, ["email", "userId", "signupDate", "profileUpdatedAt"]);
        assert_eq!(schema["title"], "User");
    }
}
