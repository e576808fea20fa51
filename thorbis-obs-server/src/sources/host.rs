//! `type = "host"`: the agent's own machine (feature `host-metrics`), read with the `sysinfo`
//! crate, so a full disk or a swapping host pages before customers notice. Every series carries
//! `host` (the machine's name).
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `host_cpu_count` | | logical CPUs |
//! | `host_cpu_usage_ratio` | | busy share of all CPUs since the previous collection (0..1; from the second collection on) |
//! | `host_load1`, `host_load5`, `host_load15` | | load averages |
//! | `host_load1_per_core`, `host_load5_per_core` | | load average / logical CPUs |
//! | `host_memory_total_bytes`, `host_memory_available_bytes` | | RAM, and what can be had without swapping (`MemAvailable`) |
//! | `host_memory_used_ratio` | | 1 - available / total |
//! | `host_swap_total_bytes`, `host_swap_used_bytes` | | swap |
//! | `host_filesystem_size_bytes`, `host_filesystem_avail_bytes` | `mountpoint`, `device`, `fstype` | per mounted filesystem (pseudo filesystems left out, as sysinfo lists them) |
//! | `host_filesystem_used_ratio` | same | 1 - avail / size: what an unprivileged writer cannot use, node_exporter's usual alert ratio (blocks reserved for root count as used) |
//! | `host_disk_read_bytes_total`, `host_disk_written_bytes_total` | `device` | disk I/O counters (`/proc/diskstats` on Linux) |
//! | `host_network_receive_bytes_total`, `host_network_transmit_bytes_total` | `interface` | network I/O counters |
//!
//! Mounts and interfaces are capped at [`MAX_MOUNTS`] and [`MAX_INTERFACES`] (a container
//! host can have thousands of veth devices); the rest are left out and counted in
//! `host_series_dropped`. Reading is blocking file IO, so it runs on tokio's blocking pool.

use async_trait::async_trait;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::{CollectError, MetricSource};

/// Most mounted filesystems reported.
pub const MAX_MOUNTS: usize = 64;
/// Most network interfaces reported.
pub const MAX_INTERFACES: usize = 64;

struct Readers {
    system: sysinfo::System,
    disks: sysinfo::Disks,
    networks: sysinfo::Networks,
    cpu_primed: bool,
}

/// The host source.
pub struct HostSource {
    interval: Duration,
    host: String,
    readers: Arc<Mutex<Readers>>,
}

impl std::fmt::Debug for HostSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSource").field("interval", &self.interval).field("host", &self.host).finish()
    }
}

impl HostSource {
    /// A host source collecting every `interval`.
    pub fn new(interval: Duration) -> Self {
        let host = sysinfo::System::host_name().unwrap_or_else(|| "unknown".into());
        let readers = Readers {
            system: sysinfo::System::new(),
            disks: sysinfo::Disks::new(),
            networks: sysinfo::Networks::new(),
            cpu_primed: false,
        };
        HostSource { interval, host, readers: Arc::new(Mutex::new(readers)) }
    }

    /// One collection, blocking.
    pub fn collect_blocking(&self, now: Timestamp) -> Vec<Sample> {
        let mut r = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        read(&mut r, &self.host, now)
    }
}

