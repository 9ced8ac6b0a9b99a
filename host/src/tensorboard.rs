//! TensorBoard event files: what `--tensorboard DIR` writes, so that `tensorboard --logdir DIR`
//! shows a run's scalars (losses, metrics, learning rate, gradient norm) as it trains.
//!
//! The format is TensorFlow's (`tensorflow/core/util/event.proto`, `summary.proto`, and the
//! TFRecord framing of `tensorflow/core/lib/io/record_writer.cc`):
//! ```text
//! file     events.out.tfevents.<unix seconds>.<host>.<pid>.<n>.tinyrnn   (TensorBoard finds
//!          files whose name contains "tfevents"), a sequence of records:
//! record   len: u64 LE | masked_crc32c(len bytes): u32 LE | data: len bytes | masked_crc32c(data)
//! mask     ((crc >> 15) | (crc << 17)) + 0xa282ead8   (wrapping, u32)
//! data     an Event: wall_time (double, 1), step (int64, 2), and one of file_version (string, 3)
//!          or summary (Summary, 5); Summary: repeated Value (1); Value: tag (string, 1),
//!          simple_value (float, 2, in a oneof: written even when 0).
//! ```
//! The first record is the version event (`brain.Event:2`). The messages are prost's derive of
//! those few fields; the checksum is the `crc` crate's CRC-32C (Castagnoli).
//!
//! An event file is a log that TensorBoard reads while it grows, so unlike every other output it
//! is not written to a temporary file and renamed: each run creates a new file (never an existing
//! one: the name carries the time and the pid, and creation fails rather than overwrite) and
//! flushes whole records, so a reader never sees half a record except at the very end of a killed
//! run, which TensorBoard skips.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use prost::Message;

/// Event files this process has created (part of each file name).
static FILES: AtomicU64 = AtomicU64::new(0);

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The checksum a record stores: CRC-32C, rotated and offset so that a CRC of data that holds
/// CRCs is not degenerate (TFRecord's mask).
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = CRC32C.checksum(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `Event`, the fields tinyrnn writes.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Training step the values belong to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The payload.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// `file_version`: `brain.Event:2` in the first record.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// `summary`.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `Summary`: named values of one step.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    /// `value`.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `Summary.Value` with a scalar.
#[derive(Clone, PartialEq, Message)]
pub struct Value {
    /// `tag`: the chart's name; `/` groups charts (`train/loss`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// `value`: the scalar.
    #[prost(oneof = "Scalar", tags = "2")]
    pub value: Option<Scalar>,
}

/// `Summary.Value.value`, the scalar case.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Scalar {
    /// `simple_value`.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
}

/// One record's bytes: the framing around `data`.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut r = Vec::with_capacity(data.len() + 16);
    r.extend_from_slice(&len);
    r.extend_from_slice(&masked_crc(&len).to_le_bytes());
    r.extend_from_slice(data);
    r.extend_from_slice(&masked_crc(data).to_le_bytes());
    r
}

/// The events of a file's bytes, each record's checksums verified; `None` if any record is cut
/// short or fails its checksum (a reader for tests and tools).
pub fn read_events(mut bytes: &[u8]) -> Option<Vec<Event>> {
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let len_bytes = bytes.get(..8)?;
        let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().ok()?)).ok()?;
        let crc = u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?);
        if crc != masked_crc(len_bytes) {
            return None;
        }
        let end = 12usize.checked_add(len)?;
        let data = bytes.get(12..end)?;
        let crc = u32::from_le_bytes(bytes.get(end..end.checked_add(4)?)?.try_into().ok()?);
        if crc != masked_crc(data) {
            return None;
        }
        events.push(Event::decode(data).ok()?);
        bytes = &bytes[end + 4..];
    }
    Some(events)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An event file being written.
#[derive(Debug)]
pub struct EventWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates a new event file in `dir` (which must exist) and writes the version record.
    pub fn create(dir: &Path) -> Result<Self> {
        let host = hostname();
        let secs = now() as u64;
        // The time, host and pid as TensorFlow names its files, and a count within the process.
        let n = FILES.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("events.out.tfevents.{secs}.{host}.{pid}.{n}.tinyrnn");
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut w = EventWriter {
            file: BufWriter::new(file),
            path,
        };
        w.write(Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        Ok(w)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the scalars `(tag, value)` of one `step` as one event, and flushes it.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let value = values
            .iter()
            .map(|&(tag, v)| Value {
                tag: tag.to_string(),
                value: Some(Scalar::SimpleValue(v as f32)),
            })
            .collect();
        self.write(Event {
            wall_time: now(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            what: Some(What::Summary(Summary { value })),
        })
    }

    fn write(&mut self, e: Event) -> Result<()> {
        let r = record(&e.encode_to_vec());
        self.file
            .write_all(&r)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// This machine's host name for the file name (`localhost` if it has none), reduced to
/// characters that are safe in a file name.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its whole length, which is what gethostname is told.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    let name: String = String::from_utf8_lossy(&buf[..if ok { end } else { 0 }])
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32C's check value (RFC 3720 B.4) and TFRecord's mask of it.
    #[test]
    fn checksum_is_castagnolis_masked() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        // ((c >> 15) | (c << 17)) + 0xa282ead8 of that value, worked out by hand.
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    /// The bytes of a scalar event are protobuf's encoding of the fields, by hand; a zero value
    /// is still written (the oneof).
    #[test]
    fn a_scalar_event_encodes_as_protobuf() {
        let e = Event {
            wall_time: 0.0,
            step: 3,
            what: Some(What::Summary(Summary {
                value: vec![Value {
                    tag: "a".into(),
                    value: Some(Scalar::SimpleValue(0.0)),
                }],
            })),
        };
        // step: field 2 varint 3; summary: field 5, len 10 -> value: field 1, len 8 ->
        // tag: field 1 "a"; simple_value: field 2 fixed32 0.
        let want = [0x10, 3, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15, 0, 0, 0, 0];
        assert_eq!(e.encode_to_vec(), want);
    }

    #[test]
    fn written_files_read_back_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalars(1, &[("train/loss", 0.5), ("lr", 1e-3)]).unwrap();
        w.scalars(2, &[("train/loss", 0.25)]).unwrap();
        let path = w.path().to_path_buf();
        drop(w);
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("tfevents"),
            "TensorBoard finds files by this name"
        );
        let bytes = std::fs::read(&path).unwrap();
        let events = read_events(&bytes).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].what,
            Some(What::FileVersion("brain.Event:2".into()))
        );
        let Some(What::Summary(s)) = &events[1].what else {
            panic!("not a summary")
        };
        assert_eq!(events[1].step, 1);
        assert_eq!(s.value[1].tag, "lr");
        assert_eq!(s.value[1].value, Some(Scalar::SimpleValue(1e-3)));
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        assert!(
            read_events(&bad).is_none(),
            "a flipped bit fails the checksum"
        );
        assert!(
            read_events(&bytes[..n - 1]).is_none(),
            "a cut record is refused"
        );
        // A second writer in the same second never reuses the file.
        let w2 = EventWriter::create(dir.path()).unwrap();
        assert_ne!(w2.path(), path);
    }
}
