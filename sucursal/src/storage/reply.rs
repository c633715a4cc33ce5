//! How the writer's answers reach the code that submitted a command.
//!
//! Each command carries a [`Replier`] typed by its own reply, so the writer cannot answer a
//! sale with an adjustment's reply: that is a compile error, not a runtime check.
//!
//! Answers to HTTP handlers go through their worker thread's dispatcher task, which the
//! syncer hands all of a batch's answers for that thread in one message. Sending each
//! oneshot from the syncer thread instead is a remote wake of the worker's runtime per sale
//! (an eventfd write, one per sale measured with `perf stat`); from the dispatcher, on the
//! worker's own thread, it is a local one.
use super::db::StoreError;
use tokio::sync::{mpsc, oneshot};

/// One delivery of an answer, ready to run on whichever thread receives it.
type Delivery = Box<dyn FnOnce() + Send>;

/// Where a command's answer goes: its oneshot, and — for commands submitted from an actix
/// worker thread — that thread's dispatcher.
pub struct Replier<T> {
    tx: oneshot::Sender<Result<T, StoreError>>,
    route: Option<Route>,
}

impl<T: Send + 'static> Replier<T> {
    pub(super) fn new(route: Option<Route>) -> (Replier<T>, oneshot::Receiver<Result<T, StoreError>>) {
        let (tx, rx) = oneshot::channel();
        (Replier { tx, route }, rx)
    }

    /// Answers at once, on this thread (errors, and commands off the HTTP workers).
    pub(super) fn send(self, r: Result<T, StoreError>) {
        let _ = self.tx.send(r);
    }

    /// Packs a success for [`Answers`], which delivers it through the route, if any.
    pub(super) fn ok(self, value: T) -> (Option<Route>, Delivery) {
        let Replier { tx, route } = self;
        (
            route,
            Box::new(move || {
                let _ = tx.send(Ok(value));
            }),
        )
    }
}

impl<T: Send + 'static, E: Send + 'static> Replier<Result<T, E>> {
    /// The command was refused (`Ok(Err(e))` to its caller) — once its batch is durable; if
    /// the batch fails instead, the caller is told that.
    pub(super) fn refuse(self, e: E) -> Refused {
        Refused(Box::new(move |failed| match failed {
            Some(err) => {
                self.send(Err(err));
                None
            }
            None => Some(self.ok(Err(e))),
        }))
    }
}

/// Given the batch's failure (or `None` once it is durable): the refusal to deliver, if any.
type Refusing = Box<dyn FnOnce(Option<StoreError>) -> Option<(Option<Route>, Delivery)> + Send>;

/// A refusal waiting for its batch (see [`Replier::refuse`]).
pub(super) struct Refused(Refusing);

impl Refused {
    /// The batch is durable: the refusal to deliver.
    pub(super) fn answer(self) -> Option<(Option<Route>, Delivery)> {
        (self.0)(None)
    }
}

impl From<Refused> for Unanswered {
    fn from(r: Refused) -> Self {
        Unanswered(Box::new(move |e| {
            (r.0)(Some(e));
        }))
    }
}

/// A replier whose type no longer matters because it will only ever be told the command
/// failed (what a failed commit or fsync does to every command of its batch).
pub struct Unanswered(Box<dyn FnOnce(StoreError) + Send>);

impl Unanswered {
    /// For an effect nobody waits on.
    pub(super) fn nobody() -> Unanswered {
        Unanswered(Box::new(|_| {}))
    }

    pub fn fail(self, e: StoreError) {
        (self.0)(e)
    }
}

impl<T: Send + 'static> From<Replier<T>> for Unanswered {
    fn from(r: Replier<T>) -> Self {
        Unanswered(Box::new(move |e| r.send(Err(e))))
    }
}

#[derive(Clone)]
pub(super) struct Route(mpsc::UnboundedSender<Vec<Delivery>>);

thread_local! {
    static ROUTE: std::cell::RefCell<Option<Route>> = const { std::cell::RefCell::new(None) };
}

/// This thread's dispatcher task, started on first use. Must run inside a `LocalSet`, as
/// every actix-web handler does (its futures are `!Send`, so actix runs them with
/// `spawn_local` on the worker's own thread).
pub(super) fn local_route() -> Route {
    ROUTE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if let Some(r) = cell.as_ref().filter(|r| !r.0.is_closed()) {
            return r.clone();
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Delivery>>();
        tokio::task::spawn_local(async move {
            while let Some(deliveries) = rx.recv().await {
                for d in deliveries {
                    d();
                }
            }
        });
        let route = Route(tx);
        *cell = Some(route.clone());
        route
    })
}

/// True once this thread has started its dispatcher (for tests).
#[cfg(test)]
pub(super) fn has_local_route() -> bool {
    ROUTE.with(|c| c.borrow().is_some())
}

/// A durable batch's answers, grouped by route: one message per worker thread.
///
/// Nothing is delivered before [`Answers::deliver`], which the syncer calls once every
/// effect of the batch is in memory: a caller that reads right after its answer (a shift's
/// figures after a return) sees its own write, whichever way its answer travels.
#[derive(Default)]
pub(super) struct Answers {
    groups: Vec<(Route, Vec<Delivery>)>,
    /// Answers to callers off the HTTP workers, sent from the syncer's thread.
    direct: Vec<Delivery>,
}

impl Answers {
    pub(super) fn push(&mut self, (route, delivery): (Option<Route>, Delivery)) {
        let Some(route) = route else {
            self.direct.push(delivery);
            return;
        };
        match self.groups.iter_mut().find(|(g, _)| g.0.same_channel(&route.0)) {
            Some((_, v)) => v.push(delivery),
            None => self.groups.push((route, vec![delivery])),
        }
    }

    pub(super) fn deliver(self) {
        for d in self.direct {
            d();
        }
        for (route, deliveries) in self.groups {
            // The worker's runtime has stopped: answer directly (its tasks are gone anyway).
            if let Err(mpsc::error::SendError(deliveries)) = route.0.send(deliveries) {
                for d in deliveries {
                    d();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_go_straight_to_the_handler_when_its_dispatcher_is_gone() {
        let (route_tx, route_rx) = mpsc::unbounded_channel::<Vec<Delivery>>();
        drop(route_rx);
        let (replier, mut rx) = Replier::<u64>::new(Some(Route(route_tx)));
        let mut answers = Answers::default();
        answers.push(replier.ok(7));
        answers.deliver();
        assert!(matches!(rx.try_recv(), Ok(Ok(7))));
    }

    #[test]
    fn an_answer_without_a_route_waits_for_the_batch_to_be_delivered() {
        let (replier, mut rx) = Replier::<u64>::new(None);
        let mut answers = Answers::default();
        answers.push(replier.ok(7));
        assert!(rx.try_recv().is_err(), "not before the batch's effects are in memory");
        answers.deliver();
        assert!(matches!(rx.try_recv(), Ok(Ok(7))));
    }
}
