//! JSON writing byte-for-byte like the Python producer (`json.dumps`
//! spacing, Python float repr), without an intermediate value.

// ---------------------------------------------------------------- JSON writing

#[inline]
pub(super) fn w(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
}

/// "00" to "99", for writing integers two digits at a time.
pub(super) const PAIRS: [u8; 200] = {
    let (mut t, mut i) = ([0u8; 200], 0);
    while i < 100 {
        (t[2 * i], t[2 * i + 1]) = (b'0' + (i / 10) as u8, b'0' + (i % 10) as u8);
        i += 1;
    }
    t
};

pub(super) fn push_u(b: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if v >= 10 {
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[v as usize * 2..v as usize * 2 + 2]);
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    b.extend_from_slice(&tmp[i..]);
}

/// Python `repr(float)`: shortest round-trip digits, exponent below 1e-4 or from 1e16.
pub(super) fn py_float(x: f64) -> String {
    if !x.is_finite() {
        let name = if x.is_nan() { "NaN" } else { "Infinity" };
        return if x < 0.0 {
            format!("-{name}")
        } else {
            name.to_owned()
        };
    }
    let s = format!("{x:?}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(('+', e), |d| ('-', d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Writes `v / 10^d` as Python's `repr` of the nearest float. Exact decimal
/// printing equals `repr` here: values have at most 16 significant digits and
/// float spacing is finer than `10^-d` (checked against `py_float` in the tests).
pub(super) fn push_fixed(b: &mut Vec<u8>, v: u64, d: u32) {
    let scale = 10u64.pow(d);
    let (int, frac) = (v / scale, v % scale);
    if int == 0 && frac != 0 && frac * 10_000 < scale {
        return w(b, &py_float(v as f64 / scale as f64));
    }
    push_u(b, int);
    b.push(b'.');
    let (mut f, mut digits) = (frac, (d as usize).max(1));
    while f % 10 == 0 && digits > 1 {
        f /= 10;
        digits -= 1;
    }
    let mut tmp = [b'0'; 20];
    for slot in tmp[..digits].iter_mut().rev() {
        *slot = b'0' + (f % 10) as u8;
        f /= 10;
    }
    b.extend_from_slice(&tmp[..digits]);
}

/// Writes a JSON string like `json.dumps` with `ensure_ascii=True`.
pub(super) fn push_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    if s.bytes()
        .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        w(b, s);
    } else {
        for c in s.chars() {
            match c {
                '"' => w(b, "\\\""),
                '\\' => w(b, "\\\\"),
                '\n' => w(b, "\\n"),
                '\r' => w(b, "\\r"),
                '\t' => w(b, "\\t"),
                ' '..='~' => b.push(c as u8),
                _ => {
                    for u in c.encode_utf16(&mut [0u16; 2]) {
                        w(b, &format!("\\u{u:04x}"));
                    }
                }
            }
        }
    }
    b.push(b'"');
}

pub(super) fn tf(v: bool) -> &'static str {
    if v {
        "true"
    } else {
        "false"
    }
}

/// A record being written in `json.dumps` layout: every field method appends
/// `"key": value, ` (an empty key writes a list item) and `close` drops the
/// trailing separator before closing a map or list.
#[derive(Default)]
pub(super) struct Buf(pub(super) Vec<u8>);

impl Buf {
    pub(super) fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !k.is_empty() {
            self.0.push(b'"');
            w(&mut self.0, k);
            w(&mut self.0, "\": ");
        }
        &mut self.0
    }
    pub(super) fn sep(&mut self) -> &mut Self {
        w(&mut self.0, ", ");
        self
    }
    pub(super) fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        w(self.key(k), v);
        self.sep()
    }
    pub(super) fn u(&mut self, k: &str, v: u64) -> &mut Self {
        push_u(self.key(k), v);
        self.sep()
    }
    /// A float given as `v / 10^d`.
    pub(super) fn fx(&mut self, k: &str, v: u64, d: u32) -> &mut Self {
        push_fixed(self.key(k), v, d);
        self.sep()
    }
    pub(super) fn s(&mut self, k: &str, v: &str) -> &mut Self {
        push_str(self.key(k), v);
        self.sep()
    }
    /// A split id: `prefix` followed by the root split number.
    pub(super) fn id(&mut self, k: &str, prefix: &str, n: u64) -> &mut Self {
        let b = self.key(k);
        b.push(b'"');
        w(b, prefix);
        push_u(b, n);
        b.push(b'"');
        self.sep()
    }
    pub(super) fn open(&mut self, k: &str, c: u8) -> &mut Self {
        self.key(k).push(c);
        self
    }
    pub(super) fn close(&mut self, c: u8) -> &mut Self {
        if self.0.ends_with(b", ") {
            self.0.truncate(self.0.len() - 2);
        }
        self.0.push(c);
        self.sep()
    }
    /// A map keyed by partition number, one entry per value.
    pub(super) fn by_partition(
        &mut self,
        k: &str,
        vals: &[u64],
        f: impl Fn(&mut Self, usize, u64),
    ) {
        self.open(k, b'{');
        for (p, &v) in vals.iter().enumerate() {
            self.0.push(b'"');
            push_u(&mut self.0, p as u64);
            w(&mut self.0, "\": ");
            f(self, p, v);
        }
        self.close(b'}');
    }
    /// `[pos, pos + n, ...]`: round-robin assignment of the `pos`-th of `n` workers.
    pub(super) fn parts(&mut self, pos: usize, n: usize, total: usize) -> &mut Self {
        self.open("assigned_partitions", b'[');
        for p in (pos..total).step_by(n.max(1)) {
            self.u("", p as u64);
        }
        self.close(b']')
    }
}
