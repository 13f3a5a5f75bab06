//! The common messages read as their producer writes them: keys in one
//! order, `", "` and `": "` between them (Python's `json.dumps`). Each key
//! is then one comparison with the expected text, instead of a scan for
//! its end and a match among the type's keys (the key handling was about
//! half of a record's decode). Values go through the same readers as in
//! the general path; at the first byte that differs from the expected
//! shape this reader gives up and the general one starts again from the
//! same place, so it answers exactly what that one answers.

use std::borrow::Cow;

use sundial_views::event::{Kind, Message, Payload, SplitProcessed, WorkerMetrics};

use super::Reader;

impl<'a> Reader<'a> {
    /// True (and stepped over) when the text goes on with `lit`.
    fn next_is(&mut self, lit: &str) -> bool {
        let n = lit.len();
        let found = self.b.get(self.at..self.at + n) == Some(lit.as_bytes());
        if found {
            self.at += n;
        }
        found
    }

    /// Steps over `lit`, or declines.
    fn lit(&mut self, lit: &str) -> Option<()> {
        self.next_is(lit).then_some(())
    }

    /// `, "key": value` when the text goes on with that key (an optional
    /// field written in its place); `None` inside when it does not.
    fn optional<T>(
        &mut self,
        key: &str,
        value: impl FnOnce(&mut Self) -> Option<Option<T>>,
    ) -> Option<Option<T>> {
        if self.next_is(key) {
            value(self)
        } else {
            Some(None)
        }
    }

    /// `fast` from here; failing that, `general` from the same place.
    fn either<T>(
        &mut self,
        fast: impl FnOnce(&mut Self) -> Option<T>,
        general: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let start = self.at;
        if let Some(v) = fast(self) {
            return Some(v);
        }
        self.at = start;
        general(self)
    }

