//! `CoreLinks`: one core's ends of the links between cores that services
//! ask for (rings to their peers on other cores), made once per spec by the
//! platform before any core builds, and taken by the services' factories.

use super::HookPoint;
use crate::tcp::Listener;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::RefCell;

/// The ends of cross-core links that belong to one core, each kept under
/// the hook point of the service that asked for it. A service kind makes
/// one end per core that runs it ([`TcpServiceKind::link_cores`]); the
/// platform hands each core its `CoreLinks` (see `control::core_links`),
/// and the kind's factory takes its end back with [`CoreLinks::take`]
/// while the core builds. Nothing here is used after the build: the ends
/// are moved into the nodes and apps.
///
/// [`TcpServiceKind::link_cores`]: super::TcpServiceKind::link_cores
///
/// Beside the services' ends, a core's links carry what the platform
/// shares with every core's stack ([`CoreLinks::insert_shared`]: the TCP
/// flow directory, the counters board) and the TCP apps it adds beside the
/// spec's services ([`PlatformListener`]: the management plane).
#[derive(Default)]
pub struct CoreLinks {
    ends: RefCell<Vec<(HookPoint, Box<dyn Any + Send>)>>,
    shared: RefCell<Vec<Box<dyn Any + Send>>>,
}

/// A TCP app the platform serves on a core beside the spec's services
/// (the management plane), on `port`.
pub struct PlatformListener {
    /// The TCP port.
    pub port: u16,
    /// The app.
    pub listener: Box<dyn Listener + Send>,
}

impl core::fmt::Debug for CoreLinks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ends = self.ends.borrow();
        f.debug_list()
            .entries(ends.iter().map(|(hook, _)| hook))
            .finish()
    }
}

impl CoreLinks {
    /// No links: every service on the core works alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `end` for the service at `hook`.
    pub fn insert(&mut self, hook: HookPoint, end: Box<dyn Any + Send>) {
        self.ends.get_mut().push((hook, end));
    }

    /// Takes out the end kept for the service at `hook`, if there is one
    /// and it is a `T`.
    pub fn take<T: Any>(&self, hook: HookPoint) -> Option<T> {
        let mut ends = self.ends.borrow_mut();
        let index = ends
            .iter()
            .position(|(at, end)| *at == hook && end.is::<T>())?;
        let (_, end) = ends.swap_remove(index);
        end.downcast::<T>().ok().map(|end| *end)
    }

    /// Keeps `value` for the core's build to take by its type (one of
    /// each type is taken per [`CoreLinks::take_shared`] call).
    pub fn insert_shared<T: Any + Send>(&mut self, value: T) {
        self.shared.get_mut().push(Box::new(value));
    }

    /// Takes out a shared value of type `T`, if one is kept.
    pub fn take_shared<T: Any>(&self) -> Option<T> {
        let mut shared = self.shared.borrow_mut();
        let index = shared.iter().position(|value| value.is::<T>())?;
        let value = shared.swap_remove(index);
        value.downcast::<T>().ok().map(|value| *value)
    }

    /// Ends not taken yet.
    pub fn len(&self) -> usize {
        self.ends.borrow().len()
    }

    /// True when no end is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_is_taken_once_by_hook_and_type() {
        let mut links = CoreLinks::new();
        links.insert(HookPoint::Tcp(11211), Box::new(7u32));
        links.insert(HookPoint::Tcp(80), Box::new(9u32));
        assert_eq!(links.take::<u64>(HookPoint::Tcp(11211)), None);
        assert_eq!(links.take::<u32>(HookPoint::Tcp(11211)), Some(7));
        assert_eq!(links.take::<u32>(HookPoint::Tcp(11211)), None);
        assert_eq!(links.len(), 1);
        assert_eq!(alloc::format!("{links:?}"), "[Tcp(80)]");
    }
}
