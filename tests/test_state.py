"""Service states: every allowed transition works, every other one raises StateError."""

import itertools

import pytest

from mlservices.errors import StateError
from mlservices.state import SERVING, TRANSITIONS, ServiceState, StateMachine, can_transition

S = ServiceState
PAIRS = list(itertools.product(ServiceState, ServiceState))


def machine_in(state: ServiceState) -> StateMachine:
    """A machine driven to ``state`` along allowed transitions only."""
    paths = {
        S.CREATED: [],
        S.STARTING: [S.STARTING],
        S.READY: [S.STARTING, S.READY],
        S.DEGRADED: [S.STARTING, S.READY, S.DEGRADED],
        S.STOPPING: [S.STARTING, S.READY, S.STOPPING],
        S.STOPPED: [S.STARTING, S.READY, S.STOPPING, S.STOPPED],
        S.FAILED: [S.STARTING, S.FAILED],
    }
    machine = StateMachine("test")
    for step in paths[state]:
        machine.transition(step)
    assert machine.state is state
    return machine


def test_the_documented_graph():
    assert TRANSITIONS[S.CREATED] == {S.STARTING}
    assert TRANSITIONS[S.STARTING] == {S.READY, S.FAILED}
    assert TRANSITIONS[S.READY] == {S.DEGRADED, S.STOPPING, S.FAILED}
    assert TRANSITIONS[S.DEGRADED] == {S.READY, S.STOPPING, S.FAILED}
    assert TRANSITIONS[S.STOPPING] == {S.STOPPED, S.FAILED}
    assert TRANSITIONS[S.STOPPED] == set()
    assert TRANSITIONS[S.FAILED] == {S.STOPPING}


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_transition(source, target):
    machine = machine_in(source)
    seen = []
    machine.add_listener(lambda old, new: seen.append((old, new)))
    if can_transition(source, target):
        assert machine.transition(target) is source
        assert machine.state is target and seen == [(source, target)]
    else:
        with pytest.raises(StateError) as info:
            machine.transition(target)
        assert machine.state is source and seen == []
        assert str(source) in str(info.value) and str(target) in str(info.value)
        assert info.value.context == {"state": source.value, "target": target.value}


@pytest.mark.parametrize("state", list(ServiceState))
def test_require_names_the_state(state):
    machine = machine_in(state)
    if state in SERVING:
        assert machine.require(SERVING, "embed_text") is state
        return
    with pytest.raises(StateError, match=f"but it is {state.value}") as info:
        machine.require(SERVING, "embed_text")
    assert info.value.context["state"] == state.value
    assert info.value.hint


def test_a_failing_listener_does_not_block_the_transition(caplog):
    machine = StateMachine("test")
    machine.add_listener(lambda old, new: 1 / 0)
    machine.transition(S.STARTING)
    assert machine.state is S.STARTING
    assert "listener" in caplog.text
    assert [s for s, _ in machine.history] == [S.CREATED, S.STARTING]