    /// A whole message in the producer's order; `None`: read it the
    /// general way from the start.
    pub(super) fn message_in_order(&mut self) -> Option<Message<'a>> {
        self.lit("{\"message_type\": \"")?;
        let kind = if self.next_is("worker_metrics\"") {
            Kind::WorkerMetrics
        } else if self.next_is("split_processed\"") {
            Kind::SplitProcessed
        } else if self.next_is("stage_metrics\"") {
            Kind::StageMetrics
        } else {
            return None;
        };
        self.lit(", \"job_id\": ")?;
        let job_id = self.str()?;
        self.lit(", \"source_id\": ")?;
        let source_id = self.str()?;
        self.lit(", \"timestamp\": ")?;
        let timestamp = self.f64()?;
        self.lit(", \"payload\": ")?;
        let payload = match kind {
            Kind::WorkerMetrics => Payload::WorkerMetrics(
                self.either(Self::worker_metrics_in_order, Self::worker_metrics)?,
            ),
            Kind::SplitProcessed => Payload::SplitProcessed(
                self.either(Self::split_processed_in_order, Self::split_processed)?,
            ),
            _ => Payload::StageMetrics(self.stage_metrics()?),
        };
        let sequence = self.optional(", \"sequence\": ", |r| r.opt(Self::u64))?;
        self.lit("}")?;
        Some(Message {
            kind,
            job_id: Cow::Borrowed(job_id),
            source_id: Cow::Borrowed(source_id),
            timestamp: timestamp.0,
            sequence,
            payload,
        })
    }

    fn worker_metrics_in_order(&mut self) -> Option<WorkerMetrics<'a>> {
        self.lit("{\"stage_id\": ")?;
        let stage_id = self.str()?;
        self.lit(", \"input_records\": ")?;
        let input_records = self.u64()?;
        self.lit(", \"output_records\": ")?;
        let output_records = self.u64()?;
        self.lit(", \"processing_time\": ")?;
        let processing_time = self.f64()?;
        self.lit(", \"processed_count\": ")?;
        let processed_count = self.u64()?;
        self.lit(", \"assigned_partitions\": ")?;
        let assigned_partitions = self.array(Self::i64)?;
        self.lit(", \"is_running\": ")?;
        let is_running = self.bool()?;
        let cpu_percent = self.optional(", \"cpu_percent\": ", |r| r.opt(Self::f64))?;
        let memory_bytes = self.optional(", \"memory_bytes\": ", |r| r.opt(Self::u64))?;
        let gpu_percent = self.optional(", \"gpu_percent\": ", |r| r.opt(Self::f64))?;
        self.lit("}")?;
        Some(WorkerMetrics {
            stage_id: Cow::Borrowed(stage_id),
            input_records,
            output_records,
            processing_time,
            processed_count,
            assigned_partitions,
            is_running,
            cpu_percent,
            memory_bytes,
            gpu_percent,
        })
    }

    /// A `split_processed` in one of its two producer orders: Solstice's
    /// factory (ids, counts, `processing_time` in seconds) or the richer
    /// shape with partition, timings, sizes and payload keys.
    fn split_processed_in_order(&mut self) -> Option<SplitProcessed<'a>> {
        self.lit("{\"stage_id\": ")?;
        let stage_id = self.str()?;
        self.lit(", \"split_id\": ")?;
        let split_id = self.str()?;
        self.lit(", \"parent_split_ids\": ")?;
        let parent_split_ids = self.array(|r| r.str().map(Cow::Borrowed))?;
        let mut p = SplitProcessed {
            stage_id: Cow::Borrowed(stage_id),
            split_id: Cow::Borrowed(split_id),
            parent_split_ids,
            partition_id: None,
            enqueue_time: None,
            dequeue_time: None,
            complete_time: None,
            queue_wait_time_ms: None,
            processing_time_ms: None,
            processing_time: None,
            input_records: 0,
            output_records: 0,
            input_bytes: None,
            output_bytes: None,
            payload_store_key: None,
            payload_storage_path: None,
        };
        if !self.next_is(", \"partition_id\": ") {
            self.lit(", \"input_records\": ")?;
            p.input_records = self.u64()?;
            self.lit(", \"output_records\": ")?;
            p.output_records = self.u64()?;
            self.lit(", \"processing_time\": ")?;
            p.processing_time = Some(self.f64()?);
            self.lit("}")?;
            return Some(p);
        }
        p.partition_id = Some(self.i64()?);
        for (t, key) in [
            &mut p.enqueue_time,
            &mut p.dequeue_time,
            &mut p.complete_time,
            &mut p.queue_wait_time_ms,
            &mut p.processing_time_ms,
        ]
        .into_iter()
        .zip([
            ", \"enqueue_time\": ",
            ", \"dequeue_time\": ",
            ", \"complete_time\": ",
            ", \"queue_wait_time_ms\": ",
            ", \"processing_time_ms\": ",
        ]) {
            self.lit(key)?;
            *t = Some(self.f64()?);
        }
        self.lit(", \"input_records\": ")?;
        p.input_records = self.u64()?;
        self.lit(", \"output_records\": ")?;
        p.output_records = self.u64()?;
        self.lit(", \"input_bytes\": ")?;
        p.input_bytes = Some(self.u64()?);
        self.lit(", \"output_bytes\": ")?;
        p.output_bytes = Some(self.u64()?);
        self.lit(", \"payload_store_key\": ")?;
        p.payload_store_key = Some(Cow::Borrowed(self.str()?));
        let path = self.optional(", \"payload_storage_path\": ", |r| r.opt(Self::str))?;
        p.payload_storage_path = path.map(Cow::Borrowed);
        self.lit("}")?;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

    /// What a reader answers on the whole of `text`, printed.
    fn read(text: &str, in_order: bool) -> Option<String> {
        let mut r = Reader::new(text);
        let msg = if in_order {
            r.message_in_order()?
        } else {
            r.message()?
        };
        r.ws();
        (r.at == r.b.len()).then(|| format!("{msg:?}"))
    }

    #[test]
    fn takes_the_producers_records_and_reads_them_as_the_general_reader_does() {
        let corpus = super::super::tests::corpus();
        let (mut general, mut taken) = (0, 0);
        for text in &corpus {
            let want = read(text, false);
            general += usize::from(want.is_some());
            if let Some(got) = read(text, true) {
                taken += 1;
                assert_eq!(Some(got), want, "differs on {text}");
            }
        }
        // The simulator writes what the producer writes: nearly all taken.
        assert!(taken * 10 > general * 9, "took {taken} of {general}");
    }

    #[test]
    fn both_split_processed_shapes_of_solstice_are_taken_in_order() {
        let minimal = r#"{"message_type": "split_processed", "job_id": "j", "source_id": "w", "timestamp": 1.5, "payload": {"stage_id": "s", "split_id": "b", "parent_split_ids": ["a"], "input_records": 10, "output_records": 8, "processing_time": 0.5}, "sequence": 2}"#;
        let rich = r#"{"message_type": "split_processed", "job_id": "j", "source_id": "w", "timestamp": 1.5, "payload": {"stage_id": "s", "split_id": "b", "parent_split_ids": ["a"], "partition_id": 0, "enqueue_time": 1.0, "dequeue_time": 1.25, "complete_time": 1.5, "queue_wait_time_ms": 250.0, "processing_time_ms": 250.0, "input_records": 10, "output_records": 8, "input_bytes": 0, "output_bytes": 4096, "payload_store_key": "k", "payload_storage_path": null}, "sequence": 2}"#;
        for text in [minimal, rich] {
            let got = read(text, true);
            assert!(got.is_some(), "{text}");
            assert_eq!(got, read(text, false), "{text}");
        }
        // Any other mix: the payload is read the general way (within the
        // envelope in order), alike.
        for text in [
            minimal.replace(", \"processing_time\": 0.5", ""),
            minimal.replace("0.5}", "0.5, \"partition_id\": 3}"),
            rich.replace("\"partition_id\": 0", "\"partition_id\": null"),
        ] {
            assert!(read(&text, false).is_some(), "{text}");
            assert_eq!(read(&text, true), read(&text, false), "{text}");
            assert_eq!(
                super::super::decode(&text).map(|m| format!("{m:?}")),
                read(&text, false)
            );
        }
    }

    #[test]
    fn another_order_or_spacing_is_read_the_general_way_with_the_same_answer() {
        let ok = r#"{"message_type": "worker_metrics", "job_id": "j", "source_id": "w", "timestamp": 1.5, "payload": {"stage_id": "s", "input_records": 1, "output_records": 2, "processing_time": 0.5, "processed_count": 1, "assigned_partitions": [1, 2], "is_running": true, "cpu_percent": null, "memory_bytes": 7}, "sequence": 3}"#;
        assert!(read(ok, true).is_some());
        for (from, to, in_order) in [
            (", \"job_id\"", ",\"job_id\"", false),
            (
                "\"job_id\": \"j\", \"source_id\": \"w\"",
                "\"source_id\": \"w\", \"job_id\": \"j\"",
                false,
            ),
            (
                "\"input_records\": 1, \"output_records\": 2",
                "\"output_records\": 2, \"input_records\": 1",
                true,
            ),
            (
                "\"cpu_percent\": null, \"memory_bytes\": 7",
                "\"memory_bytes\": 7, \"cpu_percent\": null",
                true,
            ),
            (", \"sequence\": 3", "", true),
            ("\"sequence\": 3", "\"sequence\": null", true),
            ("\"cpu_percent\": null, ", "", true),
        ] {
            let text = ok.replace(from, to);
            assert_ne!(text, ok);
            let general = read(&text, false);
            assert!(general.is_some(), "{text}");
            // A payload out of order is read the general way within an
            // envelope in order.
            assert_eq!(read(&text, true).is_some(), in_order, "{text}");
            assert_eq!(
                super::super::decode(&text).map(|m| format!("{m:?}")),
                general
            );
        }
    }
}
