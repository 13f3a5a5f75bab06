//! Attempts stored before the lineage index kept one `SplitRow` per split
//! under the split's id. Their lineage still reads, alone and beside the
//! index an upgraded projector goes on writing: the old splits listed
//! first, a split's latest processing from either, its children from both.

use std::sync::Arc;

use serde_json::{json, Value};
use sundial::api::{self, Params};
use sundial::event_log::{view_key, AttemptMeta};
use sundial::Engine;
use sundial::SourceRecord;
use sundial::Storage;
use sundial::{Handle, ViewStore};
use sundial_views::encode_row;
use sundial_views::lineage::SplitRow;

const JOB: &str = "legacy_job";

fn split(seq: u64, id: &str, parents: &[&str]) -> SourceRecord {
    let v = json!({
        "message_type": "split_processed", "job_id": JOB, "source_id": "w9",
        "timestamp": 50.0 + seq as f64, "sequence": seq,
        "payload": {
            "stage_id": "late", "split_id": id, "parent_split_ids": parents,
            "partition_id": 1, "enqueue_time": 1.0, "dequeue_time": 2.0,
            "complete_time": 3.0, "queue_wait_time_ms": 4.0, "processing_time_ms": 5.0,
            "input_records": 6, "output_records": 7, "input_bytes": 8, "output_bytes": 9,
            "payload_store_key": format!("k/{id}"),
        },
    });
    SourceRecord {
        partition: 0,
        offset: seq as i64,
        arrival_ms: 0,
        content_type: None,
        value: v.to_string().into_bytes().into(),
    }
}

/// A row as the code before the index wrote it.
fn old_row(id: &str, stage: &str, parents: &[&str], children: &[&str]) -> SplitRow {
    SplitRow {
        split_id: id.to_owned(),
        processed: !stage.is_empty(),
        offset: 1,
        stage_id: stage.to_owned(),
        worker_id: "w1".to_owned(),
        parents: parents.iter().map(|s| s.to_string()).collect(),
        children: children.iter().map(|s| s.to_string()).collect(),
        ..SplitRow::default()
    }
}

async fn get(store: &ViewStore, route: &str) -> Value {
    match route.strip_prefix("/lineage/") {
        Some(id) => api::split(store, id).await.unwrap_or_else(|e| e.body()),
        None => {
            let mut p = Params::new();
            if let Some(stage) = route.strip_prefix("/lineage?stage_id=") {
                p.insert("stage_id".into(), stage.into());
            }
            api::lineage(store, &p).await.unwrap()
        }
    }
}

fn ids(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["split_id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_split_rows_of_older_attempts_read_beside_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::from_url(dir.path().to_str().unwrap()).unwrap();
    let db = Arc::new(storage.open_writer(JOB, "a").await.unwrap());
    // What older code stored: `a` (processed, child `b`), `b`, and `p`
    // known only as `a`'s parent.
    for row in [
        old_row("a", "early", &["p"], &["b"]),
        old_row("b", "early", &["a"], &[]),
        old_row("p", "", &[], &["a"]),
    ] {
        db.put(
            view_key("lineage", &row.split_id),
            encode_row(&row).unwrap(),
        )
        .await
        .unwrap();
    }
    let store = ViewStore::open(Handle::Writer(db.clone()), JOB, "a")
        .await
        .unwrap();
    let old = get(&store, "/lineage").await;
    assert_eq!(ids(&old), ["a", "b"], "processed splits, by id");
    assert_eq!(old["total"], 2);
    assert_eq!(get(&store, "/lineage/a").await["children"], json!(["b"]));
    assert_eq!(get(&store, "/lineage/p").await["processed"], false);

    // An upgraded projector goes on: `c` names `a`, `a` is processed
    // again, `q` is named for the first time.
    let meta = AttemptMeta {
        job_id: JOB.into(),
        attempt_id: "a".into(),
        ..AttemptMeta::default()
    };
    let mut engine = Engine::open(db.clone(), meta).await.unwrap();
    engine
        .ingest(vec![split(1, "c", &["a"]), split(2, "a", &["q"])])
        .await
        .unwrap();
    let list = get(&store, "/lineage").await;
    assert_eq!(
        ids(&list),
        ["a", "b", "c", "a"],
        "older rows first, then log order"
    );
    assert_eq!(list["total"], 4);
    assert_eq!(
        ids(&get(&store, "/lineage?stage_id=late").await),
        ["c", "a"]
    );
    assert_eq!(
        ids(&get(&store, "/lineage?stage_id=early").await),
        ["a", "b"]
    );
    let a = get(&store, "/lineage/a").await;
    assert_eq!(a["stage_id"], "late", "the latest processing: {a}");
    assert_eq!(a["offset"], 2);
    assert_eq!(a["parents"], json!(["q"]));
    assert_eq!(a["children"], json!(["b", "c"]), "children from both");
    let p = get(&store, "/lineage/p").await;
    assert_eq!(p["processed"], false);
    assert_eq!(p["children"], json!(["a"]));
    let q = get(&store, "/lineage/q").await;
    assert_eq!(
        (q["processed"].clone(), q["children"].clone()),
        (json!(false), json!(["a"]))
    );
    assert_eq!(get(&store, "/lineage/nope").await["status"], 404);
    // An id shaped like an index key is just unknown.
    assert_eq!(
        get(&store, "/lineage/%00i0000000000000000").await["status"],
        404
    );
    assert_eq!(
        get(&store, "/lineage/\0i0000000000000000").await["status"],
        404
    );
    drop(engine);
    drop(store);
    db.close().await.unwrap();
}
