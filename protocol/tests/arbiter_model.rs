//! The arbiter against a small reference model: who is alive, who is counted, the target, and
//! who was asked to stop, over random sequences of signals, boots, crashes and reaps. Every step
//! also runs through the invariant monitor.

use herd_protocol::arbiter::{Action, Config, ExitStatus, Input, Life, WorkerId, domain};
use herd_protocol::invariants::Checked;
use herd_protocol::message::WorkerMsg;
use herd_protocol::signals::Sig;
use herd_protocol::time::Instant;
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug)]
struct RefWorker {
    generation: u32,
    booted: bool,
    asked: bool,
}

#[derive(Clone, Debug)]
struct Model {
    configured: u32,
    /// `--timeout 0` (a corner of the configuration domain): the same behaviour over these steps,
    /// where no timeout is ever reached.
    untimed: bool,
    target: u32,
    generation: u32,
    next_id: u64,
    workers: BTreeMap<u64, RefWorker>,
    running: bool,
    exited: bool,
}

#[derive(Clone, Debug)]
enum Step {
    Signal(Sig),
    /// The n-th (mod count) unbooted, unasked worker says ACCEPT.
    Boot(usize),
    /// The n-th booted, unasked worker is SIGKILLed from outside.
    Crash(usize),
    /// The n-th asked worker exits 0.
    Reap(usize),
}

impl Model {
    fn pick(&self, n: usize, f: impl Fn(&RefWorker) -> bool) -> Option<u64> {
        let ids: Vec<u64> = self.workers.iter().filter(|(_, w)| f(w)).map(|(&id, _)| id).collect();
        (!ids.is_empty()).then(|| ids[n % ids.len()])
    }

    fn target_of(&self, step: &Step) -> Option<u64> {
        match *step {
            Step::Boot(n) => self.pick(n, |w| !w.booted && !w.asked),
            Step::Crash(n) => self.pick(n, |w| w.booted && !w.asked),
            Step::Reap(n) => self.pick(n, |w| w.asked),
            Step::Signal(_) => None,
        }
    }

    fn settle(&mut self) {
        if !self.running {
            for w in self.workers.values_mut() {
                w.asked = true;
            }
            self.exited |= self.workers.is_empty();
            return;
        }
        let g = self.generation;
        let current = |m: &Model| m.workers.values().filter(|w| !w.asked && w.generation == g).count();
        while current(self) < self.target as usize {
            self.workers.insert(self.next_id, RefWorker { generation: g, booted: false, asked: false });
            self.next_id += 1;
        }
        // Oldest first, above the target; then old generations as new workers come up.
        let mut excess = current(self) - self.target as usize;
        for w in self.workers.values_mut().filter(|w| !w.asked && w.generation == g) {
            if excess == 0 {
                break;
            }
            w.asked = true;
            excess -= 1;
        }
        let ready_new = self.workers.values().filter(|w| !w.asked && w.generation == g && w.booted).count();
        let allowed_old = (self.target as usize).saturating_sub(ready_new);
        let old = self.workers.values().filter(|w| !w.asked && w.generation < g).count();
        let mut excess = old.saturating_sub(allowed_old);
        for w in self.workers.values_mut().filter(|w| !w.asked && w.generation < g) {
            if excess == 0 {
                break;
            }
            w.asked = true;
            excess -= 1;
        }
    }
}

struct ArbiterModel;