fn read(r: &mut Readers, host: &str, now: Timestamp) -> Vec<Sample> {
    let base = Labels::new().with("host", host);
    let mut out = Vec::with_capacity(64);
    let mut push = |name: &str, labels: &Labels, v: f64| {
        if v.is_finite() {
            out.push(Sample::new(name, labels.clone(), v, now));
        }
    };
    r.system.refresh_memory();
    r.system.refresh_cpu_usage();
    let cpus = r.system.cpus().len().max(1) as f64;
    push("host_cpu_count", &base, cpus);
    if r.cpu_primed {
        push("host_cpu_usage_ratio", &base, f64::from(r.system.global_cpu_usage()) / 100.0);
    }
    r.cpu_primed = true;
    let load = sysinfo::System::load_average();
    push("host_load1", &base, load.one);
    push("host_load5", &base, load.five);
    push("host_load15", &base, load.fifteen);
    push("host_load1_per_core", &base, load.one / cpus);
    push("host_load5_per_core", &base, load.five / cpus);
    let total = r.system.total_memory() as f64;
    let available = r.system.available_memory() as f64;
    push("host_memory_total_bytes", &base, total);
    push("host_memory_available_bytes", &base, available);
    if total > 0.0 {
        push("host_memory_used_ratio", &base, 1.0 - available / total);
    }
    push("host_swap_total_bytes", &base, r.system.total_swap() as f64);
    push("host_swap_used_bytes", &base, r.system.used_swap() as f64);

    let mut dropped = 0usize;
    r.disks.refresh(true);
    let mut devices = std::collections::BTreeSet::new();
    for (i, d) in r.disks.list().iter().enumerate() {
        if i >= MAX_MOUNTS {
            dropped += 1;
            continue;
        }
        let device = d.name().to_string_lossy().into_owned();
        let labels = base
            .clone()
            .with("mountpoint", d.mount_point().to_string_lossy().into_owned())
            .with("device", device.clone())
            .with("fstype", d.file_system().to_string_lossy().into_owned());
        let size = d.total_space() as f64;
        let avail = d.available_space() as f64;
        push("host_filesystem_size_bytes", &labels, size);
        push("host_filesystem_avail_bytes", &labels, avail);
        if size > 0.0 {
            push("host_filesystem_used_ratio", &labels, 1.0 - avail / size);
        }
        // One device can be mounted at several places: its I/O counts once.
        if devices.insert(device.clone()) {
            let usage = d.usage();
            let dl = base.clone().with("device", device);
            push("host_disk_read_bytes_total", &dl, usage.total_read_bytes as f64);
            push("host_disk_written_bytes_total", &dl, usage.total_written_bytes as f64);
        }
    }
    r.networks.refresh(true);
    let mut interfaces: Vec<_> = r.networks.list().iter().collect();
    interfaces.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (name, data)) in interfaces.into_iter().enumerate() {
        if i >= MAX_INTERFACES {
            dropped += 1;
            continue;
        }
        let labels = base.clone().with("interface", name.as_str());
        push("host_network_receive_bytes_total", &labels, data.total_received() as f64);
        push("host_network_transmit_bytes_total", &labels, data.total_transmitted() as f64);
    }
    push("host_series_dropped", &base, dropped as f64);
    out
}

#[async_trait]
impl MetricSource for HostSource {
    fn name(&self) -> &str {
        "host"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        let readers = Arc::clone(&self.readers);
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || {
            let mut r = readers.lock().unwrap_or_else(PoisonError::into_inner);
            read(&mut r, &host, now)
        })
        .await
        .map_err(|e| CollectError::Failed(format!("the host reader stopped: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(samples: &[Sample], name: &str) -> Option<f64> {
        samples.iter().find(|s| s.name == name).map(|s| s.value)
    }

    #[test]
    fn this_machine_reads_sane() {
        let source = HostSource::new(Duration::from_secs(1));
        let first = source.collect_blocking(Timestamp(1000));
        assert_eq!(value(&first, "host_cpu_usage_ratio"), None, "no CPU share before a second reading");
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let s = source.collect_blocking(Timestamp(2000));
        let cpus = value(&s, "host_cpu_count").expect("cpus");
        assert_eq!(cpus, std::thread::available_parallelism().map_or(1, |n| n.get()) as f64);
        let usage = value(&s, "host_cpu_usage_ratio").expect("usage");
        assert!((0.0..=1.0).contains(&usage), "{usage}");
        let total = value(&s, "host_memory_total_bytes").expect("memory");
        let avail = value(&s, "host_memory_available_bytes").expect("available");
        assert!(total > 64e6 && avail > 0.0 && avail <= total, "{avail} of {total}");
        let root = s
            .iter()
            .find(|x| x.name == "host_filesystem_used_ratio" && x.labels.get("mountpoint") == Some("/"))
            .expect("the root filesystem");
        assert!((0.0..=1.0).contains(&root.value), "{}", root.value);
        assert!(s.iter().all(|x| x.labels.get("host").is_some() && x.value.is_finite()));
        assert_eq!(value(&s, "host_series_dropped"), Some(0.0));
    }
}
