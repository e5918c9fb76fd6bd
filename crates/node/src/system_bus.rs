//! The D-Bus system bus as the systemd and logind collectors use it: one
//! connection kept across scrapes (node_exporter dials, authenticates and
//! says Hello on every scrape; a kept connection costs one socket and saves
//! three round trips), dropped and redialled after any transport failure.
//!
//! The address is zbus's: `DBUS_SYSTEM_BUS_ADDRESS`, else
//! `unix:path=/var/run/dbus/system_bus_socket`. Tests point it at a private
//! `dbus-daemon`.
//!
//! Replies are decoded by zbus; a reply of the wrong D-Bus type is a
//! [`BusError::Reply`] naming the call, never a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::zvariant::{DynamicType, OwnedValue};
use zbus::Connection;

/// A failed bus operation, naming what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus could not be reached or the connection broke.
    #[error("system bus: {0}")]
    Connect(Box<zbus::Error>),
    /// A call failed: an error reply from the service or the bus (no such
    /// property on this systemd version, access denied, limits exceeded),
    /// or the connection broke while it waited.
    #[error("{call}: {source}")]
    Call {
        /// `interface.Method` (and object path) that failed.
        call: String,
        /// The error reply or transport error.
        source: Box<zbus::Error>,
    },
    /// The reply did not have the D-Bus type the call promises.
    #[error("{call}: unexpected reply: {detail}")]
    Reply {
        /// `interface.Method` (and object path) that was answered.
        call: String,
        /// What did not match.
        detail: String,
    },
}

impl BusError {
    /// Whether the connection may be broken (the bus is gone or restarted,
    /// a transport error): it is then dropped and redialled next scrape. An
    /// error reply or a reply of the wrong type leaves it usable.
    pub fn breaks_connection(&self) -> bool {
        match self {
            BusError::Connect(_) => true,
            BusError::Call { source, .. } => error_name(source).is_none(),
            BusError::Reply { .. } => false,
        }
    }

    /// The service said no to this one call (the object or property does
    /// not exist: an older systemd, a session that just ended): the caller
    /// may skip the value, as node_exporter does. Errors of the bus itself
    /// (limits exceeded, no reply, access denied, service gone) are not
    /// refusals: skipping them would hide missing data.
    pub fn is_refusal(&self) -> bool {
        match self {
            BusError::Call { source, .. } => {
                error_name(source).is_some_and(|n| !BUS_FAILURES.contains(&n.as_str()))
            }
            _ => false,
        }
    }
}

/// Error replies that say the bus or the service failed, not that the
/// asked-for thing does not exist.
const BUS_FAILURES: [&str; 8] = [
    "org.freedesktop.DBus.Error.LimitsExceeded",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoMemory",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.AccessDenied",
];

/// The D-Bus error name of an error reply; `None` for errors that are no
/// reply (transport, encoding).
fn error_name(e: &zbus::Error) -> Option<String> {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, ..) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(e.name().to_string()),
        _ => None,
    }
}

/// At most this many calls are waiting for replies on the connection at
/// once: dbus-daemon's system bus allows a connection 128
/// (`max_replies_per_connection`) and answers `LimitsExceeded` beyond.
pub const MAX_IN_FLIGHT: usize = 32;

/// A lazily dialled, kept system bus connection.
#[derive(Default)]
pub struct SystemBus {
    conn: tokio::sync::Mutex<Option<Connection>>,
}

impl SystemBus {
    /// The kept connection, dialling it when there is none.
    pub async fn connection(&self) -> Result<Connection, BusError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Connection::system()
            .await
            .map_err(|e| BusError::Connect(Box::new(e)))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection after a failure that may have broken it
    /// (see [`BusError::breaks_connection`]), so the next scrape redials.
    pub async fn forget_if_broken<T>(&self, result: &Result<T, BusError>) {
        if let Err(e) = result {
            if e.breaks_connection() {
                *self.conn.lock().await = None;
            }
        }
    }
}

/// Calls `interface.method` on `dest` at `path` and decodes the reply body
/// as `R`.
pub async fn call<B, R>(
    conn: &Connection,
    dest: &str,
    path: &str,
    interface: &str,
    method: &str,
    body: &B,
) -> Result<R, BusError>
where
    B: Serialize + DynamicType,
    R: DeserializeOwned + zbus::zvariant::Type,
{
    let what = || format!("{interface}.{method} on {path}");
    let reply = conn
        .call_method(Some(dest), path, Some(interface), method, body)
        .await
        .map_err(|source| BusError::Call {
            call: what(),
            source: Box::new(source),
        })?;
    reply
        .body()
        .deserialize::<R>()
        .map_err(|e| BusError::Reply {
            call: what(),
            detail: e.to_string(),
        })
}

/// Reads property `name` of `interface` on `dest` at `path`.
pub async fn property(
    conn: &Connection,
    dest: &str,
    path: &str,
    interface: &str,
    name: &str,
) -> Result<OwnedValue, BusError> {
    call(
        conn,
        dest,
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        &(interface, name),
    )
    .await
    .map_err(|e| match e {
        BusError::Call { source, .. } => BusError::Call {
            call: format!("{interface}.{name} on {path}"),
            source,
        },
        other => other,
    })
}

/// Reads property `name` and converts it to `T` (`u64`, `u32`, `bool`,
/// `String`); a value of another D-Bus type is a [`BusError::Reply`].
pub async fn typed_property<T>(
    conn: &Connection,
    dest: &str,
    path: &str,
    interface: &str,
    name: &str,
) -> Result<T, BusError>
where
    T: TryFrom<OwnedValue>,
    <T as TryFrom<OwnedValue>>::Error: std::fmt::Display,
{
    let value = property(conn, dest, path, interface, name).await?;
    let signature = value.value_signature().to_string();
    T::try_from(value).map_err(|e| BusError::Reply {
        call: format!("{interface}.{name} on {path}"),
        detail: format!("value of type {signature}: {e}"),
    })
}