impl ReferenceStateMachine for ArbiterModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        (*domain::WORKERS.start()..5, any::<bool>())
            .prop_map(|(n, untimed)| {
                let mut m = Model {
                    configured: n,
                    untimed,
                    target: n,
                    generation: 0,
                    next_id: 0,
                    workers: BTreeMap::new(),
                    running: true,
                    exited: false,
                };
                m.settle();
                m
            })
            .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        prop_oneof![
            3 => any::<usize>().prop_map(Step::Boot),
            2 => any::<usize>().prop_map(Step::Crash),
            2 => any::<usize>().prop_map(Step::Reap),
            2 => Just(Step::Signal(Sig::Ttin)),
            2 => Just(Step::Signal(Sig::Ttou)),
            1 => Just(Step::Signal(Sig::Hup)),
            1 => Just(Step::Signal(Sig::Winch)),
            1 => Just(Step::Signal(Sig::Term)),
            1 => Just(Step::Signal(Sig::Quit)),
            1 => Just(Step::Signal(Sig::Chld)),
        ]
        .boxed()
    }

    fn preconditions(m: &Model, step: &Step) -> bool {
        matches!(step, Step::Signal(_)) || m.target_of(step).is_some()
    }

    fn apply(mut m: Model, step: &Step) -> Model {
        let id = m.target_of(step);
        match *step {
            Step::Boot(_) => m.workers.get_mut(&id.unwrap()).unwrap().booted = true,
            Step::Crash(_) | Step::Reap(_) => {
                m.workers.remove(&id.unwrap());
            }
            Step::Signal(sig) if m.running => match sig {
                Sig::Ttin => m.target += 1,
                Sig::Ttou if m.target > 1 => m.target -= 1,
                Sig::Hup => {
                    m.generation += 1;
                    m.target = m.configured;
                }
                Sig::Winch => m.target = 0,
                Sig::Term | Sig::Quit => m.running = false,
                _ => {}
            },
            Step::Signal(_) => {}
        }
        m.settle();
        m
    }
}

struct Sut {
    c: Checked,
    now: u64,
    exited: bool,
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Sut;
    type Reference = ArbiterModel;

    fn init_test(m: &Model) -> Sut {
        let config = Config {
            workers: m.configured,
            timeout: (!m.untimed).then_some(Duration::from_secs(60)),
            graceful_timeout: Duration::from_secs(60),
            ..Config::default()
        };
        let (c, _) = Checked::new(config, Instant::ZERO).unwrap();
        Sut { c, now: 0, exited: false }
    }

    fn apply(mut s: Sut, after: &Model, step: Step) -> Sut {
        s.now += 1_000_000;
        let now = Instant(s.now);
        // The worker the step names is chosen on the SUT's table with the model's rule, so the
        // two are compared, not copied.
        let table = s.c.arbiter.workers();
        let pick = |n: usize, f: &dyn Fn(WorkerId) -> bool| {
            let ids: Vec<WorkerId> = table.keys().copied().filter(|&id| f(id)).collect();
            ids[n % ids.len()]
        };
        let input = match step {
            Step::Signal(sig) => Input::Signal(sig),
            Step::Boot(n) => {
                let id = pick(n, &|id| !table[&id].booted && table[&id].life == Life::Active);
                Input::Message { from: id, msg: WorkerMsg::Accept }
            }
            Step::Crash(n) => {
                let id = pick(n, &|id| table[&id].booted && table[&id].life == Life::Active);
                Input::Exited { id, status: ExitStatus::Signaled(9) }
            }
            Step::Reap(n) => {
                let id = pick(n, &|id| table[&id].life != Life::Active);
                Input::Exited { id, status: ExitStatus::Code(0) }
            }
        };
        let actions = s.c.step(now, input).unwrap_or_else(|v| panic!("invariant broken: {v}"));
        s.exited |= actions.iter().any(|a| matches!(a, Action::Exit { .. }));
        let alive: Vec<u64> = s.c.arbiter.workers().keys().map(|id| id.0).collect();
        let want: Vec<u64> = after.workers.keys().copied().collect();
        assert_eq!(alive, want, "alive workers after {step:?}");
        let active: Vec<u64> =
            s.c.arbiter
                .workers()
                .iter()
                .filter(|(_, w)| w.life == Life::Active)
                .map(|(id, _)| id.0)
                .collect();
        let want: Vec<u64> = after.workers.iter().filter(|(_, w)| !w.asked).map(|(&id, _)| id).collect();
        assert_eq!(active, want, "counted workers after {step:?}");
        if after.running {
            assert_eq!(s.c.arbiter.target(), after.target);
        }
        assert_eq!(s.exited, after.exited, "exit after {step:?}");
        s
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn arbiter_matches_reference_model(sequential 1..60 => Sut);
}
