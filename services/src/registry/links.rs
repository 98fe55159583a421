//! `CoreLinks`: one core's ends of the links between cores that services
//! ask for (rings to their peers on other cores), made once per spec by the
//! platform before any core builds, and taken by the services' factories.

use super::HookPoint;
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
#[derive(Default)]
pub struct CoreLinks {
    ends: RefCell<Vec<(HookPoint, Box<dyn Any + Send>)>>,
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
