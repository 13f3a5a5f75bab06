use std::sync::atomic::{AtomicU64, Ordering};
static T: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
pub fn add(i: usize, t0: std::time::Instant) { T[i].fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed); }
pub fn print() { let n = ["wait_log","apply_batch","drain_dirty","db_write","prep_push","x"]; for i in 0..5 { eprintln!("{} {:.3}s", n[i], T[i].load(Ordering::Relaxed) as f64 / 1e9); } }
