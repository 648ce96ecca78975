//! What the kernel says about this process, read from `/proc/self` at scrape time.

use std::fs;
use std::io;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
}

pub fn read() -> io::Result<ProcessStats> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    let status = fs::read_to_string("/proc/self/status")?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| malformed("/proc/self/stat"))?;
    let field = |name| status_field(&status, name).ok_or_else(|| malformed("/proc/self/status"));
    // The directory being listed is itself one of the entries: not counted.
    let open_fds = fs::read_dir("/proc/self/fd")?.count().saturating_sub(1);
    Ok(ProcessStats {
        cpu_seconds: ticks as f64 / rustix::param::clock_ticks_per_second() as f64,
        resident_bytes: field("VmRSS:")?.saturating_mul(1024),
        open_fds: open_fds as u64,
        threads: field("Threads:")?,
    })
}

fn malformed(file: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {file}"))
}

/// User plus system time in clock ticks: fields 14 and 15 of `stat`, counted after the
/// command name, which is in parentheses and may itself hold spaces and parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // Field 3 (the state) is the first after the name.
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// The number of a `status` line such as `VmRSS:   1234 kB` or `Threads:  7`.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_found_after_an_awkward_command_name() {
        let stat = "4242 (cam-a) (x) S 1 4242 4242 0 -1 4194560 905 0 0 0 \
                    250 37 0 0 20 0 9 0 123 456789 1234 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(287));
        assert_eq!(parse_cpu_ticks("4242 (cut"), None);
    }

    #[test]
    fn status_fields_are_read_by_name() {
        let status = "Name:\tvideo-pipeline\nVmRSS:\t   51200 kB\nThreads:\t12\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(51200));
        assert_eq!(status_field(status, "Threads:"), Some(12));
        assert_eq!(status_field(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_is_seen() {
        let stats = read().unwrap();
        assert!(stats.resident_bytes > 0 && stats.threads >= 1 && stats.open_fds >= 3);
        assert!(stats.cpu_seconds >= 0.0);
    }
}
