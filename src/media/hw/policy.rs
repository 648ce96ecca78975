//! Which hardware a camera tries: a named backend, the configured `auto` order, or
//! nothing; what the probe finds here; and what a camera will fall back to before it
//! has opened its source.

use std::time::Duration;

use super::probe::{self, HwReport};
use super::{device, DeviceNames, HwBackend, HwChoice};

/// After a fall back to software, hardware is tried again this much later.
pub const DEFAULT_HW_RETRY: Duration = Duration::from_secs(300);

/// The order `auto` tries (`HW_ACCEL_OPTIONS`); backends after a `none` are not tried.
pub const DEFAULT_HW_ACCEL_OPTIONS: [HwChoice; 4] = [
    HwChoice::Backend(HwBackend::Cuda),
    HwChoice::Backend(HwBackend::Qsv),
    HwChoice::Backend(HwBackend::Vaapi),
    HwChoice::None,
];

/// What hardware a source should decode with.
#[derive(Debug, Clone, PartialEq)]
pub struct HwRequest {
    /// Backends to try, in order; empty: software only.
    pub backends: Vec<HwBackend>,
    pub devices: DeviceNames,
    /// After a fall back to software, hardware is tried again this much later.
    pub retry_after: Duration,
}

impl Default for HwRequest {
    fn default() -> Self {
        HwPolicy::default().request(HwChoice::None)
    }
}

/// How the process uses hardware: the `auto` order, the devices and the retry
/// interval, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct HwPolicy {
    order: Vec<HwChoice>,
    devices: DeviceNames,
    retry_after: Duration,
}

impl Default for HwPolicy {
    fn default() -> Self {
        HwPolicy::new(
            DEFAULT_HW_ACCEL_OPTIONS.to_vec(),
            DeviceNames::default(),
            DEFAULT_HW_RETRY,
        )
    }
}

impl HwPolicy {
    /// `order` is what `auto` tries, up to its first `none`.
    pub fn new(order: Vec<HwChoice>, devices: DeviceNames, retry_after: Duration) -> HwPolicy {
        HwPolicy {
            order,
            devices,
            retry_after,
        }
    }

    /// What a source whose caller chose `choice` tries: the named backend, the
    /// configured order up to its first `none` for `auto`, nothing for `none`.
    pub fn request(&self, choice: HwChoice) -> HwRequest {
        let backends = match choice {
            HwChoice::None => Vec::new(),
            HwChoice::Backend(backend) => vec![backend],
            HwChoice::Auto => self
                .order
                .iter()
                .map_while(|choice| match choice {
                    HwChoice::Backend(backend) => Some(*backend),
                    _ => None,
                })
                .collect(),
        };
        HwRequest {
            backends,
            devices: self.devices.clone(),
            retry_after: self.retry_after,
        }
    }

    /// Tries every backend a caller may name on this machine's devices, for real.
    /// Blocking (it decodes a clip on each device that opens).
    pub fn probe(&self) -> HwReport {
        let probes = probe::probe_backends(&HwBackend::ALL, &self.devices);
        let available = probes
            .iter()
            .filter(|p| p.available)
            .map(|p| p.backend)
            .collect();
        HwReport {
            available,
            compiled: device::compiled_device_types(),
            probes,
        }
    }

    /// Why a source will decode in software, as `report` foresees it: what the status
    /// says until the source is open and its decoder tells.
    pub fn expected_fallback(&self, report: &HwReport, request: &HwRequest) -> Option<String> {
        if request.backends.is_empty() {
            return None;
        }
        let mut reasons = Vec::new();
        for backend in &request.backends {
            match report.probes.iter().find(|p| p.backend == *backend) {
                Some(probe) if probe.available => return None,
                Some(probe) => reasons.push(format!(
                    "{backend}: {}",
                    probe.reason.as_deref().unwrap_or("unavailable")
                )),
                None => reasons.push(format!("{backend}: not a backend of this machine")),
            }
        }
        Some(format!("{}; decoding in software", reasons.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::hw::DeviceProbe;

    #[test]
    fn auto_tries_the_order_up_to_its_first_none() {
        let policy = HwPolicy::new(
            vec![
                HwChoice::Backend(HwBackend::Vaapi),
                HwChoice::Backend(HwBackend::Cuda),
                HwChoice::None,
                HwChoice::Backend(HwBackend::Qsv),
            ],
            DeviceNames::default(),
            Duration::from_secs(5),
        );
        let auto = policy.request(HwChoice::Auto);
        assert_eq!(auto.backends, [HwBackend::Vaapi, HwBackend::Cuda]);
        assert_eq!(auto.retry_after, Duration::from_secs(5));
        let named = policy.request(HwChoice::Backend(HwBackend::Rkmpp));
        assert_eq!(named.backends, [HwBackend::Rkmpp]);
        assert!(policy.request(HwChoice::None).backends.is_empty());
    }

    #[test]
    fn the_default_auto_order_is_cuda_qsv_vaapi() {
        let auto = HwPolicy::default().request(HwChoice::Auto);
        assert_eq!(
            auto.backends,
            [HwBackend::Cuda, HwBackend::Qsv, HwBackend::Vaapi]
        );
        assert_eq!(auto.devices, DeviceNames::default());
        assert_eq!(HwRequest::default().backends, []);
        assert_eq!(HwRequest::default().retry_after, DEFAULT_HW_RETRY);
    }

    #[test]
    fn expected_fallback_lists_each_backend_tried() {
        let report = HwReport {
            available: vec![HwBackend::Vaapi],
            compiled: Vec::new(),
            probes: vec![
                DeviceProbe {
                    backend: HwBackend::Cuda,
                    available: false,
                    reason: Some("no device".into()),
                },
                DeviceProbe {
                    backend: HwBackend::Vaapi,
                    available: true,
                    reason: None,
                },
            ],
        };
        let policy = HwPolicy::default();
        let request = |backends: &[HwBackend]| HwRequest {
            backends: backends.to_vec(),
            ..HwRequest::default()
        };
        let fallback =
            |backends: &[HwBackend]| policy.expected_fallback(&report, &request(backends));
        assert_eq!(fallback(&[]), None);
        assert_eq!(fallback(&[HwBackend::Cuda, HwBackend::Vaapi]), None);
        assert_eq!(
            fallback(&[HwBackend::Cuda, HwBackend::Rkmpp]).as_deref(),
            Some("cuda: no device; rkmpp: not a backend of this machine; decoding in software")
        );
    }
}
