//! Turns one raw record into a validated state message or a dead-letter
//! reason. JSON and MessagePack are told apart by content unless a
//! `content-type` says which. It never panics and never returns an error:
//! bad input is data.

use sundial_views::{DeadLetter, Envelope, Kind, Message};

/// Deepest nesting accepted in a MessagePack record (JSON stops at 128).
const MAX_DEPTH: usize = 64;
/// Bytes of a rejected record kept for people to look at.
const PREVIEW_BYTES: usize = 200;

/// The two wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    MsgPack,
}

/// Which format a record is in: the `content-type` header wins, then content.
pub fn detect(bytes: &[u8], content_type: Option<&str>) -> Option<Format> {
    match content_type.map(|c| c.trim().to_ascii_lowercase()) {
        Some(c)
            if c.starts_with("application/msgpack") || c.starts_with("application/x-msgpack") =>
        {
            return Some(Format::MsgPack)
        }
        Some(c) if c.starts_with("application/json") => return Some(Format::Json),
        _ => {}
    }
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace())?;
    match first {
        b'{' => Some(Format::Json),
        0x80..=0x8f | 0xde | 0xdf => Some(Format::MsgPack),
        _ => None,
    }
}

/// Decodes and validates one record for job `job_id`.
pub fn decode<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    job_id: &str,
) -> Result<Message<'a>, String> {
    if let Some(reason) = crate::ingest::source::limit::rejected(content_type) {
        return Err(reason);
    }
    let msg = match detect(bytes, content_type) {
        Some(Format::Json) => {
            // One UTF-8 check of the whole record lets serde_json skip its
            // per-string checks (measurably faster than `from_slice`).
            let text = std::str::from_utf8(bytes).map_err(|e| format!("json: {e}"))?;
            match crate::ingest::fast_json::decode(text) {
                Some(msg) => msg,
                None => serde_json::from_str::<Message>(text).map_err(|e| format!("json: {e}"))?,
            }
        }
        Some(Format::MsgPack) => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(MAX_DEPTH);
            serde::Deserialize::deserialize(&mut de).map_err(|e| format!("msgpack: {e}"))?
        }
        None => return Err("not a json object or msgpack map".to_owned()),
    };
    if msg.job_id != job_id {
        return Err(format!(
            "job_id={} does not match the projector's job={job_id}",
            msg.job_id
        ));
    }
    if !(0.0..MAX_TIMESTAMP).contains(&msg.timestamp) {
        let t = msg.timestamp;
        let shown = if t.abs() < 1e15 {
            format!("{t}")
        } else {
            format!("{t:e}")
        };
        return Err(format!(
            "timestamp={shown} is not seconds since the epoch before 2100 \
             (0 to {MAX_TIMESTAMP}; milliseconds?)"
        ));
    }
    Ok(msg)
}

/// Event times at or past 2100-01-01T00:00:00Z (in seconds) make a record
/// a dead letter, as negative ones do. Health is judged against the newest
/// event time of the job, so one record from a producer sending
/// milliseconds (~1.7e12), or a hostile 1e300, would otherwise call every
/// other worker LOST for good.
pub const MAX_TIMESTAMP: f64 = 4_102_444_800.0;

/// A dead letter for `bytes` (with `content_type`, for job `job_id`)
/// rejected for `reason`, with its envelope when that reads.
pub fn dead_letter(
    bytes: &[u8],
    content_type: Option<&str>,
    job_id: &str,
    reason: String,
    partition: i32,
    offset: i64,
) -> DeadLetter {
    DeadLetter {
        reason,
        preview: preview(bytes),
        partition,
        offset,
        envelope: envelope(bytes, content_type, job_id),
    }
}

/// The envelope fields the sequence tracker needs, read leniently: the
/// payload (and anything else) is skipped unread, `message_type` may be a
/// type Sundial does not know.
#[derive(serde::Deserialize)]
struct Head {
    message_type: String,
    job_id: String,
    source_id: String,
    timestamp: sundial_views::event::Finite,
    #[serde(default)]
    sequence: Option<u64>,
}

