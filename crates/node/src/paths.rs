//! Where oxmon-node reads from: `--path.procfs`, `--path.sysfs`,
//! `--path.rootfs`, `--path.udev.data`. Collectors never hardcode `/proc`
//! or `/sys`; they join relative paths onto these roots.

use std::path::PathBuf;

/// The configured filesystem roots (node_exporter's flags and defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct Paths {
    /// procfs mountpoint.
    #[arg(long = "path.procfs", default_value = "/proc")]
    pub procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", default_value = "/sys")]
    pub sysfs: PathBuf,
    /// rootfs mountpoint.
    #[arg(long = "path.rootfs", default_value = "/")]
    pub rootfs: PathBuf,
    /// udev data path.
    #[arg(long = "path.udev.data", default_value = "/run/udev/data")]
    pub udev_data: PathBuf,
}

impl Paths {
    /// `<procfs>/<rel>`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    /// `<sysfs>/<rel>`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }

    /// `<rootfs>/<rel>` (rel may start with `/`).
    pub fn root(&self, rel: &str) -> PathBuf {
        self.rootfs.join(rel.trim_start_matches('/'))
    }

    /// Strips the rootfs prefix from a mount point seen through
    /// `<procfs>/1/mounts`, as node_exporter does (`/host/home` → `/home`).
    pub fn strip_rootfs<'a>(&self, p: &'a str) -> std::borrow::Cow<'a, str> {
        let root = self.rootfs.to_string_lossy();
        if root == "/" || root.is_empty() {
            return p.into();
        }
        let root = root.trim_end_matches('/');
        match p.strip_prefix(root) {
            Some("") => "/".into(),
            Some(rest) if rest.starts_with('/') => rest.to_string().into(),
            _ => p.into(),
        }
    }

    /// `<udev_data>/<rel>`.
    pub fn udev(&self, rel: &str) -> PathBuf {
        self.udev_data.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_stripping() {
        let p = Paths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/host".into(),
            udev_data: "/run/udev/data".into(),
        };
        assert_eq!(p.strip_rootfs("/host/home"), "/home");
        assert_eq!(p.strip_rootfs("/host"), "/");
        assert_eq!(p.strip_rootfs("/hostile"), "/hostile");
        assert_eq!(
            p.root("/etc/os-release"),
            PathBuf::from("/host/etc/os-release")
        );
    }
}