/// The envelope of a record [`decode`] rejected, when it reads: well-formed
/// JSON or MessagePack, this job's `job_id`, string `source_id` and
/// `message_type`, a finite `timestamp` and an integer `sequence`. Such a
/// record arrived, so its sequence is no lost message (contract §2). Another
/// job's record, or one without a sequence, has nothing to count: `None`.
pub fn envelope(bytes: &[u8], content_type: Option<&str>, job_id: &str) -> Option<Envelope> {
    let head: Head = match detect(bytes, content_type)? {
        Format::Json => serde_json::from_slice(bytes).ok()?,
        Format::MsgPack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(MAX_DEPTH);
            serde::Deserialize::deserialize(&mut de).ok()?
        }
    };
    if head.job_id != job_id {
        return None;
    }
    Some(Envelope {
        source_id: head.source_id,
        kind: Kind::parse(&head.message_type),
        sequence: head.sequence?,
        timestamp: head.timestamp.0,
    })
}

/// The start of a record as text: UTF-8 where it is, `\xNN` escapes elsewhere.
pub fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    let mut out = String::with_capacity(cut.len());
    for chunk in cut.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\n' && c != '\t' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > PREVIEW_BYTES {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"message_type": "worker_metrics", "job_id": "j", "source_id": "w1", "timestamp": 10.5, "payload": {"stage_id": "s", "input_records": 1, "output_records": 2, "processing_time": 0.5, "processed_count": 1, "assigned_partitions": [0], "is_running": true, "extra": {"kept": 1}}, "sequence": 3}"#;

    fn reason(bytes: &[u8]) -> String {
        decode(bytes, None, "j").expect_err("must be rejected")
    }

    #[test]
    fn event_times_past_2100_or_negative_are_dead_letters_with_the_reason() {
        let with = |t: &str| OK.replace("\"timestamp\": 10.5", &format!("\"timestamp\": {t}"));
        assert_eq!(
            reason(with("1e300").as_bytes()),
            "timestamp=1e300 is not seconds since the epoch before 2100 (0 to 4102444800; milliseconds?)"
        );
        assert!(
            reason(with("1767772800000").as_bytes()).starts_with("timestamp=1767772800000 is not")
        );
        assert!(reason(with("-1").as_bytes()).starts_with("timestamp=-1 is not"));
        assert!(reason(with("4102444800").as_bytes()).starts_with("timestamp=4102444800 is not"));
        for ok in ["0", "1767772800.25", "4102444799.9"] {
            assert!(decode(with(ok).as_bytes(), None, "j").is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_record_stored_cut_off_for_its_size_is_rejected_for_its_size() {
        let (kept, ct) = crate::ingest::source::limit::oversize(OK.as_bytes(), 5_000_000, 1 << 20);
        let why = decode(&kept, Some(&ct), "j").expect_err("oversized");
        assert!(
            why.starts_with("record of 5000000 bytes is over the limit"),
            "{why}"
        );
    }

    #[test]
    fn json_and_msgpack_decode_alike() {
        let json = decode(OK.as_bytes(), None, "j").unwrap();
        let value: serde_json::Value = serde_json::from_str(OK).unwrap();
        let mp = rmp_serde::to_vec_named(&value).unwrap();
        assert_eq!(detect(&mp, None), Some(Format::MsgPack));
        assert_eq!(decode(&mp, None, "j").unwrap(), json);
        assert_eq!(json.sequence, Some(3));
    }

    #[test]
    fn solstice_factory_messages_decode_alike_as_json_and_msgpack() {
        let root = env!("CARGO_MANIFEST_DIR");
        for (dir, job) in [
            ("solstice-defaults", "fx_sol_defaults"),
            ("solstice-full", "fx_sol_full"),
        ] {
            let text =
                std::fs::read_to_string(format!("{root}/replay-fixtures/{dir}/events.ndjson"))
                    .unwrap();
            for line in text.lines() {
                let json =
                    decode(line.as_bytes(), None, job).unwrap_or_else(|e| panic!("{e}: {line}"));
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let mp = rmp_serde::to_vec_named(&value).unwrap();
                assert_eq!(decode(&mp, None, job).unwrap(), json, "{line}");
            }
        }
    }

    #[test]
    fn header_wins_over_content() {
        assert_eq!(
            detect(b"{", Some("application/msgpack")),
            Some(Format::MsgPack)
        );
        assert_eq!(
            detect(&[0x81], Some("application/json")),
            Some(Format::Json)
        );
    }

    #[test]
    fn payload_before_message_type_still_decodes() {
        let s = r#"{"payload": {"stage_id": "s", "assigned_partitions": []}, "job_id": "j", "source_id": "w", "timestamp": 1, "message_type": "worker_started", "sequence": null}"#;
        let m = decode(s.as_bytes(), None, "j").unwrap();
        assert_eq!(m.kind, sundial_views::Kind::WorkerStarted);
        assert_eq!(m.sequence, None);
    }

    #[test]
    fn bad_records_get_reasons() {
        assert!(reason(b"garbage").contains("not a json"));
        assert!(reason(&OK.replace("\"j\"", "\"other\"").into_bytes()).contains("job_id=other"));
        assert!(
            reason(&OK.replace("worker_metrics", "worker_dance").into_bytes())
                .contains("unknown message_type")
        );
        assert!(reason(
            &OK.replace("\"input_records\": 1", "\"input_records\": -1")
                .into_bytes()
        )
        .contains("invalid value"));
        assert!(reason(
            &OK.replace("\"input_records\": 1", "\"input_records\": \"1\"")
                .into_bytes()
        )
        .contains("invalid type"));
        assert!(
            reason(&OK.replace("\"stage_id\": \"s\", ", "").into_bytes())
                .contains("missing field `stage_id`")
        );
        assert!(reason(&OK.replace("10.5", "NaN").into_bytes()).contains("json"));
        assert!(reason(&OK.replace(", \"payload\"", ", \"x\"").into_bytes()).contains("payload"));
        let deep = format!(
            r#"{{"message_type": "job_started", "job_id": "j", "source_id": "j", "timestamp": 1, "sequence": 1, "payload": {{"dag_edges": {{}}, "stages": [], "config": {{"a": {}1{}}}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(reason(deep.as_bytes()).contains("recursion limit"));
    }

    #[test]
    fn msgpack_nan_and_depth_are_rejected() {
        let mut v: serde_json::Value = serde_json::from_str(OK).unwrap();
        v["timestamp"] = serde_json::json!(1.0);
        let mut mp = rmp_serde::to_vec_named(&v).unwrap();
        // Patch the float64 1.0 into NaN.
        let one = 1.0f64.to_be_bytes();
        let at = mp.windows(8).position(|w| w == one).unwrap();
        mp[at..at + 8].copy_from_slice(&f64::NAN.to_be_bytes());
        assert!(reason(&mp).contains("non-finite"));
        let mut deep = serde_json::json!(1);
        for _ in 0..100 {
            deep = serde_json::json!([deep]);
        }
        v["payload"]["extra"] = deep;
        v["timestamp"] = serde_json::json!(2.0);
        let mp = rmp_serde::to_vec_named(&v).unwrap();
        assert!(reason(&mp).contains("depth"));
    }

    #[test]
    fn a_rejected_payload_keeps_its_readable_envelope() {
        let env = |text: &str| envelope(text.as_bytes(), None, "j");
        let no_split_id = r#"{"message_type": "split_processed", "job_id": "j", "source_id": "w1", "timestamp": 10.5, "payload": {"stage_id": "s", "parent_split_ids": [], "input_records": 1, "output_records": 1, "processing_time": 0.5}, "sequence": 4}"#;
        assert!(reason(no_split_id.as_bytes()).contains("missing field `split_id`"));
        let got = env(no_split_id).expect("envelope reads");
        assert_eq!(
            (
                got.source_id.as_str(),
                got.kind,
                got.sequence,
                got.timestamp
            ),
            ("w1", Some(Kind::SplitProcessed), 4, 10.5)
        );
        let dead = dead_letter(no_split_id.as_bytes(), None, "j", "r".into(), 0, 1);
        assert_eq!(dead.envelope, Some(got));
        // MessagePack alike.
        let value: serde_json::Value = serde_json::from_str(no_split_id).unwrap();
        let mp = rmp_serde::to_vec_named(&value).unwrap();
        assert_eq!(envelope(&mp, None, "j"), env(no_split_id));
        // An unknown type arrived too; its kind is unknown.
        let odd = env(&OK.replace("worker_metrics", "worker_dance")).unwrap();
        assert_eq!((odd.kind, odd.sequence), (None, 3));
        // Nothing to count: another job, no sequence, a bad envelope field,
        // a record that is not even well-formed.
        assert_eq!(env(&OK.replace("\"j\"", "\"other\"")), None);
        assert_eq!(
            env(&OK.replace("\"sequence\": 3", "\"sequence\": null")),
            None
        );
        assert_eq!(
            env(&OK.replace("\"sequence\": 3", "\"sequence\": -3")),
            None
        );
        assert_eq!(env(&OK.replace("\"w1\"", "7")), None);
        assert_eq!(env(&OK.replace("10.5", "NaN")), None);
        assert_eq!(env("garbage"), None);
    }

    #[test]
    fn preview_escapes_binary() {
        assert_eq!(preview(&[0x66, 0xff, 0x01]), "f\\xff\\x01");
    }
}
